//! Handles: a slot index plus a generation, packed in a `u64` (the C API's `sw_ctx.raw`).
//!
//! Layout of the raw value:
//!
//! ```text
//!  63            32 31             0
//! +----------------+----------------+
//! |   generation   |   index + 1    |
//! +----------------+----------------+
//! ```
//!
//! The low half is never 0 for a slot handle, so the all-zero value is never valid (SPEC R3).
//! Roots use the reserved low half `u32::MAX` with generation 1 (background) or 2 (todo); they
//! name no slot and cost nothing (SPEC R1).

/// A raw context handle: slot index and generation. `Copy`, 8 bytes, meaningful only for the
/// arena that issued it; every operation validates it (SPEC A2) and rejects a stale or forged one.
///
/// Most Rust code uses [`crate::Ctx`] and [`crate::OwnedCtx`] instead; raw handles serve the C API
/// and code that must keep a context in a `static`.
///
/// ```
/// use stopwire::Handle;
/// assert!(Handle::BACKGROUND.is_root());
/// assert_eq!(Handle::from_raw(Handle::TODO.to_raw()), Handle::TODO);
/// assert_eq!(Handle::DEAD.to_raw(), 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(transparent)]
pub struct Handle(u64);

const ROOT_LOW: u32 = u32::MAX;

impl Handle {
    /// The background root (SPEC R1).
    pub const BACKGROUND: Handle = Handle(((1u64) << 32) | ROOT_LOW as u64);
    /// The todo root (SPEC R1).
    pub const TODO: Handle = Handle(((2u64) << 32) | ROOT_LOW as u64);
    /// The all-zero handle: never valid (SPEC R3). Returned as the stop handle of a callback
    /// that ran at registration.
    pub const DEAD: Handle = Handle(0);

    /// Rebuilds a handle from [`Handle::to_raw`]. Any value is accepted; invalid ones are rejected
    /// by the operations that use them.
    pub const fn from_raw(raw: u64) -> Self {
        Handle(raw)
    }

    /// The packed value, as stored in the C API's `sw_ctx`.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// True for [`Handle::BACKGROUND`] and [`Handle::TODO`].
    pub const fn is_root(self) -> bool {
        self.0 == Self::BACKGROUND.0 || self.0 == Self::TODO.0
    }

    pub(crate) const fn new(index: usize, generation: u32) -> Self {
        Handle(((generation as u64) << 32) | (index as u64 + 1))
    }

    /// The slot index, or `None` for the zero handle and the reserved root range.
    #[inline]
    pub(crate) const fn index(self) -> Option<usize> {
        let low = self.0 as u32;
        if low == 0 || low == ROOT_LOW {
            None
        } else {
            Some(low as usize - 1)
        }
    }

    #[inline]
    pub(crate) const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}
