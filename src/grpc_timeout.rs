//! The `grpc-timeout` header: how a caller tells a gRPC server how long it will wait, and how a
//! server passes what remains of that budget on to the calls it makes (Go's gRPC does both, and
//! so a whole tree of services stops together).
//!
//! # The wire form
//!
//! One to eight ASCII digits, then one unit letter: `H` hours, `M` minutes, `S` seconds,
//! `m` milliseconds, `u` microseconds, `n` nanoseconds. Nothing else is accepted: no sign, no
//! spaces, no ninth digit, nothing after the unit. The gRPC protocol text says "positive", but Go
//! sends `0n` for a budget that is already spent, so a zero value is accepted too: it decodes to
//! zero ticks, a deadline that has already passed.
//!
//! # Rounding: never a later deadline
//!
//! Both directions round towards the *earlier* deadline, so a service down the tree never keeps
//! working after the caller has stopped waiting (the time the request spends in transit already
//! makes the receiver's deadline a little later than the sender's; rounding must not add to it):
//!
//! - [`GrpcTimeout::to_ticks`] (decode) rounds down to whole ticks of the arena clock.
//! - [`GrpcTimeout::from_ticks`] (encode) gives the *shortest exact* value when one fits in eight
//!   digits (the coarsest unit that holds the duration without remainder: `300m`, not
//!   `300000u`). When none is exact, it gives the *finest* unit whose value fits, rounded down:
//!   the loss is less than one unit of that value, and since a finer unit did not fit, the value
//!   has at least six digits, so the budget shrinks by less than 1/100 000 of itself. A budget
//!   beyond `99999999H` (more than 11 000 years) is sent as `99999999H`. Zero is sent as `0n`.
//!
//! So `decode(encode(t)) <= t` for every tick count and rate, with equality whenever the encoded
//! value is exact, which on the 1 MHz host clock means every budget up to 100 seconds and every
//! whole number of milliseconds up to 27 hours.
//!
//! Decoding fails with [`GrpcTimeoutError::Overflow`] only when the tick count does not fit a
//! `u64` (from 5.1 * 10^7 ticks per second on, for the largest hour values); a caller may treat
//! that as "no deadline the clock can express".
//!
//! Nothing here allocates or panics: every index is checked and the arithmetic is done in `u128`,
//! where the largest product (`99999999 * 3600 * u64::MAX`) fits with room to spare.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use core::fmt;
use core::num::NonZeroU64;
use core::str::FromStr;

use crate::context::Ctx;
use crate::error::Error;

/// The unit letter of a `grpc-timeout` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TimeoutUnit {
    /// `n`
    Nanos,
    /// `u`
    Micros,
    /// `m`
    Millis,
    /// `S`
    Seconds,
    /// `M`
    Minutes,
    /// `H`
    Hours,
}

impl TimeoutUnit {
    /// Finest first.
    const ALL: [TimeoutUnit; 6] = [
        TimeoutUnit::Nanos,
        TimeoutUnit::Micros,
        TimeoutUnit::Millis,
        TimeoutUnit::Seconds,
        TimeoutUnit::Minutes,
        TimeoutUnit::Hours,
    ];

    /// The ASCII letter of the unit on the wire.
    ///
    /// ```
    /// use stopwire::TimeoutUnit;
    /// assert_eq!(TimeoutUnit::Millis.letter(), b'm');
    /// assert_eq!(TimeoutUnit::Minutes.letter(), b'M');
    /// ```
    pub const fn letter(self) -> u8 {
        match self {
            TimeoutUnit::Nanos => b'n',
            TimeoutUnit::Micros => b'u',
            TimeoutUnit::Millis => b'm',
            TimeoutUnit::Seconds => b'S',
            TimeoutUnit::Minutes => b'M',
            TimeoutUnit::Hours => b'H',
        }
    }

    /// The unit a letter names, if any (case matters: `m` is a millisecond, `M` a minute).
    pub const fn from_letter(letter: u8) -> Option<Self> {
        Some(match letter {
            b'n' => TimeoutUnit::Nanos,
            b'u' => TimeoutUnit::Micros,
            b'm' => TimeoutUnit::Millis,
            b'S' => TimeoutUnit::Seconds,
            b'M' => TimeoutUnit::Minutes,
            b'H' => TimeoutUnit::Hours,
            _ => return None,
        })
    }

