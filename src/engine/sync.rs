//! The one place the engine takes its atomics from.
//!
//! Normal builds use `core::sync::atomic`; model-checking builds (`RUSTFLAGS="--cfg loom"`) use
//! loom's instrumented types so that `tests/loom.rs` explores every interleaving of the engine's
//! atomic accesses. No other module imports atomics directly.
//!
//! Only loads and stores are used on targets without compare-and-swap (thumbv6m, riscv32imc):
//! every read-modify-write there happens inside the arena lock (a critical section), see
//! [`crate::engine::lock`]. Compare-and-swap is used only behind `cfg(target_has_atomic = "32")`.

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
