//! Lock-free reads: `err`, `is_done`, `cause`, `deadline`, `value` (SPEC T2; docs/design.md 1, 5).
//!
//! # What a check reads
//!
//! One `Acquire` load of the context's own state word, whatever the depth of the tree: walks
//! push cancellation down to every descendant, and every node stores its effective deadline. The
//! load answers the handle's validity (generation and `HANDLE` in the same word), Err, and whether
//! a deadline exists.
//!
//! With a deadline, what the check does depends on who drove the arena's deadlines when the
//! context was created (the state's `CLOCKED` bit, fixed at creation, [`crate::engine::slot`]):
//!
//! - **A real-time driver ran** (the host driver thread on a clock with a known rate; once
//!   started it never stops): expiry is a state change like a cancel, made by the driver within
//!   its lateness (measured by the `deadline/fire` benchmark). The check reads nothing more, as
//!   Go's `Err()` does on a timer context: it is the plain check, one load and one compare. So a
//!   check may report "not done" for that long after the deadline, never longer. Nothing but
//!   locked walks ever writes such a node, so walks mark it with plain stores.
//! - **Otherwise** (`CLOCKED`: firmware, virtual clocks, arenas no driver served yet): unless a
//!   real-time driver has started since, the check reads the clock and compares. When it finds the deadline passed and no Err recorded, it must make sure no
//!   walk later records another Err (SPEC C4). With compare-and-swap it records "deadline seen"
//!   with one CAS (once per node); without it (thumbv6m, RP2040, riscv32imc), it issues a
//!   sequentially consistent fence and reads the state again, which pairs with the walk's
//!   "marking" protocol ([`crate::engine::walk`]). Neither relies on there being one core.
//!
//! # Reads beyond the state word
//!
//! A stale handle may race with the reuse of its slot, so every read of another field is followed
//! by a re-validation of the state word (a sequence lock keyed by the generation, invariant I6);
//! all fields are atomics, so the race itself is defined behaviour. Value lookups walk up the
//! parent chain, bounded by the capacity; if the handle is still valid after the walk, the chain
//! was stable throughout (released ancestors stay allocated while a descendant is held).
//!
//! # Released handles
//!
//! A handle whose owner released it is stale at once, for every operation (SPEC A4, and the C
//! API's `sw_release`: "the handle is stale afterwards"). Its generation is still in the slot,
//! without `HANDLE`, until the slot is handed out again; the engine keeps the released context's
//! Err in the free slot's state, so a later rule could report it (issue 12 item 5 proposed
//! `Canceled` until reuse) without a change of layout. It was decided against for now: the
//! contract says stale, and the C API's meanings are fixed.

use core::num::{NonZeroU32, NonZeroUsize};

use crate::engine::arena::ArenaView;
use crate::engine::handle::Handle;
use crate::engine::slot::{
    gen_of, kind_of, Kind, Slot, State, CLOCKED, ERR_CANCELED, ERR_DEADLINE, ERR_MASK,
    ERR_TRANSIENT, HANDLE, HAS_DL, NONE,
};
use crate::engine::sync::{fence, Ordering::Acquire, Ordering::Relaxed};
use crate::error::Error;

/// What a handle names right now.
enum Loaded<'a> {
    Root,
    Live(&'a Slot, State),
}