    /// Nanoseconds in one unit.
    pub const fn nanos(self) -> u64 {
        match self {
            TimeoutUnit::Nanos => 1,
            TimeoutUnit::Micros => 1_000,
            TimeoutUnit::Millis => 1_000_000,
            TimeoutUnit::Seconds => 1_000_000_000,
            TimeoutUnit::Minutes => 60_000_000_000,
            TimeoutUnit::Hours => 3_600_000_000_000,
        }
    }
}

/// Why a `grpc-timeout` value was refused. Decoding checks in the order of the variants, so a
/// value with several faults reports the first one listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GrpcTimeoutError {
    /// The value is empty.
    Empty,
    /// The value ends in a digit: the unit letter is missing (`"100"`).
    MissingUnit,
    /// The last byte is neither a digit nor one of `H M S m u n` (`"100s"`, `"5ms"`, non-ASCII).
    UnknownUnit,
    /// A unit with no digits before it (`"m"`).
    NoDigits,
    /// More than eight digits.
    TooManyDigits,
    /// A byte before the unit is not an ASCII digit (a sign, a space, a dot, non-ASCII).
    NotDigit,
    /// The duration does not fit a `u64` count of ticks at the given rate.
    Overflow,
}

impl GrpcTimeoutError {
    /// A short static description; the same text `Display` prints.
    pub const fn as_str(self) -> &'static str {
        match self {
            GrpcTimeoutError::Empty => "empty grpc-timeout",
            GrpcTimeoutError::MissingUnit => "grpc-timeout has no unit",
            GrpcTimeoutError::UnknownUnit => "grpc-timeout unit is not one of H M S m u n",
            GrpcTimeoutError::NoDigits => "grpc-timeout has no digits",
            GrpcTimeoutError::TooManyDigits => "grpc-timeout has more than 8 digits",
            GrpcTimeoutError::NotDigit => "grpc-timeout value is not made of ASCII digits",
            GrpcTimeoutError::Overflow => "grpc-timeout does not fit 64-bit ticks at this rate",
        }
    }
}

impl fmt::Display for GrpcTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for GrpcTimeoutError {}

/// A `grpc-timeout` value: at most [`GrpcTimeout::MAX_VALUE`] of one [`TimeoutUnit`].
///
/// Decode a header into ticks of the arena clock, and encode what remains of a context's
/// budget for the next call (the rounding rules are in the module docs: both directions round
/// towards the earlier deadline):
///
/// ```
/// use stopwire::{Arena, GrpcTimeout, ManualClock};
///
/// static CLOCK: ManualClock = ManualClock::new(0);
/// static ARENA: Arena<4> = Arena::with_clock(&CLOCK);
/// let rate = GrpcTimeout::STD_CLOCK_RATE; // this test clock counts microseconds too
///
/// // A server: the request's context gets the caller's budget.
/// let ticks = GrpcTimeout::decode(b"300m", rate)?;
/// assert_eq!(ticks, 300_000);
/// let req = ARENA.background().with_timeout(ticks).unwrap();
///
/// // 120 ms of work later, the next call gets what remains.
/// CLOCK.advance(120_000);
/// let next = GrpcTimeout::remaining(*req, rate).unwrap().unwrap();
/// let mut buf = [0; GrpcTimeout::MAX_LEN];
/// assert_eq!(next.encode(&mut buf), "180m");
/// # Ok::<(), stopwire::GrpcTimeoutError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GrpcTimeout {
    value: u32,
    unit: TimeoutUnit,
}

impl GrpcTimeout {
    /// The header's name (lower case, as HTTP/2 sends it).
    pub const HEADER: &'static str = "grpc-timeout";
    /// The largest value: eight digits.
    pub const MAX_VALUE: u32 = 99_999_999;
    /// The longest encoding: eight digits and the unit.
    pub const MAX_LEN: usize = 9;
    /// The rate of [`crate::StdClock`], the default host clock: one tick per microsecond.
    pub const STD_CLOCK_RATE: NonZeroU64 = match NonZeroU64::new(1_000_000) {
        Some(r) => r,
        None => NonZeroU64::MIN,
    };

