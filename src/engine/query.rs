//! Lock-free reads: `err`, `is_done`, `cause`, `deadline`, `value` (SPEC T2; DESIGN-QUESTIONS 1, 5).
//!
//! # What a check reads
//!
//! One `Acquire` load of the context's own state word, whatever the depth of the tree: the cancel
//! walk has already pushed cancellation down to every descendant, and every node stores its
//! effective deadline. The load answers the handle's validity (generation and `HANDLE` in the same
//! word), Err, and whether a deadline exists. Only with a deadline is the clock read and compared;
//! a context without one never pays for the clock.
//!
//! When a check finds the deadline passed and no Err recorded, it records `ERR_DEADLINE_SEEN` with
//! one compare-and-swap (targets that have CAS), so that a concurrent cancel cannot later record
//! `Canceled` and change an Err already reported (SPEC C4). This happens once per node. On
//! targets without CAS (single core), it re-reads the state instead: the cancel walk runs entirely
//! inside a critical section, so it is either wholly before the re-read or wholly after the clock
//! reading, and both orders agree.
//!
//! # Reads beyond the state word
//!
//! A stale handle may race with the reuse of its slot, so every read of another field is followed
//! by a re-validation of the state word (a sequence lock keyed by the generation, invariant I6);
//! all fields are atomics, so the race itself is defined behaviour. Value and cause lookups walk
//! up the parent chain, bounded by the capacity; if the handle is still valid after the walk, the
//! chain was stable throughout (released ancestors stay allocated while a descendant is held).

use core::num::{NonZeroU32, NonZeroUsize};

use crate::engine::arena::ArenaView;
use crate::engine::handle::Handle;
use crate::engine::slot::{
    is_live, kind_of, Kind, Slot, ERR_CANCELED, ERR_DEADLINE, ERR_DEADLINE_SEEN, ERR_MASK, HAS_DL,
    NONE,
};
use crate::engine::sync::{fence, Ordering::Acquire, Ordering::Relaxed};
use crate::error::Error;

impl ArenaView {
    /// The slot of `h` if `h` is valid, with the state read. `Ok(None)` for a root.
    #[inline(always)]
    fn load(&self, h: Handle) -> Result<Option<(&Slot, u32)>, Error> {
        // Index 0 and the root range wrap to an index beyond any arena.
        let i = (h.to_raw() as u32).wrapping_sub(1) as usize;
        match self.slots.get(i) {
            Some(slot) => {
                let s = slot.state.load(Acquire);
                if is_live(s, h.generation()) {
                    Ok(Some((slot, s)))
                } else {
                    Err(Error::Stale)
                }
            }
            None if h.is_root() => Ok(None),
            None => Err(Error::Stale),
        }
    }

    /// Re-reads the state after reading other fields: still the same handle?
    #[inline]
    fn revalidate(slot: &Slot, h: Handle) -> Result<u32, Error> {
        fence(Acquire);
        let s = slot.state.load(Relaxed);
        if is_live(s, h.generation()) {
            Ok(s)
        } else {
            Err(Error::Stale)
        }
    }

    #[inline]
    fn err_of_state(s: u32) -> Result<(), Error> {
        match s & ERR_MASK {
            0 => Ok(()),
            ERR_CANCELED => Err(Error::Canceled),
            _ => Err(Error::DeadlineExceeded),
        }
    }

    /// `Ok(())` while `h` is not done; `Err(Canceled)` or `Err(DeadlineExceeded)` once it is
    /// (SPEC C4, D4); `Err(Stale)` for a released or forged handle (A2). Lock-free (T2).
    #[inline]
    pub fn err(&self, h: Handle) -> Result<(), Error> {
        match self.load(h)? {
            None => Ok(()),
            Some((_, s)) if s & (ERR_MASK | HAS_DL) == 0 => Ok(()),
            Some((slot, s)) => Self::err_slow(slot, s, h, self),
        }
    }

    /// The hot-path check: true when `h` is done, and for a stale handle (SPEC T2, A2).
    #[inline]
    pub fn is_done(&self, h: Handle) -> bool {
        self.err(h).is_err()
    }

    #[inline(never)]
    fn err_slow(slot: &Slot, s: u32, h: Handle, arena: &ArenaView) -> Result<(), Error> {
        if kind_of(s).is_callback() {
            return Err(Error::NotContext);
        }
        if s & ERR_MASK != 0 {
            return Self::err_of_state(s);
        }
        arena.deadline_check(slot, s, h)
    }

