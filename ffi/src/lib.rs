//! # stopwire-ffi: the C API of stopwire
//!
//! `libstopwire.a` / `libstopwire.so` and the header `include/stopwire.h` (generated from this
//! crate by cbindgen, `cargo xtask header`). The contract is docs/c-api.md; the behaviour is that
//! of docs/spec.md, whose rule ids the docs here cite ("SPEC C2" is rule C2 there), because every
//! `sw_*` function only translates its arguments and calls one method of the engine
//! ([`engine::ArenaView`]) on one process-wide arena ([`ARENA`]): no rule is implemented here.
//!
//! ```c
//! #include <stopwire.h>
//!
//! sw_ctx job;
//! if (sw_with_cancel(sw_background(), &job) != SW_OK) return;  /* Go: WithCancel(Background()) */
//! while (!sw_is_done(job)) { /* one unit of work */ }
//! sw_release(job);                                             /* Go: defer cancel() */
//! ```
//!
//! The same functions are callable from Rust (they are in this rlib), and Rust code can view a
//! context created in C through [`arena`] and [`engine::Handle::from_raw`].
//!
//! ## Conventions
//!
//! - One prefix, `sw_`, on every symbol, type and constant.
//! - Results are [`sw_status`] (a `uint32_t` in C, `#[repr(u32)]` here); outputs go through
//!   trailing `*_out` pointers, written only when the call returns `SW_OK`; a NULL out-pointer gives
//!   `SW_ERR_NULL_ARG` and nothing happens.
//! - Every function that takes a raw pointer is an `unsafe extern "C" fn` with a `# Safety`
//!   section; functions that take only handles and integers are safe: any value is accepted.
//! - No panic crosses the boundary: with `std`, each function runs inside a panic guard that turns
//!   a (never expected) panic into `SW_ERR_INTERNAL`; without `std` the crate has no unwinding and
//!   brings a trapping panic handler. The engine does not panic on any input.
//! - ISR safety: on microcontrollers every function may be called from an interrupt handler
//!   except `sw_dump` (it scans the arena) and the blocking waits: each change to the arena takes
//!   one short critical section, and the checks take none. On hosts, a POSIX signal handler may
//!   call only the functions that take no lock (docs/c-api.md).
//!
//! ## Modules
//!
//! `arena` (the static arena and the panic guard), `status` (status codes and the mapping from
//! [`engine::Error`]), `clock` (the swappable tick source), `create` (the `sw_with_*`
//! functions), `site` (`sw_site`, the C caller's creation site), `dump` (the live-context
//! report, `sw_dump`), `cancel` (cancel, release, callbacks, the deadline driver) and `query` (the
//! lock-free checks, statistics and version).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![allow(
    non_camel_case_types,
    reason = "the C API's type names (sw_ctx, sw_status, ...) are the contract of docs/c-api.md"
)]

mod alarm;
mod arena;
mod cancel;
mod clock;
mod create;
mod dump;
mod port;
mod query;
mod site;
mod status;
#[cfg(feature = "std")]
mod wait;

pub use alarm::sw_next_deadline;
pub use arena::{arena, ARENA, CAPACITY};
pub use cancel::{
    sw_after_func, sw_after_func_at, sw_callback, sw_cancel, sw_cancel_cause, sw_expire,
    sw_release, sw_stop,
};
pub use clock::{sw_now, sw_set_clock};
pub use create::{
    sw_background, sw_todo, sw_with_cancel, sw_with_cancel_at, sw_with_deadline,
    sw_with_deadline_at, sw_with_deadline_cause, sw_with_deadline_cause_at, sw_with_timeout,
    sw_with_timeout_at, sw_with_timeout_cause, sw_with_timeout_cause_at, sw_with_value,
    sw_with_value_at, sw_without_cancel, sw_without_cancel_at,
};
pub use dump::{sw_dump, sw_dump_fn, sw_live, sw_live_kind};
/// The engine (the `stopwire` package), re-exported for Rust code that shares the C arena.
pub use engine;
pub use query::{
    sw_cause, sw_deadline, sw_err, sw_is_done, sw_stats, sw_stats_get, sw_value, sw_version,
    SW_VERSION_MAJOR, SW_VERSION_MINOR, SW_VERSION_PATCH,
};
pub use site::sw_site;
pub use status::{sw_status, sw_status_str};
#[cfg(feature = "std")]
pub use wait::{sw_wait, sw_wait_for};

use engine::Handle;

/// A context handle: a slot index and a generation packed in 64 bits. The all-zero value is never
/// a valid context (SPEC R3). Handles are plain values: copy them freely; once released they are stale
/// and every function says so (SPEC A2).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct sw_ctx {
    /// The packed handle (Rust: `Handle::to_raw` of the engine).
    pub raw: u64,
}

impl From<Handle> for sw_ctx {
    fn from(h: Handle) -> Self {
        sw_ctx { raw: h.to_raw() }
    }
}

impl From<sw_ctx> for Handle {
    fn from(c: sw_ctx) -> Self {
        Handle::from_raw(c.raw)
    }
}

/// Without `std` there is no unwinding and the staticlib needs a panic handler. The engine and
/// this crate never panic on any input; should a bug panic anyway, the core stops at a trap
/// instruction (a HardFault on Cortex-M, which the firmware's fault handler reports) instead of
/// running on with a half-changed tree.
#[cfg(all(not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        #[cfg(any(target_arch = "arm", target_arch = "riscv32"))]
        // SAFETY: a permanently undefined instruction: traps to the fault handler, touches no
        // memory.
        unsafe {
            #[cfg(target_arch = "arm")]
            core::arch::asm!("udf #0", options(nomem, nostack));
            #[cfg(target_arch = "riscv32")]
            core::arch::asm!("unimp", options(nomem, nostack));
        }
        core::hint::spin_loop();
    }
}