    /// `value` of `unit`, or `None` when `value` has more than eight digits.
    ///
    /// ```
    /// use stopwire::{GrpcTimeout, TimeoutUnit};
    /// assert!(GrpcTimeout::new(99_999_999, TimeoutUnit::Hours).is_some());
    /// assert!(GrpcTimeout::new(100_000_000, TimeoutUnit::Nanos).is_none());
    /// ```
    pub const fn new(value: u32, unit: TimeoutUnit) -> Option<Self> {
        if value > Self::MAX_VALUE {
            return None;
        }
        Some(GrpcTimeout { value, unit })
    }

    /// The number before the unit.
    pub const fn value(self) -> u32 {
        self.value
    }

    /// The unit.
    pub const fn unit(self) -> TimeoutUnit {
        self.unit
    }

    /// The duration in nanoseconds (at most `99999999H`, which fits a `u128` with ease).
    pub const fn as_nanos(self) -> u128 {
        (self.value as u128).saturating_mul(self.unit.nanos() as u128)
    }

    /// Parses a header value (the grammar and the errors are in the module docs).
    ///
    /// ```
    /// use stopwire::{GrpcTimeout, GrpcTimeoutError, TimeoutUnit};
    /// let t = GrpcTimeout::parse(b"250m")?;
    /// assert_eq!((t.value(), t.unit()), (250, TimeoutUnit::Millis));
    /// assert_eq!(GrpcTimeout::parse(b"250ms"), Err(GrpcTimeoutError::UnknownUnit));
    /// assert_eq!(GrpcTimeout::parse(b"123456789n"), Err(GrpcTimeoutError::TooManyDigits));
    /// assert_eq!(GrpcTimeout::parse(b"-5S"), Err(GrpcTimeoutError::NotDigit));
    /// # Ok::<(), GrpcTimeoutError>(())
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Self, GrpcTimeoutError> {
        let Some((&last, digits)) = bytes.split_last() else {
            return Err(GrpcTimeoutError::Empty);
        };
        let unit = match TimeoutUnit::from_letter(last) {
            Some(unit) => unit,
            None if last.is_ascii_digit() => return Err(GrpcTimeoutError::MissingUnit),
            None => return Err(GrpcTimeoutError::UnknownUnit),
        };
        if digits.is_empty() {
            return Err(GrpcTimeoutError::NoDigits);
        }
        if digits.len() > 8 {
            return Err(GrpcTimeoutError::TooManyDigits);
        }
        let mut value: u32 = 0;
        for &b in digits {
            if !b.is_ascii_digit() {
                return Err(GrpcTimeoutError::NotDigit);
            }
            // At most eight digits: the value stays below 10^8, far from `u32::MAX`.
            value = value
                .saturating_mul(10)
                .saturating_add(u32::from(b.saturating_sub(b'0')));
        }
        Ok(GrpcTimeout { value, unit })
    }

    /// The duration in ticks of a clock with `rate` ticks per second, rounded down (never a
    /// later deadline than the sender meant). Fails only with [`GrpcTimeoutError::Overflow`].
    ///
    /// ```
    /// use core::num::NonZeroU64;
    /// use stopwire::GrpcTimeout;
    /// let t = GrpcTimeout::parse(b"1500u")?;
    /// assert_eq!(t.to_ticks(GrpcTimeout::STD_CLOCK_RATE)?, 1_500);
    /// let khz = NonZeroU64::new(1_000).unwrap(); // a 1 kHz tick: 1.5 ms is one whole tick
    /// assert_eq!(t.to_ticks(khz)?, 1);
    /// # Ok::<(), stopwire::GrpcTimeoutError>(())
    /// ```
    pub fn to_ticks(self, rate: NonZeroU64) -> Result<u64, GrpcTimeoutError> {
        let v = u128::from(self.value);
        let r = u128::from(rate.get());
        // Whole seconds multiply exactly; fractions of a second divide once, at the end. The
        // largest product is 99999999 * 3600 * (2^64 - 1) < 2^103, so nothing saturates.
        let ticks = match self.unit {
            TimeoutUnit::Hours => v.saturating_mul(3600).saturating_mul(r),
            TimeoutUnit::Minutes => v.saturating_mul(60).saturating_mul(r),
            TimeoutUnit::Seconds => v.saturating_mul(r),
            TimeoutUnit::Millis => v.saturating_mul(r).checked_div(1_000).unwrap_or(0),
            TimeoutUnit::Micros => v.saturating_mul(r).checked_div(1_000_000).unwrap_or(0),
            TimeoutUnit::Nanos => v.saturating_mul(r).checked_div(1_000_000_000).unwrap_or(0),
        };
        u64::try_from(ticks).map_err(|_| GrpcTimeoutError::Overflow)
    }

