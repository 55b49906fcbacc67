//! One arena slot: the node of the context tree, and its state word.
//!
//! # The state word (`Slot::state`: `AtomicU64` on 64-bit hosts, `AtomicU32` on MCUs)
//!
//! ```text
//!  63                        8     7      6    4  3        2       1 0
//! +---------------------------+---------+------+--------+--------+---+
//! | generation (56 bits)      | CLOCKED | kind | HANDLE | HAS_DL |ERR|
//! +---------------------------+---------+------+--------+--------+---+
//!  31 (32-bit targets)                   7 6    4  3        2       1 0
//! +-------------------------------------+------+--------+--------+---+
//! | generation (25 bits)                | kind | HANDLE | HAS_DL |ERR|
//! +-------------------------------------+------+--------+--------+---+
//! ```
//!
//! - `ERR` (2 bits): `0` not done; `1` Canceled; `2` DeadlineExceeded; `3` a transient mark, see
//!   below. `1` and `2` are *settled*: a walk has marked the node, unlinked it from its parent's
//!   child list and written its cause into `links`.
//!   `3` means, on targets with compare-and-swap, "DeadlineExceeded seen by a lock-free check before
//!   any walk reached the node" (the cause is then the deadline owner's, a later walk settles it to
//!   `2`); on targets without it (and under `cfg(stopwire_no_cas)`), "a walk is deciding this
//!   node's Err right now" (`MARKING`, held for a few instructions inside the lock, never across
//!   two locked sections; a check that sees it waits for the final value, [`crate::engine::query`]).
//!   For callback registrations the bits mean: `1` linked in its context's list, `2` claimed by a
//!   walk and waiting to run (its handle still stops it), `3` stopped while claimed.
//! - `HAS_DL`: the node has an effective deadline, stored in `deadline` (SPEC D2, D5).
//! - `CLOCKED`: checks of this node compare its deadline with the clock, and so may record
//!   "deadline seen" (`ERR = 3`) without the lock. Set at creation on a node with a deadline,
//!   unless a real-time driver served the arena then: its expiry is then a state change the
//!   driver makes, checks read nothing but the state ([`crate::engine::query`]), and since no
//!   lock-free writer ever touches the node, walks mark it with plain stores. Fixed for the life of
//!   the occupant (a driver, once started, never stops). 64-bit targets only: on 32-bit ones
//!   `CLOCKED` is `HAS_DL` itself (the generation keeps its 25 bits), so every node with a
//!   deadline is `CLOCKED` there.
//! - `HANDLE`: the owner's handle is outstanding. Cleared at release; a handle is *live* exactly
//!   when `HANDLE` is set and the generations match (SPEC A2). A handle whose generation matches a
//!   slot without `HANDLE` was released by its owner (the slot not reused since): stale (A4).
//! - `kind`: [`Kind`]; fixed while the slot is allocated, kept while a released slot waits for its
//!   descendants (value lookups read it).
//! - `generation`: bumped when a slot is handed out again (at allocation, not at release), so
//!   handles of a previous occupant are stale from then on. The handle carries as many of its bits
//!   as the arena's index width leaves free ([`crate::engine::handle`]); on 64-bit hosts that is
//!   about 50 bits, on MCUs 25. With first-in-first-out reuse of free slots, a stale handle can
//!   alias a newcomer only after `2^generation_bits x free slots` creations (SPEC A2).
//!
//! Callback registrations carry a non-zero `ERR` from birth, so that the done check's fast path
//! (`ERR` and `CLOCKED` both clear) needs no kind test; every slow path tests the kind first and
//! answers [`crate::Error::NotContext`] for them.
//!
//! Legal combinations: a free slot has kind `Free`, no `HANDLE`, and keeps the `ERR` of its last
//! occupant's release. An allocated slot with `HANDLE` is live; without `HANDLE` it is a *zombie*
//! kept for its descendants, registrations or a walk in progress (I3), always settled unless its
//! kind is `Detached` or `Value` (neither has a cancellation of its own, W1, V4). `ERR = 3` on a
//! context implies `CLOCKED`, and `CLOCKED` implies `HAS_DL`.
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
//! | `links` | linked in a child list: next and previous sibling; settled: the cause (kept while free, for checks of released handles); a claimed callback: next in its walk's dispatch list |
//! | `parent` | parent slot, or `NONE` for children of a root and registrations on roots or detached contexts |
//! | `first_child` | allocated: head of the list of children not yet reached by a walk; free: next free slot |
//! | `refs` | what still needs this slot: allocated children in any state, registrations until run or stopped, a walk or reclamation paused at this node between two locked sections, and a deadline insertion paused with this node as its cursor or its new owner (I3) |
//! | `dl_owner` | with `HAS_DL`: the slot of the deadline owner whose deadline this is (itself for an owner); its cause is the one an expiry records (K5), found in O(1) |
//! | `payload` | value node: key, value. Deadline owner: cause, deadline-lane links. Callback: function, data |
//! | `waiters` | head of the list of threads and futures waiting for this node ([`crate::engine::waiter`]) |

