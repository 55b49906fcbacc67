//! Changes to the tree, all made under the arena lock: creation, the cancel walk, release and
//! reclamation, callback registration (DESIGN-QUESTIONS 3, 4, 9).
//!
//! # The cancel walk (SPEC C2, C5, C6)
//!
//! Canceling marks the node, then visits its subtree iteratively with no stack: it repeatedly
//! detaches the first child of the current node, marks it and descends into it; when the current
//! node has no child left it climbs to its parent. Every node is marked once, detached once and
//! climbed out of once, so the walk is O(subtree) with O(1) memory — no recursion anywhere, which
//! matters with a few KiB of stack. Detaching as it goes also makes a canceled child stop costing
//! its parent anything (C9). The whole walk runs inside one locked section: when `cancel` returns,
//! every descendant already reports done, and a child created concurrently is either linked before
//! the walk (and reached by it) or created after it under a settled parent (and born done, C7) —
//! there is no third case, so no cancellation is lost (C10, Q9). A slot cannot be reused during
//! the walk because reuse needs the same lock.
//!
//! Each node is marked with the Err and cause of the node it was reached from (C6, K4), except
//! that a node whose own effective deadline has passed is marked `DeadlineExceeded` with its
//! deadline's cause: that is what a check would already have reported (C4, D4, K5).
//!
//! # Release and reclamation (SPEC A4, A5)
//!
//! Release cancels (unless already done, detached or a value layer: W1, V4), bumps the generation
//! and clears `HANDLE` — the handle is stale at once — and reclaims the slot if nothing needs it
//! (I3: children, pending registrations). Reclamation
//! frees the slot, decrements the parent's `refs`, and continues up while the parent is a zombie
//! with no other child: iterative, O(depth).

use crate::diagnostics::Site;
use crate::engine::arena::ArenaView;
use crate::engine::callback::{Callback, Pending};
use crate::engine::handle::Handle;
use crate::engine::slot::{
    gen_of, is_live, is_settled, kind_of, make_state, pack, unpack, with_gen, Idx, Kind, Slot,
    ERR_CANCELED, ERR_DEADLINE, ERR_DEADLINE_SEEN, ERR_MASK, ERR_NONE, HANDLE, HAS_DL, NONE,
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

/// Access to the tree while the arena lock is held. Only [`ArenaView::locked`] makes one.
pub(crate) struct Tree<'a> {
    pub(crate) arena: &'a ArenaView,
    /// The clock, read at most once per locked section (lazily: only if a deadline is involved).
    now: Option<u64>,
}

/// A registration's outcome.
pub(crate) enum Registered {
    /// The context is already done: run the callback now (SPEC F2).
    RunNow,
    /// Registered; the handle is the stop handle.
    Later(Handle),
}

