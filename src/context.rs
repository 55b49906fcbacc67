//! The Rust face of the engine: a `Copy` view to pass down call chains ([`Ctx`]), an owning
//! handle that releases on drop ([`OwnedCtx`], Go's `defer cancel()` made automatic), and a
//! callback registration that stops on drop ([`AfterFunc`]). Each method is one call into
//! [`ArenaView`].

use core::fmt;
use core::num::{NonZeroU32, NonZeroUsize};
use core::ops::Deref;

use crate::engine::arena::ArenaView;
use crate::engine::callback::Callback;
use crate::engine::handle::Handle;
use crate::error::Error;

impl ArenaView {
    /// The background root (SPEC R1): never done, no deadline, no values. Free, never fails.
    pub fn background(&self) -> Ctx<'_> {
        Ctx::from_handle(self, Handle::BACKGROUND)
    }

    /// The todo root (SPEC R1): like [`ArenaView::background`], for code not yet given a context.
    pub fn todo(&self) -> Ctx<'_> {
        Ctx::from_handle(self, Handle::TODO)
    }

    /// A view of an existing context from its raw handle (no check is made until it is used).
    pub fn ctx(&self, handle: Handle) -> Ctx<'_> {
        Ctx::from_handle(self, handle)
    }
}

/// A context as passed down a call chain: `Copy`, two words, checks without locks.
///
/// A `Ctx` does not own the context: the [`OwnedCtx`] it came from does. Once that is dropped,
/// the view is stale and reports [`Error::Stale`] (and `is_done() == true`).
///
/// ```
/// use stopwire::{Arena, Ctx, Error};
///
/// fn work(ctx: Ctx<'_>) -> Result<u32, Error> {
///     let mut steps = 0;
///     while steps < 3 {
///         ctx.err()?; // bail out as soon as the context is done
///         steps += 1;
///     }
///     Ok(steps)
/// }
///
/// static ARENA: Arena<4> = Arena::new();
/// let job = ARENA.background().with_cancel()?;
/// assert_eq!(work(*job), Ok(3));
/// job.cancel();
/// assert_eq!(work(*job), Err(Error::Canceled));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    arena: &'a ArenaView,
    handle: Handle,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("handle", &self.handle)
            .field("err", &self.err())
            .finish()
    }
}

impl PartialEq for Ctx<'_> {
    fn eq(&self, other: &Self) -> bool {
        core::ptr::eq(self.arena, other.arena) && self.handle == other.handle
    }
}

impl Eq for Ctx<'_> {}

impl<'a> Ctx<'a> {
    pub(crate) fn from_handle(arena: &'a ArenaView, handle: Handle) -> Self {
        Ctx { arena, handle }
    }

    /// The raw handle (for the C API, or to keep in a `static`).
    pub fn handle(&self) -> Handle {
        self.handle
    }

