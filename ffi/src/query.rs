//! The checks (lock-free, SPEC T2), statistics and version. None takes a lock or runs a callback.
//!
//! `sw_is_done` and `sw_err` call `ArenaView::err`: one `Acquire` load of the context's own state
//! word, plus a clock read and compare only when the context has a deadline (src/query.rs).

use core::ffi::c_char;

use crate::arena::{guard, ARENA};
use crate::status::sw_status;
use crate::sw_ctx;

/// Library version, major part (equal to the crate version; checked by a test).
pub const SW_VERSION_MAJOR: u32 = 0;
/// Library version, minor part.
pub const SW_VERSION_MINOR: u32 = 1;
/// Library version, patch part.
pub const SW_VERSION_PATCH: u32 = 0;

const fn parse(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n = 0u32;
    while i < b.len() {
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

// The header's version macros must equal Cargo.toml's version: a mismatch does not compile.
const _: () = assert!(SW_VERSION_MAJOR == parse(env!("CARGO_PKG_VERSION_MAJOR")));
const _: () = assert!(SW_VERSION_MINOR == parse(env!("CARGO_PKG_VERSION_MINOR")));
const _: () = assert!(SW_VERSION_PATCH == parse(env!("CARGO_PKG_VERSION_PATCH")));

/// Arena figures (SPEC A6) (C: `sw_stats`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct sw_stats {
    /// Slots in the C arena (build setting `STOPWIRE_CAPACITY`, default 1024).
    pub capacity: u32,
    /// Slots in use now (contexts, released contexts kept for descendants, pending callbacks).
    pub in_use: u32,
    /// Most slots ever in use at once.
    pub high_water: u32,
    /// Creations refused because the arena was full.
    pub full_count: u32,
}

/// `SW_OK` while `ctx` is not done, then `SW_CANCELED` or `SW_DEADLINE_EXCEEDED` forever (SPEC C4, D4);
/// `SW_ERR_STALE_HANDLE` for a released or forged handle, `SW_ERR_INVALID_ARG` for a stop handle.
/// Lock-free: one atomic load, plus a clock read if `ctx` has a deadline (SPEC T2). ISR-safe. Runs no
/// callback.
#[no_mangle]
pub extern "C" fn sw_err(ctx: sw_ctx) -> sw_status {
    guard(sw_status::SW_ERR_INTERNAL, || match ARENA.err(ctx.into()) {
        Ok(()) => sw_status::SW_OK,
        Err(e) => e.into(),
    })
}

/// The hot-path check: true once `ctx` is done, and for a stale or invalid handle (so a worker
/// holding a released handle stops) (SPEC T2, A2). Lock-free, as `sw_err`. ISR-safe. Runs no callback.
#[no_mangle]
pub extern "C" fn sw_is_done(ctx: sw_ctx) -> bool {
    guard(true, || ARENA.is_done(ctx.into()))
}

/// Why `ctx` is done (SPEC K): once done, `SW_OK` and `*cause_out` = the recorded cause (0 = none);
/// while not done (and for roots) `SW_ERR_NOT_FOUND`. Never torn (SPEC K6). Lock-free. ISR-safe.
///
/// # Safety
/// `cause_out` must be NULL or valid for writing one `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn sw_cause(ctx: sw_ctx, cause_out: *mut u32) -> sw_status {
    if cause_out.is_null() {
        return sw_status::SW_ERR_NULL_ARG;
    }
    guard(sw_status::SW_ERR_INTERNAL, || {
        match ARENA.cause(ctx.into()) {
            Ok(c) => {
                // SAFETY: non-null (checked above) and writable (caller's promise).
                unsafe { cause_out.write(c.map_or(0, |c| c.get())) };
                sw_status::SW_OK
            }
            Err(e) => e.into(),
        }
    })
}

/// The effective deadline of `ctx` in ticks: the earliest of its own and its ancestors' (SPEC D2, D6);
/// `SW_ERR_NOT_FOUND` when it has none (roots, detached contexts and their undeadlined
/// descendants). Lock-free. ISR-safe.
///
/// # Safety
/// `deadline_out` must be NULL or valid for writing one `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn sw_deadline(ctx: sw_ctx, deadline_out: *mut u64) -> sw_status {
    if deadline_out.is_null() {
        return sw_status::SW_ERR_NULL_ARG;
    }
    guard(sw_status::SW_ERR_INTERNAL, || {
        match ARENA.deadline(ctx.into()) {
            Ok(Some(d)) => {
                // SAFETY: non-null (checked above) and writable (caller's promise).
                unsafe { deadline_out.write(d) };
                sw_status::SW_OK
            }
            Ok(None) => sw_status::SW_ERR_NOT_FOUND,
            Err(e) => e.into(),
        }
    })
}

/// The value of the nearest layer with `key` (SPEC V2); `SW_ERR_NOT_FOUND` when no layer has it; key 0
/// gives `SW_ERR_INVALID_ARG`. Values stay readable after the context is done (SPEC V3). Lock-free;
/// cost grows with the depth, never with the arena (SPEC V5). ISR-safe.
///
/// # Safety
/// `value_out` must be NULL or valid for writing one `uintptr_t`.
#[no_mangle]
pub unsafe extern "C" fn sw_value(ctx: sw_ctx, key: usize, value_out: *mut usize) -> sw_status {
    if value_out.is_null() {
        return sw_status::SW_ERR_NULL_ARG;
    }
    guard(sw_status::SW_ERR_INTERNAL, || {
        match ARENA.value(ctx.into(), key) {
            Ok(Some(v)) => {
                // SAFETY: non-null (checked above) and writable (caller's promise).
                unsafe { value_out.write(v) };
                sw_status::SW_OK
            }
            Ok(None) => sw_status::SW_ERR_NOT_FOUND,
            Err(e) => e.into(),
        }
    })
}

/// Capacity, slots in use, high-water mark and refused creations (SPEC A6). Lock-free (each figure is
/// read on its own). ISR-safe.
///
/// # Safety
/// `out` must be NULL or valid for writing one `sw_stats`.
#[no_mangle]
pub unsafe extern "C" fn sw_stats_get(out: *mut sw_stats) -> sw_status {
    if out.is_null() {
        return sw_status::SW_ERR_NULL_ARG;
    }
    let s = ARENA.stats();
    // SAFETY: non-null (checked above) and writable (caller's promise).
    unsafe {
        out.write(sw_stats {
            capacity: s.capacity,
            in_use: s.in_use,
            high_water: s.high_water,
            full_count: s.full_count,
        })
    };
    sw_status::SW_OK
}

/// The library version, equal to the crate version and to
/// `SW_VERSION_MAJOR.SW_VERSION_MINOR.SW_VERSION_PATCH` (a static string, never freed). ISR-safe.
#[no_mangle]
pub extern "C" fn sw_version() -> *const c_char {
    const V: &core::ffi::CStr = match core::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => panic!("the crate version has no NUL byte"),
    };
    V.as_ptr()
}