#[cfg(feature = "diagnostics")]
use crate::engine::sync::AtomicU32;
use crate::engine::sync::{AtomicPtr, Ordering::Relaxed};

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
    /// The state word.
    pub(crate) type State = u64;
    pub(crate) type AtomicState = AtomicU64;

    /// A `u64` readable without a lock.
    #[derive(Debug)]
    pub(crate) struct Ticks(AtomicU64);

    impl Ticks {
        #[cfg(not(loom))]
        pub(crate) const fn with(v: u64) -> Self {
            Ticks(AtomicU64::new(v))
        }
        #[cfg(loom)]
        pub(crate) fn with(v: u64) -> Self {
            Ticks(AtomicU64::new(v))
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
    /// The state word.
    pub(crate) type State = u32;
    pub(crate) type AtomicState = AtomicU32;

    /// A `u64` as two halves: 32-bit targets have no 64-bit atomic load. A torn read is possible
    /// only while the slot is being reused, and readers then fail generation re-validation.
    #[derive(Debug)]
    pub(crate) struct Ticks([AtomicU32; 2]);

    impl Ticks {
        #[cfg(not(loom))]
        pub(crate) const fn with(v: u64) -> Self {
            Ticks([AtomicU32::new(v as u32), AtomicU32::new((v >> 32) as u32)])
        }
        #[cfg(loom)]
        pub(crate) fn with(v: u64) -> Self {
            Ticks([AtomicU32::new(v as u32), AtomicU32::new((v >> 32) as u32)])
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

pub(crate) use width::{AtomicIdx, AtomicPair, AtomicState, Idx, Pair, State, Ticks, IDX_BITS};

/// "No slot": end of a list, or no parent.
pub(crate) const NONE: Idx = Idx::MAX;
/// Lane links of a deadline owner that is in no lane ([`crate::engine::deadline`]).
pub(crate) const NOT_QUEUED: Idx = Idx::MAX - 1;
/// Slot indices are below this (the arena capacity limit).
pub(crate) const MAX_SLOTS: usize = NOT_QUEUED as usize;

pub(crate) const ERR_MASK: State = 0b11;
pub(crate) const ERR_NONE: State = 0;
pub(crate) const ERR_CANCELED: State = 1;
pub(crate) const ERR_DEADLINE: State = 2;
/// CAS targets: deadline seen by a check. No-CAS targets: a walk is marking the node.
pub(crate) const ERR_TRANSIENT: State = 3;
pub(crate) const HAS_DL: State = 1 << 2;
pub(crate) const HANDLE: State = 1 << 3;
const KIND_SHIFT: u32 = 4;
const KIND_MASK: State = 0b111 << KIND_SHIFT;
/// Checks compare the deadline with the clock (module docs). A bit of its own on 64-bit targets;
/// on 32-bit ones, whose generation needs every bit left (SPEC A2: 2^24 reuses of a slot at
/// least), it is `HAS_DL`: every node with a deadline counts as `CLOCKED` there, as before the bit
/// existed (its checks ask whether a real-time driver runs, its walks use compare-and-swap).
#[cfg(target_pointer_width = "64")]
pub(crate) const CLOCKED: State = 1 << 7;
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const CLOCKED: State = HAS_DL;
#[cfg(target_pointer_width = "64")]
pub(crate) const GEN_SHIFT: u32 = 8;
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const GEN_SHIFT: u32 = 7;
/// Bits of the generation in the state word.
pub(crate) const GEN_BITS: u32 = State::BITS - GEN_SHIFT;

/// Registration states (the `ERR` bits of a callback slot).
pub(crate) const CB_LINKED: State = 1;
pub(crate) const CB_CLAIMED: State = 2;
pub(crate) const CB_STOPPED: State = 3;

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

/// The kinds by their 3-bit code (7 is never written; it reads as `Free`).
const KINDS: [Kind; 8] = [
    Kind::Free,
    Kind::Cancel,
    Kind::Deadline,
    Kind::Value,
    Kind::Detached,
    Kind::CallbackRust,
    Kind::CallbackC,
    Kind::Free,
];

#[inline]
pub(crate) const fn kind_of(state: State) -> Kind {
    // A table lookup: one load instead of a chain of compares.
    KINDS[((state & KIND_MASK) >> KIND_SHIFT) as usize]
}

#[inline]
#[allow(
    clippy::unnecessary_cast,
    reason = "the state word is a u32 on 32-bit targets"
)]
pub(crate) const fn gen_of(state: State) -> u64 {
    (state >> GEN_SHIFT) as u64
}

#[inline]
pub(crate) const fn make_state(generation: u64, kind: Kind, flags: State) -> State {
    ((generation as State) << GEN_SHIFT) | ((kind as State) << KIND_SHIFT) | flags
}

#[inline]
pub(crate) const fn with_err(state: State, err: State) -> State {
    (state & !ERR_MASK) | err
}

/// A settled node has been reached by a walk (or was born done): its cause is in `links`.
#[inline]
pub(crate) const fn is_settled(state: State) -> bool {
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
///
/// On 64-bit hosts with `diagnostics` the slot is aligned to a cache line, which makes it 128
/// bytes instead of 88: following a parent index then costs a shift instead of a multiply (the
/// value lookup is a chain of such steps: `value/depth10` 11.6 ns unaligned, 9.7 ns aligned,
/// `cargo bench --bench context -- value`), and no two slots share a line between cores.
/// Without `diagnostics` the slot is 64 bytes already; microcontrollers keep their packed size.
#[derive(Debug)]
#[cfg_attr(
    all(target_pointer_width = "64", feature = "diagnostics"),
    repr(align(64))
)]
pub struct Slot {
    pub(crate) state: AtomicState,
    pub(crate) deadline: Ticks,
    pub(crate) links: AtomicPair,
    pub(crate) parent: AtomicIdx,
    pub(crate) first_child: AtomicIdx,
    pub(crate) refs: AtomicIdx,
    pub(crate) dl_owner: AtomicIdx,
    pub(crate) payload: [AtomicPtr<()>; 2],
    pub(crate) waiters: AtomicPtr<()>,
    /// Where the slot's current occupant was created (feature `diagnostics`): the word of a
    /// `Site`, a tagged pointer to a Rust `Location` or a `ForeignSite` (engine::site, S1, S2);
    /// written at creation under the lock, before the state is published.
    #[cfg(feature = "diagnostics")]
    pub(crate) site: AtomicPtr<()>,
    /// The arena's creation sequence number of the current occupant (oldest first).
    #[cfg(feature = "diagnostics")]
    pub(crate) seq: AtomicU32,
    /// The most recent clock reading of the arena when the occupant was created.
    #[cfg(feature = "diagnostics")]
    pub(crate) born: Ticks,
}

macro_rules! slot_new {
    () => {
        Slot {
            state: AtomicState::new(0),
            deadline: Ticks::with(0),
            links: AtomicPair::new(0),
            parent: AtomicIdx::new(NONE),
            first_child: AtomicIdx::new(NONE),
            refs: AtomicIdx::new(0),
            dl_owner: AtomicIdx::new(NONE),
            payload: [
                AtomicPtr::new(core::ptr::null_mut()),
                AtomicPtr::new(core::ptr::null_mut()),
            ],
            waiters: AtomicPtr::new(core::ptr::null_mut()),
            #[cfg(feature = "diagnostics")]
            site: AtomicPtr::new(core::ptr::null_mut()),
            #[cfg(feature = "diagnostics")]
            seq: AtomicU32::new(0),
            #[cfg(feature = "diagnostics")]
            born: Ticks::with(0),
        }
    };
}

impl Slot {
    /// An empty, never-used slot.
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        slot_new!()
    }

    /// An empty, never-used slot.
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        slot_new!()
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
    pub(crate) fn add_ref(&self) {
        self.refs.store(self.refs() + 1, Relaxed)
    }
    /// Drops one reference; returns what is left.
    #[inline]
    pub(crate) fn drop_ref(&self) -> Idx {
        let r = self.refs() - 1;
        self.refs.store(r, Relaxed);
        r
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
