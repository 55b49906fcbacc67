//! Waiting for work: a [`Group`] of threads (feature `std`) or a [`TaskGroup`] of async tasks
//! (any executor, embassy included; no heap), each unit with its own child context, canceled
//! together on the first error.
//!
//! The seed's last "when to use" line: "use sync.WaitGroup to wait for goroutines to finish, but
//! always combine it with context to avoid leaks". Go's `errgroup.WithContext` is that
//! combination; this is the same on scoped threads:
//!
//! - [`Ctx::group`] creates the group's context, a cancelable child of the parent, and runs a
//!   closure that spawns units of work with [`Group::spawn`];
//! - each unit gets a child context of the group's, released when the unit returns;
//! - the first unit to return `Err` (or to panic) cancels the group's context, and so every other
//!   unit's; its error is what [`Ctx::group`] returns, and the group's cause is its number
//!   (spawn order, from 1);
//! - [`Ctx::group`] returns only when every unit has finished (the scope joins them), and it
//!   releases the group's context last: no slot outlives the group.
//!
//! Units must still listen: a unit that never checks its context keeps the group waiting, exactly
//! as in Go.
//!
//! [`TaskGroup`] is the same for async tasks that the program spawns itself (embassy tasks live
//! in static pools, so a library cannot spawn them): a `static` group, a [`Member`] per task (its
//! child context; dropping it marks the task finished), [`Member::fail`] with a non-zero code as
//! the error, and [`TaskGroup::wait`] as the future that waits for all of them.
//!
//! [`Ctx::group`]: crate::Ctx::group

#[cfg(not(loom))]
pub use tasks::{Member, TaskGroup, Wait};
#[cfg(feature = "std")]
pub use threads::Group;

#[cfg(feature = "std")]
mod threads {
    use super::unit_cause;
    // A plain counter outside the engine: not part of the loom-modelled state (`crate::engine::sync`).
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread;

    use crate::context::{Ctx, OwnedCtx};
    use crate::error::Error;

