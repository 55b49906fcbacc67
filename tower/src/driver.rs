//! The deadline driver the layers run for the contexts they hold.
//!
//! A stopwire context needs no timer to *be* past its deadline: a check compares the deadline
//! with the clock. Code that must *react* at the deadline (a task waiting in [`crate::done`], an
//! `after_func` callback) is served by [`stopwire::ArenaView::expire`]. So a layer that holds a
//! context with a deadline arms one tokio timer for it, in the task that serves the request or
//! makes the call; when the timer fires, the layer calls `expire(now)`, which settles every
//! context of the arena whose deadline has passed and wakes what waits on them.
//!
//! The timer is computed as "tokio now plus the ticks left on the arena clock, at the layer's
//! rate", rounded up. If the arena's clock disagrees (a `ManualClock` in a test, or a rate that
//! is not the clock's), the context is still not done when the timer fires; the timer is then
//! armed again for what the arena clock says is left, at most once per poll.

use core::future::Future;
use core::num::NonZeroU64;
use core::pin::Pin;
use core::task::Context;
use core::time::Duration;

use stopwire::Ctx;
use tokio::time::{Instant, Sleep};

/// The longest single timer: far deadlines are reached in steps (tokio's timer wheel reaches
/// about two years; a step of a day keeps well inside it).
const MAX_STEP: Duration = Duration::from_secs(24 * 3600);

/// Ticks at `rate` per second as a duration, rounded up (so a timer fires at or after the
/// deadline, never before it).
pub(crate) fn ticks_to_duration(ticks: u64, rate: NonZeroU64) -> Duration {
    let rate = u128::from(rate.get());
    let ns = (u128::from(ticks) * 1_000_000_000).div_ceil(rate);
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// A duration as ticks at `rate` per second, rounded down (a budget never grows).
pub(crate) fn duration_to_ticks(d: Duration, rate: NonZeroU64) -> u64 {
    let ticks = d.as_nanos() * u128::from(rate.get()) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// One deadline timer, armed at the first poll that finds a pending deadline.
#[derive(Debug)]
pub(crate) struct Driver {
    rate: NonZeroU64,
    enabled: bool,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Driver {
    pub(crate) fn new(rate: NonZeroU64, enabled: bool) -> Self {
        Driver {
            rate,
            enabled,
            timer: None,
        }
    }

    /// Arms the timer for `ctx`'s deadline if it has none yet; when it has fired, runs the
    /// deadline driver. Registers `cx`'s waker with the timer while the context is not done.
    pub(crate) fn poll(&mut self, ctx: Ctx<'static>, cx: &mut Context<'_>) {
        if !self.enabled {
            return;
        }
        // Bounded: a second round only re-arms a timer after a fired one.
        for _ in 0..2 {
            if self.timer.is_none() {
                if ctx.is_done() || tokio::runtime::Handle::try_current().is_err() {
                    return;
                }
                let Ok(Some(deadline)) = ctx.deadline() else {
                    return;
                };
                let arena = ctx.arena();
                let left = ticks_to_duration(deadline.saturating_sub(arena.now()), self.rate);
                let now = Instant::now();
                let at = now.checked_add(left.min(MAX_STEP)).unwrap_or(now);
                self.timer = Some(Box::pin(tokio::time::sleep_until(at)));
            }
            let Some(timer) = self.timer.as_mut() else {
                return;
            };
            if timer.as_mut().poll(cx).is_pending() {
                return;
            }
            self.timer = None;
            let arena = ctx.arena();
            arena.expire(arena.now());
            if ctx.is_done() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_towards_the_deadline() {
        let us = stopwire::GrpcTimeout::STD_CLOCK_RATE;
        assert_eq!(ticks_to_duration(300_000, us), Duration::from_millis(300));
        let three = NonZeroU64::new(3).unwrap();
        assert_eq!(
            ticks_to_duration(1, three),
            Duration::from_nanos(333_333_334)
        );
        assert_eq!(
            duration_to_ticks(Duration::from_nanos(333_333_334), three),
            1
        );
        assert_eq!(duration_to_ticks(Duration::from_millis(999), three), 2);
        assert_eq!(duration_to_ticks(Duration::MAX, us), u64::MAX);
        assert_eq!(
            ticks_to_duration(u64::MAX, NonZeroU64::MIN),
            Duration::from_nanos(u64::MAX)
        );
    }
}
