//! One arena slot: the node of the context tree, and its state word.
//!
//! # The state word (`Slot::state`, one `AtomicU32`)
//!
//! ```text
//!  31                      7 6    4  3        2       1 0
//! +-------------------------+------+--------+--------+---+
//! |  generation (25 bits)   | kind | HANDLE | HAS_DL |ERR|
//! +-------------------------+------+--------+--------+---+
//! ```
//!
//! - `ERR` (2 bits): `0` not done; `1` Canceled; `2` DeadlineExceeded; `3` DeadlineExceeded seen
//!   by a check before any walk reached the node. `1` and `2` are *settled*: the cancel walk has
//!   marked the node, unlinked it from its parent's child list and written its cause into `links`.
//!   `3` is set only by a lock-free check with compare-and-swap (targets that have it); the cause
//!   is then derived from the deadline owner, and a later walk settles it to `2`.
//! - `HAS_DL`: the node has an effective deadline, stored in `deadline` (SPEC D2, D5).
//! - `HANDLE`: a handle with this generation is outstanding. Cleared at release; a handle is
//!   valid exactly when `HANDLE` is set and the generations match (SPEC A2).
//! - `kind`: [`Kind`]; fixed while the slot is allocated, kept while a released slot waits for its
//!   descendants (value lookups read it).
//! - `generation`: bumped once per lifetime, at release, so a released handle is stale at once
//!   (SPEC A4) and a slot can be reused 2^25 times before a stale handle could alias (A2 asks 2^24).
//!
//! Callback registrations carry `ERR = 1` from birth, so that the done check's fast path
//! (`ERR` and `HAS_DL` both clear) needs no kind test; every slow path tests the kind first and
//! answers [`crate::Error::NotContext`] for them.
//!
//! Legal combinations: a free slot has kind `Free`, no `HANDLE`. An allocated slot with `HANDLE`
//! is live; without `HANDLE` it is a *zombie* kept for its descendants and registrations (SPEC
//! A5), always settled unless its kind is `Detached` or `Value` (neither has a cancellation of its
//! own, W1, V4). `ERR = 3` implies `HAS_DL`.
//!
//! # Other fields
//!
//! All fields are atomics so that lock-free readers holding a stale handle race with writers
//! without undefined behaviour; under the lock they are accessed `Relaxed`. Writers publish a node
//! with a `Release` store of `state` after writing every other field; readers `Acquire` the state
//! and re-validate it after reading the other fields (a sequence lock keyed by the generation).
//!
//! | field | meaning |
//! |---|---|
//! | `deadline` | effective deadline in ticks (valid with `HAS_DL`); immutable while allocated |
//! | `links` | live and linked: next and previous sibling; settled: the cause; free: next free slot; a claimed callback: next pending callback |
//! | `parent` | parent slot, or `NONE` for children of a root and unlinked registrations |
//! | `first_child` | head of the list of children not yet reached by a cancel walk |
//! | `refs` | what still needs this slot: allocated children in any state, and registrations until they have run or been stopped (I3) |
//! | `payload` | value node: key, value. Deadline owner: cause, queue links. Callback: function, data |

use crate::engine::sync::{AtomicPtr, AtomicU32, Ordering::Relaxed};

#[cfg(target_pointer_width = "64")]
mod width {
    use crate::engine::sync::{AtomicU32, AtomicU64, Ordering};

    /// A slot index. 32 bits on 64-bit hosts, 16 bits on microcontrollers.
    pub(crate) type Idx = u32;
    pub(crate) type AtomicIdx = AtomicU32;
    /// Two indices packed in one word.
    pub(crate) type AtomicPair = AtomicU64;
    pub(crate) type Pair = u64;
    pub(crate) const IDX_BITS: u32 = 32;

    /// A `u64` readable without a lock.
    #[derive(Debug)]
    pub(crate) struct Ticks(AtomicU64);

    impl Ticks {
        #[cfg(not(loom))]
        pub(crate) const fn new() -> Self {
            Ticks(AtomicU64::new(0))
        }
        #[cfg(loom)]
        pub(crate) fn new() -> Self {
            Ticks(AtomicU64::new(0))
        }
        #[inline]
        pub(crate) fn get(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
        #[inline]
        pub(crate) fn set(&self, v: u64) {
            self.0.store(v, Ordering::Relaxed)
        }
    }
}

#[cfg(not(target_pointer_width = "64"))]
mod width {
    use crate::engine::sync::{AtomicU16, AtomicU32, Ordering};

