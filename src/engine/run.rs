//! Locked steps: how every operation runs (SPEC T3, F3; docs/design.md 3).
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

use core::mem::MaybeUninit;
use core::task::Waker;

use crate::engine::arena::ArenaView;
use crate::engine::callback::{Callback, Pending};
use crate::engine::deadline::Insert;
use crate::engine::lock::LockGuard;
use crate::engine::slot::{Idx, Slot, NONE};
use crate::engine::sync::{fence, Ordering::Release};
use crate::engine::waiter::WakeBatch;
use crate::engine::walk::Walk;

/// Units of work per locked step. Small on microcontrollers, where a step masks interrupts (each
/// unit costs tens of instructions: `cargo xtask latency` measures the longest step); larger on
/// hosts, where a lock round trip costs about as much as a few units.
#[cfg(all(target_pointer_width = "64", not(loom)))]
pub(crate) const STEP_BUDGET: u32 = 32;
/// Units of work per locked step under loom: the microcontrollers' budget, so that the models
/// see walks, reclamations and scanning inserts paused between steps with trees of a few nodes
/// (a pause is where the pins of I3 matter), whatever the host.
#[cfg(all(target_pointer_width = "64", loom))]
pub(crate) const STEP_BUDGET: u32 = 3;
/// Units of work per locked step (see the 64-bit docs).
///
/// Chosen with `cargo xtask latency` (`firmware/latency` built with each budget in turn; longest
/// section on thumbv6m, the slowest target, over every case). Since a walk marks a leaf in one
/// unit (no descent and climb back), the longest step is a walk step over leaves that own
/// deadlines (each mark takes its owner out of a deadline lane): 831 instructions with 3, 1066
/// with 4, above the 1000 of issue 11. Next come the scanning insert (758 with 3, 828 with 4) and
/// the first step of a plain cancel (557, 655). Measured on the engine of 2026-12-01 evening
/// (README, "Interrupt latency").
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const STEP_BUDGET: u32 = 3;

/// What an operation has still to do between steps (module docs).
///
/// Built by every operation and almost always left empty, so it is laid out to be cheap to
/// build and to test: the paused pieces are found by their head index (`NONE`, all ones, for
/// none: one AND of four words says whether any is left), the rest by flag bits, and no field
/// is written at construction beyond those heads, the flags and the wake count (with `repr(C)`
/// they are adjacent, so a few wide stores). On hosts every store before the lock's atomic swap
/// must drain first; `examples/profile_ops.rs` under cachegrind counts the data writes of an
/// operation.
///
/// `Work` has no `Drop` of its own: an operation ends only once its work is done, the waker,
/// callback and panic taken out (`finish`), so there is nothing left to drop. A panic inside a
/// locked step (an engine bug: no user code runs there) would leak what it held, never free it
/// twice.
#[repr(C)]
pub(crate) struct Work {
    /// Root of the paused walk, node of the paused deadline insertion, slot of the paused
    /// reclamation (the reference it holds is dropped when it resumes); `NONE` for none.
    heads: [Idx; 3],
    /// Claimed registrations waiting to be dispatched.
    pub(crate) pending: Pending,
    /// Which of `driver`, `call`, `panic` hold a value.
    flags: u32,
    /// Units of work left in the current step (beside `flags`: one store builds both).
    budget: u32,
    pub(crate) wakes: WakeBatch,
    /// Initialised when `heads[WALK] != NONE`.
    walk: MaybeUninit<Walk>,
    /// Initialised when `heads[INSERT] != NONE`.
    insert: MaybeUninit<Insert>,
    /// The deadline driver's waker, taken out because an earlier deadline was created
    /// (`HAS_DRIVER`).
    driver: MaybeUninit<Waker>,
    /// A callback dispatched by the last step, to run once the lock is released (`HAS_CALL`).
    call: MaybeUninit<Callback>,
    /// The first panic of user code, to resume at the end (`HAS_PANIC`).
    #[cfg(feature = "std")]
    panic: MaybeUninit<std::boxed::Box<dyn core::any::Any + Send + 'static>>,
}

const WALK: usize = 0;
const INSERT: usize = 1;
const RECLAIM: usize = 2;
const HAS_DRIVER: u32 = 1;
const HAS_CALL: u32 = 2;
#[cfg(feature = "std")]
const HAS_PANIC: u32 = 4;

impl Work {
    pub(crate) const fn new() -> Self {
        Work {
            heads: [NONE; 3],
            pending: Pending::new(),
            flags: 0,
            budget: STEP_BUDGET,
            wakes: WakeBatch::new(),
            walk: MaybeUninit::uninit(),
            insert: MaybeUninit::uninit(),
            driver: MaybeUninit::uninit(),
            call: MaybeUninit::uninit(),
            #[cfg(feature = "std")]
            panic: MaybeUninit::uninit(),
        }
    }

    /// Nothing left that needs a step.
    #[inline]
    fn idle(&self) -> bool {
        self.heads[WALK] & self.heads[INSERT] & self.heads[RECLAIM] & self.pending.0 == NONE
    }

