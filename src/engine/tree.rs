//! Changes to the tree, made in locked steps: creation, release and reclamation, callback
//! registration (docs/design.md 4, 9).
//!
//! # Release and reclamation (SPEC A4, A5)
//!
//! Release cancels (unless already done, detached or a value layer: W1, V4) and clears `HANDLE`:
//! the owner's handle is stale at once ([`crate::engine::query`]). The slot is
//! reclaimed once nothing needs it (I3: children, pending registrations, a paused walk).
//! Reclamation frees the slot, drops the parent's reference, and continues up while the parent is
//! a zombie with no other reference. That cascade is O(depth), so it runs in bounded steps too: a
//! cascade paused at a parent keeps the reference it was about to drop until it resumes, which
//! keeps that parent allocated meanwhile (nobody else can free it: it has no handle).
//!
//! # Creation racing cancellation (SPEC C10, docs/design.md 9)
//!
//! Creation validates the parent and links the child in the same locked step. A walk marks its
//! root in its first step and visits the root's list in later steps: a child linked before the
//! walk reached its parent is reached by the walk, a child created after is born done (C7).

use crate::engine::arena::ArenaView;
use crate::engine::callback::Callback;
use crate::engine::handle::Handle;
use crate::engine::run::Tree;
use crate::engine::site::Site;
use crate::engine::slot::{
    gen_of, is_settled, kind_of, make_state, with_err, Idx, Kind, State, CB_CLAIMED, CB_LINKED,
    CB_STOPPED, CLOCKED, ERR_CANCELED, ERR_DEADLINE, ERR_MASK, ERR_NONE, ERR_TRANSIENT, HANDLE,
    HAS_DL, NONE,
};
use crate::engine::sync::{
    fence,
    Ordering::{Relaxed, Release},
};
use crate::error::Error;

/// What a new slot is to be.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Spec {
    Cancel,
    /// A deadline at an absolute tick, with the cause recorded if it fires (0: none).
    Deadline {
        at: u64,
        cause: u32,
    },
    Value {
        key: usize,
        value: usize,
    },
    Detached,
}

/// A registration's outcome.
pub(crate) enum Registered {
    /// The context is already done: run the callback now (SPEC F2).
    RunNow,
    /// Registered; the handle is the stop handle.
    Later(Handle),
}

impl<'a> Tree<'a> {
    /// Validates `h` (I1) and returns its slot and state.
    pub(crate) fn resolve(&self, h: Handle) -> Result<(Idx, State), Error> {
        let (i, g) = self.arena.header.packing.decode(h);
        let slot = self.arena.slots.get(i).ok_or(Error::Stale)?;
        let s = slot.state.load(Relaxed);
        if s & HANDLE != 0 && gen_of(s) == g {
            Ok((i as Idx, s))
        } else {
            Err(Error::Stale)
        }
    }

    /// Validates `h` as a context (not a registration).
    fn resolve_ctx(&self, h: Handle) -> Result<(Idx, State), Error> {
        let (i, s) = self.resolve(h)?;
        if kind_of(s).is_callback() {
            return Err(Error::NotContext);
        }
        Ok((i, s))
    }

    /// Takes a free slot and gives it its next generation (SPEC A3: on failure only
    /// `full_count` changes). FIFO reuse (module docs of [`crate::engine::arena`]).
    fn alloc(&mut self) -> Result<(Idx, u64), Error> {
        let h = &self.arena.header;
        let head = h.free_head.load(Relaxed);
        let i = if head != NONE {
            let next = self.slot(head).first_child();
            h.free_head.store(next, Relaxed);
            if next == NONE {
                h.free_tail.store(NONE, Relaxed);
            }
            head
        } else {
            let unused = h.unused_from.load(Relaxed);
            if (unused as usize) >= self.arena.slots.len() {
                h.full_count
                    .store(h.full_count.load(Relaxed).wrapping_add(1), Relaxed);
                return Err(Error::Full);
            }
            h.unused_from.store(unused + 1, Relaxed);
            unused
        };
        let slot = self.slot(i);
        let generation = h.packing.next_gen(gen_of(slot.state.load(Relaxed)));
        // The new generation is visible before any field of the new occupant (SPEC A2): a reader
        // of the previous occupant that sees one of the writes below then fails re-validation.
        slot.state
            .store(make_state(generation, Kind::Free, 0), Relaxed);
        fence(Release);
        let in_use = h.in_use.load(Relaxed) + 1;
        h.in_use.store(in_use, Relaxed);
        if in_use > h.high_water.load(Relaxed) {
            h.high_water.store(in_use, Relaxed);
        }
        Ok((i, generation))
    }