    /// A slot index. 32 bits on 64-bit hosts, 16 bits on microcontrollers.
    pub(crate) type Idx = u16;
    pub(crate) type AtomicIdx = AtomicU16;
    /// Two indices packed in one word.
    pub(crate) type AtomicPair = AtomicU32;
    pub(crate) type Pair = u32;
    pub(crate) const IDX_BITS: u32 = 16;

    /// A `u64` as two halves: 32-bit targets have no 64-bit atomic load. A torn read is possible
    /// only while the slot is being reused, and readers then fail generation re-validation.
    #[derive(Debug)]
    pub(crate) struct Ticks([AtomicU32; 2]);

    impl Ticks {
        #[cfg(not(loom))]
        pub(crate) const fn new() -> Self {
            Ticks([AtomicU32::new(0), AtomicU32::new(0)])
        }
        #[cfg(loom)]
        pub(crate) fn new() -> Self {
            Ticks([AtomicU32::new(0), AtomicU32::new(0)])
        }
        #[inline]
        pub(crate) fn get(&self) -> u64 {
            let lo = self.0[0].load(Ordering::Relaxed) as u64;
            let hi = self.0[1].load(Ordering::Relaxed) as u64;
            (hi << 32) | lo
        }
        #[inline]
        pub(crate) fn set(&self, v: u64) {
            self.0[0].store(v as u32, Ordering::Relaxed);
            self.0[1].store((v >> 32) as u32, Ordering::Relaxed);
        }
    }
}

pub(crate) use width::{AtomicIdx, AtomicPair, Idx, Pair, Ticks, IDX_BITS};

/// "No slot": end of a list, or no parent.
pub(crate) const NONE: Idx = Idx::MAX;

pub(crate) const ERR_MASK: u32 = 0b11;
pub(crate) const ERR_NONE: u32 = 0;
pub(crate) const ERR_CANCELED: u32 = 1;
pub(crate) const ERR_DEADLINE: u32 = 2;
pub(crate) const ERR_DEADLINE_SEEN: u32 = 3;
pub(crate) const HAS_DL: u32 = 1 << 2;
pub(crate) const HANDLE: u32 = 1 << 3;
const KIND_SHIFT: u32 = 4;
const KIND_MASK: u32 = 0b111 << KIND_SHIFT;
const GEN_SHIFT: u32 = 7;
/// Generations are 25 bits wide.
pub(crate) const GEN_MAX: u32 = u32::MAX >> GEN_SHIFT;

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Free = 0,
    /// `with_cancel`, or a `with_deadline` clamped by an earlier parent deadline (SPEC D2).
    Cancel = 1,
    /// A deadline owner: `with_deadline` / `with_timeout` whose own deadline is the effective one.
    Deadline = 2,
    Value = 3,
    Detached = 4,
    /// An `after_func` registration with a Rust `fn(usize)`.
    CallbackRust = 5,
    /// An `after_func` registration with a C `void (*)(void *)`.
    CallbackC = 6,
}

impl Kind {
    #[inline]
    pub(crate) const fn is_callback(self) -> bool {
        matches!(self, Kind::CallbackRust | Kind::CallbackC)
    }
}

#[inline]
pub(crate) const fn kind_of(state: u32) -> Kind {
    match (state & KIND_MASK) >> KIND_SHIFT {
        1 => Kind::Cancel,
        2 => Kind::Deadline,
        3 => Kind::Value,
        4 => Kind::Detached,
        5 => Kind::CallbackRust,
        6 => Kind::CallbackC,
        _ => Kind::Free,
    }
}

#[inline]
pub(crate) const fn gen_of(state: u32) -> u32 {
    state >> GEN_SHIFT
}

#[inline]
pub(crate) const fn with_gen(state: u32, generation: u32) -> u32 {
    (state & !(GEN_MAX << GEN_SHIFT)) | ((generation & GEN_MAX) << GEN_SHIFT)
}

#[inline]
pub(crate) const fn make_state(generation: u32, kind: Kind, flags: u32) -> u32 {
    ((generation & GEN_MAX) << GEN_SHIFT) | ((kind as u32) << KIND_SHIFT) | flags
}

/// True when `state` is live under the handle generation `generation`.
#[inline]
pub(crate) const fn is_live(state: u32, generation: u32) -> bool {
    state & HANDLE != 0 && gen_of(state) == generation
}

/// A settled node has been reached by a cancel walk (or was born done): its cause is in `links`.
#[inline]
pub(crate) const fn is_settled(state: u32) -> bool {
    matches!(state & ERR_MASK, ERR_CANCELED | ERR_DEADLINE)
}

