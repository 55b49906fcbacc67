//! Creating contexts: the roots and the `sw_with_*` functions. Each checks its out-pointer, calls
//! one engine method, and writes the new handle only on success; none runs a callback. Each has an
//! `_at` form taking the C caller's creation site (`struct sw_site`, which `sw_dump` reports; the
//! header's macros pass `SW_SITE`); the plain forms are the `_at` forms with a NULL site. All are
//! ISR-safe on microcontrollers: a creation takes the arena's critical section once, for a bounded
//! time (SPEC T3). On hosts the arena lock is held by threads, so a POSIX signal handler must not
//! create (docs/c-api.md, "Interrupt handlers and signal handlers").

use engine::{Error, Handle};

use crate::arena::guard;
#[cfg(feature = "std")]
use crate::arena::ARENA;
use crate::site::{at, sw_site};
use crate::status::sw_status;
use crate::sw_ctx;

/// Writes the handle `r` produced to `out`, or returns the refusal.
///
/// # Safety
/// `out` is non-null and valid for a write of one `sw_ctx`.
unsafe fn finish(r: Result<Handle, Error>, out: *mut sw_ctx) -> sw_status {
    match r {
        Ok(h) => {
            // SAFETY: the caller checked `out` for NULL and the C caller promised it is writable.
            unsafe { out.write(h.into()) };
            sw_status::SW_OK
        }
        Err(e) => e.into(),
    }
}

/// Checks `out`, runs `make` inside the panic guard and writes its handle.
///
/// # Safety
/// `out` is NULL or valid for a write of one `sw_ctx`.
#[inline(always)]
unsafe fn create(out: *mut sw_ctx, make: impl FnOnce() -> Result<Handle, Error>) -> sw_status {
    if out.is_null() {
        return sw_status::SW_ERR_NULL_ARG;
    }
    // SAFETY: `out` is non-null and, by this function's contract, writable.
    guard(sw_status::SW_ERR_INTERNAL, || unsafe {
        finish(make(), out)
    })
}

/// The background root (SPEC R1): never done, no deadline, no values, no cause. Free; never fails.
/// Canceling or releasing it gives `SW_ERR_INVALID_ARG` (SPEC R2). ISR-safe.
#[no_mangle]
pub extern "C" fn sw_background() -> sw_ctx {
    Handle::BACKGROUND.into()
}

/// The todo root (SPEC R1): like `sw_background`, for code not yet given a context. ISR-safe.
#[no_mangle]
pub extern "C" fn sw_todo() -> sw_ctx {
    Handle::TODO.into()
}

/// A new cancelable child of `parent` (SPEC C1); done at birth if `parent` is done (SPEC C7).
///
/// Returns `SW_OK` and writes `*out`; or `SW_ERR_NULL_ARG`, `SW_ERR_STALE_HANDLE`,
/// `SW_ERR_ARENA_FULL` (SPEC A3), `SW_ERR_INVALID_ARG` (`parent` is a stop handle). Release the child
/// with `sw_release` when done with it. ISR-safe; runs no callback.
///
/// # Safety
/// `out` must be NULL or valid for writing one `sw_ctx`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_cancel(parent: sw_ctx, out: *mut sw_ctx) -> sw_status {
    // SAFETY: forwarded contract on `out`; a NULL site.
    unsafe { sw_with_cancel_at(parent, core::ptr::null(), out) }
}

/// As `sw_with_cancel`, recording `site` as the creation site that `sw_dump` reports (docs/c-api.md,
/// "Creation sites"). `site`: a `sw_site` with static storage duration, as the header's `SW_SITE`
/// makes; NULL (or a NULL `file`) records this library's line, as `sw_with_cancel` does. ISR-safe.
///
/// # Safety
/// `out` must be NULL or valid for writing one `sw_ctx`; `site` must be NULL or point to a
/// `sw_site` with static storage duration, never changed, whose `file` is NULL or a
/// NUL-terminated string with static storage.
#[no_mangle]
pub unsafe extern "C" fn sw_with_cancel_at(
    parent: sw_ctx,
    site: *const sw_site,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contracts on `out` and `site`.
    unsafe { create(out, || at(site).with_cancel(parent.into())) }
}

/// A child with an absolute deadline in ticks of the clock in use (SPEC D1). If `parent`'s effective
/// deadline is earlier, the child reports that one instead (SPEC D2); a deadline `<= sw_now()` makes it
/// done at birth with `SW_DEADLINE_EXCEEDED` (SPEC D3). Results as `sw_with_cancel`. ISR-safe.
///
/// # Safety
/// `out` must be NULL or valid for writing one `sw_ctx`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_deadline(
    parent: sw_ctx,
    deadline: u64,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contract on `out`; a NULL site.
    unsafe { sw_with_deadline_cause_at(parent, deadline, 0, core::ptr::null(), out) }
}

/// As `sw_with_deadline`, recording `site` (see `sw_with_cancel_at`). ISR-safe.
///
/// # Safety
/// As `sw_with_cancel_at`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_deadline_at(
    parent: sw_ctx,
    deadline: u64,
    site: *const sw_site,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contracts on `out` and `site`.
    unsafe { sw_with_deadline_cause_at(parent, deadline, 0, site, out) }
}

