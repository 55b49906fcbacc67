//! Waiting for a context in async code (feature `embassy`): the [`Done`] future, the
//! [`UntilDone`] guard that drops a future when its context is done, and [`EmbassyClock`].
//!
//! # How a waiting task is woken, without a heap and without dangling pointers
//!
//! A task that awaits [`Ctx::done`] must be woken by whoever makes the context done: a canceler
//! in another task, thread or interrupt handler, or the deadline driver. The engine's hook for
//! that is [`Ctx::after_func`], which calls a plain `fn(usize)` with one word of data.
//!
//! That word must not point into the future: [`crate::AfterFunc::stop`] never waits for a running
//! callback (SPEC F4), so a callback claimed by a cancel walk can still run after the future
//! that registered it has been dropped. Instead the word is the address of a [`WaiterCell`] in a
//! `static` [`Waiters`] registry. Cells live forever, so a late callback touches valid memory at
//! worst; if the cell has meanwhile been taken by another future, that future gets one spurious
//! wakeup, which every future must tolerate anyway.
//!
//! Invariants (cited as `W1`...):
//!
//! - W1. A cell is *busy* from [`Waiters`] handing it to a [`Done`] until that `Done` completes
//!   or is dropped; only its owner stores a waker in it.
//! - W2. A cell's state is read and written only under its lock: the arena's [`Lock`] kind (a
//!   critical section on microcontrollers, so an interrupt handler can wake; a spin lock on
//!   hosts). No waker runs while the lock is held: the callback takes the waker out, releases the
//!   lock, then wakes it.
//! - W3. No lost wakeup: [`Done::poll_done`] stores the waker in its cell *before* it checks the
//!   context. A canceler marks the context done *before* the callback takes the cell's lock. If
//!   the check saw "not done", the callback's lock section came after the store, and finds the
//!   waker; if the callback's section came first, the mark came before the check, which sees it.
//! - W4. When no cell is free, or the arena has no slot for the registration, the future wakes
//!   itself at every poll (busy polling). That costs CPU, never a missed cancellation: the
//!   embassy-sync `MultiWakerRegistration` rule. Size the registry for the tasks that wait at once.
//!
//! # Deadlines
//!
//! A callback runs for a deadline only when a deadline driver expires it (SPEC D5). So when the
//! context has an effective deadline, [`Done`] also arms an `embassy_time::Timer` for it: an idle
//! firmware sleeps until then instead of polling. When the timer fires, the future runs the
//! driver, [`ArenaView::expire`], so every context whose deadline has passed is settled and its
//! callbacks (other waiters included) run, in the waking task (SPEC F3). Timer instants are
//! computed as "now on embassy-time plus the ticks left on the arena clock", so the arena clock
//! must tick at `embassy_time::TICK_HZ`: use [`EmbassyClock`].
//!
//! # Cost
//!
//! Each waiting `Done` holds one [`Waiters`] cell and one arena slot for its callback
//! registration (SPEC F6) from its first `Pending` poll until it is dropped or completes.

use core::cell::UnsafeCell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

#[cfg(feature = "embassy")]
use embassy_time::{Duration, Instant, Timer};

#[cfg(feature = "embassy")]
use crate::clock::Clock;
use crate::context::{AfterFunc, Ctx};
#[cfg(feature = "embassy")]
use crate::engine::arena::ArenaView;
use crate::engine::lock::Lock;
use crate::engine::sync::{AtomicU32, Ordering::Relaxed};
use crate::error::Error;

#[cfg(feature = "embassy")]
/// An arena clock reading `embassy_time::Instant` ticks (SPEC T4): one arena tick is one
/// embassy-time tick (`embassy_time::TICK_HZ` per second). The clock that [`Done`]'s deadline
/// timers assume.
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

#[cfg(feature = "embassy")]
impl Clock for EmbassyClock {
    #[inline]
    fn now(&self) -> u64 {
        Instant::now().as_ticks()
    }
}

/// One waker slot of a [`Waiters`] registry.
pub(crate) struct WaiterCell {
    lock: Lock,
    state: UnsafeCell<CellState>,
}

struct CellState {
    busy: bool,
    waker: Option<Waker>,
}

// SAFETY: `state` is only accessed under `lock` (W2), which serialises threads and interrupt
// handlers; `Waker` is `Send + Sync`.
unsafe impl Sync for WaiterCell {}

impl fmt::Debug for WaiterCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WaiterCell")
    }
}

