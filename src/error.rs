//! The one error type of the library.

use core::fmt;

/// Everything an operation can report: the two reasons a context is done (Go's `Canceled` and
/// `DeadlineExceeded`), and the ways a call can be refused. A refused call changes nothing.
///
/// ```
/// use stopwire::{Arena, Error};
/// static ARENA: Arena<4> = Arena::new();
/// let ctx = ARENA.background().with_cancel().unwrap();
/// assert_eq!(ctx.err(), Ok(()));
/// ctx.cancel();
/// assert_eq!(ctx.err(), Err(Error::Canceled));
/// assert_eq!(Error::Canceled.to_string(), "context canceled");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The context was canceled (by hand, by an ancestor, or by release).
    Canceled,
    /// The context's deadline, or an ancestor's, has passed.
    DeadlineExceeded,
    /// No slot is free in the arena (SPEC A3). Nothing changed; retry after a release.
    Full,
    /// The handle's slot has been released or reused, or the handle was never issued (SPEC A2).
    Stale,
    /// Roots cannot be canceled or released (SPEC R2).
    Root,
    /// A detached context (`without_cancel`) cannot be canceled (SPEC W1).
    Detached,
    /// A value layer has no cancellation of its own (SPEC V4): cancel its parent instead.
    ValueLayer,
    /// The handle names a callback registration, not a context.
    NotContext,
    /// Key 0 is reserved (SPEC V1).
    ZeroKey,
    /// Cause 0 means "no cause" and cannot be recorded (SPEC K1).
    ZeroCause,
    /// The context is not done, so it has no cause yet (SPEC K6).
    NotDone,
    /// The arena has no clock ([`crate::NoClock`], the default without `std`), so a deadline
    /// could never fire: give the arena a clock with [`crate::Arena::with_clock`] (SPEC D1).
    NoClock,
}

impl Error {
    /// True for the two reasons a context is done: [`Error::Canceled`] and
    /// [`Error::DeadlineExceeded`].
    pub const fn is_done_reason(self) -> bool {
        matches!(self, Error::Canceled | Error::DeadlineExceeded)
    }

    /// A short static description; the same text `Display` prints.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Canceled => "context canceled",
            Error::DeadlineExceeded => "context deadline exceeded",
            Error::Full => "arena full",
            Error::Stale => "stale handle",
            Error::Root => "a root context cannot be canceled or released",
            Error::Detached => "a detached context cannot be canceled",
            Error::ValueLayer => "a value layer has no cancellation of its own",
            Error::NotContext => "the handle names a callback registration, not a context",
            Error::ZeroKey => "key 0 is not a valid key",
            Error::ZeroCause => "cause 0 is not a valid cause",
            Error::NotDone => "context is not done",
            Error::NoClock => "the arena has no clock: deadlines cannot fire",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for Error {}
