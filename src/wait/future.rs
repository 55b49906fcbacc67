//! Waiting for a context in async code (feature `async`): the [`Done`] future, the [`UntilDone`]
//! guard that drops a future when its context is done, and, with `embassy`, [`EmbassyClock`] and
//! the embassy deadline driver.
//!
//! # How a waiting task is woken, on any executor, without a heap
//!
//! A [`Done`] holds a waiter node ([`crate::engine::waiter`]) inside itself; the future is pinned
//! while it waits, so the node's address is stable. Its first `Pending` poll links the node into
//! the context's waiter list with the task's waker, in the same locked step that checks the
//! context (no lost wakeup, SPEC N4). Whatever makes the context done — a cancel from any task,
//! thread or interrupt handler, an ancestor, the owner's release, the deadline driver — takes the
//! waker out under the lock and wakes it after (SPEC N3). Any number of futures may wait on one
//! context; none is polled or woken while the context is not done. Dropping the future takes the
//! node out (SPEC N5).
//!
//! # Deadlines
//!
//! A context with a deadline is done when its deadline driver expires it: the host driver thread
//! (feature `std`, arenas in a `static`: no set-up), the embassy driver task
//! ([`crate::ArenaView::embassy_driver`], started once by the firmware), or the firmware's alarm
//! calling [`crate::ArenaView::expire`]. No `Done` arms a timer of its own.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::context::Ctx;
use crate::engine::waiter::{WaiterNode, Want};
use crate::error::Error;

#[cfg(all(feature = "embassy", not(loom)))]
pub use embassy::EmbassyClock;

/// The future of [`Ctx::done`]: completes with the reason the context is done.
///
/// Holds a waiter node inside itself (no arena slot, no registry) from its first `Pending` poll
/// until it completes or is dropped (module docs).
#[must_use = "futures do nothing unless awaited or polled"]
pub struct Done<'a> {
    ctx: Ctx<'a>,
    node: WaiterNode,
    linked: bool,
}

impl fmt::Debug for Done<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Done")
            .field("ctx", &self.ctx)
            .field("waiting", &self.linked)
            .finish()
    }
}

impl<'a> Ctx<'a> {
    /// A future that completes with the reason once this context is done: canceled (from any
    /// task, thread or interrupt), its deadline reached ([`Error::DeadlineExceeded`], through the
    /// arena's deadline driver), or released by its owner. Go's `<-ctx.Done()`. Works on any
    /// executor; no timer crate is involved.
    ///
    /// ```
    /// use stopwire::{Arena, Error};
    /// # fn block_on<F: core::future::Future>(f: F) -> F::Output {
    /// #     let mut f = core::pin::pin!(f);
    /// #     let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    /// #     loop { if let core::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// static ARENA: Arena<8> = Arena::new();
    /// let job = ARENA.background().with_cancel().unwrap();
    /// job.cancel();
    /// assert_eq!(block_on(job.done()), Error::Canceled);
    /// ```
    ///
    /// # Cancellation safety
    ///
    /// Cancel-safe: dropping the future before it completes loses nothing (the context is not
    /// changed) and unlinks its waiter node.
    pub fn done(&self) -> Done<'a> {
        Done {
            ctx: *self,
            node: WaiterNode::new(),
            linked: false,
        }
    }

    /// Runs `fut` until it completes or this context is done, whichever comes first: `Ok` with
    /// its output, or `Err` with the context's reason after dropping `fut` (tokio-util's
    /// `run_until_cancelled`). If the context is already done, `fut` is never polled.
    ///
    /// ```
    /// # #[cfg(any())] {
    /// match req.run_until_done(fetch(&mut uart)).await {
    ///     Ok(reply) => send(reply),
    ///     Err(why) => log(why), // canceled or past the deadline: `fetch` was dropped
    /// }
    /// # }
    /// ```
    ///
    /// # Cancellation safety
    ///
    /// Exactly as cancel-safe as `fut`: when the context is done, `fut` is dropped at its last
    /// `.await`, so the work it had begun there may be lost.
    pub fn run_until_done<F: Future>(&self, fut: F) -> UntilDone<'a, F> {
        UntilDone {
            done: self.done(),
            fut: Some(fut),
        }
    }

    /// Runs `fut` under a fresh child of this context that is done after `ticks` (Go's
    /// `WithTimeout` around one call): `Ok` with its output, or `Err(DeadlineExceeded)` (or the
    /// parent's reason) after dropping it. The child is released when this returns. Fails with
    /// [`Error::Full`] without polling `fut` when the arena has no slot for the child.
    ///
    /// # Cancellation safety
    ///
    /// As [`Ctx::run_until_done`]; dropping the returned future releases the child.
    pub async fn run_with_timeout<F: Future>(
        &self,
        ticks: u64,
        fut: F,
    ) -> Result<F::Output, Error> {
        let child = self.with_timeout(ticks)?;
        child.run_until_done(fut).await
    }
}