    /// Parses a header value and converts it to ticks: [`GrpcTimeout::parse`] then
    /// [`GrpcTimeout::to_ticks`].
    ///
    /// ```
    /// use stopwire::{GrpcTimeout, GrpcTimeoutError};
    /// let rate = GrpcTimeout::STD_CLOCK_RATE;
    /// assert_eq!(GrpcTimeout::decode(b"2S", rate), Ok(2_000_000));
    /// assert_eq!(GrpcTimeout::decode(b"999n", rate), Ok(0)); // under one tick: rounded down
    /// assert_eq!(GrpcTimeout::decode(b"", rate), Err(GrpcTimeoutError::Empty));
    /// ```
    pub fn decode(bytes: &[u8], rate: NonZeroU64) -> Result<u64, GrpcTimeoutError> {
        Self::parse(bytes)?.to_ticks(rate)
    }

    /// The value to send for `ticks` of a clock with `rate` ticks per second: the shortest
    /// exact value if one fits in eight digits, else the finest unit that fits, rounded down
    /// (module docs). Zero is `0n`.
    ///
    /// ```
    /// use core::num::NonZeroU64;
    /// use stopwire::GrpcTimeout;
    /// let us = GrpcTimeout::STD_CLOCK_RATE;
    /// let mut buf = [0; GrpcTimeout::MAX_LEN];
    /// assert_eq!(GrpcTimeout::from_ticks(300_000, us).encode(&mut buf), "300m");
    /// assert_eq!(GrpcTimeout::from_ticks(90_000_000, us).encode(&mut buf), "90S");
    /// assert_eq!(GrpcTimeout::from_ticks(1_234_567, us).encode(&mut buf), "1234567u");
    /// // 100 s and 1 us: no exact value fits, so milliseconds, rounded down
    /// assert_eq!(GrpcTimeout::from_ticks(100_000_001, us).encode(&mut buf), "100000m");
    /// // a 32 768 Hz tick is 30517.578125 ns: no exact value, nanoseconds rounded down
    /// let rtc = NonZeroU64::new(32_768).unwrap();
    /// assert_eq!(GrpcTimeout::from_ticks(1, rtc).encode(&mut buf), "30517n");
    /// assert_eq!(GrpcTimeout::from_ticks(512, rtc).encode(&mut buf), "15625u"); // 1/64 s
    /// ```
    pub fn from_ticks(ticks: u64, rate: NonZeroU64) -> Self {
        if ticks == 0 {
            return GrpcTimeout {
                value: 0,
                unit: TimeoutUnit::Nanos,
            };
        }
        // The exact duration is `ns / rate` nanoseconds, a rational number; `ns` < 2^94.
        let ns = u128::from(ticks).saturating_mul(1_000_000_000);
        let r = u128::from(rate.get());
        let max = u128::from(Self::MAX_VALUE);
        // `rate * unit` < 2^64 * 2^42: no saturation.
        let per = |unit: TimeoutUnit| r.saturating_mul(u128::from(unit.nanos()));
        // Coarsest exact unit first: the smallest number, so the shortest text.
        for unit in Self::ALL_COARSEST_FIRST {
            let den = per(unit);
            if ns.checked_rem(den) == Some(0) {
                let q = ns.checked_div(den).unwrap_or(u128::MAX);
                if q <= max {
                    return Self::fit(q, unit);
                }
            }
        }
        // No exact value fits: the finest unit that does, rounded down.
        for unit in TimeoutUnit::ALL {
            let q = ns.checked_div(per(unit)).unwrap_or(u128::MAX);
            if q <= max {
                return Self::fit(q, unit);
            }
        }
        GrpcTimeout {
            value: Self::MAX_VALUE,
            unit: TimeoutUnit::Hours,
        }
    }

    const ALL_COARSEST_FIRST: [TimeoutUnit; 6] = [
        TimeoutUnit::Hours,
        TimeoutUnit::Minutes,
        TimeoutUnit::Seconds,
        TimeoutUnit::Millis,
        TimeoutUnit::Micros,
        TimeoutUnit::Nanos,
    ];

    fn fit(q: u128, unit: TimeoutUnit) -> Self {
        GrpcTimeout {
            value: u32::try_from(q).unwrap_or(Self::MAX_VALUE),
            unit,
        }
    }