impl ArenaView {
    /// Runs `f` with the lock held. `now` seeds the clock reading of this section.
    #[inline]
    pub(crate) fn locked<R>(&self, f: impl FnOnce(&mut Tree<'_>) -> R) -> R {
        self.locked_at(None, f)
    }

    #[inline]
    pub(crate) fn locked_at<R>(&self, now: Option<u64>, f: impl FnOnce(&mut Tree<'_>) -> R) -> R {
        self.header.lock.with(|| {
            // Seqlock writer side (SPEC A2): lock-free readers read fields with `Relaxed` loads
            // and re-validate the state after an `Acquire` fence. A reader that sees a field
            // written in this section must also see every retirement of that slot made before
            // it (in earlier sections, ordered by the lock); this fence, sequenced before every
            // write of the section, makes it so. Without it a stale `value` could return the
            // reused slot's value and still pass re-validation (found by tests/loom.rs).
            fence(Release);
            f(&mut Tree { arena: self, now })
        })
    }
}

impl<'a> Tree<'a> {
    #[inline]
    fn slot(&self, i: Idx) -> &'a Slot {
        self.arena.slot(i)
    }

    #[inline]
    fn state(&self, i: Idx) -> u32 {
        self.slot(i).state.load(Relaxed)
    }

    /// The clock, read once per locked section.
    pub(crate) fn now(&mut self) -> u64 {
        match self.now {
            Some(t) => t,
            None => {
                let t = self.arena.header.clock.now();
                self.now = Some(t);
                t
            }
        }
    }

    /// Validates `h` (I1) and returns its slot and state.
    pub(crate) fn resolve(&self, h: Handle) -> Result<(Idx, u32), Error> {
        let i = h.index().ok_or(Error::Stale)?;
        let slot = self.arena.slots.get(i).ok_or(Error::Stale)?;
        let s = slot.state.load(Relaxed);
        if is_live(s, h.generation()) {
            Ok((i as Idx, s))
        } else {
            Err(Error::Stale)
        }
    }

    /// Validates `h` as a context (not a registration).
    fn resolve_ctx(&self, h: Handle) -> Result<(Idx, u32), Error> {
        let (i, s) = self.resolve(h)?;
        if kind_of(s).is_callback() {
            return Err(Error::NotContext);
        }
        Ok((i, s))
    }

    /// Takes a free slot (SPEC A3: on failure only `full_count` changes).
    fn alloc(&mut self) -> Result<Idx, Error> {
        let h = &self.arena.header;
        let head = h.free_head.load(Relaxed);
        let i = if head != NONE {
            h.free_head
                .store(unpack(self.slot(head).links.load(Relaxed)).0, Relaxed);
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
        let in_use = h.in_use.load(Relaxed) + 1;
        h.in_use.store(in_use, Relaxed);
        if in_use > h.high_water.load(Relaxed) {
            h.high_water.store(in_use, Relaxed);
        }
        Ok(i)
    }

    /// Returns a slot whose handle is already retired to the free list.
    pub(crate) fn free(&mut self, i: Idx) {
        let h = &self.arena.header;
        let slot = self.slot(i);
        let s = slot.state.load(Relaxed);
        debug_assert!(s & HANDLE == 0, "freeing a slot with a live handle");
        // The slot may have been retired earlier in this same section: order that retirement
        // before the `links` write below, as `locked_at` does for earlier sections (SPEC A2).
        fence(Release);
        slot.links
            .store(pack(h.free_head.load(Relaxed), NONE), Relaxed);
        slot.state
            .store(make_state(gen_of(s), Kind::Free, 0), Release);
        h.free_head.store(i, Relaxed);
        h.in_use.store(h.in_use.load(Relaxed) - 1, Relaxed);
    }

    /// Makes every handle of `i` stale: bumps the generation, clears `HANDLE` (SPEC A4).
    /// A lock-free check may be recording `ERR_DEADLINE_SEEN` on an unsettled value layer with a
    /// deadline at the same moment: on CAS targets that case retries rather than overwrite it.
    #[cfg_attr(
        not(target_has_atomic = "32"),
        allow(clippy::never_loop, reason = "only the CAS path loops")
    )]
    fn retire(&self, i: Idx) {
        let slot = self.slot(i);
        #[cfg_attr(
            not(target_has_atomic = "32"),
            allow(unused_mut, reason = "only the CAS loop assigns it")
        )]
        let mut s = slot.state.load(Relaxed);
        loop {
            let new = with_gen(s, gen_of(s).wrapping_add(1)) & !HANDLE;
            #[cfg(target_has_atomic = "32")]
            if s & HAS_DL != 0 && !is_settled(s) {
                match slot.state.compare_exchange(s, new, Release, Relaxed) {
                    Ok(_) => return,
                    Err(actual) => {
                        s = actual;
                        continue;
                    }
                }
            }
            slot.state.store(new, Release);
            return;
        }
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
    fn unlink_child(&self, c: Idx) {
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

    /// The cause a deadline expiry gives node `i`: its deadline owner's, the nearest ancestor-or-
    /// self of kind `Deadline` (clamped deadlines are created as `Cancel`, SPEC D2, so the nearest
    /// one is the one that set the effective deadline). O(depth); only on expiry paths.
    pub(crate) fn owner_cause(&self, i: Idx) -> u32 {
        let mut j = i;
        for _ in 0..self.arena.slots.len() {
            if kind_of(self.state(j)) == Kind::Deadline {
                return self.slot(j).word(0) as u32;
            }
            j = self.slot(j).parent();
            if j == NONE {
                break;
            }
        }
        0
    }

    /// Whether node `i`'s own effective deadline has passed.
    fn expired(&mut self, i: Idx, s: u32) -> bool {
        s & ERR_MASK == ERR_DEADLINE_SEEN
            || (s & HAS_DL != 0 && self.now() >= self.slot(i).deadline.get())
    }

    /// Creates a child of `parent` (SPEC C1, C7, D1-D3, D8, V1, W1).
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
        let i = self.alloc()?;
        let inherited = (p != NONE && ps & HAS_DL != 0).then(|| self.slot(p).deadline.get());
        let (kind, deadline) = match spec {
            Spec::Cancel => (Kind::Cancel, inherited),
            Spec::Deadline { at, cause } => {
                if inherited.is_some_and(|d| d < at) {
                    (Kind::Cancel, inherited)
                } else {
                    self.slot(i).set_word(0, cause as usize);
                    (Kind::Deadline, Some(at))
                }
            }
            Spec::Value { key, value } => {
                self.slot(i).set_word(0, key);
                self.slot(i).set_word(1, value);
                (Kind::Value, inherited)
            }
            Spec::Detached => (Kind::Detached, None),
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
                cause = self.owner_cause(p);
            }
        }
        if err == ERR_NONE && kind == Kind::Deadline {
            if let Some(at) = deadline {
                if self.now() >= at {
                    err = ERR_DEADLINE;
                    cause = self.slot(i).word(0) as u32;
                }
            }
        }

        let slot = self.slot(i);
        slot.deadline.set(deadline.unwrap_or(0));
        slot.parent.store(p, Relaxed);
        slot.first_child.store(NONE, Relaxed);
        slot.refs.store(0, Relaxed);
        if err != ERR_NONE {
            slot.set_cause(cause);
        } else if p != NONE && kind != Kind::Detached {
            self.link_child(p, i);
        } else {
            slot.set_siblings(NONE, NONE);
        }
        if p != NONE {
            let parent_slot = self.slot(p);
            parent_slot.refs.store(parent_slot.refs() + 1, Relaxed);
        }
        if kind == Kind::Deadline && err == ERR_NONE {
            self.dq_insert(i);
        }
        #[cfg(feature = "diagnostics")]
        self.record(i, site);
        #[cfg(not(feature = "diagnostics"))]
        let _ = site;
        let generation = gen_of(slot.state.load(Relaxed));
        let flags = err | HANDLE | if deadline.is_some() { HAS_DL } else { 0 };
        slot.state
            .store(make_state(generation, kind, flags), Release);
        Ok(Handle::new(i as usize, generation))
    }

    /// Writes the final Err and cause of node `i` during a walk. `err`/`cause` are inherited from
    /// the node it was reached from; `expired_cause` is the cause to use if `i`'s own deadline has
    /// passed and `i` is not itself a deadline owner (`None`: look it up). Returns the final pair.
    fn mark(&mut self, i: Idx, err: u32, cause: u32, expired_cause: Option<u32>) -> (u32, u32) {
        #[cfg_attr(
            not(target_has_atomic = "32"),
            allow(unused_mut, reason = "only the CAS loop assigns it")
        )]
        let mut s = self.state(i);
        let kind = kind_of(s);
        if kind == Kind::Deadline {
            self.dq_remove(i); // I5
        }
        #[cfg_attr(
            not(target_has_atomic = "32"),
            allow(clippy::never_loop, reason = "only the CAS retries")
        )]
        loop {
            let (e, c) = if self.expired(i, s) {
                let c = match (kind, expired_cause) {
                    (Kind::Deadline, _) => self.slot(i).word(0) as u32,
                    // The node it was reached from expired too: same deadline, same owner.
                    (_, Some(c)) if err == ERR_DEADLINE => c,
                    // Reached from a node marked Canceled, yet expired: a check saw the deadline
                    // pass after this walk read the clock, and reported the owner's cause (K6).
                    _ => self.owner_cause(i),
                };
                (ERR_DEADLINE, c)
            } else {
                (err, cause)
            };
            let slot = self.slot(i);
            slot.set_cause(c);
            let new = (s & !ERR_MASK) | e;
            if s & HAS_DL == 0 {
                // No lock-free check writes a node without a deadline.
                slot.state.store(new, Release);
                return (e, c);
            }
            #[cfg(target_has_atomic = "32")]
            match slot.state.compare_exchange(s, new, Release, Relaxed) {
                Ok(_) => return (e, c),
                // A check marked it `ERR_DEADLINE_SEEN` meanwhile: decide again.
                Err(actual) => s = actual,
            }
            #[cfg(not(target_has_atomic = "32"))]
            {
                // Single core, no CAS: checks never write; the lock masks interrupts.
                slot.state.store(new, Release);
                return (e, c);
            }
        }
    }

    /// Cancels node `r` and its subtree with `err`/`cause` (SPEC C2, C5, C6). Claimed callbacks
    /// go to `pending`. Returns true when this call set `r`'s Err to `err` (SPEC C3).
    pub(crate) fn cancel_walk(
        &mut self,
        r: Idx,
        err: u32,
        cause: u32,
        pending: &mut Pending,
    ) -> bool {
        let s = self.state(r);
        if is_settled(s) {
            return false;
        }
        if self.slot(r).parent() != NONE {
            self.unlink_child(r); // I2: unsettled, non-detached, has a parent: linked
        }
        let (e, _) = self.mark(r, err, cause, None);
        let first = s & ERR_MASK == ERR_NONE && e == err;
        let mut cur = r;
        loop {
            let child = self.slot(cur).first_child();
            if child == NONE {
                if cur == r {
                    break;
                }
                cur = self.slot(cur).parent();
                continue;
            }
            let (next, _) = self.slot(child).siblings();
            self.slot(cur).first_child.store(next, Relaxed);
            if next != NONE {
                let (nn, _) = self.slot(next).siblings();
                self.slot(next).set_siblings(nn, NONE);
            }
            if kind_of(self.state(child)).is_callback() {
                self.retire(child); // claimed: `stop` answers false from now on (F4)
                pending.push(self.arena, child);
                continue;
            }
            let cur_state = self.state(cur);
            let cur_cause = self.slot(cur).cause();
            self.mark(child, cur_state & ERR_MASK, cur_cause, Some(cur_cause));
            cur = child;
        }
        first
    }

    /// Cancels the context `h` (SPEC C2, C3, K1-K3, R2, W1).
    pub(crate) fn cancel(
        &mut self,
        h: Handle,
        cause: u32,
        pending: &mut Pending,
    ) -> Result<bool, Error> {
        if h.is_root() {
            return Err(Error::Root);
        }
        let (i, s) = self.resolve_ctx(h)?;
        match kind_of(s) {
            Kind::Detached => Err(Error::Detached),
            Kind::Value => Err(Error::ValueLayer),
            _ => Ok(self.cancel_walk(i, ERR_CANCELED, cause, pending)),
        }
    }

    /// Releases `h` (SPEC A4, A5). A registration handle is stopped instead (C API contract).
    pub(crate) fn release(&mut self, h: Handle, pending: &mut Pending) -> Result<(), Error> {
        if h.is_root() {
            return Err(Error::Root);
        }
        let (i, s) = self.resolve(h)?;
        let kind = kind_of(s);
        if kind.is_callback() {
            self.stop_slot(i);
            return Ok(());
        }
        // Detached contexts and value layers have no cancellation of their own (W1, V4):
        // releasing them cancels nothing; their descendants live on, and the slot waits for them.
        if !matches!(kind, Kind::Detached | Kind::Value) {
            self.cancel_walk(i, ERR_CANCELED, 0, pending);
        }
        self.retire(i);
        if self.slot(i).refs() == 0 {
            self.reclaim(i);
        }
        Ok(())
    }

    /// Frees `i` (no handle, no children) and every ancestor that this leaves unneeded (I3).
    pub(crate) fn reclaim(&mut self, mut i: Idx) {
        loop {
            let p = self.slot(i).parent();
            let s = self.state(i);
            if p != NONE && kind_of(s) == Kind::Value && !is_settled(s) {
                self.unlink_child(i); // I2: a released, uncanceled value layer is still listed
            }
            self.free(i);
            if p == NONE {
                return;
            }
            let ps = self.slot(p);
            let refs = ps.refs() - 1;
            ps.refs.store(refs, Relaxed);
            if refs != 0 || ps.state.load(Relaxed) & HANDLE != 0 {
                return;
            }
            i = p;
        }
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
        let r = self.alloc()?;
        let slot = self.slot(r);
        slot.set_ptr(0, cb.f);
        slot.set_ptr(1, cb.data);
        slot.first_child.store(NONE, Relaxed);
        slot.refs.store(0, Relaxed);
        match target {
            Some(i) => {
                slot.parent.store(i, Relaxed);
                self.link_child(i, r);
                // I3: a registration keeps its context's slot until it has run or been stopped,
                // so that one on a released value layer still fires when the layer's parent is
                // canceled (V4), and a claimed one can find its context while it is dispatched.
                let target = self.slot(i);
                target.refs.store(target.refs() + 1, Relaxed);
            }
            // Root or detached: can never be done, never fires (F7).
            None => {
                slot.parent.store(NONE, Relaxed);
                slot.set_siblings(NONE, NONE);
            }
        }
        #[cfg(feature = "diagnostics")]
        self.record(r, site);
        #[cfg(not(feature = "diagnostics"))]
        let _ = site;
        let generation = gen_of(slot.state.load(Relaxed));
        slot.state.store(
            make_state(generation, cb.kind, HANDLE | ERR_CANCELED),
            Release,
        );
        Ok(Registered::Later(Handle::new(r as usize, generation)))
    }

    /// Stops registration `h` (SPEC F4): true when it prevented the callback.
    pub(crate) fn stop(&mut self, h: Handle) -> bool {
        match self.resolve(h) {
            Ok((i, s)) if kind_of(s).is_callback() => {
                self.stop_slot(i);
                true
            }
            _ => false,
        }
    }

    fn stop_slot(&mut self, i: Idx) {
        if self.slot(i).parent() != NONE {
            self.unlink_child(i);
        }
        self.retire(i);
        self.reclaim(i);
    }
}