    /// The arena this context lives in.
    pub fn arena(&self) -> &'a ArenaView {
        self.arena
    }

    /// `Ok(())` while not done; `Err(Error::Canceled)` or `Err(Error::DeadlineExceeded)` once done
    /// (Go's `ctx.Err()`); `Err(Error::Stale)` once released. One atomic load, plus a clock read
    /// only if the context has a deadline (SPEC T2).
    #[inline]
    pub fn err(&self) -> Result<(), Error> {
        self.arena.err(self.handle)
    }

    /// True once done (or released). The hot-path check.
    ///
    /// ```
    /// use stopwire::Arena;
    /// static ARENA: Arena<2> = Arena::new();
    /// let ctx = ARENA.background().with_cancel().unwrap();
    /// assert!(!ctx.is_done());
    /// ctx.cancel();
    /// assert!(ctx.is_done());
    /// ```
    #[inline]
    pub fn is_done(&self) -> bool {
        self.arena.is_done(self.handle)
    }

    /// Why it is done (SPEC K): `Ok(Some(code))` for a cause given to
    /// [`OwnedCtx::cancel_with_cause`] or a deadline's cause, `Ok(None)` when done without one,
    /// `Err(Error::NotDone)` before it is done.
    ///
    /// ```
    /// use core::num::NonZeroU32;
    /// use stopwire::{Arena, Error};
    /// static ARENA: Arena<2> = Arena::new();
    /// let ctx = ARENA.background().with_cancel().unwrap();
    /// assert_eq!(ctx.cause(), Err(Error::NotDone));
    /// ctx.cancel_with_cause(NonZeroU32::new(404).unwrap());
    /// assert_eq!(ctx.cause(), Ok(NonZeroU32::new(404)));
    /// ```
    pub fn cause(&self) -> Result<Option<NonZeroU32>, Error> {
        self.arena.cause(self.handle)
    }

    /// The effective deadline in ticks (SPEC D6): the earliest of its own and its ancestors'.
    pub fn deadline(&self) -> Result<Option<u64>, Error> {
        self.arena.deadline(self.handle)
    }

    /// The value of the nearest layer with `key` (SPEC V2), `Ok(None)` when there is none.
    ///
    /// ```
    /// use core::num::NonZeroUsize;
    /// use stopwire::Arena;
    /// const USER_ID: NonZeroUsize = NonZeroUsize::new(1).unwrap();
    /// static ARENA: Arena<4> = Arena::new();
    /// let req = ARENA.background().with_value(USER_ID, 42).unwrap();
    /// let step = req.with_cancel().unwrap();
    /// assert_eq!(step.value(USER_ID), Ok(Some(42)));
    /// ```
    pub fn value(&self, key: NonZeroUsize) -> Result<Option<usize>, Error> {
        self.arena.value_nz(self.handle, key)
    }

    /// A child that can be canceled by hand (Go's `WithCancel`, SPEC C1). Born done if this
    /// context is done (C7). Fails with [`Error::Full`] when no slot is free.
    #[track_caller]
    pub fn with_cancel(&self) -> Result<OwnedCtx<'a>, Error> {
        self.own(self.arena.with_cancel(self.handle))
    }

    /// A child that is done at tick `at` (Go's `WithDeadline`, SPEC D1-D3). The deadline fires
    /// by itself on hosts (the arena's driver, SPEC N1). [`Error::NoClock`] on an arena without
    /// a clock.
    #[track_caller]
    pub fn with_deadline(&self, at: u64) -> Result<OwnedCtx<'a>, Error> {
        self.drive_deadlines();
        self.own(self.arena.with_deadline_cause(self.handle, at, 0))
    }

    /// As [`Ctx::with_deadline`], recording `cause` if the deadline fires (SPEC K5).
    #[track_caller]
    pub fn with_deadline_cause(&self, at: u64, cause: NonZeroU32) -> Result<OwnedCtx<'a>, Error> {
        self.drive_deadlines();
        self.own(self.arena.with_deadline_cause(self.handle, at, cause.get()))
    }

    /// A child that is done `ticks` from now (Go's `WithTimeout`, SPEC D1). On the default host
    /// clock a tick is a microsecond.
    #[track_caller]
    pub fn with_timeout(&self, ticks: u64) -> Result<OwnedCtx<'a>, Error> {
        self.drive_deadlines();
        self.own(self.arena.with_timeout_cause(self.handle, ticks, 0))
    }

    /// A child that is done `d` from now: [`Ctx::with_timeout`] with `d` converted to ticks of the
    /// arena's clock by its rate ([`crate::Clock::ticks_per_second`], rounded up); a clock of no
    /// known rate (a [`crate::ManualClock`], a [`crate::FnClock`]) is read as counting
    /// microseconds, like the default host clock.
    ///
    /// ```
    /// use core::time::Duration;
    /// use stopwire::Arena;
    /// static ARENA: Arena<4> = Arena::new();
    /// let req = ARENA.background().with_timeout_duration(Duration::from_millis(100)).unwrap();
    /// let left = req.deadline().unwrap().unwrap() - ARENA.now();
    /// assert!(left <= 100_000); // microseconds on the default host clock
    /// ```
    #[track_caller]
    pub fn with_timeout_duration(&self, d: core::time::Duration) -> Result<OwnedCtx<'a>, Error> {
        let hz = self.arena.clock().ticks_per_second().unwrap_or(1_000_000);
        let ticks = (d.as_nanos() * u128::from(hz)).div_ceil(1_000_000_000);
        self.with_timeout(u64::try_from(ticks).unwrap_or(u64::MAX))
    }

    /// A child that is done `d` from now, for arenas reading [`crate::EmbassyClock`] (one tick is
    /// one embassy-time tick): [`Ctx::with_timeout`] of `d.as_ticks()`.
    #[cfg(feature = "embassy")]
    #[track_caller]
    pub fn with_embassy_timeout(&self, d: embassy_time::Duration) -> Result<OwnedCtx<'a>, Error> {
        self.with_timeout(d.as_ticks())
    }

    /// As [`Ctx::with_timeout`], recording `cause` if the deadline fires (SPEC K5).
    #[track_caller]
    pub fn with_timeout_cause(&self, ticks: u64, cause: NonZeroU32) -> Result<OwnedCtx<'a>, Error> {
        self.drive_deadlines();
        self.own(
            self.arena
                .with_timeout_cause(self.handle, ticks, cause.get()),
        )
    }

    /// Before a context with a deadline is created: on hosts, makes sure the arena's deadline
    /// driver runs (it starts by itself for arenas in a `static`, SPEC N1), so that even the
    /// first deadline is the driver's to expire (and its checks read no clock). One relaxed load
    /// once it runs.
    #[inline]
    fn drive_deadlines(&self) {
        #[cfg(all(feature = "std", not(loom)))]
        crate::wait::driver::ensure(self.arena);
    }

    /// A child carrying `key = value` (Go's `WithValue`, SPEC V1). For request-scoped data such
    /// as a trace id; not for optional parameters. Like Go's, a value layer has no cancellation of
    /// its own (V4): it is done when its parent is, its `cancel` does nothing, and dropping it
    /// cancels nothing below (its slot stays while descendants need the value).
    #[track_caller]
    pub fn with_value(&self, key: NonZeroUsize, value: usize) -> Result<OwnedCtx<'a>, Error> {
        self.own(self.arena.with_value(self.handle, key.get(), value))
    }

    /// A child that keeps this context's values but is never canceled from above (Go's
    /// `WithoutCancel`, SPEC W1).
    #[track_caller]
    pub fn without_cancel(&self) -> Result<OwnedCtx<'a>, Error> {
        self.own(self.arena.without_cancel(self.handle))
    }

    /// Runs `f(data)` once this context is done, in the thread or interrupt that makes it done
    /// (Go's `AfterFunc`, SPEC F). If it is done already, `f` runs before this returns. Dropping
    /// the returned [`AfterFunc`] stops the registration; [`AfterFunc::forget`] keeps it.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use stopwire::Arena;
    /// static SEEN: AtomicUsize = AtomicUsize::new(0);
    /// fn on_done(n: usize) { SEEN.fetch_add(n, Ordering::SeqCst); }
    ///
    /// static ARENA: Arena<4> = Arena::new();
    /// let ctx = ARENA.background().with_cancel().unwrap();
    /// let reg = ctx.after_func(on_done, 5).unwrap();
    /// ctx.cancel();
    /// assert_eq!(SEEN.load(Ordering::SeqCst), 5);
    /// assert!(!reg.stop()); // it has run
    /// ```
    #[track_caller]
    pub fn after_func(&self, f: fn(usize), data: usize) -> Result<AfterFunc<'a>, Error> {
        let stop = self.arena.after_func(self.handle, Callback::new(f, data))?;
        Ok(AfterFunc {
            arena: self.arena,
            handle: stop,
        })
    }

    #[track_caller]
    fn own(&self, r: Result<Handle, Error>) -> Result<OwnedCtx<'a>, Error> {
        #[cfg(any(feature = "log", feature = "defmt"))]
        if r == Err(Error::Full) {
            crate::diagnostics::log_full(
                self.arena.capacity(),
                crate::engine::site::Site::caller(),
            );
        }
        r.map(|handle| OwnedCtx {
            ctx: Ctx {
                arena: self.arena,
                handle,
            },
        })
    }
}