    /// What remains of `ctx`'s budget, as the value to send with a call made under it:
    /// `Ok(None)` when it has no deadline, the context's reason when it is already done (do not
    /// make the call), else [`GrpcTimeout::from_ticks`] of the ticks left until its deadline on
    /// its arena's clock, which must tick at `rate`.
    ///
    /// ```
    /// use stopwire::{Arena, Error, GrpcTimeout, ManualClock};
    /// static CLOCK: ManualClock = ManualClock::new(0);
    /// static ARENA: Arena<4> = Arena::with_clock(&CLOCK);
    /// let rate = GrpcTimeout::STD_CLOCK_RATE;
    /// assert_eq!(GrpcTimeout::remaining(ARENA.background(), rate), Ok(None));
    /// let call = ARENA.background().with_timeout(2_000_000).unwrap();
    /// assert_eq!(GrpcTimeout::remaining(*call, rate)?.map(|t| t.to_string()), Some("2S".into()));
    /// CLOCK.advance(2_000_000);
    /// assert_eq!(GrpcTimeout::remaining(*call, rate), Err(Error::DeadlineExceeded));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn remaining(ctx: Ctx<'_>, rate: NonZeroU64) -> Result<Option<Self>, Error> {
        ctx.err()?;
        let Some(deadline) = ctx.deadline()? else {
            return Ok(None);
        };
        let left = deadline.saturating_sub(ctx.arena().now());
        Ok(Some(Self::from_ticks(left, rate)))
    }

    /// Writes the wire form into `buf` and returns it as text (at most [`GrpcTimeout::MAX_LEN`]
    /// bytes, ASCII).
    ///
    /// ```
    /// use stopwire::{GrpcTimeout, TimeoutUnit};
    /// let mut buf = [0; GrpcTimeout::MAX_LEN];
    /// let t = GrpcTimeout::new(99_999_999, TimeoutUnit::Hours).unwrap();
    /// assert_eq!(t.encode(&mut buf), "99999999H");
    /// ```
    pub fn encode(self, buf: &mut [u8; Self::MAX_LEN]) -> &str {
        // Digits right to left into the first eight bytes, then moved to the front.
        let mut digits = [0u8; 8];
        let mut n = self.value;
        let mut len = 0usize;
        for d in digits.iter_mut().rev() {
            *d = b'0'.saturating_add((n % 10) as u8);
            n /= 10;
            len = len.saturating_add(1);
            if n == 0 {
                break;
            }
        }
        let start = digits.len().saturating_sub(len);
        let mut out = 0usize;
        for (dst, &src) in buf.iter_mut().zip(digits.iter().skip(start)) {
            *dst = src;
            out = out.saturating_add(1);
        }
        if let Some(slot) = buf.get_mut(out) {
            *slot = self.unit.letter();
            out = out.saturating_add(1);
        }
        match buf.get(..out).map(core::str::from_utf8) {
            Some(Ok(text)) => text,
            _ => "",
        }
    }
}

impl fmt::Display for GrpcTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0; Self::MAX_LEN];
        f.write_str(self.encode(&mut buf))
    }
}

impl FromStr for GrpcTimeout {
    type Err = GrpcTimeoutError;

    /// As [`GrpcTimeout::parse`].
    fn from_str(s: &str) -> Result<Self, GrpcTimeoutError> {
        Self::parse(s.as_bytes())
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects,
    clippy::panic,
    reason = "tests"
)]
mod tests {
    use super::*;
    use std::string::ToString;

    const US: NonZeroU64 = GrpcTimeout::STD_CLOCK_RATE;

    fn rate(r: u64) -> NonZeroU64 {
        NonZeroU64::new(r).unwrap()
    }

    fn text(ticks: u64, r: NonZeroU64) -> std::string::String {
        GrpcTimeout::from_ticks(ticks, r).to_string()
    }

