//! The C API's tick source (SPEC T4): a function pointer chosen at run time by `sw_set_clock`.
//!
//! The arena's clock is fixed when the arena is built, so the arena reads [`CClock`], which reads
//! one atomic function pointer: NULL means the default (the host's monotonic 1 MHz `StdClock` with
//! `std`; without `std` there is none, ticks read 0, and deadlines fire only through `sw_expire`).

use core::sync::atomic::{AtomicPtr, Ordering};

use engine::Clock;

use crate::arena::{guard, ARENA};

/// The user's tick function, or NULL for the default.
static NOW_FN: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// The clock of [`crate::ARENA`]: the function given to `sw_set_clock`, or the default.
#[derive(Debug)]
pub(crate) struct CClock;

impl Clock for CClock {
    fn now(&self) -> u64 {
        let f = NOW_FN.load(Ordering::Acquire);
        if f.is_null() {
            #[cfg(feature = "std")]
            return engine::StdClock.now();
            #[cfg(not(feature = "std"))]
            return 0;
        }
        // SAFETY: a non-null value was stored by `sw_set_clock` from an
        // `unsafe extern "C" fn() -> u64` (same size and representation as a data pointer on
        // every supported target).
        let f = unsafe { core::mem::transmute::<*mut (), unsafe extern "C" fn() -> u64>(f) };
        // SAFETY: the caller of `sw_set_clock` promised that `f` may be called from any thread or
        // interrupt handler for as long as it is installed.
        unsafe { f() }
    }

    /// The default host clock counts microseconds: the deadline driver thread sleeps by it and
    /// deadlines fire by themselves (SPEC N1). A clock given to `sw_set_clock` has no known rate
    /// and announces no move: checks compare deadlines with it, and only `sw_expire` fires them
    /// (the driver thread, if it runs, waits for the default clock to come back).
    fn ticks_per_second(&self) -> Option<u64> {
        (cfg!(feature = "std") && NOW_FN.load(Ordering::Acquire).is_null()).then_some(1_000_000)
    }

    /// Without `std` there is no clock until `sw_set_clock`: deadlines are refused until then
    /// (`SW_ERR_INVALID_ARG`), rather than accepted and never fired (SPEC D1).
    fn is_real(&self) -> bool {
        cfg!(feature = "std") || !NOW_FN.load(Ordering::Acquire).is_null()
    }
}

/// Uses `now` as the tick source of the library; NULL restores the default (hosts: a monotonic
/// 1 MHz clock, microseconds since the first reading; without std: none, and creating a deadline is
/// refused with `SW_ERR_INVALID_ARG` until a clock is set) (SPEC T4, D1). With the default host
/// clock deadlines fire by themselves (the driver thread); with one set here, checks compare
/// deadlines with it and `sw_expire` fires them.
///
/// Set it once at start-up, before any context with a deadline exists: deadlines already set are
/// absolute ticks of the previous clock. It takes no lock, so it may be called from anywhere
/// (ISR-safe), but it is meant for start-up: it changes what every later call reads. Runs no
/// callback.
///
/// # Safety
/// `now`, if not NULL, must be callable from any thread (and any interrupt handler that calls the
/// library) until it is replaced, must be monotonic (never go backwards), and must not call into
/// this library: it may run while the arena's lock is held.
#[no_mangle]
pub unsafe extern "C" fn sw_set_clock(now: Option<unsafe extern "C" fn() -> u64>) {
    let p = match now {
        Some(f) => f as *mut (),
        None => core::ptr::null_mut(),
    };
    NOW_FN.store(p, Ordering::Release);
}

/// The current tick of the clock in use (see `sw_set_clock`) (SPEC T4). ISR-safe. Runs no callback.
#[no_mangle]
pub extern "C" fn sw_now() -> u64 {
    guard(0, || ARENA.now())
}