/// The owner of a context: cancel it by hand, or drop it to release it (SPEC A4).
///
/// Derefs to [`Ctx`], so every check and child constructor is available on it; `*owned` (or
/// [`OwnedCtx::ctx`]) gives the `Copy` view to pass down.
///
/// ```
/// use stopwire::{Arena, Error};
/// static ARENA: Arena<4> = Arena::new();
/// {
///     let req = ARENA.background().with_timeout(5_000_000)?;
///     let view = *req;
///     assert!(!view.is_done());
/// } // dropped: released, its slot is free again
/// assert_eq!(ARENA.stats().in_use, 0);
/// # Ok::<(), Error>(())
/// ```
#[must_use = "dropping an OwnedCtx releases (and cancels) the context at once"]
#[derive(Debug)]
pub struct OwnedCtx<'a> {
    ctx: Ctx<'a>,
}

impl<'a> OwnedCtx<'a> {
    /// The `Copy` view of this context.
    pub fn ctx(&self) -> Ctx<'a> {
        self.ctx
    }

    /// Cancels this context and its subtree (SPEC C2). Returns true if this call canceled it,
    /// false if it was already done (C3). Callbacks made due run before it returns. A detached
    /// context or a value layer has no cancellation of its own (W1, V4): false, nothing changes.
    pub fn cancel(&self) -> bool {
        self.ctx.arena.cancel(self.ctx.handle, 0).unwrap_or(false)
    }

    /// As [`OwnedCtx::cancel`], recording `cause` (SPEC K1): the first cancellation wins (K3).
    pub fn cancel_with_cause(&self, cause: NonZeroU32) -> bool {
        self.ctx
            .arena
            .cancel(self.ctx.handle, cause.get())
            .unwrap_or(false)
    }

    /// Gives up ownership without releasing: the caller must release the handle later through
    /// [`ArenaView::release`] (or the C API), or the slot is never freed.
    pub fn into_handle(self) -> Handle {
        let h = self.ctx.handle;
        core::mem::forget(self);
        h
    }

    /// Takes ownership of a raw handle, to be released on drop.
    ///
    /// The handle should be one no one else will release; if it is stale, every operation reports
    /// [`Error::Stale`] and the drop does nothing.
    pub fn from_handle(arena: &'a ArenaView, handle: Handle) -> Self {
        OwnedCtx {
            ctx: Ctx { arena, handle },
        }
    }
}

impl<'a> Deref for OwnedCtx<'a> {
    type Target = Ctx<'a>;
    fn deref(&self) -> &Ctx<'a> {
        &self.ctx
    }
}

impl Drop for OwnedCtx<'_> {
    fn drop(&mut self) {
        let _ = self.ctx.arena.release(self.ctx.handle);
    }
}

/// A callback registration from [`Ctx::after_func`]; dropping it stops the callback (Go's
/// `defer stop()`).
#[must_use = "dropping an AfterFunc stops the callback; call forget() to keep it"]
#[derive(Debug)]
pub struct AfterFunc<'a> {
    arena: &'a ArenaView,
    handle: Handle,
}

impl AfterFunc<'_> {
    /// Stops the callback (SPEC F4): true exactly when this call prevented it from running.
    /// Never waits for a running callback.
    pub fn stop(&self) -> bool {
        self.arena.stop(self.handle)
    }

    /// Keeps the registration without a way to stop it; its slot is freed when the callback runs.
    pub fn forget(self) -> Handle {
        let h = self.handle;
        core::mem::forget(self);
        h
    }
}

impl Drop for AfterFunc<'_> {
    fn drop(&mut self) {
        self.arena.stop(self.handle);
    }
}