    /// A live node with a deadline and no Err: compare with the clock.
    fn deadline_check(&self, slot: &Slot, s: u32, h: Handle) -> Result<(), Error> {
        let deadline = slot.deadline.get();
        let now = self.header.clock.now();
        if now < deadline {
            let s2 = Self::revalidate(slot, h)?;
            return Self::err_of_state(s2);
        }
        #[cfg(target_has_atomic = "32")]
        {
            // Pairs with the writer's release fence (`ArenaView::locked_at`): if `deadline` was
            // read from a newer occupant of the slot, the CAS below then sees the retirement and
            // fails, instead of marking this context expired by another's deadline (SPEC A2, C4).
            fence(Acquire);
            let mut cur = s;
            loop {
                match slot.state.compare_exchange_weak(
                    cur,
                    cur | ERR_DEADLINE_SEEN,
                    Acquire,
                    Acquire,
                ) {
                    Ok(_) => return Err(Error::DeadlineExceeded),
                    Err(actual) => {
                        if !is_live(actual, h.generation()) {
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
        #[cfg(not(target_has_atomic = "32"))]
        {
            let _ = s;
            let s2 = Self::revalidate(slot, h)?;
            match s2 & ERR_MASK {
                0 => Err(Error::DeadlineExceeded),
                _ => Self::err_of_state(s2),
            }
        }
    }

    /// The cause of a done context (SPEC K1-K7): `Ok(Some(code))`, or `Ok(None)` when it was
    /// done without a cause; `Err(NotDone)` before it is done. Lock-free, never torn (K6).
    pub fn cause(&self, h: Handle) -> Result<Option<NonZeroU32>, Error> {
        let Some((slot, s)) = self.load(h)? else {
            return Err(Error::NotDone);
        };
        if kind_of(s).is_callback() {
            return Err(Error::NotContext);
        }
        let settled = match s & ERR_MASK {
            ERR_CANCELED | ERR_DEADLINE => true,
            ERR_DEADLINE_SEEN => false,
            _ => match self.err(h) {
                Ok(()) => return Err(Error::NotDone),
                Err(Error::DeadlineExceeded) => {
                    // Settled meanwhile, or seen now: read the state again to know which.
                    let s2 = Self::revalidate(slot, h)?;
                    matches!(s2 & ERR_MASK, ERR_CANCELED | ERR_DEADLINE)
                }
                Err(Error::Canceled) => true,
                Err(e) => return Err(e),
            },
        };
        let cause = if settled {
            slot.cause()
        } else {
            self.owner_cause_lockfree(h)?
        };
        Self::revalidate(slot, h)?;
        Ok(NonZeroU32::new(cause))
    }

    /// The deadline owner's cause, found without the lock (see the module docs).
    fn owner_cause_lockfree(&self, h: Handle) -> Result<u32, Error> {
        let mut j = h.index().ok_or(Error::Stale)? as crate::engine::slot::Idx;
        for _ in 0..self.slots.len() {
            let slot = self.slot(j);
            if kind_of(slot.state.load(Acquire)) == Kind::Deadline {
                return Ok(slot.word(0) as u32);
            }
            j = slot.parent();
            if j == NONE || j as usize >= self.slots.len() {
                break;
            }
        }
        Ok(0)
    }

    /// The effective deadline (SPEC D2, D6), or `None` for roots, detached contexts and contexts
    /// without one. Lock-free.
    pub fn deadline(&self, h: Handle) -> Result<Option<u64>, Error> {
        let Some((slot, s)) = self.load(h)? else {
            return Ok(None);
        };
        if kind_of(s).is_callback() {
            return Err(Error::NotContext);
        }
        if s & HAS_DL == 0 {
            return Ok(None);
        }
        let d = slot.deadline.get();
        Self::revalidate(slot, h)?;
        Ok(Some(d))
    }

    /// The value of the nearest layer with `key` (SPEC V2-V5): `Ok(None)` when no layer has it.
    /// Key 0 gives [`Error::ZeroKey`]. Lock-free; cost grows with the depth, never with the arena.
    pub fn value(&self, h: Handle, key: usize) -> Result<Option<usize>, Error> {
        if key == 0 {
            return Err(Error::ZeroKey);
        }
        let Some((slot, s)) = self.load(h)? else {
            return Ok(None);
        };
        if kind_of(s).is_callback() {
            return Err(Error::NotContext);
        }
        let mut found = None;
        let mut cur = slot;
        for _ in 0..self.slots.len() {
            if kind_of(cur.state.load(Acquire)) == Kind::Value && cur.word(0) == key {
                found = Some(cur.word(1));
                break;
            }
            let p = cur.parent();
            match self.slots.get(p as usize) {
                Some(next) if p != NONE => cur = next,
                _ => break,
            }
        }
        Self::revalidate(slot, h)?;
        Ok(found)
    }

    /// Typed convenience over [`ArenaView::value`] for keys known to be non-zero.
    pub(crate) fn value_nz(&self, h: Handle, key: NonZeroUsize) -> Result<Option<usize>, Error> {
        self.value(h, key.get())
    }
}