    /// Returns slot `i` (no handle, no references) to the free list.
    fn free(&mut self, i: Idx) {
        let h = &self.arena.header;
        let slot = self.slot(i);
        let s = slot.state.load(Relaxed);
        debug_assert!(s & HANDLE == 0, "freeing a slot with a live handle");
        let kind = kind_of(s);
        if kind == Kind::Value && !is_settled(s) && slot.parent() != NONE {
            self.unlink_child(i); // I2: a released, uncanceled value layer is still listed
        }
        // Checks of a released cancelable context report its Err until the slot is reused.
        let keep = match kind {
            Kind::Cancel | Kind::Deadline => s & ERR_MASK,
            _ => ERR_NONE,
        };
        slot.state
            .store(make_state(gen_of(s), Kind::Free, keep), Release);
        slot.first_child.store(NONE, Relaxed);
        let tail = h.free_tail.load(Relaxed);
        if tail == NONE {
            h.free_head.store(i, Relaxed);
        } else {
            self.slot(tail).first_child.store(i, Relaxed);
        }
        h.free_tail.store(i, Relaxed);
        h.in_use.store(h.in_use.load(Relaxed) - 1, Relaxed);
    }

    /// Frees `i` (no handle, no references) and every ancestor that this leaves unneeded (I3),
    /// pausing when the step's budget runs out (module docs).
    #[inline]
    pub(crate) fn reclaim_from(&mut self, i: Idx) {
        // The first slot here (the common case: its parent lives on), the cascade out of line.
        if let Some(p) = self.reclaim_one(i) {
            self.reclaim_cascade(p);
        }
    }

    /// [`Tree::reclaim_from`] past its first slot.
    #[inline(never)]
    fn reclaim_cascade(&mut self, mut i: Idx) {
        while let Some(p) = self.reclaim_one(i) {
            i = p;
        }
    }

    /// Frees `i`, drops its reference on its parent, and returns the parent if that leaves it
    /// unneeded (to be freed next). A step out of budget keeps the reference for later instead.
    #[inline(always)]
    fn reclaim_one(&mut self, i: Idx) -> Option<Idx> {
        let p = self.slot(i).parent();
        self.free(i);
        let exhausted = self.spend();
        if p == NONE {
            return None;
        }
        if exhausted {
            self.work.put_reclaim(p); // still holds `i`'s reference on `p`
            return None;
        }
        let ps = self.slot(p);
        if ps.drop_ref() != 0 || ps.state.load(Relaxed) & HANDLE != 0 {
            return None;
        }
        Some(p)
    }

    /// Resumes a paused reclamation: drops the reference it kept on `p`.
    pub(crate) fn resume_reclaim(&mut self, p: Idx) {
        self.release_ref(p);
    }

    /// Drops one reference on `i`, reclaiming it if that was the last and it has no handle.
    pub(crate) fn release_ref(&mut self, i: Idx) {
        let slot = self.slot(i);
        if slot.drop_ref() == 0 && slot.state.load(Relaxed) & HANDLE == 0 {
            self.reclaim_from(i);
        }
    }

