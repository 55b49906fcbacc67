//! The one place the engine takes its atomics from.
//!
//! Normal builds use `core::sync::atomic`; model-checking builds (`RUSTFLAGS="--cfg loom"`) use
//! loom's instrumented types so that `tests/loom.rs` explores every interleaving of the engine's
//! atomic accesses. No other module imports atomics directly.
//!
//! # Compare-and-swap, or not
//!
//! Targets without compare-and-swap (thumbv6m: Cortex-M0/M0+, RP2040; riscv32imc) have only
//! atomic loads and stores. The engine uses read-modify-write operations only inside the arena
//! lock, except on the check path, where it needs one compare-and-swap to record "deadline seen"
//! (see [`crate::engine::query`]). That path exists under
//! `cfg(all(target_has_atomic = "32", not(stopwire_no_cas)))` (written `CAS` in the docs): the
//! target has compare-and-swap and the build does not force the no-CAS paths with
//! `RUSTFLAGS="--cfg stopwire_no_cas"`. That flag compiles the code of RP2040-class chips on the
//! host, so that loom and the threaded stress tests cover it (the host lock stands in for the
//! multi-core critical section).

#[cfg(all(not(loom), feature = "std"))]
pub(crate) use core::sync::atomic::AtomicBool;
#[cfg(all(not(loom), not(target_pointer_width = "64")))]
pub(crate) use core::sync::atomic::AtomicU16;
#[cfg(all(not(loom), target_pointer_width = "64"))]
pub(crate) use core::sync::atomic::AtomicU64;
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicPtr, AtomicU32, Ordering};

#[cfg(all(loom, not(target_pointer_width = "64")))]
pub(crate) use loom::sync::atomic::AtomicU16;
#[cfg(all(loom, target_pointer_width = "64"))]
pub(crate) use loom::sync::atomic::AtomicU64;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicPtr, AtomicU32, Ordering};

/// Spins briefly while another core finishes a few instructions (the no-CAS marking window).
#[cfg(any(not(target_has_atomic = "32"), stopwire_no_cas))]
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}
