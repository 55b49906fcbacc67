//! Status codes, and the one mapping from [`engine::Error`] to them.

use core::ffi::c_char;

use engine::Error;

/// The result of a call: a `uint32_t` in C (an enum with `uint32_t` underlying type in C++). `SW_OK` is 0; the other numbers are fixed once published
/// and never reused. Every refusal (any code but `SW_OK`, `SW_CANCELED` and
/// `SW_DEADLINE_EXCEEDED`) means the call changed nothing.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum sw_status {
    /// Success; from `sw_err`: the context is not done.
    SW_OK = 0,
    /// The context was canceled (by hand, by an ancestor, or by release) (SPEC C2, C6).
    SW_CANCELED = 1,
    /// The context's deadline, or an ancestor's, has passed (SPEC D4).
    SW_DEADLINE_EXCEEDED = 2,
    /// A required pointer (an out-pointer, the callback) was NULL; nothing was done.
    SW_ERR_NULL_ARG = 3,
    /// The handle was released, its slot reused, or it was never issued; nothing was done (SPEC A2).
    SW_ERR_STALE_HANDLE = 4,
    /// No free slot in the arena; nothing changed, retry after a release (SPEC A3).
    SW_ERR_ARENA_FULL = 5,
    /// No such value, deadline or cause (a cause exists only once the context is done).
    SW_ERR_NOT_FOUND = 6,
    /// An argument the call does not accept: a root or detached context to cancel or release
    /// (SPEC R2, W1), key 0 (SPEC V1), cause 0 to `sw_cancel_cause` (SPEC K1), a stop handle where a context is
    /// needed.
    SW_ERR_INVALID_ARG = 7,
    /// A bug in stopwire: a Rust panic was stopped at the boundary (host builds). Never expected;
    /// please report it.
    SW_ERR_INTERNAL = 8,
}

impl From<Error> for sw_status {
    fn from(e: Error) -> Self {
        match e {
            Error::Canceled => sw_status::SW_CANCELED,
            Error::DeadlineExceeded => sw_status::SW_DEADLINE_EXCEEDED,
            Error::Stale => sw_status::SW_ERR_STALE_HANDLE,
            Error::Full => sw_status::SW_ERR_ARENA_FULL,
            Error::NotDone => sw_status::SW_ERR_NOT_FOUND,
            // Root, Detached, NotContext, ZeroKey, ZeroCause, and any later refusal of an argument.
            _ => sw_status::SW_ERR_INVALID_ARG,
        }
    }
}

/// `SW_OK` for `Ok(())`, the error's code otherwise.
pub(crate) fn status_of(r: Result<(), Error>) -> sw_status {
    match r {
        Ok(()) => sw_status::SW_OK,
        Err(e) => e.into(),
    }
}

/// A static, human-readable name for any status value, `"unknown"` for numbers that are not one.
/// The string is never freed. ISR-safe.
#[no_mangle]
pub extern "C" fn sw_status_str(s: u32) -> *const c_char {
    let text: &'static core::ffi::CStr = match s {
        0 => c"ok",
        1 => c"context canceled",
        2 => c"context deadline exceeded",
        3 => c"null pointer argument",
        4 => c"stale handle",
        5 => c"arena full",
        6 => c"not found",
        7 => c"invalid argument",
        8 => c"internal error (a panic was caught at the C boundary)",
        _ => c"unknown",
    };
    text.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_the_contracts_code() {
        use sw_status::*;
        let table = [
            (Error::Canceled, SW_CANCELED),
            (Error::DeadlineExceeded, SW_DEADLINE_EXCEEDED),
            (Error::Full, SW_ERR_ARENA_FULL),
            (Error::Stale, SW_ERR_STALE_HANDLE),
            (Error::Root, SW_ERR_INVALID_ARG),
            (Error::Detached, SW_ERR_INVALID_ARG),
            (Error::ValueLayer, SW_ERR_INVALID_ARG),
            (Error::NotContext, SW_ERR_INVALID_ARG),
            (Error::ZeroKey, SW_ERR_INVALID_ARG),
            (Error::ZeroCause, SW_ERR_INVALID_ARG),
            (Error::NotDone, SW_ERR_NOT_FOUND),
        ];
        for (e, s) in table {
            assert_eq!(sw_status::from(e), s, "{e:?}");
        }
    }

    #[test]
    fn status_str_names_every_code_and_unknown_otherwise() {
        // SAFETY: sw_status_str returns a pointer to a static NUL-terminated string.
        let name = |s: u32| unsafe { core::ffi::CStr::from_ptr(sw_status_str(s)) };
        for s in 0..=8 {
            assert_ne!(name(s).to_bytes(), b"unknown", "{s}");
        }
        for s in [9, 100, u32::MAX] {
            assert_eq!(name(s).to_bytes(), b"unknown");
        }
    }
}