impl ArenaView {
    /// Creates a child and runs nothing else.
    pub(crate) fn create(
        &self,
        parent: Handle,
        spec: Spec,
        now: Option<u64>,
        site: Site,
    ) -> Result<Handle, Error> {
        // Diagnostics record the creation tick: read the clock before taking the lock, so that
        // the critical section does not grow by a clock read.
        #[cfg(feature = "diagnostics")]
        let now = now.or_else(|| Some(self.now()));
        let r = self.locked_at(now, |t| t.create(parent, spec, site));
        #[cfg(any(feature = "log", feature = "defmt"))]
        if r == Err(Error::Full) {
            crate::diagnostics::log_full(self.capacity(), site);
        }
        r
    }

    /// A cancelable child of `parent` (SPEC C1, C7). Raw-handle form of [`crate::Ctx::with_cancel`].
    #[track_caller]
    pub fn with_cancel(&self, parent: Handle) -> Result<Handle, Error> {
        self.create(parent, Spec::Cancel, None, Site::caller())
    }

    /// A child with an absolute deadline in ticks (SPEC D1-D3); `cause` (0: none) is recorded if
    /// the deadline fires (K5).
    #[track_caller]
    pub fn with_deadline_cause(
        &self,
        parent: Handle,
        at: u64,
        cause: u32,
    ) -> Result<Handle, Error> {
        self.create(parent, Spec::Deadline { at, cause }, None, Site::caller())
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
        let now = self.now();
        let at = now.saturating_add(ticks);
        self.create(
            parent,
            Spec::Deadline { at, cause },
            Some(now),
            Site::caller(),
        )
    }