    /// Clears `HANDLE` of `i`: the owner's handle is released (SPEC A4). A lock-free check may be
    /// recording "deadline seen" on an unsettled value layer with a deadline at the same moment:
    /// with compare-and-swap that case retries rather than overwrite it (only with `CLOCKED`: no
    /// check writes any other node).
    fn retire(&self, i: Idx) {
        let slot = self.slot(i);
        #[cfg(all(target_has_atomic = "32", not(stopwire_no_cas)))]
        {
            let mut s = slot.state.load(Relaxed);
            while s & CLOCKED != 0 && !is_settled(s) {
                match slot
                    .state
                    .compare_exchange(s, s & !HANDLE, Release, Relaxed)
                {
                    Ok(_) => return,
                    Err(actual) => s = actual,
                }
            }
        }
        let s = slot.state.load(Relaxed);
        slot.state.store(s & !HANDLE, Release);
    }

    /// Pushes `c` at the head of `p`'s child list.
    fn link_child(&self, p: Idx, c: Idx) {
        let head = self.slot(p).first_child();
        self.slot(c).set_siblings(head, NONE);
        if head != NONE {
            let (next, _) = self.slot(head).siblings();
            self.slot(head).set_siblings(next, c);
        }
        self.slot(p).first_child.store(c, Relaxed);
    }

    /// Removes `c` from its parent's child list (I2: it must be in it).
    pub(crate) fn unlink_child(&self, c: Idx) {
        let (next, prev) = self.slot(c).siblings();
        if prev != NONE {
            let (_, pp) = self.slot(prev).siblings();
            self.slot(prev).set_siblings(next, pp);
        } else {
            self.slot(self.slot(c).parent())
                .first_child
                .store(next, Relaxed);
        }
        if next != NONE {
            let (nn, _) = self.slot(next).siblings();
            self.slot(next).set_siblings(nn, prev);
        }
    }

    /// Whether node `i`'s own effective deadline has passed (as a check would see it now).
    fn expired(&mut self, i: Idx, s: State) -> bool {
        s & ERR_MASK == ERR_TRANSIENT
            || (s & CLOCKED != 0
                && self.arena.checks_read_clock()
                && self.now() >= self.slot(i).deadline.get())
    }