impl WaiterCell {
    const fn new() -> Self {
        WaiterCell {
            lock: Lock::new(),
            state: UnsafeCell::new(CellState {
                busy: false,
                waker: None,
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut CellState) -> R) -> R {
        self.lock.with(|| {
            // SAFETY: the lock is held (W2) and `f` cannot reach this cell's lock again (it only
            // sees the state), so this is the only reference to the state.
            f(unsafe { &mut *self.state.get() })
        })
    }

    fn try_claim(&self) -> bool {
        self.with(|s| !core::mem::replace(&mut s.busy, true))
    }

    fn store(&self, waker: &Waker) {
        self.with(|s| match &s.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => s.waker = Some(waker.clone()),
        });
    }

    fn free(&self) {
        // The old waker is dropped outside the lock (W2).
        let old = self.with(|s| {
            s.busy = false;
            s.waker.take()
        });
        drop(old);
    }

    /// The callback registered with `after_func`: `data` is the address of a `'static` cell.
    fn wake(data: usize) {
        // SAFETY: `data` was made from a `&'static WaiterCell` in `Done::register`; the
        // registry is a `static` that is never freed, so the cell is valid whenever this runs,
        // also after the future that registered it is gone (module docs).
        let cell: &'static WaiterCell = unsafe { &*core::ptr::with_exposed_provenance(data) };
        if let Some(w) = cell.with(|s| s.waker.take()) {
            w.wake();
        }
    }
}

/// A static, bounded registry of waker cells for [`Done`] futures: `W` tasks may wait on
/// contexts at once without busy polling (beyond that, module docs W4).
///
/// ```
/// use stopwire::{Arena, Waiters};
/// static ARENA: Arena<16> = Arena::new();
/// static WAITERS: Waiters<4> = Waiters::new();
/// let ctx = ARENA.background().with_cancel().unwrap();
/// let done = ctx.done_in(&WAITERS); // a future, to `.await`
/// # drop(done);
/// ```
#[derive(Debug)]
pub struct Waiters<const W: usize> {
    cells: [WaiterCell; W],
    /// Where the next search for a free cell starts: just past the last cell handed out, so
    /// that claiming is O(1) while cells are handed out in order (a hint: plain loads and
    /// stores, any value is correct).
    next: AtomicU32,
}

impl<const W: usize> Waiters<W> {
    /// An empty registry, for a `static`.
    pub const fn new() -> Self {
        Waiters {
            cells: [const { WaiterCell::new() }; W],
            next: AtomicU32::new(0),
        }
    }

    /// How many cells are busy now (a snapshot; for tests and diagnostics).
    pub fn busy(&self) -> usize {
        self.cells.iter().filter(|c| c.with(|s| s.busy)).count()
    }
}

impl<const W: usize> Default for Waiters<W> {
    fn default() -> Self {
        Self::new()
    }
}

/// Cells of the registry that [`Ctx::done`] uses.
pub const DEFAULT_WAITERS: usize = 8;

/// The registry behind [`Ctx::done`]: [`DEFAULT_WAITERS`] cells shared by the whole program.
static DEFAULT: Waiters<DEFAULT_WAITERS> = Waiters::new();

impl<'a> Ctx<'a> {
    /// A future that completes with the reason once this context is done: canceled (from any
    /// task, thread or interrupt), released ([`Error::Stale`]), or its deadline reached
    /// ([`Error::DeadlineExceeded`], an embassy-time timer wakes the task). Go's `<-ctx.Done()`.
    ///
    /// Uses the program-wide registry of [`DEFAULT_WAITERS`] cells; see [`Ctx::done_in`].
    ///
    /// # Cancellation safety
    ///
    /// Cancel-safe: dropping the future before it completes loses nothing (the context is not
    /// changed) and frees its cell and its registration slot.
    pub fn done(&self) -> Done<'a> {
        self.done_in(&DEFAULT)
    }

    /// As [`Ctx::done`], with waker cells from `waiters`.
    ///
    /// # Cancellation safety
    ///
    /// Cancel-safe, as [`Ctx::done`].
    pub fn done_in<const W: usize>(&self, waiters: &'static Waiters<W>) -> Done<'a> {
        Done {
            ctx: *self,
            cells: &waiters.cells,
            next: &waiters.next,
            cell: None,
            registration: None,
            #[cfg(feature = "embassy")]
            timer: None,
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
        self.done().run(fut)
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

/// The future of [`Ctx::done`]: completes with the reason the context is done.
///
/// Holds a [`Waiters`] cell and one arena slot (the callback registration) from its first
/// `Pending` poll until it completes or is dropped (module docs).
#[must_use = "futures do nothing unless awaited or polled"]
pub struct Done<'a> {
    ctx: Ctx<'a>,
    cells: &'static [WaiterCell],
    next: &'static AtomicU32,
    cell: Option<&'static WaiterCell>,
    registration: Option<AfterFunc<'a>>,
    #[cfg(feature = "embassy")]
    timer: Option<Timer>,
}

impl fmt::Debug for Done<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Done")
            .field("ctx", &self.ctx)
            .field("has_cell", &self.cell.is_some())
            .field("registered", &self.registration.is_some())
            .finish()
    }
}

impl<'a> Done<'a> {
    /// The context this future waits for.
    pub fn ctx(&self) -> Ctx<'a> {
        self.ctx
    }