    /// Nothing left at all: no step, no wake-up, no callback, no panic to resume. Then `Work`
    /// owns nothing that needs dropping.
    #[inline]
    fn quiet(&self) -> bool {
        self.idle() && self.flags == 0 && self.wakes.is_empty()
    }

    #[inline]
    pub(crate) fn has_walk(&self) -> bool {
        self.heads[WALK] != NONE
    }

    /// Keeps a paused walk (one at a time per operation).
    #[inline]
    pub(crate) fn put_walk(&mut self, w: Walk) {
        debug_assert!(!self.has_walk(), "one walk at a time per operation");
        put_paused(&mut self.heads[WALK], &mut self.walk, w.key(), w);
    }

    #[inline]
    fn take_walk(&mut self) -> Option<Walk> {
        take_paused(&mut self.heads[WALK], &self.walk)
    }

    /// Keeps a paused deadline insertion (one at a time).
    #[inline]
    pub(crate) fn put_insert(&mut self, ins: Insert) {
        debug_assert!(self.heads[INSERT] == NONE, "one insertion at a time");
        put_paused(&mut self.heads[INSERT], &mut self.insert, ins.key(), ins);
    }

    #[inline]
    fn take_insert(&mut self) -> Option<Insert> {
        take_paused(&mut self.heads[INSERT], &self.insert)
    }

    #[inline]
    pub(crate) fn has_reclaim(&self) -> bool {
        self.heads[RECLAIM] != NONE
    }

    /// Keeps a reclamation paused at `p` (it holds a reference on `p`).
    #[inline]
    pub(crate) fn put_reclaim(&mut self, p: Idx) {
        debug_assert!(!self.has_reclaim() && p != NONE);
        self.heads[RECLAIM] = p;
    }

    #[inline]
    fn take_reclaim(&mut self) -> Option<Idx> {
        let p = core::mem::replace(&mut self.heads[RECLAIM], NONE);
        (p != NONE).then_some(p)
    }

    /// Keeps the deadline driver's waker, to wake once the lock is released.
    pub(crate) fn set_driver(&mut self, w: Waker) {
        if self.flags & HAS_DRIVER != 0 {
            // SAFETY: `driver` is initialised while `HAS_DRIVER` is set; it is replaced, so
            // the old waker is dropped here and once.
            unsafe { self.driver.assume_init_drop() };
        }
        self.driver.write(w);
        self.flags |= HAS_DRIVER;
    }

    fn take_driver(&mut self) -> Option<Waker> {
        if self.flags & HAS_DRIVER == 0 {
            return None;
        }
        self.flags &= !HAS_DRIVER;
        // SAFETY: initialised while `HAS_DRIVER` was set; the flag is cleared, so it is read
        // out once.
        Some(unsafe { self.driver.assume_init_read() })
    }

    #[inline]
    pub(crate) fn has_call(&self) -> bool {
        self.flags & HAS_CALL != 0
    }

    /// Keeps the callback a step dispatched (one at a time: `proceed` dispatches no other
    /// while one is kept).
    pub(crate) fn set_call(&mut self, cb: Callback) {
        debug_assert!(!self.has_call());
        self.call.write(cb);
        self.flags |= HAS_CALL;
    }

    fn take_call(&mut self) -> Option<Callback> {
        if !self.has_call() {
            return None;
        }
        self.flags &= !HAS_CALL;
        // SAFETY: initialised while `HAS_CALL` was set; `Callback` is `Copy`.
        Some(unsafe { self.call.assume_init_read() })
    }

    /// Keeps the first panic of user code (later ones are dropped).
    #[cfg(feature = "std")]
    fn keep_panic(&mut self, p: std::boxed::Box<dyn core::any::Any + Send + 'static>) {
        if self.flags & HAS_PANIC == 0 {
            self.panic.write(p);
            self.flags |= HAS_PANIC;
        }
    }

    #[cfg(feature = "std")]
    fn take_panic(&mut self) -> Option<std::boxed::Box<dyn core::any::Any + Send + 'static>> {
        if self.flags & HAS_PANIC == 0 {
            return None;
        }
        self.flags &= !HAS_PANIC;
        // SAFETY: initialised while `HAS_PANIC` was set; the flag is cleared, so read once.
        Some(unsafe { self.panic.assume_init_read() })
    }
}

/// Keeps a paused piece `v` in `slot`, found by its head `key` (never `NONE`).
#[inline]
fn put_paused<T: Copy>(head: &mut Idx, slot: &mut MaybeUninit<T>, key: Idx, v: T) {
    debug_assert!(key != NONE);
    *head = key;
    slot.write(v);
}

/// Takes the paused piece kept by [`put_paused`], if `head` says there is one.
#[inline]
fn take_paused<T: Copy>(head: &mut Idx, slot: &MaybeUninit<T>) -> Option<T> {
    if *head == NONE {
        return None;
    }
    *head = NONE;
    // SAFETY: a slot is initialised while its head is not `NONE` (`put_paused` writes both, this
    // function clears the head as it reads); `T: Copy`, so reading it out leaves nothing to drop.
    Some(unsafe { slot.assume_init_read() })
}