impl<'a> Done<'a> {
    /// The context this future waits for.
    pub fn ctx(&self) -> Ctx<'a> {
        self.ctx
    }

    /// Polls for the context being done: `Ready(reason)` once it is, else `Pending` with the
    /// task's waker linked. For hand-written futures and poll functions.
    ///
    /// # Cancellation safety
    ///
    /// Cancel-safe: stopping to call it loses nothing; dropping the future unlinks it.
    pub fn poll_done(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Error> {
        // SAFETY: `node` is structurally pinned: it is never moved out of `self` and is unlinked
        // in `Drop` before `self` goes away; the other fields are plain data.
        let this = unsafe { self.get_unchecked_mut() };
        if !this.linked {
            // Fast path: done already (one load), no lock taken.
            if let Err(why) = this.ctx.err() {
                return Poll::Ready(this.finish(why));
            }
        }
        let arena = this.ctx.arena();
        // SAFETY: as above, the node is pinned inside the pinned future.
        let node = unsafe { Pin::new_unchecked(&this.node) };
        match arena.wait_poll(this.ctx.handle(), node, Want::Waker(cx.waker())) {
            Some(why) => {
                this.linked = false;
                Poll::Ready(this.finish(why))
            }
            None => {
                this.linked = !this.ctx.handle().is_root();
                Poll::Pending
            }
        }
    }

    /// Completion: a deadline seen by a check on an arena no driver serves is settled now, so
    /// that callbacks on the expired contexts run (SPEC D5, F3).
    fn finish(&mut self, why: Error) -> Error {
        #[cfg(all(feature = "std", not(loom)))]
        self.ctx.arena().settle_seen(why);
        why
    }

    /// Runs `fut` until it completes or this future's context is done (see
    /// [`Ctx::run_until_done`]).
    ///
    /// # Cancellation safety
    ///
    /// As [`Ctx::run_until_done`].
    pub fn run<F: Future>(self, fut: F) -> UntilDone<'a, F> {
        UntilDone {
            done: self,
            fut: Some(fut),
        }
    }
}

impl Future for Done<'_> {
    type Output = Error;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Error> {
        self.poll_done(cx)
    }
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        if self.linked {
            // SAFETY: the node was pinned while linked (it is linked only by `poll_done`, through
            // a pinned `self`); it is unlinked here, before its memory goes (N-I4).
            let node = unsafe { Pin::new_unchecked(&self.node) };
            self.ctx.arena().wait_remove(node);
        }
    }
}

/// The future of [`Ctx::run_until_done`]: `fut`'s output, or the context's reason once done.
#[must_use = "futures do nothing unless awaited or polled"]
pub struct UntilDone<'a, F> {
    done: Done<'a>,
    /// `None` once dropped early because the context was done.
    fut: Option<F>,
}

