//! Locked steps: how every operation runs (SPEC T3, F3; DESIGN-QUESTIONS 3).
//!
//! An operation is a sequence of *steps*. Each step takes the arena lock, does at most
//! [`STEP_BUDGET`] units of work (a node marked, a callback claimed, a waiter taken out, a slot
//! reclaimed, a deadline lane position scanned), and releases the lock. Between steps, with no
//! lock held, the operation wakes the waiters it took out and runs at most one claimed callback.
//!
//! What an operation has still to do between two steps is its [`Work`]: a paused walk, a
//! reclamation cascade, a deadline insertion, claimed callbacks, wake targets. Every paused piece
//! holds a reference on the node it is paused at (I3): that node cannot be reclaimed or reused
//! while the lock is free, whatever an interrupt handler or another core does meanwhile (cancel,
//! create under, release any node of the same subtree). `Work` lives on the calling thread's stack.
//!
//! The calling thread finishes its own work before the operation returns: `cancel` returns only
//! when every descendant reports done (SPEC C2), `release` only when every slot it frees is free.
//!
//! # Panics in callbacks and wakers
//!
//! With `std`, a callback or waker that panics is caught; the operation goes on with its other
//! callbacks, wakers and steps, and the first panic is resumed once all of its work is done. So no
//! slot leaks and no waiter is forgotten (SPEC A6, N4). Without `std`, callbacks must not unwind.

use core::task::Waker;

use crate::engine::arena::ArenaView;
use crate::engine::callback::{Callback, Pending};
use crate::engine::deadline::Insert;
use crate::engine::slot::{Idx, Slot, NONE};
use crate::engine::sync::{fence, Ordering::Release};
use crate::engine::waiter::WakeBatch;
use crate::engine::walk::Walk;

/// Units of work per locked step. Small on microcontrollers, where a step masks interrupts (each
/// unit costs tens of instructions: `cargo xtask latency` measures the longest step); larger on
/// hosts, where a lock round trip costs about as much as a few units.
#[cfg(target_pointer_width = "64")]
pub(crate) const STEP_BUDGET: u32 = 32;
/// Units of work per locked step (see the 64-bit docs).
///
/// Chosen with `cargo xtask latency` (`firmware/latency` built with each budget in turn; longest
/// section on thumbv6m, the slowest target, over every case): 3 gives 893 instructions, 4 gives
/// 987, and 5 is above the 1000 of issue 11 (1018 for a walk step marking deadline owners). The
/// longest step is the creation that starts a lane scan (the creation, then the scan units left
/// in its step), then a walk step over deadline owners (693 with 3, 911 with 4). 3 leaves room
/// for later changes; the price is 6 to 10 % more instructions for a whole cancel, release
/// cascade or scanning insert than with 4 (more lock round trips).
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const STEP_BUDGET: u32 = 3;

/// What an operation has still to do between steps (module docs).
///
/// The paused pieces are kept with a `NONE` index for "none" rather than as `Option`s: every
/// operation asks whether anything is left, and with `NONE` being all ones that is one AND of
/// four words ([`Work::idle`]).
pub(crate) struct Work {
    walk: Walk,
    insert: Insert,
    /// A reclamation paused at this slot: the reference it holds is dropped when it resumes.
    reclaim: Idx,
    pub(crate) pending: Pending,
    pub(crate) wakes: WakeBatch,
    /// The deadline driver's waker, taken out because an earlier deadline was created.
    pub(crate) driver: Option<Waker>,
    /// A callback dispatched by the last step, to run once the lock is released.
    pub(crate) call: Option<Callback>,
    #[cfg(feature = "std")]
    panic: Option<std::boxed::Box<dyn core::any::Any + Send + 'static>>,
}

impl Work {
    pub(crate) const fn new() -> Self {
        Work {
            walk: Walk::NONE,
            insert: Insert::NONE,
            reclaim: NONE,
            pending: Pending::new(),
            wakes: WakeBatch::new(),
            driver: None,
            call: None,
            #[cfg(feature = "std")]
            panic: None,
        }
    }

    /// Nothing left that needs a step.
    #[inline]
    fn idle(&self) -> bool {
        self.walk.key() & self.insert.key() & self.reclaim & self.pending.0 == NONE
    }

    #[inline]
    pub(crate) fn has_walk(&self) -> bool {
        self.walk.key() != NONE
    }

    /// Keeps a paused walk (one at a time per operation).
    #[inline]
    pub(crate) fn put_walk(&mut self, w: Walk) {
        debug_assert!(!self.has_walk(), "one walk at a time per operation");
        self.walk = w;
    }

    #[inline]
    fn take_walk(&mut self) -> Option<Walk> {
        let w = core::mem::replace(&mut self.walk, Walk::NONE);
        (w.key() != NONE).then_some(w)
    }

    /// Keeps a paused deadline insertion.
    #[inline]
    pub(crate) fn put_insert(&mut self, ins: Insert) {
        debug_assert!(self.insert.key() == NONE, "one insertion at a time");
        self.insert = ins;
    }

    #[inline]
    fn take_insert(&mut self) -> Option<Insert> {
        let ins = core::mem::replace(&mut self.insert, Insert::NONE);
        (ins.key() != NONE).then_some(ins)
    }

    #[inline]
    pub(crate) fn has_reclaim(&self) -> bool {
        self.reclaim != NONE
    }

    /// Keeps a reclamation paused at `p` (it holds a reference on `p`).
    #[inline]
    pub(crate) fn put_reclaim(&mut self, p: Idx) {
        debug_assert!(!self.has_reclaim() && p != NONE);
        self.reclaim = p;
    }