/// `Tree::now` before the step has read the clock (a clock reading `u64::MAX` is merely read
/// again when asked again).
const NOT_READ: u64 = u64::MAX;

/// Access to the tree inside the locked steps of one operation, and what the operation has
/// still to do. Only [`ArenaView::run`] makes one; it lives on the calling thread's stack.
///
/// It owns its [`Work`] (rather than borrowing it) and keeps the clock reading without an
/// `Option`: every operation builds one, and on hosts each store before the lock's atomic swap
/// has to drain first, so fewer stores here make every operation faster (measured with
/// `examples/profile_ops.rs` under cachegrind: data writes per create, cancel and release).
pub(crate) struct Tree<'a> {
    pub(crate) arena: &'a ArenaView,
    /// The clock, read at most once per step (lazily: only if a deadline is involved).
    now: u64,
    pub(crate) work: Work,
}

impl<'a> Tree<'a> {
    #[inline]
    pub(crate) fn slot(&self, i: Idx) -> &'a Slot {
        self.arena.slot(i)
    }

    /// The clock, read once per step.
    pub(crate) fn now(&mut self) -> u64 {
        if self.now == NOT_READ {
            self.now = self.arena.header.clock.now();
        }
        self.now
    }

    /// This step's clock reading, if it has taken one.
    #[cfg(feature = "diagnostics")]
    #[inline]
    pub(crate) fn now_if_read(&self) -> Option<u64> {
        (self.now != NOT_READ).then_some(self.now)
    }

    /// Spends one unit; true when the step has none left.
    #[inline]
    pub(crate) fn spend(&mut self) -> bool {
        self.work.budget = self.work.budget.saturating_sub(1);
        self.work.budget == 0
    }

    /// Whether the step must end now: no budget, or no room for more wake targets.
    #[inline]
    pub(crate) fn exhausted(&self) -> bool {
        self.work.budget == 0 || self.work.wakes.is_full()
    }

    /// The end of every locked step: the paused work within what is left of the budget, and
    /// the step's clock reading kept for diagnostics.
    #[inline(always)]
    fn end_step(&mut self) {
        if !self.work.idle() {
            self.proceed_work();
        }
        #[cfg(feature = "diagnostics")]
        if self.now != NOT_READ {
            self.arena.header.last_tick.set(self.now);
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
            if !self.work.has_call() {
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
    #[cfg_attr(target_pointer_width = "64", inline(always))]
    pub(crate) fn run<R>(&self, now: Option<u64>, start: impl FnOnce(&mut Tree<'_>) -> R) -> R {
        let mut t = self.tree(now);
        let guard = self.header.lock.lock();
        Self::begin_step();
        let r = start(&mut t);
        self.end(&mut t, guard);
        r
    }

    /// A [`Tree`] for an operation's first step. The operation takes the lock, calls
    /// [`ArenaView::begin_step`], changes the tree, and hands the guard to [`ArenaView::end`]:
    /// [`ArenaView::run`] by hand, for the constructors, whose body is large enough that a
    /// closure would stay out of line (and with it a general copy of [`Tree::create`] taking
    /// its `Spec` at run time).
    #[cfg_attr(target_pointer_width = "64", inline(always))]
    pub(crate) fn tree(&self, now: Option<u64>) -> Tree<'_> {
        Tree {
            arena: self,
            now: now.unwrap_or(NOT_READ),
            work: Work::new(),
        }
    }

    /// Ends an operation's first step (the lock held by `guard`), then runs the work it left.
    /// Afterwards `t` owns nothing ([`Work`]).
    #[cfg_attr(target_pointer_width = "64", inline(always))]
    pub(crate) fn end(&self, t: &mut Tree<'_>, guard: LockGuard<'_>) {
        t.end_step();
        drop(guard);
        if !t.work.quiet() {
            self.finish(t);
        }
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
    fn finish(&self, t: &mut Tree<'_>) {
        self.flush(&mut t.work);
        while !t.work.idle() || t.work.has_call() {
            t.now = NOT_READ;
            t.work.budget = STEP_BUDGET;
            self.header.lock.with(|| {
                Self::begin_step();
                t.end_step();
            });
            self.flush(&mut t.work);
        }
        #[cfg(feature = "std")]
        if let Some(p) = t.work.take_panic() {
            std::panic::resume_unwind(p);
        }
    }

    /// The start of every locked step, the lock held.
    #[inline(always)]
    pub(crate) fn begin_step() {
        // Seqlock writer side (SPEC A2): lock-free readers read fields with `Relaxed` loads and
        // re-validate the state after an `Acquire` fence. A reader that sees a field written in
        // this step must also see every state change of that slot made in earlier steps
        // (ordered by the lock); this fence, sequenced before every write of the step, makes it
        // so.
        fence(Release);
    }

    /// Wakes what the step took out and runs the callback it dispatched (no lock held, F3).
    fn flush(&self, work: &mut Work) {
        if let Some(d) = work.take_driver() {
            guard(work, || d.wake());
        }
        while let Some(t) = work.wakes.pop() {
            guard(work, || t.wake());
        }
        if let Some(cb) = work.take_call() {
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
            work.keep_panic(p);
        }
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = work;
        f();
    }
}