    /// Polls for the context being done: `Ready(reason)` once it is, else `Pending` with the
    /// task's waker registered. For hand-written futures and poll functions.
    ///
    /// # Cancellation safety
    ///
    /// Cancel-safe: stopping to call it loses nothing; dropping `self` frees what it holds.
    pub fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        if let Err(why) = self.ctx.err() {
            return Poll::Ready(self.finish(why));
        }
        if self.ctx.handle().is_root() {
            // A root is never done (SPEC R1): nothing can wake this task.
            return Poll::Pending;
        }
        // W3: the waker is stored before the context is checked again below.
        #[cfg_attr(
            not(feature = "embassy"),
            allow(unused_mut, reason = "only the timer sets it")
        )]
        let mut busy_poll = !self.register(cx.waker());
        #[cfg(feature = "embassy")]
        if self.poll_deadline(cx) {
            busy_poll = true;
        }
        if let Err(why) = self.ctx.err() {
            return Poll::Ready(self.finish(why));
        }
        if busy_poll {
            // W4: no cell or no slot: come back at once rather than risk a lost wakeup.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// Completion: for a deadline, act as the deadline driver (SPEC D5, F3) so that callbacks
    /// on the expired contexts run now, in this task, rather than wait for another driver.
    fn finish(&mut self, why: Error) -> Error {
        if why == Error::DeadlineExceeded {
            let arena = self.ctx.arena();
            arena.expire(arena.now());
        }
        #[cfg(feature = "embassy")]
        {
            self.timer = None;
        }
        self.release();
        why
    }

    /// Gives back the registration slot and the cell (stop first, then free: a callback already
    /// claimed may still run later and wake whoever owns the cell then, module docs).
    fn release(&mut self) {
        drop(self.registration.take());
        if let Some(c) = self.cell.take() {
            c.free();
        }
    }

    /// A free cell of the registry, searched from the hint round the ring.
    fn claim(&self) -> Option<&'static WaiterCell> {
        let n = self.cells.len();
        let start = self.next.load(Relaxed) as usize % n.max(1);
        let found = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| self.cells[i].try_claim())?;
        self.next.store((found + 1) as u32, Relaxed);
        Some(&self.cells[found])
    }

    /// Stores `waker` and makes sure a callback will wake it; false when that was not possible.
    fn register(&mut self, waker: &Waker) -> bool {
        let cell = match self.cell {
            Some(c) => c,
            None => match self.claim() {
                Some(c) => {
                    self.cell = Some(c);
                    c
                }
                None => return false,
            },
        };
        cell.store(waker);
        if self.registration.is_none() {
            let data = core::ptr::from_ref(cell).expose_provenance();
            match self.ctx.after_func(WaiterCell::wake, data) {
                Ok(r) => self.registration = Some(r),
                // Full: retried at the next poll, busy polling meanwhile (W4). Stale or not a
                // context: the check that follows reports it.
                Err(_) => return false,
            }
        }
        true
    }

    #[cfg(feature = "embassy")]
    /// Arms or polls the deadline timer; true when the deadline has passed on the embassy clock
    /// while the context still reads not done (clocks disagree: poll again).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        let Ok(Some(deadline)) = self.ctx.deadline() else {
            return false;
        };
        let arena: &ArenaView = self.ctx.arena();
        let timer = self.timer.get_or_insert_with(|| {
            let left = deadline.saturating_sub(arena.now());
            Timer::at(Instant::now().saturating_add(Duration::from_ticks(left)))
        });
        if Pin::new(timer).poll(cx).is_pending() {
            return false;
        }
        self.timer = None;
        // The deadline driver (SPEC D5, F3): settle every expired context, run its callbacks.
        arena.expire(arena.now());
        // Still not done: the arena clock lags embassy-time; poll again rather than sleep.
        self.ctx.err().is_ok()
    }

    /// Runs `fut` until it completes or this future's context is done (see
    /// [`Ctx::run_until_done`]); the waiter cells are this future's.
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
        self.get_mut().poll_done(cx)
    }
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.release();
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
        // SAFETY: `fut` is structurally pinned: it is never moved out of `self`, and is dropped
        // in place (`Pin::set`) or with `self`; `done` is `Unpin` and is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above, `this.fut` is only ever used through this pin.
        let mut fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        // Biased: a done context wins over a future that would complete in the same poll.
        if let Poll::Ready(why) = this.done.poll_done(cx) {
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
