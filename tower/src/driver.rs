//! Deadlines under the layers fire by themselves: the engine's host deadline driver serves the
//! arena ([`stopwire::ArenaView::drive`]), and the layers only make sure it runs.
//!
//! A stopwire context needs no timer to *be* past its deadline; code that must *react* at the
//! deadline (a handler awaiting [`crate::done`], a call the client layer drops, an `after_func`
//! callback) needs something to run [`stopwire::ArenaView::expire`] then. That is the engine's
//! driver thread, one per arena: started by itself for an arena in a `static` on a real-time
//! clock at its first deadline, and by `drive()` for any other `'static` arena. Every arena the
//! layers see is `'static` (they hold `Ctx<'static>`), so each layer calls `drive()` on the
//! arenas it serves, unless told not to ([`crate::ServerLayer::drive_deadlines`]): the server
//! layer once, when it builds its service; the client layer at each call under a context (after
//! the first, one relaxed load). No timer of the crate's own, so no runtime is needed.
//!
//! The driver sleeps by the clock's own rate ([`stopwire::Clock::ticks_per_second`]); a clock
//! without one (a `ManualClock`, a clock of one's own that moves in jumps) wakes it with
//! [`stopwire::advanced`]. The layers' rate is only for the `grpc-timeout` header ([`rate_of`]).

use core::num::NonZeroU64;
use core::time::Duration;

/// The rate the layers convert `grpc-timeout` with: the one set on the layer, else the arena
/// clock's own ([`stopwire::Clock::ticks_per_second`]), else 1 MHz
/// ([`stopwire::GrpcTimeout::STD_CLOCK_RATE`]: a clock without a rate, such as `ManualClock`, is
/// taken to count microseconds, as the host default does).
pub(crate) fn rate_of(set: Option<NonZeroU64>, arena: &stopwire::ArenaView) -> NonZeroU64 {
    set.or_else(|| arena.clock().ticks_per_second().and_then(NonZeroU64::new))
        .unwrap_or(stopwire::GrpcTimeout::STD_CLOCK_RATE)
}

/// A duration as ticks at `rate` per second, rounded down (a budget never grows).
pub(crate) fn duration_to_ticks(d: Duration, rate: NonZeroU64) -> u64 {
    let ticks = d.as_nanos() * u128::from(rate.get()) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_down_to_ticks() {
        let us = stopwire::GrpcTimeout::STD_CLOCK_RATE;
        assert_eq!(duration_to_ticks(Duration::from_millis(300), us), 300_000);
        let three = NonZeroU64::new(3).unwrap();
        assert_eq!(
            duration_to_ticks(Duration::from_nanos(333_333_334), three),
            1
        );
        assert_eq!(duration_to_ticks(Duration::from_millis(999), three), 2);
        assert_eq!(duration_to_ticks(Duration::MAX, us), u64::MAX);
    }
}