    /// Creates a child of `parent` (SPEC C1, C7, D1-D3, D8, V1, W1).
    ///
    /// Inlined into each public constructor on hosts (with [`ArenaView::run`]), so that each
    /// gets a copy specialised to its `Spec`: the branches on the kind fold away, and with
    /// them the spilled locals of the general version. Out of line on microcontrollers, for
    /// flash.
    #[cfg_attr(target_pointer_width = "64", inline(always))]
    pub(crate) fn create(
        &mut self,
        parent: Handle,
        spec: Spec,
        site: Site,
    ) -> Result<Handle, Error> {
        let (p, ps) = if parent.is_root() {
            (NONE, 0)
        } else {
            self.resolve_ctx(parent)?
        };
        if let Spec::Value { key: 0, .. } = spec {
            return Err(Error::ZeroKey);
        }
        let (i, generation) = self.alloc()?;
        let inherited = (p != NONE && ps & HAS_DL != 0 && !matches!(spec, Spec::Detached))
            .then(|| self.slot(p).deadline.get());
        let slot = self.slot(i);
        let (kind, deadline) = match spec {
            Spec::Cancel => (Kind::Cancel, inherited),
            Spec::Deadline { at, cause } => {
                if inherited.is_some_and(|d| d < at) {
                    (Kind::Cancel, inherited)
                } else {
                    slot.set_word(0, cause as usize);
                    (Kind::Deadline, Some(at))
                }
            }
            Spec::Value { key, value } => {
                slot.set_word(0, key);
                slot.set_word(1, value);
                (Kind::Value, inherited)
            }
            Spec::Detached => (Kind::Detached, None),
        };
        let owner = match (kind, deadline) {
            (Kind::Deadline, _) => i,
            (_, Some(_)) => self.slot(p).dl_owner.load(Relaxed),
            _ => NONE,
        };

        // Born done? The parent's Err first (as Go: propagation before the own timer), then the
        // own deadline (SPEC C7, D3).
        let mut err = ERR_NONE;
        let mut cause = 0;
        if kind != Kind::Detached && p != NONE {
            if is_settled(ps) {
                err = ps & ERR_MASK;
                cause = self.slot(p).cause();
            } else if self.expired(p, ps) {
                err = ERR_DEADLINE;
                cause = self.dl_cause(p);
            }
        }
        if err == ERR_NONE && kind == Kind::Deadline {
            if let Some(at) = deadline {
                if self.now() >= at {
                    err = ERR_DEADLINE;
                    cause = slot.word(0) as u32;
                }
            }
        }

        // `deadline` and `dl_owner` mean something only with `HAS_DL` (every reader tests it
        // first), and a free slot has no references (I3): what a plain child need not write.
        if let Some(d) = deadline {
            slot.deadline.set(d);
            slot.dl_owner.store(owner, Relaxed);
        }
        slot.parent.store(p, Relaxed);
        slot.first_child.store(NONE, Relaxed);
        debug_assert_eq!(slot.refs(), 0, "I3: a free slot has no references");
        if err != ERR_NONE {
            slot.set_cause(cause);
        } else if p != NONE && kind != Kind::Detached {
            self.link_child(p, i);
        } else {
            slot.set_siblings(NONE, NONE);
        }
        if p != NONE {
            self.slot(p).add_ref();
        }
        if kind == Kind::Deadline && err != ERR_NONE {
            self.lane_unqueued(i); // born done: in no lane, ever (a queued one is linked below)
        }
        self.record(i, site);
        let flags = err
            | HANDLE
            | match deadline {
                // Checks compare it with the clock unless a real-time driver serves the arena
                // (slot.rs, `CLOCKED`; on 32-bit targets the two bits are one).
                Some(_) if CLOCKED == HAS_DL || self.arena.checks_read_clock() => HAS_DL | CLOCKED,
                Some(_) => HAS_DL,
                None => 0,
            };
        slot.state
            .store(make_state(generation, kind, flags), Release);
        if kind == Kind::Deadline && err == ERR_NONE {
            // The nearest owner above, when its deadline is this one's (deadline.rs, "Equal
            // deadlines"); `inherited` is `Some` only if the parent has `HAS_DL`.
            let above = if inherited == deadline {
                self.slot(p).dl_owner.load(Relaxed)
            } else {
                NONE
            };
            self.lane_insert(i, above);
        }
        Ok(self.arena.handle_of(i, generation))
    }

    /// Records the creation site and sequence of slot `i` (feature `diagnostics`).
    #[inline]
    fn record(&mut self, i: Idx, site: Site) {
        #[cfg(feature = "diagnostics")]
        {
            let h = &self.arena.header;
            let slot = self.slot(i);
            let seq = h.seq.load(Relaxed).wrapping_add(1);
            h.seq.store(seq, Relaxed);
            slot.seq.store(seq, Relaxed);
            slot.site.store(site.as_ptr(), Relaxed);
            // The creation tick: this step's clock reading if it has one; else a fresh reading,
            // except on a real-time host clock (about 20 ns a read), where the arena's latest
            // reading stands in for it, so that a creation pays no clock read for diagnostics.
            let born = match self.now_if_read() {
                Some(t) => t,
                None if h.clock.ticks_per_second().is_none() => self.now(),
                None => h.last_tick.get(),
            };
            slot.born.set(born);
        }
        #[cfg(not(feature = "diagnostics"))]
        let _ = (i, site);
    }