    /// A group of units of work on scoped threads, made by [`Ctx::group`].
    ///
    /// ```
    /// use stopwire::{Arena, Error};
    /// static ARENA: Arena<8> = Arena::new();
    ///
    /// let result = ARENA.background().group(|g| {
    ///     g.spawn(|ctx| {
    ///         // Waits until the group is canceled by the failing unit.
    ///         while !ctx.is_done() {
    ///             std::thread::yield_now();
    ///         }
    ///         ctx.err()
    ///     });
    ///     g.spawn(|_ctx| Err(Error::DeadlineExceeded)); // fails first: the group's error
    /// });
    /// assert_eq!(result, Err(Error::DeadlineExceeded));
    /// assert_eq!(ARENA.stats().in_use, 0); // every context released
    /// ```
    pub struct Group<'scope, 'env, 'a, E> {
        scope: &'scope thread::Scope<'scope, 'env>,
        shared: Arc<Shared<'a, E>>,
    }

    /// What the group and its units share; the last owner (the group, after the scope has joined
    /// every unit) releases the group's context.
    struct Shared<'a, E> {
        owner: OwnedCtx<'a>,
        first: Mutex<Option<E>>,
        units: AtomicUsize,
    }

    impl<E> Shared<'_, E> {
        /// Records `error` if it is the first, then cancels the group with cause `unit`.
        fn fail(&self, unit: usize, error: E) {
            {
                let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some(error);
                }
            }
            self.owner.cancel_with_cause(unit_cause(unit));
        }
    }

    impl<E> core::fmt::Debug for Group<'_, '_, '_, E> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Group")
                .field("ctx", &self.shared.owner.ctx())
                .field("units", &self.shared.units.load(Ordering::Relaxed))
                .finish()
        }
    }

    /// Cancels the group if the unit's thread unwinds, so that the others stop and the scope can join
    /// them before the panic propagates.
    struct CancelOnUnwind<'o, 'a>(&'o OwnedCtx<'a>, usize);

    impl Drop for CancelOnUnwind<'_, '_> {
        fn drop(&mut self) {
            if thread::panicking() {
                self.0.cancel_with_cause(unit_cause(self.1));
            }
        }
    }

    impl<'scope, 'a: 'scope, E> Group<'scope, '_, 'a, E>
    where
        E: From<Error> + Send + 'scope,
    {
        /// Starts a unit of work on a new scoped thread, with its own child of the group's context.
        ///
        /// The unit returns `Ok(())` when done (including when it stopped because its context was
        /// canceled, if that is not a failure for it) or `Err` to fail the group: the first `Err`
        /// cancels every other unit. If the arena has no slot for the unit's context, the unit does
        /// not run and the group fails with `E::from(Error::Full)`.
        pub fn spawn<F>(&self, unit: F)
        where
            F: FnOnce(Ctx<'a>) -> Result<(), E> + Send + 'scope,
        {
            let n = self.shared.units.fetch_add(1, Ordering::Relaxed) + 1;
            let child = match self.shared.owner.ctx().with_cancel() {
                Ok(child) => child,
                Err(e) => return self.shared.fail(n, E::from(e)),
            };
            let shared = Arc::clone(&self.shared);
            self.scope.spawn(move || {
                let _unwind = CancelOnUnwind(&shared.owner, n);
                let result = unit(*child);
                drop(child);
                if let Err(e) = result {
                    shared.fail(n, e);
                }
            });
        }
    }

    impl<'a, E> Group<'_, '_, 'a, E> {
        /// The group's context: the parent of every unit's context.
        pub fn ctx(&self) -> Ctx<'a> {
            self.shared.owner.ctx()
        }

        /// Cancels the group's context, and so every unit's, without failing the group.
        pub fn cancel(&self) -> bool {
            self.shared.owner.cancel()
        }

        /// Units spawned so far.
        pub fn units(&self) -> usize {
            self.shared.units.load(Ordering::Relaxed)
        }
    }

    impl<'a> Ctx<'a> {
        /// Runs `f` with a [`Group`] whose context is a new cancelable child of this one, then waits
        /// for every unit `f` spawned (Go's `errgroup.WithContext` + `Wait`, on scoped threads).
        ///
        /// Returns `f`'s result when no unit failed, else the first unit error; `E::from(error)` if
        /// the group's own context cannot be created (e.g. [`Error::Full`]). The group's context is
        /// released after the last unit has returned.
        pub fn group<'env, E, R>(
            &self,
            f: impl for<'scope> FnOnce(&Group<'scope, 'env, 'a, E>) -> R,
        ) -> Result<R, E>
        where
            E: From<Error> + Send + 'env,
            'a: 'env,
        {
            let shared = Arc::new(Shared {
                owner: self.with_cancel().map_err(E::from)?,
                first: Mutex::new(None),
                units: AtomicUsize::new(0),
            });
            let group_shared = Arc::clone(&shared);
            let r = thread::scope(move |scope| {
                f(&Group {
                    scope,
                    shared: group_shared,
                })
            });
            // Every unit has been joined: their clones are gone, and this drop releases the group's
            // context (the failure, if any, is taken first).
            let first = shared
                .first
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            drop(shared);
            match first {
                Some(e) => Err(e),
                None => Ok(r),
            }
        }
    }
}

/// The group's cause for a failure of unit `unit` (from 1).
#[cfg(feature = "std")]
fn unit_cause(unit: usize) -> core::num::NonZeroU32 {
    u32::try_from(unit)
        .ok()
        .and_then(core::num::NonZeroU32::new)
        .unwrap_or(core::num::NonZeroU32::MAX)
}

#[cfg(not(loom))]
mod tasks {
    use core::cell::UnsafeCell;
    use core::fmt;
    use core::future::Future;
    use core::num::NonZeroU32;
    use core::pin::Pin;
    use core::task::{Context, Poll, Waker};

    use crate::context::{Ctx, OwnedCtx};
    use crate::engine::arena::ArenaView;
    use crate::engine::handle::Handle;
    use crate::engine::lock::Lock;
    use crate::error::Error;

