//! Making contexts done, and reacting to it: cancel, release, callbacks and the deadline driver.
//!
//! Callbacks made due by a call run inside that call, after the engine has released its lock, in
//! the calling thread or interrupt (SPEC F3): they may call any `sw_*` function without deadlock.
//!
//! Every function here is ISR-safe on microcontrollers: each takes the arena's critical section
//! once, for a bounded time (SPEC T3), and a callback it makes due runs in that interrupt handler
//! after the section ends. On hosts the arena lock is held by threads: a POSIX signal handler must
//! not call them (docs/c-api.md, "Interrupt handlers and signal handlers").

use core::ffi::c_void;
use core::num::NonZeroU32;

use engine::{Callback, Error, Handle};

use crate::arena::{guard, ARENA};
use crate::site::{at, sw_site};
use crate::status::{status_of, sw_status};
use crate::sw_ctx;

/// A callback for `sw_after_func`: it receives the `userdata` given at registration. It must not
/// unwind (no C++ exception may leave it).
pub type sw_callback = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// Cancels `ctx` and its whole subtree with `SW_CANCELED` and no cause (SPEC C2, C5, K2); when it
/// returns, every descendant reports done. `SW_OK` also when it was already done (SPEC C3). Roots,
/// detached contexts and value layers give `SW_ERR_INVALID_ARG` (SPEC R2, W1, V4: they have no
/// cancellation of their own); a stale handle `SW_ERR_STALE_HANDLE`.
/// ISR-safe. Runs the callbacks this makes due before returning.
#[no_mangle]
pub extern "C" fn sw_cancel(ctx: sw_ctx) -> sw_status {
    guard(sw_status::SW_ERR_INTERNAL, || {
        status_of(ARENA.cancel(ctx.into(), 0).map(|_first| ()))
    })
}

/// Cancels like `sw_cancel`, recording the non-zero `cause` (SPEC K1); only the first cancellation of a
/// context records anything (SPEC K3), and descendants carry it (SPEC K4). Cause 0 gives
/// `SW_ERR_INVALID_ARG`. ISR-safe. Runs the callbacks this makes due before returning.
#[no_mangle]
pub extern "C" fn sw_cancel_cause(ctx: sw_ctx, cause: u32) -> sw_status {
    guard(sw_status::SW_ERR_INTERNAL, || {
        let r = NonZeroU32::new(cause)
            .ok_or(Error::ZeroCause)
            .and_then(|c| ARENA.cancel(ctx.into(), c.get()));
        status_of(r.map(|_first| ()))
    })
}

/// Cancels `ctx` if it is not done yet, and gives the handle back: it is stale from now on (SPEC A4).
/// The slot is reused once no descendant still needs it (SPEC A5). Releasing a stop handle from
/// `sw_after_func` is `sw_stop`. Releasing a detached context or a value layer cancels nothing
/// (SPEC W1, V4). Roots give `SW_ERR_INVALID_ARG`. ISR-safe. Runs the callbacks this makes due
/// before returning.
#[no_mangle]
pub extern "C" fn sw_release(ctx: sw_ctx) -> sw_status {
    guard(sw_status::SW_ERR_INTERNAL, || {
        status_of(ARENA.release(ctx.into()))
    })
}

/// Registers `f(userdata)` to run exactly once after `ctx` is done (SPEC F1), and writes a stop handle
/// to `*stop_out` (SPEC F4). The callback runs in the thread or interrupt that makes `ctx` done (the
/// canceler, or `sw_expire` for a deadline) with no lock held, so it may call the library (SPEC F3).
/// If `ctx` is already done, `f` runs before this returns and `*stop_out` is the zero handle
/// (`sw_stop` of it returns false) (SPEC F2). On a context that is never done (a root, a detached
/// context) `f` never runs (SPEC F7). The registration takes one arena slot until it runs or is stopped
/// (SPEC F6). NULL `f` or `stop_out`: `SW_ERR_NULL_ARG`. ISR-safe. May run `f`.
///
/// # Safety
/// `stop_out` must be NULL or valid for writing one `sw_ctx`. Calling `f(userdata)` once, from
/// whichever thread or interrupt handler makes `ctx` done (or from this call), must be sound for
/// as long as the registration exists: `userdata` must stay valid until `f` has run or `sw_stop`
/// returned true. `f` must not unwind (no C++ exception may leave it).
#[no_mangle]
pub unsafe extern "C" fn sw_after_func(
    ctx: sw_ctx,
    f: sw_callback,
    userdata: *mut c_void,
    stop_out: *mut sw_ctx,
) -> sw_status {
    // SAFETY: forwarded contract on `f`, `userdata` and `stop_out`; a NULL site.
    unsafe { sw_after_func_at(ctx, f, userdata, core::ptr::null(), stop_out) }
}

/// As `sw_after_func`, recording `site` as the registration's creation site that `sw_dump`
/// reports (see `sw_with_cancel_at`; NULL records this library's line). ISR-safe. May run `f`.
///
/// # Safety
/// As `sw_after_func`; and `site` must be NULL or point to a `sw_site` with static storage
/// duration, never changed, whose `file` is NULL or a NUL-terminated string with static storage.
#[no_mangle]
pub unsafe extern "C" fn sw_after_func_at(
    ctx: sw_ctx,
    f: sw_callback,
    userdata: *mut c_void,
    site: *const sw_site,
    stop_out: *mut sw_ctx,
) -> sw_status {
    let Some(f) = f else {
        return sw_status::SW_ERR_NULL_ARG;
    };
    if stop_out.is_null() {
        return sw_status::SW_ERR_NULL_ARG;
    }
    guard(sw_status::SW_ERR_INTERNAL, || {
        // SAFETY: the caller of this function made exactly the promise `from_c` asks for.
        let cb = unsafe { Callback::from_c(f, userdata) };
        // SAFETY: the caller's contract on `site`.
        match unsafe { at(site) }.after_func(ctx.into(), cb) {
            Ok(stop) => {
                // SAFETY: `stop_out` is non-null (checked above) and writable (caller's promise).
                unsafe { stop_out.write(stop.into()) };
                sw_status::SW_OK
            }
            Err(e) => e.into(),
        }
    })
}

/// Stops a registration (SPEC F4): true exactly when this call prevented the callback; afterwards it
/// never runs. False once the callback has started or run, on every call after the first, and for
/// any other handle. Never waits for a running callback. ISR-safe. Runs no callback.
#[no_mangle]
pub extern "C" fn sw_stop(stop: sw_ctx) -> bool {
    guard(false, || ARENA.stop(stop.into()))
}

/// The deadline driver (SPEC T5): handles every context with its own deadline `<= now` that no earlier
/// call handled and that was not done before by other means; each becomes done with its subtree
/// (`SW_DEADLINE_EXCEEDED`, its cause), the callbacks this makes due run in this call, and the
/// number of deadline contexts handled is returned. Cost grows with that number, never with the
/// capacity. Call it from a timer interrupt (or a loop) with the current tick, when
/// `sw_next_deadline` is due. ISR-safe: the callbacks it makes due run in that interrupt.
#[no_mangle]
pub extern "C" fn sw_expire(now: u64) -> u32 {
    guard(0, || ARENA.expire(now))
}

/// The zero handle is what `sw_after_func` writes when the callback already ran.
const _: () = assert!(Handle::DEAD.to_raw() == 0);