impl<F> fmt::Debug for UntilDone<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilDone")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for UntilDone<'_, F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: both fields are structurally pinned: never moved out of `self`; `fut` is
        // dropped in place (`Pin::set`) or with `self`, `done` unlinks itself in its `Drop`.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let done = unsafe { Pin::new_unchecked(&mut this.done) };
        // SAFETY: as above.
        let mut fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        // Biased: a done context wins over a future that would complete in the same poll.
        if let Poll::Ready(why) = done.poll_done(cx) {
            // Drop the work now, not whenever the caller drops this future.
            fut.set(None);
            return Poll::Ready(Err(why));
        }
        match fut.as_mut().as_pin_mut() {
            Some(f) => f.poll(cx).map(Ok),
            // Polled again after completing with `Err`: still done.
            None => Poll::Ready(Err(this.done.ctx.err().err().unwrap_or(Error::Stale))),
        }
    }
}

#[cfg(all(feature = "embassy", not(loom)))]
mod embassy {
    use core::convert::Infallible;
    use core::future::{poll_fn, Future};
    use core::pin::Pin;
    use core::task::Poll;

    use embassy_time::{Duration, Instant, Timer};

    use crate::clock::Clock;
    use crate::engine::arena::ArenaView;

    /// An arena clock reading `embassy_time::Instant` ticks (SPEC T4): one arena tick is one
    /// embassy-time tick (`embassy_time::TICK_HZ` per second). The clock the embassy driver
    /// assumes.
    ///
    /// ```
    /// use stopwire::{Arena, EmbassyClock};
    /// static ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
    /// // a deadline 50 ms from now, in embassy-time ticks
    /// let req = ARENA
    ///     .background()
    ///     .with_timeout(embassy_time::Duration::from_millis(50).as_ticks())
    ///     .unwrap();
    /// assert!(!req.is_done());
    /// ```
    #[derive(Debug, Default, Clone, Copy)]
    pub struct EmbassyClock;

    impl Clock for EmbassyClock {
        #[inline]
        fn now(&self) -> u64 {
            Instant::now().as_ticks()
        }
    }

    impl ArenaView {
        /// The embassy deadline driver (SPEC N1): a future that never completes; spawn it once per
        /// arena. It sleeps with an embassy-time timer until the earliest pending deadline, is
        /// woken early when an earlier one is created, and runs [`ArenaView::expire`] — so
        /// callbacks run and every waiting task wakes at its deadline, with no timer per waiter.
        /// The arena's clock must tick with embassy-time ([`EmbassyClock`]).
        ///
        /// ```
        /// # #[cfg(any())] {
        /// static ARENA: Arena<64> = Arena::with_clock(&EmbassyClock);
        ///
        /// #[embassy_executor::task]
        /// async fn deadlines() -> ! {
        ///     match ARENA.embassy_driver().await {}
        /// }
        /// # }
        /// ```
        ///
        /// # Cancellation safety
        ///
        /// Dropping it stops driving; nothing is lost (a later driver or `expire` call handles
        /// what is due).
        pub async fn embassy_driver(&self) -> Infallible {
            let mut timer: Option<(u64, Timer)> = None;
            loop {
                poll_fn(|cx| {
                    let Some(next) = self.driver_poll(cx.waker()) else {
                        timer = None;
                        return Poll::Pending;
                    };
                    let now = self.now();
                    if next <= now {
                        return Poll::Ready(());
                    }
                    let t = match &mut timer {
                        Some((at, t)) if *at == next => t,
                        _ => {
                            let at = Instant::now()
                                .saturating_add(Duration::from_ticks(next.saturating_sub(now)));
                            &mut timer.insert((next, Timer::at(at))).1
                        }
                    };
                    match Pin::new(t).poll(cx) {
                        Poll::Ready(()) => Poll::Ready(()),
                        Poll::Pending => Poll::Pending,
                    }
                })
                .await;
                timer = None;
                self.expire(self.now());
            }
        }
    }
}