    /// A group of async tasks: each task holds a [`Member`] (its own child of the group's
    /// context), the first [`Member::fail`] cancels the group, and [`TaskGroup::wait`] completes
    /// once every member has been dropped. A `static`, no heap, any executor (embassy's
    /// included); usable from interrupt handlers on microcontrollers (its lock is the arena's kind:
    /// a critical section there).
    ///
    /// Members must be taken before `wait` is first polled (typically: when spawning the tasks),
    /// so that `wait` cannot see zero members too early.
    ///
    /// ```
    /// use core::num::NonZeroU32;
    /// use stopwire::{Arena, Member, TaskGroup};
    ///
    /// static ARENA: Arena<8> = Arena::new();
    /// static TASKS: TaskGroup = TaskGroup::new();
    ///
    /// async fn fetch(me: Member) {
    ///     while !me.ctx().is_done() {
    ///         // ... await some I/O, then check again ...
    ///         # break;
    ///     }
    /// }
    ///
    /// async fn refuse(me: Member) {
    ///     me.fail(NonZeroU32::new(503).unwrap()); // cancels the other members
    /// }
    ///
    /// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
    /// #     let mut f = core::pin::pin!(f);
    /// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    /// #     loop { if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// TASKS.start(ARENA.background()).unwrap();
    /// let a = fetch(TASKS.member().unwrap()); // spawn these on your executor
    /// let b = refuse(TASKS.member().unwrap());
    /// block_on(async { b.await; a.await });
    /// assert_eq!(block_on(TASKS.wait()), Err(NonZeroU32::new(503).unwrap()));
    /// assert_eq!(ARENA.stats().in_use, 0);
    /// ```
    pub struct TaskGroup {
        lock: Lock,
        state: UnsafeCell<State>,
    }

    struct State {
        /// The arena of the group's context; `None` until started.
        arena: Option<&'static ArenaView>,
        /// The group's context ([`Handle::DEAD`] when not started).
        ctx: Handle,
        /// Members not yet dropped.
        running: u32,
        /// The first failure's code.
        cause: Option<NonZeroU32>,
        /// The task awaiting [`TaskGroup::wait`].
        waker: Option<Waker>,
    }

    // SAFETY: `state` is only accessed under `lock` (see `TaskGroup::with`), which serialises
    // threads and interrupt handlers; `Waker` and `&'static ArenaView` are `Send + Sync`.
    unsafe impl Sync for TaskGroup {}