    /// Cancels the context `h` (SPEC C2, C3, K1-K3, R2, W1).
    #[inline]
    pub(crate) fn cancel(&mut self, h: Handle, cause: u32) -> Result<bool, Error> {
        if h.is_root() {
            return Err(Error::Root);
        }
        let (i, s) = self.resolve_ctx(h)?;
        match kind_of(s) {
            Kind::Detached => Err(Error::Detached),
            Kind::Value => Err(Error::ValueLayer),
            _ => Ok(self.cancel_node(i, ERR_CANCELED, cause)),
        }
    }

    /// Releases `h` (SPEC A4, A5, N6). A registration handle is stopped instead (C API contract).
    #[inline]
    pub(crate) fn release(&mut self, h: Handle) -> Result<(), Error> {
        if h.is_root() {
            return Err(Error::Root);
        }
        let (i, s) = self.resolve(h)?;
        let kind = kind_of(s);
        if kind.is_callback() {
            self.stop_slot(i, s);
            return Ok(());
        }
        // Fast path: a settled leaf (already canceled, no waiters, nothing below).
        if is_settled(s) && self.slot(i).refs() == 0 {
            self.retire(i);
            self.reclaim_from(i);
            return Ok(());
        }
        // Detached contexts and value layers have no cancellation of their own (W1, V4):
        // releasing them cancels nothing; their descendants live on, and the slot waits for them.
        // Their waiters are woken all the same (N6).
        if matches!(kind, Kind::Detached | Kind::Value) || is_settled(s) {
            self.start_walk(i, false);
            self.retire(i);
        } else {
            self.cancel_node(i, ERR_CANCELED, 0);
            self.retire(i);
            if !self.work.has_walk() {
                // Canceled without a walk (`cancel_node`'s leaf path): what the walk's end
                // would do, now that the handle is retired.
                self.reclaim_if_unneeded(i);
            }
        }
        Ok(())
    }

    /// Registers `cb` on `h` (SPEC F1, F2, F6, F7).
    pub(crate) fn register(
        &mut self,
        h: Handle,
        cb: Callback,
        site: Site,
    ) -> Result<Registered, Error> {
        let target = if h.is_root() {
            None
        } else {
            let (i, s) = self.resolve_ctx(h)?;
            if kind_of(s) != Kind::Detached && (is_settled(s) || self.expired(i, s)) {
                return Ok(Registered::RunNow);
            }
            (kind_of(s) != Kind::Detached).then_some(i)
        };
        let (r, generation) = self.alloc()?;
        let slot = self.slot(r);
        slot.set_ptr(0, cb.f);
        slot.set_ptr(1, cb.data);
        slot.first_child.store(NONE, Relaxed);
        slot.refs.store(0, Relaxed);
        slot.dl_owner.store(NONE, Relaxed);
        match target {
            Some(i) => {
                slot.parent.store(i, Relaxed);
                self.link_child(i, r);
                // I3: a registration keeps its context's slot until it has run or been stopped,
                // so that one on a released value layer still fires when the layer's parent is
                // canceled (V4), and a claimed one can find its context while it is dispatched.
                self.slot(i).add_ref();
            }
            // Root or detached: can never be done, never fires (F7).
            None => {
                slot.parent.store(NONE, Relaxed);
                slot.set_siblings(NONE, NONE);
            }
        }
        self.record(r, site);
        slot.state
            .store(make_state(generation, cb.kind, HANDLE | CB_LINKED), Release);
        Ok(Registered::Later(self.arena.handle_of(r, generation)))
    }

    /// Stops registration `h` (SPEC F4): true when it prevented the callback.
    pub(crate) fn stop(&mut self, h: Handle) -> bool {
        match self.resolve(h) {
            Ok((i, s)) if kind_of(s).is_callback() => {
                self.stop_slot(i, s);
                true
            }
            _ => false,
        }
    }

