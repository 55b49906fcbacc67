//! Tick sources (SPEC T4).
//!
//! A tick is one unit of a monotonic `u64` clock that never wraps. Each arena reads one clock,
//! chosen when the arena is built ([`crate::Arena::with_clock`]):
//!
//! | clock | where | rate |
//! |---|---|---|
//! | [`StdClock`] (feature `std`) | hosts; the default there | 1 MHz (microseconds) |
//! | [`ManualClock`] | tests and simulations: time moves only when told | whatever the test says |
//! | [`FnClock`] | a user function, e.g. a hardware timer or the C API's `sw_set_clock` | the function's |
//! | [`NoClock`] | the default without `std`: no time at all; creating a deadline on it is refused ([`crate::Error::NoClock`]) | - |
//!
//! The clock is read only by operations that involve a deadline: a check of a context without a
//! deadline never reads it (docs/design.md 1). A clock may be read inside the arena lock (a
//! critical section on microcontrollers), so it must be callable from an interrupt handler and must
//! not call back into the arena.

/// A monotonic tick source. `now` must never go backwards and must be safe to call from any
/// thread and, on a microcontroller, from an interrupt handler.
///
/// ```
/// use stopwire::{Arena, Clock};
/// struct Fixed;
/// impl Clock for Fixed {
///     fn now(&self) -> u64 { 42 }
/// }
/// static FIXED: Fixed = Fixed;
/// static ARENA: Arena<2> = Arena::with_clock(&FIXED);
/// assert_eq!(ARENA.now(), 42);
/// ```
pub trait Clock: Sync {
    /// The current tick.
    fn now(&self) -> u64;

    /// Ticks per second, when this clock follows real time at a known rate: the host deadline
    /// driver sleeps by it (SPEC N1). `None` (the default) for clocks whose time moves otherwise
    /// (virtual time, a counter the firmware advances): drivers then wait for
    /// [`advanced`] notifications instead.
    fn ticks_per_second(&self) -> Option<u64> {
        None
    }

    /// False only for [`NoClock`]: an arena whose clock has no time refuses deadlines.
    fn is_real(&self) -> bool {
        true
    }
}

/// Tells deadline drivers that a clock without a real-time rate has moved (SPEC N1): what
/// [`ManualClock`] calls after each change, and what a program whose own [`Clock`] moves in jumps
/// calls after moving it. Without feature `std` there is no host driver and this does nothing.
pub fn advanced() {
    let hook = ADVANCED_HOOK.load(core::sync::atomic::Ordering::Acquire);
    if !hook.is_null() {
        // SAFETY: the only non-null value ever stored is a `fn()` ([`set_advanced_hook`]).
        let f = unsafe { core::mem::transmute::<*mut (), fn()>(hook) };
        f();
    }
}

/// What [`advanced`] calls: set once by the host deadline driver when it starts.
static ADVANCED_HOOK: core::sync::atomic::AtomicPtr<()> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// Sets the function [`advanced`] calls (the host driver's notification).
#[cfg(feature = "std")]
#[cfg_attr(
    loom,
    allow(dead_code, reason = "the host driver is not built under loom")
)]
pub(crate) fn set_advanced_hook(f: fn()) {
    ADVANCED_HOOK.store(f as *mut (), core::sync::atomic::Ordering::Release);
}

/// No clock: reads 0, and an arena with it refuses deadlines with [`crate::Error::NoClock`]
/// (SPEC D1), rather than accept one that could never fire. The default clock without `std`.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoClock;

impl Clock for NoClock {
    fn now(&self) -> u64 {
        0
    }
    fn is_real(&self) -> bool {
        false
    }
}

/// A clock backed by a plain function, for hardware timers or foreign code.
///
/// ```
/// use stopwire::{Arena, FnClock};
/// fn ticks() -> u64 { 7 }
/// static CLOCK: FnClock = FnClock(ticks);
/// static ARENA: Arena<2> = Arena::with_clock(&CLOCK);
/// assert_eq!(ARENA.now(), 7);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FnClock(pub fn() -> u64);

impl Clock for FnClock {
    fn now(&self) -> u64 {
        (self.0)()
    }
}