    /// A value layer (SPEC V1): key 0 gives [`Error::ZeroKey`].
    #[track_caller]
    pub fn with_value(&self, parent: Handle, key: usize, value: usize) -> Result<Handle, Error> {
        self.create(parent, Spec::Value { key, value }, None, Site::caller())
    }

    /// A detached child: the parent's values, never done (SPEC W1).
    #[track_caller]
    pub fn without_cancel(&self, parent: Handle) -> Result<Handle, Error> {
        self.create(parent, Spec::Detached, None, Site::caller())
    }

    /// Cancels `h` and its subtree; `cause` 0 records no cause (SPEC C2, C3, K1). Returns true when
    /// this call was the one that canceled it. Callbacks made due run before it returns (F3).
    pub fn cancel(&self, h: Handle, cause: u32) -> Result<bool, Error> {
        let mut pending = Pending::new();
        let r = self.locked(|t| t.cancel(h, cause, &mut pending));
        self.run_pending(pending);
        r
    }

    /// Cancels `h` if needed and gives the handle back: stale from now on (SPEC A4, A5).
    pub fn release(&self, h: Handle) -> Result<(), Error> {
        let mut pending = Pending::new();
        let r = self.locked(|t| t.release(h, &mut pending));
        self.run_pending(pending);
        r
    }

    /// Registers `cb` to run once `h` is done (SPEC F1-F7). Returns the stop handle, or
    /// [`Handle::DEAD`] when `h` was already done and `cb` has run before this returned (F2).
    #[track_caller]
    pub fn after_func(&self, h: Handle, cb: Callback) -> Result<Handle, Error> {
        let site = Site::caller();
        #[cfg(feature = "diagnostics")]
        let now = Some(self.now());
        #[cfg(not(feature = "diagnostics"))]
        let now = None;
        let registered = self.locked_at(now, |t| t.register(h, cb, site));
        #[cfg(any(feature = "log", feature = "defmt"))]
        if matches!(registered, Err(Error::Full)) {
            crate::diagnostics::log_full(self.capacity(), site);
        }
        match registered? {
            Registered::Later(stop) => Ok(stop),
            Registered::RunNow => {
                cb.call();
                Ok(Handle::DEAD)
            }
        }
    }

    /// Stops a registration (SPEC F4): true exactly when this call prevented the callback. Never
    /// waits for a running callback.
    pub fn stop(&self, registration: Handle) -> bool {
        self.locked(|t| t.stop(registration))
    }
}
