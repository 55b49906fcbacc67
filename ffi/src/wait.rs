//! Blocking waits for C threads (host builds, feature `std`): `sw_wait`, `sw_wait_for`
//! (SPEC N2, N5). They call the engine's blocking wait: the calling thread parks with a waiter
//! node in its own frame and is unparked by whatever makes the context done — a cancel from any
//! thread, an ancestor, release, or the deadline driver: on the default clock the driver thread
//! that the C library starts by itself at the first deadline (SPEC N1, no set-up), on a clock of
//! `sw_set_clock` the program's `sw_expire`. No heap, no polling. Never ISR-safe.

use core::time::Duration;

use crate::arena::{guard, ARENA};
use crate::status::sw_status;
use crate::sw_ctx;

/// Blocks the calling thread until `ctx` is done (SPEC N2): returns `SW_CANCELED` or
/// `SW_DEADLINE_EXCEEDED`, or `SW_ERR_STALE_HANDLE` for a stale or released handle (at once, or
/// when the owner releases it while this thread waits). Waiting on a root blocks forever. Host
/// builds only; never from an interrupt or signal handler.
#[no_mangle]
pub extern "C" fn sw_wait(ctx: sw_ctx) -> sw_status {
    guard(sw_status::SW_ERR_INTERNAL, || ARENA.wait(ctx.into()).into())
}

/// As `sw_wait`, giving up after `ticks` microseconds (the default host clock's ticks): `SW_OK`
/// when the time ran out first, else what `sw_wait` returns. A wait that gives up leaves nothing behind
/// (SPEC N5). Host builds only.
#[no_mangle]
pub extern "C" fn sw_wait_for(ctx: sw_ctx, ticks: u64) -> sw_status {
    guard(sw_status::SW_ERR_INTERNAL, || {
        match ARENA.wait_timeout(ctx.into(), Duration::from_micros(ticks)) {
            None => sw_status::SW_OK,
            Some(why) => why.into(),
        }
    })
}
