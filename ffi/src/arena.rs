//! The one process-wide arena of the C API, and the panic guard every function runs in.

use engine::{Arena, ArenaView};

use crate::clock::CClock;

include!(concat!(env!("OUT_DIR"), "/capacity.rs"));

/// The arena behind every `sw_*` function: [`CAPACITY`] slots, reading the clock that
/// `sw_set_clock` chose. Rust code in the same program may use it directly (a Rust task that a C
/// caller cancels): `ARENA.ctx(Handle::from_raw(c.raw))` views a context made in C.
pub static ARENA: Arena<CAPACITY> = Arena::with_clock(&CClock);

/// The C API's arena with its capacity erased.
pub fn arena() -> &'static ArenaView {
    &ARENA
}

/// Runs `f`; should it panic (a bug: the engine never panics on any input), returns `on_panic`
/// instead of unwinding into C.
#[cfg(feature = "std")]
#[inline(always)]
pub(crate) fn guard<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// Without `std` there is no unwinding: a panic ends in the crate's panic handler, never in C.
#[cfg(not(feature = "std"))]
#[inline(always)]
pub(crate) fn guard<R>(_on_panic: R, f: impl FnOnce() -> R) -> R {
    f()
}
