//! libFuzzer target: the `grpc-timeout` codec of the core (`stopwire::GrpcTimeout`).
//!
//! - Decoding any bytes at any rate returns a value or an error, never panics; what it returns
//!   is the exact duration rounded down to whole ticks (checked against `u128` arithmetic done
//!   here), and a parsed value prints back to text that parses to the same value.
//! - Encoding a tick count at a rate (both taken from the input) decodes back to no more ticks
//!   than it started with (never a later deadline), the encoded duration is at most the exact
//!   one, and less than one unit below it unless the budget is beyond the largest value.
#![no_main]

mod progress;

use std::num::NonZeroU64;

use libfuzzer_sys::fuzz_target;
use stopwire::{GrpcTimeout, GrpcTimeoutError, TimeoutUnit};

/// Rates every input is decoded at, besides the one the input carries.
const RATES: [u64; 7] = [1, 3, 1_000, 32_768, 1_000_000, 1_000_000_000, u64::MAX];

const NS_PER_S: u128 = 1_000_000_000;

fuzz_target!(|data: &[u8]| {
    let mut ops = 0;
    let carried = data
        .get(8..16)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
        .and_then(NonZeroU64::new);
    let rates = RATES
        .iter()
        .filter_map(|&r| NonZeroU64::new(r))
        .chain(carried);
    for rate in rates {
        check_decode(data, rate);
        ops += 1;
        if let Some(rest) = data.get(16..) {
            check_decode(rest, rate);
            ops += 1;
        }
    }
    if let (Some(ticks), Some(rate)) = (data.get(..8), carried) {
        check_encode(u64::from_le_bytes(ticks.try_into().unwrap()), rate);
        ops += 1;
    }
    // Every input also as a tick count at each fixed rate, to reach small counts often.
    let ticks = data
        .iter()
        .take(8)
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    for rate in RATES.iter().filter_map(|&r| NonZeroU64::new(r)) {
        check_encode(ticks, rate);
        check_encode(ticks >> 40, rate);
        ops += 2;
    }
    progress::add("grpc_timeout", ops);
});

fn check_decode(bytes: &[u8], rate: NonZeroU64) {
    let Ok(t) = GrpcTimeout::parse(bytes) else {
        assert!(GrpcTimeout::decode(bytes, rate).is_err());
        return;
    };
    assert!(t.value() <= GrpcTimeout::MAX_VALUE);
    let text = t.to_string();
    assert!(text.len() <= GrpcTimeout::MAX_LEN);
    assert_eq!(
        text.parse::<GrpcTimeout>(),
        Ok(t),
        "{bytes:?} printed as {text}"
    );
    // The exact duration is value * unit nanoseconds; ticks = floor(that * rate / 10^9).
    let exact = t.as_nanos().checked_mul(u128::from(rate.get()));
    match (GrpcTimeout::decode(bytes, rate), exact) {
        (Ok(ticks), Some(exact)) => {
            let ticks = u128::from(ticks);
            assert!(
                ticks * NS_PER_S <= exact,
                "{text} at {rate}/s: {ticks} ticks is too many"
            );
            assert!(
                (ticks + 1) * NS_PER_S > exact,
                "{text} at {rate}/s: {ticks} ticks is too few"
            );
        }
        (Err(GrpcTimeoutError::Overflow), Some(exact)) => {
            assert!(
                exact / NS_PER_S > u128::from(u64::MAX),
                "{text} at {rate}/s overflowed"
            );
        }
        // Beyond u128 the tick count is beyond u64 for sure.
        (r, None) => assert_eq!(r, Err(GrpcTimeoutError::Overflow), "{text} at {rate}/s"),
        (Err(e), _) => panic!("{text} parsed but did not decode at {rate}/s: {e}"),
    }
}

fn check_encode(ticks: u64, rate: NonZeroU64) {
    let t = GrpcTimeout::from_ticks(ticks, rate);
    let mut buf = [0; GrpcTimeout::MAX_LEN];
    let text = t.encode(&mut buf);
    assert_eq!(GrpcTimeout::parse(text.as_bytes()), Ok(t));
    let back = match t.to_ticks(rate) {
        Ok(back) => back,
        Err(e) => panic!("{ticks} at {rate}/s encoded as {text}, which fails to decode: {e}"),
    };
    assert!(
        back <= ticks,
        "{ticks} at {rate}/s: {text} decodes to a later deadline ({back})"
    );
    // Compared in nanoseconds times the rate, when that fits u128.
    let exact = u128::from(ticks) * NS_PER_S;
    let unit = u128::from(t.unit().nanos());
    let r = u128::from(rate.get());
    if let Some(sent) = t.as_nanos().checked_mul(r) {
        assert!(
            sent <= exact,
            "{ticks} at {rate}/s: {text} is longer than the budget"
        );
        let clamped = t.value() == GrpcTimeout::MAX_VALUE && t.unit() == TimeoutUnit::Hours;
        if let Some(one_more) = (t.as_nanos() + unit).checked_mul(r) {
            assert!(
                clamped || one_more > exact,
                "{ticks} at {rate}/s: {text} is shorter than it needs to be"
            );
        }
    }
}
