//! When the deadline driver should next run: the query a firmware's alarm (SysTick, an RTC
//! compare, an RTOS timer) reads to call `sw_expire` at the right tick, and not at every tick.
//!
//! The pattern (SPEC N1, T5): the timer interrupt compares the current tick with
//! `sw_next_deadline` and calls `sw_expire(now)` once it is due; `sw_expire` runs the callbacks
//! of every context whose deadline passed, in that interrupt. A tickless firmware programs its
//! one-shot alarm to the value instead.

use crate::arena::{guard, ARENA};
use crate::status::sw_status;

/// The earliest deadline that `sw_expire` still has to handle (SPEC N1, T5): writes it to
/// `*deadline_out` and returns `SW_OK`, or returns `SW_ERR_NOT_FOUND` when no context with a
/// deadline of its own is pending. A deadline stops pending when `sw_expire` handles it or when
/// its context is done first by other means (canceled, released, or with an ancestor), so a
/// canceled context never wakes the alarm. NULL `deadline_out`:
/// `SW_ERR_NULL_ARG`. ISR-safe (a short critical section, independent of the number of contexts).
/// Runs no callback.
///
/// # Safety
/// `deadline_out`, if not NULL, must be valid for writing a `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn sw_next_deadline(deadline_out: *mut u64) -> sw_status {
    if deadline_out.is_null() {
        return sw_status::SW_ERR_NULL_ARG;
    }
    guard(sw_status::SW_ERR_INTERNAL, || match ARENA.next_deadline() {
        Some(d) => {
            // SAFETY: non-null (checked above) and writable (the caller's promise).
            unsafe { deadline_out.write(d) };
            sw_status::SW_OK
        }
        None => sw_status::SW_ERR_NOT_FOUND,
    })
}