/// The host's monotonic clock at 1 MHz: microseconds since the first reading in this process.
///
/// It reads `std::time::Instant` (a vDSO call, about 20 ns on the reference machine). Creating a
/// timeout reads it; checks do not once the host driver serves the arena (see the module docs of the engine's `query`).
#[cfg(feature = "std")]
#[derive(Debug, Default, Clone, Copy)]
pub struct StdClock;

#[cfg(feature = "std")]
impl StdClock {
    fn epoch() -> std::time::Instant {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *EPOCH.get_or_init(std::time::Instant::now)
    }

    /// The instant of tick `t` (for drivers that sleep until a deadline).
    pub fn instant_of(t: u64) -> std::time::Instant {
        Self::epoch() + core::time::Duration::from_micros(t)
    }
}

#[cfg(feature = "std")]
impl Clock for StdClock {
    #[inline]
    fn now(&self) -> u64 {
        let d = std::time::Instant::now().saturating_duration_since(Self::epoch());
        // Integer microseconds without u128 arithmetic; saturates after 584 554 years.
        d.as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()))
    }
    fn ticks_per_second(&self) -> Option<u64> {
        Some(1_000_000)
    }
}

/// A clock that moves only when told: for tests and simulations (SPEC T4).
///
/// ```
/// use stopwire::{Arena, ManualClock};
/// static CLOCK: ManualClock = ManualClock::new(100);
/// static ARENA: Arena<4> = Arena::with_clock(&CLOCK);
/// let ctx = ARENA.background().with_timeout(10).unwrap();
/// assert!(!ctx.is_done());
/// CLOCK.advance(10);
/// assert!(ctx.is_done());
/// ```
#[derive(Debug)]
pub struct ManualClock {
    #[cfg(target_pointer_width = "64")]
    ticks: core::sync::atomic::AtomicU64,
    #[cfg(not(target_pointer_width = "64"))]
    ticks: critical_section::Mutex<core::cell::Cell<u64>>,
}

impl ManualClock {
    /// A clock that reads `start` until moved.
    pub const fn new(start: u64) -> Self {
        Self {
            #[cfg(target_pointer_width = "64")]
            ticks: core::sync::atomic::AtomicU64::new(start),
            #[cfg(not(target_pointer_width = "64"))]
            ticks: critical_section::Mutex::new(core::cell::Cell::new(start)),
        }
    }

    /// Moves the clock to `ticks`; a value behind the current reading is ignored (monotonic).
    /// Deadline drivers are told ([`advanced`]).
    pub fn set(&self, ticks: u64) {
        #[cfg(target_pointer_width = "64")]
        self.ticks
            .fetch_max(ticks, core::sync::atomic::Ordering::SeqCst);
        #[cfg(not(target_pointer_width = "64"))]
        critical_section::with(|cs| {
            let cell = self.ticks.borrow(cs);
            cell.set(cell.get().max(ticks));
        });
        advanced();
    }

    /// Moves the clock forward by `ticks` (saturating). Deadline drivers are told ([`advanced`]).
    pub fn advance(&self, ticks: u64) {
        #[cfg(target_pointer_width = "64")]
        {
            let _ = self.ticks.fetch_update(
                core::sync::atomic::Ordering::SeqCst,
                core::sync::atomic::Ordering::SeqCst,
                |t| Some(t.saturating_add(ticks)),
            );
        }
        #[cfg(not(target_pointer_width = "64"))]
        critical_section::with(|cs| {
            let cell = self.ticks.borrow(cs);
            cell.set(cell.get().saturating_add(ticks));
        });
        advanced();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        #[cfg(target_pointer_width = "64")]
        return self.ticks.load(core::sync::atomic::Ordering::SeqCst);
        #[cfg(not(target_pointer_width = "64"))]
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }
}

/// The clock an arena uses when none is given: [`StdClock`] with `std`, else [`NoClock`].
pub(crate) const fn default_clock() -> &'static dyn Clock {
    #[cfg(feature = "std")]
    return &StdClock;
    #[cfg(not(feature = "std"))]
    &NoClock
}