    #[inline]
    fn take_reclaim(&mut self) -> Option<Idx> {
        let p = core::mem::replace(&mut self.reclaim, NONE);
        (p != NONE).then_some(p)
    }

    /// Nothing left at all: no step, no wake-up, no callback, no panic to resume. Then `Work`
    /// owns nothing that needs dropping.
    #[inline]
    fn quiet(&self) -> bool {
        self.idle() && self.call.is_none() && self.driver.is_none() && self.wakes.is_empty()
    }
}

/// Access to the tree inside one locked step. Only [`ArenaView::run`] makes one.
pub(crate) struct Tree<'a> {
    pub(crate) arena: &'a ArenaView,
    /// The clock, read at most once per step (lazily: only if a deadline is involved).
    pub(crate) now: Option<u64>,
    /// Units of work left in this step.
    pub(crate) budget: u32,
    pub(crate) work: &'a mut Work,
}

impl<'a> Tree<'a> {
    #[inline]
    pub(crate) fn slot(&self, i: Idx) -> &'a Slot {
        self.arena.slot(i)
    }

    /// The clock, read once per step.
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

    /// Spends one unit; true when the step has none left.
    #[inline]
    pub(crate) fn spend(&mut self) -> bool {
        self.budget = self.budget.saturating_sub(1);
        self.budget == 0
    }

    /// Whether the step must end now: no budget, or no room for more wake targets.
    #[inline]
    pub(crate) fn exhausted(&self) -> bool {
        self.budget == 0 || self.work.wakes.is_full()
    }

    /// Continues the operation's paused work within this step's budget.
    #[inline]
    fn proceed(&mut self) {
        if !self.work.idle() {
            self.proceed_work();
        }
    }

    fn proceed_work(&mut self) {
        loop {
            if self.exhausted() {
                return;
            }
            if let Some(i) = self.work.take_reclaim() {
                self.resume_reclaim(i);
                continue;
            }
            if let Some(ins) = self.work.take_insert() {
                self.resume_insert(ins);
                continue;
            }
            if let Some(w) = self.work.take_walk() {
                self.resume_walk(w);
                continue;
            }
            if self.work.call.is_none() {
                if let Some(i) = self.work.pending.pop(self.arena) {
                    self.dispatch(i);
                    continue;
                }
            }
            return;
        }
    }
}

impl ArenaView {
    /// Runs an operation: `start` in a first locked step (with `now` as that step's clock reading,
    /// if given), then the work it leaves, step by step, until none is left.
    ///
    /// Most operations (a creation, the cancel of a leaf, the release of a settled leaf) leave
    /// nothing after their first step: that path takes the lock once and touches `Work` only to
    /// see that it is empty.
    #[inline]
    pub(crate) fn run<R>(&self, now: Option<u64>, start: impl FnOnce(&mut Tree<'_>) -> R) -> R {
        let mut work = Work::new();
        let r = self.locked_step(now, &mut work, start);
        if work.quiet() {
            // Nothing to drop: every field that owns something is empty.
            core::mem::forget(work);
        } else {
            self.finish(&mut work);
        }
        r
    }

    /// One locked step for inspection or a small change that leaves no work (diagnostics,
    /// audit, waiters).
    #[inline]
    pub(crate) fn locked<R>(&self, f: impl FnOnce(&mut Tree<'_>) -> R) -> R {
        self.run(None, f)
    }

    /// The rest of an operation after its first step: wake-ups and callbacks with no lock held,
    /// further steps, then the first panic of user code, resumed.
    #[cold]
    #[inline(never)]
    fn finish(&self, work: &mut Work) {
        self.flush(work);
        while !work.idle() || work.call.is_some() {
            self.locked_step(None, work, |_| ());
            self.flush(work);
        }
        #[cfg(feature = "std")]
        if let Some(p) = work.panic.take() {
            std::panic::resume_unwind(p);
        }
    }

    /// One locked step (the wake-ups and the callback it leaves are for [`ArenaView::flush`]).
    #[inline]
    fn locked_step<R>(
        &self,
        now: Option<u64>,
        work: &mut Work,
        f: impl FnOnce(&mut Tree<'_>) -> R,
    ) -> R {
        self.header.lock.with(|| {
            // Seqlock writer side (SPEC A2): lock-free readers read fields with `Relaxed` loads
            // and re-validate the state after an `Acquire` fence. A reader that sees a field
            // written in this step must also see every state change of that slot made in earlier
            // steps (ordered by the lock); this fence, sequenced before every write of the step,
            // makes it so.
            fence(Release);
            let mut t = Tree {
                arena: self,
                now,
                budget: STEP_BUDGET,
                work,
            };
            let r = f(&mut t);
            t.proceed();
            #[cfg(feature = "diagnostics")]
            if let Some(n) = t.now {
                self.header.last_tick.set(n);
            }
            r
        })
    }

    /// Wakes what the step took out and runs the callback it dispatched (no lock held, F3).
    fn flush(&self, work: &mut Work) {
        if let Some(d) = work.driver.take() {
            guard(work, || d.wake());
        }
        while let Some(t) = work.wakes.pop() {
            guard(work, || t.wake());
        }
        if let Some(cb) = work.call.take() {
            guard(work, || cb.call());
        }
    }
}

/// Runs user code (a callback or a waker); with `std`, keeps the first panic for later.
#[inline]
fn guard(work: &mut Work, f: impl FnOnce()) {
    #[cfg(feature = "std")]
    {
        if let Err(p) = std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)) {
            work.panic.get_or_insert(p);
        }
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = work;
        f();
    }
}