    #[test]
    fn parse_every_unit() {
        let table: [(&str, u32, TimeoutUnit, u64); 6] = [
            ("7H", 7, TimeoutUnit::Hours, 7 * 3_600_000_000),
            ("7M", 7, TimeoutUnit::Minutes, 7 * 60_000_000),
            ("7S", 7, TimeoutUnit::Seconds, 7_000_000),
            ("7m", 7, TimeoutUnit::Millis, 7_000),
            ("7u", 7, TimeoutUnit::Micros, 7),
            ("7000n", 7000, TimeoutUnit::Nanos, 7),
        ];
        for (s, value, unit, ticks) in table {
            let t = GrpcTimeout::parse(s.as_bytes()).unwrap();
            assert_eq!((t.value(), t.unit()), (value, unit), "{s}");
            assert_eq!(t.to_ticks(US), Ok(ticks), "{s}");
            assert_eq!(TimeoutUnit::from_letter(unit.letter()), Some(unit));
            assert_eq!(t.as_nanos(), u128::from(ticks) * 1000, "{s}");
        }
    }

    #[test]
    fn grammar_errors() {
        use GrpcTimeoutError::*;
        let table: [(&[u8], GrpcTimeoutError); 17] = [
            (b"", Empty),
            (b"100", MissingUnit),
            (b"0", MissingUnit),
            (b"100s", UnknownUnit),
            (b"100ms", UnknownUnit),
            (b"100h", UnknownUnit),
            (b"100 ", UnknownUnit),
            ("100\u{b5}".as_bytes(), UnknownUnit), // "µ": non-ASCII unit
            (b"m", NoDigits),
            (b"H", NoDigits),
            (b"123456789n", TooManyDigits),
            (b"000000000S", TooManyDigits),
            (b"+5S", NotDigit),
            (b"-5S", NotDigit),
            (b" 5S", NotDigit),
            (b"1.5S", NotDigit),
            ("\u{665}S".as_bytes(), NotDigit), // an Arabic-Indic digit
        ];
        for (s, want) in table {
            assert_eq!(GrpcTimeout::parse(s), Err(want), "{s:?}");
            assert_eq!(GrpcTimeout::decode(s, US), Err(want), "{s:?}");
        }
        assert_eq!("5ms".parse::<GrpcTimeout>(), Err(UnknownUnit));
        assert_eq!(Overflow.to_string(), Overflow.as_str());
    }

    #[test]
    fn eight_digit_limits() {
        let t = GrpcTimeout::parse(b"99999999H").unwrap();
        assert_eq!(t.value(), GrpcTimeout::MAX_VALUE);
        assert_eq!(t.to_ticks(US), Ok(99_999_999 * 3_600_000_000));
        assert_eq!(GrpcTimeout::parse(b"00000001n").unwrap().value(), 1);
        assert_eq!(GrpcTimeout::parse(b"0n").unwrap().to_ticks(US), Ok(0));
        assert_eq!(
            GrpcTimeout::parse(b"00000000H").unwrap().to_ticks(US),
            Ok(0)
        );
        assert!(GrpcTimeout::new(GrpcTimeout::MAX_VALUE, TimeoutUnit::Nanos).is_some());
        assert!(GrpcTimeout::new(GrpcTimeout::MAX_VALUE + 1, TimeoutUnit::Nanos).is_none());
        let mut buf = [0; GrpcTimeout::MAX_LEN];
        assert_eq!(t.encode(&mut buf), "99999999H");
        assert_eq!(
            GrpcTimeout::from_ticks(u64::MAX, US).to_string(),
            "99999999H"
        );
    }

    #[test]
    fn overflow_at_high_rates() {
        let hours = GrpcTimeout::parse(b"99999999H").unwrap();
        // 3.6 * 10^11 s: fits 64 bits up to about 5.1 * 10^7 ticks per second.
        assert!(hours.to_ticks(rate(51_000_000)).is_ok());
        assert_eq!(
            hours.to_ticks(rate(52_000_000)),
            Err(GrpcTimeoutError::Overflow)
        );
        assert_eq!(
            hours.to_ticks(rate(u64::MAX)),
            Err(GrpcTimeoutError::Overflow)
        );
        // One second at the largest rate fits exactly.
        assert_eq!(GrpcTimeout::decode(b"1S", rate(u64::MAX)), Ok(u64::MAX));
        assert_eq!(
            GrpcTimeout::decode(b"2S", rate(u64::MAX)),
            Err(GrpcTimeoutError::Overflow)
        );
    }

    #[test]
    fn decode_rounds_down() {
        // 1 kHz: a tick is a millisecond.
        let khz = rate(1_000);
        assert_eq!(GrpcTimeout::decode(b"1999u", khz), Ok(1));
        assert_eq!(GrpcTimeout::decode(b"999999n", khz), Ok(0));
        assert_eq!(GrpcTimeout::decode(b"1000000n", khz), Ok(1));
        // 3 Hz: a tick is a third of a second.
        assert_eq!(GrpcTimeout::decode(b"1S", rate(3)), Ok(3));
        assert_eq!(GrpcTimeout::decode(b"999m", rate(3)), Ok(2));
    }