#[inline]
pub(crate) const fn pack(lo: Idx, hi: Idx) -> Pair {
    (lo as Pair) | ((hi as Pair) << IDX_BITS)
}

#[inline]
pub(crate) const fn unpack(p: Pair) -> (Idx, Idx) {
    (p as Idx, (p >> IDX_BITS) as Idx)
}

/// One context, callback registration, or free cell of the arena. Opaque: it appears in the
/// public type [`crate::Arena`] only as the element of the slot array.
#[derive(Debug)]
pub struct Slot {
    pub(crate) state: AtomicU32,
    pub(crate) deadline: Ticks,
    pub(crate) links: AtomicPair,
    pub(crate) parent: AtomicIdx,
    pub(crate) first_child: AtomicIdx,
    pub(crate) refs: AtomicIdx,
    pub(crate) payload: [AtomicPtr<()>; 2],
    /// Where the slot's current occupant was created (feature `diagnostics`); written at
    /// creation under the lock, before the state is published.
    #[cfg(feature = "diagnostics")]
    pub(crate) site: AtomicPtr<core::panic::Location<'static>>,
    /// The clock tick at creation (feature `diagnostics`).
    #[cfg(feature = "diagnostics")]
    pub(crate) born: Ticks,
}

impl Slot {
    /// An empty, never-used slot.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Slot {
            state: AtomicU32::new(0),
            deadline: Ticks::new(),
            links: AtomicPair::new(0),
            parent: AtomicIdx::new(NONE),
            first_child: AtomicIdx::new(NONE),
            refs: AtomicIdx::new(0),
            payload: [
                AtomicPtr::new(core::ptr::null_mut()),
                AtomicPtr::new(core::ptr::null_mut()),
            ],
            #[cfg(feature = "diagnostics")]
            site: AtomicPtr::new(core::ptr::null_mut()),
            #[cfg(feature = "diagnostics")]
            born: Ticks::new(),
        }
    }

    /// An empty, never-used slot.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Slot {
            state: AtomicU32::new(0),
            deadline: Ticks::new(),
            links: AtomicPair::new(0),
            parent: AtomicIdx::new(NONE),
            first_child: AtomicIdx::new(NONE),
            refs: AtomicIdx::new(0),
            payload: [
                AtomicPtr::new(core::ptr::null_mut()),
                AtomicPtr::new(core::ptr::null_mut()),
            ],
            #[cfg(feature = "diagnostics")]
            site: AtomicPtr::new(core::ptr::null_mut()),
            #[cfg(feature = "diagnostics")]
            born: Ticks::new(),
        }
    }

    // Field accessors used under the lock (Relaxed: the lock orders them) and by the re-validated
    // lock-free readers.

    #[inline]
    pub(crate) fn parent(&self) -> Idx {
        self.parent.load(Relaxed)
    }
    #[inline]
    pub(crate) fn first_child(&self) -> Idx {
        self.first_child.load(Relaxed)
    }
    #[inline]
    pub(crate) fn refs(&self) -> Idx {
        self.refs.load(Relaxed)
    }
    #[inline]
    pub(crate) fn siblings(&self) -> (Idx, Idx) {
        unpack(self.links.load(Relaxed))
    }
    #[inline]
    pub(crate) fn set_siblings(&self, next: Idx, prev: Idx) {
        self.links.store(pack(next, prev), Relaxed)
    }
    /// The recorded cause of a settled node.
    #[inline]
    #[allow(
        clippy::unnecessary_cast,
        reason = "`links` is a u64 on 64-bit targets"
    )]
    pub(crate) fn cause(&self) -> u32 {
        self.links.load(Relaxed) as u32
    }
    #[inline]
    pub(crate) fn set_cause(&self, cause: u32) {
        self.links.store(cause as Pair, Relaxed)
    }
    /// Word `i` of the payload as an integer.
    #[inline]
    pub(crate) fn word(&self, i: usize) -> usize {
        self.payload[i].load(Relaxed).addr()
    }
    #[inline]
    pub(crate) fn set_word(&self, i: usize, v: usize) {
        self.payload[i].store(core::ptr::without_provenance_mut(v), Relaxed)
    }
    #[inline]
    pub(crate) fn ptr(&self, i: usize) -> *mut () {
        self.payload[i].load(Relaxed)
    }
    #[inline]
    pub(crate) fn set_ptr(&self, i: usize, p: *mut ()) {
        self.payload[i].store(p, Relaxed)
    }
}