    fn stop_slot(&mut self, i: Idx, s: State) {
        let slot = self.slot(i);
        if s & ERR_MASK == CB_CLAIMED {
            // In a dispatch list: the dispatcher reclaims it and runs nothing.
            slot.state.store(with_err(s, CB_STOPPED) & !HANDLE, Relaxed);
            return;
        }
        debug_assert_eq!(s & ERR_MASK, CB_LINKED);
        if slot.parent() != NONE {
            self.unlink_child(i);
        }
        slot.state.store(s & !HANDLE, Relaxed);
        self.reclaim_from(i);
    }
}

impl ArenaView {
    /// Creates a child and runs nothing else.
    #[cfg_attr(target_pointer_width = "64", inline(always))]
    pub(crate) fn create(
        &self,
        parent: Handle,
        spec: Spec,
        now: Option<u64>,
        site: Site,
    ) -> Result<Handle, Error> {
        if matches!(spec, Spec::Deadline { .. }) && !self.header.clock.is_real() {
            return Err(Error::NoClock);
        }
        let mut t = self.tree(now);
        let guard = self.header.lock.lock();
        Self::begin_step();
        let r = t.create(parent, spec, site);
        self.end(&mut t, guard);
        r
    }

    /// A cancelable child of `parent` (SPEC C1, C7). Raw-handle form of [`crate::Ctx::with_cancel`].
    #[track_caller]
    pub fn with_cancel(&self, parent: Handle) -> Result<Handle, Error> {
        self.at(None).with_cancel(parent)
    }

    /// A child with an absolute deadline in ticks (SPEC D1-D3); `cause` (0: none) is recorded if
    /// the deadline fires (K5). [`Error::NoClock`] on an arena without a clock (SPEC D1).
    #[track_caller]
    pub fn with_deadline_cause(
        &self,
        parent: Handle,
        at: u64,
        cause: u32,
    ) -> Result<Handle, Error> {
        self.at(None).with_deadline_cause(parent, at, cause)
    }

    /// A child whose deadline is `now + ticks`, saturating (SPEC D1); `cause` as in
    /// [`ArenaView::with_deadline_cause`].
    #[track_caller]
    pub fn with_timeout_cause(
        &self,
        parent: Handle,
        ticks: u64,
        cause: u32,
    ) -> Result<Handle, Error> {
        self.at(None).with_timeout_cause(parent, ticks, cause)
    }

    /// A value layer (SPEC V1): key 0 gives [`Error::ZeroKey`].
    #[track_caller]
    pub fn with_value(&self, parent: Handle, key: usize, value: usize) -> Result<Handle, Error> {
        self.at(None).with_value(parent, key, value)
    }

    /// A detached child: the parent's values, never done (SPEC W1).
    #[track_caller]
    pub fn without_cancel(&self, parent: Handle) -> Result<Handle, Error> {
        self.at(None).without_cancel(parent)
    }

    /// Cancels `h` and its subtree; `cause` 0 records no cause (SPEC C2, C3, K1). Returns true when
    /// this call was the one that canceled it. Callbacks made due run before it returns (F3).
    pub fn cancel(&self, h: Handle, cause: u32) -> Result<bool, Error> {
        self.run(None, |t| t.cancel(h, cause))
    }

    /// Cancels `h` if needed and gives the handle back (SPEC A4, A5): from then on every
    /// operation on it reports [`Error::Stale`].
    pub fn release(&self, h: Handle) -> Result<(), Error> {
        self.run(None, |t| t.release(h))
    }

    /// Registers `cb` to run once `h` is done (SPEC F1-F7). Returns the stop handle, or
    /// [`Handle::DEAD`] when `h` was already done and `cb` has run before this returned (F2).
    #[track_caller]
    pub fn after_func(&self, h: Handle, cb: Callback) -> Result<Handle, Error> {
        self.at(None).after_func(h, cb)
    }

    /// Stops a registration (SPEC F4): true exactly when this call prevented the callback, also
    /// when a walk has claimed it and not started it yet. Never waits for a running callback.
    pub fn stop(&self, registration: Handle) -> bool {
        self.run(None, |t| t.stop(registration))
    }
}
