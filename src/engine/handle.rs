//! Handles: a slot index plus a generation, packed in a `u64` (the C API's `sw_ctx.raw`).
//!
//! Layout of the raw value, for an arena whose indices need `b` bits (the smallest `b` with
//! `capacity + 1 < 2^b`, so that an all-ones index field is never a slot):
//!
//! ```text
//!  63                  b  b-1             0
//! +---------------------+-----------------+
//! |     generation      |    index + 1    |
//! +---------------------+-----------------+
//! ```
//!
//! The index field is never 0 for a slot handle, so the all-zero value is never valid (SPEC R3).
//! The generation takes every bit the index leaves (bounded by the state word's generation width):
//! 53 bits for a 1024-slot arena on a 64-bit host, so that a stale handle could alias a newcomer in
//! the same slot only after 2^53 reuses of that slot — centuries at full speed (SPEC A2). Roots are
//! the two values with every bit set but possibly the lowest (`u64::MAX`, `u64::MAX - 1`): slot
//! generations never reach the all-ones value, so no slot handle equals them (SPEC R1).

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

impl Handle {
    /// The background root (SPEC R1).
    pub const BACKGROUND: Handle = Handle(u64::MAX);
    /// The todo root (SPEC R1).
    pub const TODO: Handle = Handle(u64::MAX - 1);
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
        self.0 >= u64::MAX - 1
    }
}

/// How an arena of a given capacity packs handles.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packing {
    /// Bits of the index field.
    pub(crate) idx_bits: u32,
    /// `2^idx_bits - 1`, kept rather than computed: every check decodes a handle.
    idx_mask: u64,
    /// Generations are taken modulo this (`2^bits - 1`: the all-ones value is never used).
    pub(crate) gen_modulus: u64,
}

impl Packing {
    pub(crate) const fn for_capacity(capacity: usize) -> Self {
        let idx_bits = usize::BITS - (capacity + 1).leading_zeros();
        let free = 64 - idx_bits;
        let bits = if free < crate::engine::slot::GEN_BITS {
            free
        } else {
            crate::engine::slot::GEN_BITS
        };
        Packing {
            idx_bits,
            idx_mask: (1u64 << idx_bits) - 1,
            gen_modulus: (1u64 << bits) - 1,
        }
    }

    #[inline]
    pub(crate) const fn encode(self, index: usize, generation: u64) -> Handle {
        Handle((generation << self.idx_bits) | (index as u64 + 1))
    }

    /// Slot index (possibly out of range: callers bound-check) and generation of a handle. The
    /// zero handle and roots give an index beyond any arena.
    #[inline]
    pub(crate) const fn decode(self, h: Handle) -> (usize, u64) {
        let low = h.0 & self.idx_mask;
        ((low as usize).wrapping_sub(1), h.0 >> self.idx_bits)
    }

    /// The generation after `g`.
    #[inline]
    pub(crate) const fn next_gen(self, g: u64) -> u64 {
        if g + 1 >= self.gen_modulus {
            0
        } else {
            g + 1
        }
    }
}