    impl fmt::Debug for TaskGroup {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let (ctx, running) = self.with(|s| (s.ctx, s.running));
            f.debug_struct("TaskGroup")
                .field("ctx", &ctx)
                .field("running", &running)
                .finish()
        }
    }

    impl Default for TaskGroup {
        fn default() -> Self {
            Self::new()
        }
    }

    impl TaskGroup {
        /// An idle group.
        pub const fn new() -> Self {
            TaskGroup {
                lock: Lock::new(),
                state: UnsafeCell::new(State {
                    arena: None,
                    ctx: Handle::DEAD,
                    running: 0,
                    cause: None,
                    waker: None,
                }),
            }
        }

        fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
            self.lock.with(|| {
                // SAFETY: the lock is held and `f` only sees the state, never this group, so it
                // cannot re-enter: this is the only reference to the state.
                f(unsafe { &mut *self.state.get() })
            })
        }

        /// Starts a run of the group: its context becomes a new cancelable child of `parent`.
        /// Returns that context. If the group is already running, returns its current context
        /// and changes nothing. Fails with [`Error::Full`] when the arena has no slot.
        pub fn start(&'static self, parent: Ctx<'static>) -> Result<Ctx<'static>, Error> {
            if let Some(ctx) = self.ctx() {
                return Ok(ctx);
            }
            let owned = parent.with_cancel()?;
            let handle = owned.into_handle();
            let arena = parent.arena();
            let won = self.with(|s| {
                if s.arena.is_some() {
                    return false;
                }
                s.arena = Some(arena);
                s.ctx = handle;
                s.cause = None;
                true
            });
            if won {
                Ok(arena.ctx(handle))
            } else {
                // Started concurrently by someone else: give ours back, use theirs.
                let _ = arena.release(handle);
                self.ctx().ok_or(Error::Stale)
            }
        }

        /// The group's context while it is running.
        pub fn ctx(&self) -> Option<Ctx<'static>> {
            self.with(|s| s.arena.map(|a| a.ctx(s.ctx)))
        }

        /// A new member: a child of the group's context for one task. [`Error::Stale`] when the
        /// group is not running; [`Error::Full`] when the arena has no slot.
        pub fn member(&'static self) -> Result<Member, Error> {
            let group = self.ctx().ok_or(Error::Stale)?;
            let ctx = group.with_cancel()?;
            let joined = self.with(|s| {
                let same = s.ctx == group.handle() && s.arena.is_some();
                if same {
                    s.running += 1;
                }
                same
            });
            if joined {
                Ok(Member { group: self, ctx })
            } else {
                Err(Error::Stale) // the run ended meanwhile; `ctx` is released on return
            }
        }

        /// Cancels the group's context (every member's) without failing the group. False when
        /// not running or already done.
        pub fn cancel(&self) -> bool {
            match self.with(|s| s.arena.map(|a| (a, s.ctx))) {
                Some((arena, h)) => arena.cancel(h, 0).unwrap_or(false),
                None => false,
            }
        }

        /// Members not yet dropped.
        pub fn running(&self) -> u32 {
            self.with(|s| s.running)
        }

        /// Waits until every member has been dropped, then ends the run: the group's context is
        /// released, and the result is `Err(code)` of the first [`Member::fail`], else `Ok(())`.
        /// A group that is not running completes at once with `Ok(())`.
        ///
        /// Cancellation safety: dropping the future before it completes changes nothing; the
        /// run goes on and a later `wait` ends it.
        pub fn wait(&'static self) -> Wait {
            Wait { group: self }
        }

        fn finish_member(&self) {
            let waker = self.with(|s| {
                s.running -= 1;
                if s.running == 0 {
                    s.waker.take()
                } else {
                    None
                }
            });
            if let Some(w) = waker {
                w.wake();
            }
        }

        fn fail(&self, cause: NonZeroU32) {
            let target = self.with(|s| {
                if s.cause.is_none() {
                    s.cause = Some(cause);
                }
                s.arena.map(|a| (a, s.ctx))
            });
            if let Some((arena, h)) = target {
                // The first cancellation's cause is kept (SPEC K3), so the group's cause is the
                // first failure's code.
                let _ = arena.cancel(h, cause.get());
            }
        }
    }

    /// One task's membership of a [`TaskGroup`]: its own child of the group's context. Dropping
    /// it releases that context and marks the task finished.
    #[must_use = "dropping a Member marks its task finished at once"]
    pub struct Member {
        group: &'static TaskGroup,
        ctx: OwnedCtx<'static>,
    }

    impl fmt::Debug for Member {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Member").field("ctx", &self.ctx).finish()
        }
    }

    impl Member {
        /// This task's context: done when the group is canceled (by a failure, by
        /// [`TaskGroup::cancel`], or from above).
        pub fn ctx(&self) -> Ctx<'static> {
            self.ctx.ctx()
        }

        /// Fails the group with `code`: the first code is the group's result and its context's
        /// cause; the group's context, and every member's, is canceled.
        pub fn fail(&self, code: NonZeroU32) {
            self.group.fail(code);
        }
    }

    impl Drop for Member {
        fn drop(&mut self) {
            // Release the task's context before counting it out, so that when `wait` completes
            // every member's slot is already free.
            let h = self.ctx.handle();
            let _ = self.ctx.arena().release(h);
            self.group.finish_member();
        }
    }

    /// The future of [`TaskGroup::wait`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Wait {
        group: &'static TaskGroup,
    }

    impl Future for Wait {
        type Output = Result<(), NonZeroU32>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let ended = self.group.with(|s| {
                if s.running > 0 {
                    match &s.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => s.waker = Some(cx.waker().clone()),
                    }
                    return None;
                }
                let run = s.arena.take().map(|a| (a, s.ctx));
                s.ctx = Handle::DEAD;
                s.waker = None;
                Some((run, s.cause.take()))
            });
            match ended {
                None => Poll::Pending,
                Some((run, cause)) => {
                    if let Some((arena, h)) = run {
                        let _ = arena.release(h);
                    }
                    Poll::Ready(cause.map_or(Ok(()), Err))
                }
            }
        }
    }
}