/// `sw_with_deadline(parent, sw_now() + ticks)`, saturating (SPEC D1). ISR-safe.
///
/// # Safety
/// `out` must be NULL or valid for writing one `sw_ctx`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_timeout(
    parent: sw_ctx,
    ticks: u64,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contract on `out`; a NULL site.
    unsafe { sw_with_timeout_cause_at(parent, ticks, 0, core::ptr::null(), out) }
}

/// As `sw_with_timeout`, recording `site` (see `sw_with_cancel_at`). ISR-safe.
///
/// # Safety
/// As `sw_with_cancel_at`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_timeout_at(
    parent: sw_ctx,
    ticks: u64,
    site: *const sw_site,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contracts on `out` and `site`.
    unsafe { sw_with_timeout_cause_at(parent, ticks, 0, site, out) }
}

/// As `sw_with_deadline`, and `cause` is recorded if (and only if) this deadline fires (SPEC K5);
/// cause 0 records none. Canceling the child by hand gives `SW_CANCELED` with no cause.
/// ISR-safe.
///
/// # Safety
/// `out` must be NULL or valid for writing one `sw_ctx`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_deadline_cause(
    parent: sw_ctx,
    deadline: u64,
    cause: u32,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contract on `out`; a NULL site.
    unsafe { sw_with_deadline_cause_at(parent, deadline, cause, core::ptr::null(), out) }
}

/// As `sw_with_deadline_cause`, recording `site` (see `sw_with_cancel_at`). ISR-safe.
///
/// # Safety
/// As `sw_with_cancel_at`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_deadline_cause_at(
    parent: sw_ctx,
    deadline: u64,
    cause: u32,
    site: *const sw_site,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contracts on `out` and `site`.
    unsafe {
        create(out, || {
            timed(|| at(site).with_deadline_cause(parent.into(), deadline, cause))
        })
    }
}

/// As `sw_with_timeout`, recording `cause` if the deadline fires (SPEC K5). ISR-safe.
///
/// # Safety
/// `out` must be NULL or valid for writing one `sw_ctx`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_timeout_cause(
    parent: sw_ctx,
    ticks: u64,
    cause: u32,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contract on `out`; a NULL site.
    unsafe { sw_with_timeout_cause_at(parent, ticks, cause, core::ptr::null(), out) }
}

/// As `sw_with_timeout_cause`, recording `site` (see `sw_with_cancel_at`). ISR-safe.
///
/// # Safety
/// As `sw_with_cancel_at`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_timeout_cause_at(
    parent: sw_ctx,
    ticks: u64,
    cause: u32,
    site: *const sw_site,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contracts on `out` and `site`.
    unsafe {
        create(out, || {
            timed(|| at(site).with_timeout_cause(parent.into(), ticks, cause))
        })
    }
}

/// A value layer: `key` (non-zero) maps to `value` for this context and its descendants (SPEC V1, V2).
/// It adds no cancellation of its own (SPEC V4). Key 0 gives `SW_ERR_INVALID_ARG`. ISR-safe.
///
/// # Safety
/// `out` must be NULL or valid for writing one `sw_ctx`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_value(
    parent: sw_ctx,
    key: usize,
    value: usize,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contract on `out`; a NULL site.
    unsafe { sw_with_value_at(parent, key, value, core::ptr::null(), out) }
}

/// As `sw_with_value`, recording `site` (see `sw_with_cancel_at`). ISR-safe.
///
/// # Safety
/// As `sw_with_cancel_at`.
#[no_mangle]
pub unsafe extern "C" fn sw_with_value_at(
    parent: sw_ctx,
    key: usize,
    value: usize,
    site: *const sw_site,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contracts on `out` and `site`.
    unsafe { create(out, || at(site).with_value(parent.into(), key, value)) }
}

/// A detached child (SPEC W1): keeps `parent`'s values, but is never done, has no deadline and no
/// cause, whatever happens to `parent`; its descendants are not canceled from above it (SPEC W2).
/// Canceling it gives `SW_ERR_INVALID_ARG`; release it with `sw_release`. ISR-safe.
///
/// # Safety
/// `out` must be NULL or valid for writing one `sw_ctx`.
#[no_mangle]
pub unsafe extern "C" fn sw_without_cancel(parent: sw_ctx, out: *mut sw_ctx) -> sw_status {
    // SAFETY: forwarded contract on `out`; a NULL site.
    unsafe { sw_without_cancel_at(parent, core::ptr::null(), out) }
}

/// As `sw_without_cancel`, recording `site` (see `sw_with_cancel_at`). ISR-safe.
///
/// # Safety
/// As `sw_with_cancel_at`.
#[no_mangle]
pub unsafe extern "C" fn sw_without_cancel_at(
    parent: sw_ctx,
    site: *const sw_site,
    out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contracts on `out` and `site`.
    unsafe { create(out, || at(site).without_cancel(parent.into())) }
}

/// Creates a context with a deadline with `make`: on hosts, first makes sure the C arena's
/// deadline driver thread runs, so that the deadline fires by itself (SPEC N1: no set-up in C),
/// and so that even the first deadline is the driver's to expire (checks of it then read no
/// clock). Cheap once it runs.
fn timed(make: impl FnOnce() -> Result<Handle, Error>) -> Result<Handle, Error> {
    #[cfg(feature = "std")]
    ARENA.drive();
    make()
}