impl ArenaView {
    #[inline(always)]
    fn load(&self, h: Handle) -> Result<Loaded<'_>, Error> {
        let (i, g) = self.header.packing.decode(h);
        if let Some(slot) = self.slots.get(i) {
            let s = slot.state.load(Acquire);
            if gen_of(s) == g {
                // Without `HANDLE` the owner released it: stale (SPEC A4).
                return if s & HANDLE != 0 {
                    Ok(Loaded::Live(slot, s))
                } else {
                    Err(Error::Stale)
                };
            }
        }
        if h.is_root() {
            Ok(Loaded::Root)
        } else {
            Err(Error::Stale)
        }
    }

    /// Re-reads the state after reading other fields: still the same live occupant?
    #[inline]
    fn revalidate(slot: &Slot, g: u64) -> Result<State, Error> {
        fence(Acquire);
        let s = slot.state.load(Relaxed);
        if gen_of(s) == g && s & HANDLE != 0 {
            Ok(s)
        } else {
            Err(Error::Stale)
        }
    }

    #[inline]
    fn err_of_state(s: State) -> Result<(), Error> {
        match s & ERR_MASK {
            0 => Ok(()),
            ERR_CANCELED => Err(Error::Canceled),
            _ => Err(Error::DeadlineExceeded),
        }
    }

    /// `Ok(())` while `h` is not done; `Err(Canceled)` or `Err(DeadlineExceeded)` once it is
    /// (SPEC C4, D4); `Err(Stale)` once released, and for a forged handle (A2, A4). Lock-free
    /// (T2).
    #[inline]
    pub fn err(&self, h: Handle) -> Result<(), Error> {
        let (i, g) = self.header.packing.decode(h);
        if let Some(slot) = self.slots.get(i) {
            let s = slot.state.load(Acquire);
            if gen_of(s) == g && s & (HANDLE | ERR_MASK | CLOCKED) == HANDLE {
                return Ok(());
            }
        }
        self.err_slow(h)
    }

    /// The hot-path check: true when `h` is done, and for a stale handle (SPEC T2, A2).
    #[inline]
    pub fn is_done(&self, h: Handle) -> bool {
        self.err(h).is_err()
    }

    #[inline(never)]
    fn err_slow(&self, h: Handle) -> Result<(), Error> {
        match self.load(h)? {
            Loaded::Root => Ok(()),
            Loaded::Live(slot, s) => {
                if kind_of(s).is_callback() {
                    return Err(Error::NotContext);
                }
                match s & ERR_MASK {
                    0 if s & CLOCKED == 0 => Ok(()),
                    0 => {
                        if self.checks_read_clock() {
                            self.deadline_check(slot, s)
                        } else {
                            Ok(())
                        }
                    }
                    ERR_TRANSIENT => self.transient(slot, s),
                    _ => Self::err_of_state(s),
                }
            }
        }
    }

    /// A live node with a deadline and no Err, on an arena whose checks read the clock.
    fn deadline_check(&self, slot: &Slot, s: State) -> Result<(), Error> {
        let g = gen_of(s);
        let deadline = slot.deadline.get();
        let now = self.header.clock.now();
        if now < deadline {
            let s2 = Self::revalidate(slot, g)?;
            return match s2 & ERR_MASK {
                ERR_TRANSIENT => self.transient(slot, s2),
                _ => Self::err_of_state(s2),
            };
        }
        self.record_seen(slot, s)
    }

    /// The deadline has passed and no Err was recorded: record it (CAS targets).
    #[cfg(all(target_has_atomic = "32", not(stopwire_no_cas)))]
    fn record_seen(&self, slot: &Slot, s: State) -> Result<(), Error> {
        let g = gen_of(s);
        // Pairs with the writer's release fence (`ArenaView::step`): if `deadline` was read from a
        // newer occupant of the slot, the CAS below then sees the new generation and fails,
        // instead of marking this context expired by another's deadline (SPEC A2, C4).
        fence(Acquire);
        let mut cur = s;
        loop {
            match slot
                .state
                .compare_exchange_weak(cur, cur | ERR_TRANSIENT, Acquire, Acquire)
            {
                Ok(_) => return Err(Error::DeadlineExceeded),
                Err(actual) => {
                    if gen_of(actual) != g {
                        return Err(Error::Stale);
                    }
                    if actual & HANDLE == 0 {
                        return Err(Error::Stale);
                    }
                    if actual & ERR_MASK != 0 {
                        return Self::err_of_state(actual);
                    }
                    cur = actual;
                }
            }
        }
    }

    /// The deadline has passed and no Err was recorded (no-CAS targets): the fence pairs with the
    /// walk's marking protocol ([`crate::engine::walk`]).
    #[cfg(any(not(target_has_atomic = "32"), stopwire_no_cas))]
    fn record_seen(&self, slot: &Slot, s: State) -> Result<(), Error> {
        use crate::engine::sync::Ordering::SeqCst;
        let g = gen_of(s);
        fence(SeqCst);
        let s2 = slot.state.load(Relaxed);
        if gen_of(s2) != g {
            return Err(Error::Stale);
        }
        if s2 & HANDLE == 0 {
            return Err(Error::Stale);
        }
        match s2 & ERR_MASK {
            0 => Err(Error::DeadlineExceeded),
            ERR_TRANSIENT => self.transient(slot, s2),
            _ => Self::err_of_state(s2),
        }
    }

    /// `ERR_TRANSIENT` on a live context: "deadline seen" (CAS targets), or a walk marking it
    /// right now (no-CAS targets: wait for its final value, a few instructions away).
    fn transient(&self, slot: &Slot, s: State) -> Result<(), Error> {
        let _ = slot;
        #[cfg(all(target_has_atomic = "32", not(stopwire_no_cas)))]
        {
            let _ = s;
            Err(Error::DeadlineExceeded)
        }
        #[cfg(any(not(target_has_atomic = "32"), stopwire_no_cas))]
        {
            let g = gen_of(s);
            loop {
                crate::engine::sync::spin_hint();
                let s2 = slot.state.load(Acquire);
                if gen_of(s2) != g {
                    return Err(Error::Stale);
                }
                match s2 & ERR_MASK {
                    ERR_TRANSIENT => continue,
                    _ => return Self::err_of_state(s2),
                }
            }
        }
    }

    /// The cause of a done context (SPEC K1-K7): `Ok(Some(code))`, or `Ok(None)` when it was
    /// done without a cause; `Err(NotDone)` before it is done. Lock-free, never torn (K6).
    pub fn cause(&self, h: Handle) -> Result<Option<NonZeroU32>, Error> {
        let (slot, s) = match self.load(h)? {
            Loaded::Root => return Err(Error::NotDone),
            Loaded::Live(slot, s) => (slot, s),
        };
        let g = gen_of(s);
        if kind_of(s).is_callback() {
            return Err(Error::NotContext);
        }
        let settled = match self.err(h) {
            Ok(()) => return Err(Error::NotDone),
            Err(Error::Canceled) => true,
            Err(Error::DeadlineExceeded) => {
                // Settled meanwhile, or seen now: read the state again to know which.
                let s2 = Self::revalidate(slot, g)?;
                // If that read saw the walk's settling store, the cause read below must see
                // the walk's `set_cause` before it: synchronise with the store (K6; found by
                // the loom model at 3 preemptions: a torn read of the sibling links).
                fence(Acquire);
                matches!(s2 & ERR_MASK, ERR_CANCELED | ERR_DEADLINE)
            }
            Err(e) => return Err(e),
        };
        let cause = if settled {
            slot.cause()
        } else {
            // Seen by a check, not settled yet: the deadline owner's cause (I6: `dl_owner` and
            // the owner's payload are immutable while this node is allocated).
            let owner = slot.dl_owner.load(Relaxed);
            match self.slots.get(owner as usize) {
                Some(o) if owner != NONE => o.word(0) as u32,
                _ => 0,
            }
        };
        Self::revalidate(slot, g)?;
        Ok(NonZeroU32::new(cause))
    }

    /// The effective deadline (SPEC D2, D6), or `None` for roots, detached contexts and contexts
    /// without one. Lock-free.
    pub fn deadline(&self, h: Handle) -> Result<Option<u64>, Error> {
        let (slot, s) = match self.load(h)? {
            Loaded::Root => return Ok(None),
            Loaded::Live(slot, s) => (slot, s),
        };
        if kind_of(s).is_callback() {
            return Err(Error::NotContext);
        }
        if s & HAS_DL == 0 {
            return Ok(None);
        }
        let d = slot.deadline.get();
        Self::revalidate(slot, gen_of(s))?;
        Ok(Some(d))
    }

    /// The value of the nearest layer with `key` (SPEC V2-V5): `Ok(None)` when no layer has it.
    /// Key 0 gives [`Error::ZeroKey`]. Lock-free; cost grows with the depth, never with the arena.
    pub fn value(&self, h: Handle, key: usize) -> Result<Option<usize>, Error> {
        if key == 0 {
            return Err(Error::ZeroKey);
        }
        let (slot, s) = match self.load(h)? {
            Loaded::Root => return Ok(None),
            Loaded::Live(slot, s) => (slot, s),
        };
        if kind_of(s).is_callback() {
            return Err(Error::NotContext);
        }
        let n = self.slots.len();
        let mut found = None;
        let mut cur = slot;
        for _ in 0..n {
            // The key first: most layers on the way have another key, and then the state (the
            // kind) need not be loaded at all.
            if cur.word(0) == key && kind_of(cur.state.load(Acquire)) == Kind::Value {
                found = Some(cur.word(1));
                break;
            }
            let p = cur.parent() as usize;
            if p >= n {
                break; // NONE (a child of a root), or a torn read of a reused slot
            }
            // SAFETY: `p < n` was checked just above.
            cur = unsafe { self.slots.get_unchecked(p) };
        }
        Self::revalidate(slot, gen_of(s))?;
        Ok(found)
    }

    /// Typed convenience over [`ArenaView::value`] for keys known to be non-zero.
    pub(crate) fn value_nz(&self, h: Handle, key: NonZeroUsize) -> Result<Option<usize>, Error> {
        self.value(h, key.get())
    }
}