    #[test]
    fn encode_shortest_exact() {
        let table: [(u64, &str); 12] = [
            (0, "0n"),
            (1, "1u"),
            (999, "999u"),
            (1_000, "1m"),
            (1_500, "1500u"),
            (300_000, "300m"),
            (1_000_000, "1S"),
            (1_500_000, "1500m"),
            (60_000_000, "1M"),
            (90_000_000, "90S"),
            (3_600_000_000, "1H"),
            (99_999_999, "99999999u"),
        ];
        for (ticks, want) in table {
            assert_eq!(text(ticks, US), want, "{ticks} us");
            assert_eq!(GrpcTimeout::decode(want.as_bytes(), US), Ok(ticks));
        }
        // A 1 GHz clock: nanoseconds.
        assert_eq!(text(1, rate(1_000_000_000)), "1n");
        assert_eq!(text(99_999_999, rate(1_000_000_000)), "99999999n");
        assert_eq!(text(100_000_000, rate(1_000_000_000)), "100m");
        // 32 768 Hz (a watch crystal): one tick is 30517.578125 ns, exact in no unit; 64 ticks
        // are 1953125 ns (1953.125 us); 512 ticks are 15625 us.
        assert_eq!(text(1, rate(32_768)), "30517n");
        assert_eq!(text(64, rate(32_768)), "1953125n");
        assert_eq!(text(512, rate(32_768)), "15625u");
        assert_eq!(text(32_768, rate(32_768)), "1S");
    }

    #[test]
    fn encode_rounds_down_when_inexact() {
        // 100 s + 1 us: too long for microseconds, not whole milliseconds.
        assert_eq!(text(100_000_001, US), "100000m");
        assert_eq!(text(100_000_999, US), "100000m");
        assert_eq!(text(100_001_000, US), "100001m");
        // Beyond 99999999 ms (27.7 h), whole seconds, then minutes, then hours.
        // 100000000.5 s: too long for seconds, so minutes (1666666.675), rounded down.
        assert_eq!(text(100_000_000_500_000, US), "1666666M");
        // 1/3 s at 3 Hz: 333333333.3 ns, 333333.3 us: microseconds, rounded down.
        assert_eq!(text(1, rate(3)), "333333u");
    }

    #[test]
    fn round_trip_never_later() {
        let rates = [1, 3, 7, 1_000, 32_768, 1_000_000, 1_000_000_000, u64::MAX];
        let ticks = [
            0,
            1,
            2,
            999,
            1_001,
            99_999_999,
            100_000_001,
            123_456_789_012,
            u64::MAX / 3,
            u64::MAX,
        ];
        for r in rates {
            for t in ticks {
                let enc = GrpcTimeout::from_ticks(t, rate(r));
                match enc.to_ticks(rate(r)) {
                    Ok(back) => assert!(back <= t, "{t} at {r}/s: {enc} decodes to {back}"),
                    Err(e) => panic!("{t} at {r}/s: {enc} fails to decode: {e}"),
                }
                let s = enc.to_string();
                assert_eq!(s.parse::<GrpcTimeout>(), Ok(enc));
                assert!(s.len() <= GrpcTimeout::MAX_LEN);
            }
        }
    }

    #[test]
    fn remaining_of_a_context() {
        static CLOCK: crate::ManualClock = crate::ManualClock::new(10);
        static ARENA: crate::Arena<4> = crate::Arena::with_clock(&CLOCK);
        assert_eq!(GrpcTimeout::remaining(ARENA.background(), US), Ok(None));
        let req = ARENA.background().with_timeout(300_000).unwrap();
        let child = req.with_cancel().unwrap();
        CLOCK.advance(1_000);
        assert_eq!(
            GrpcTimeout::remaining(*child, US)
                .unwrap()
                .unwrap()
                .to_string(),
            "299m"
        );
        child.cancel();
        assert_eq!(GrpcTimeout::remaining(*child, US), Err(Error::Canceled));
        let view = *req;
        drop(req);
        assert_eq!(GrpcTimeout::remaining(view, US), Err(Error::Stale));
    }
}
