//! The arena: fixed storage for every context, and the concurrency design of the engine.
//!
//! # Design (answers to DESIGN-QUESTIONS.md)
//!
//! - **What guards the tree (Q2)**: one lock per arena ([`crate::engine::lock`]): a critical section on
//!   microcontrollers, a spin lock on hosts. Every mutation of the tree is done under it by the
//!   functions of [`crate::engine::tree`]; every check is lock-free ([`crate::engine::query`]).
//! - **Thin layers, one engine (Q10)**: [`ArenaView`] has one method per operation on raw
//!   [`Handle`]s. The Rust types ([`crate::Ctx`], [`crate::OwnedCtx`]), the C API (`ffi/`) and the
//!   async layer only translate arguments and call these methods; no rule is implemented twice.
//! - **Capacity erasure**: `Arena<N>` is `ArenaInner<[Slot; N]>` and derefs to
//!   `ArenaView = ArenaInner<[Slot]>` (the heapless `VecView` pattern), so the engine is compiled
//!   once whatever the capacities in a program.
//! - **Free list (Q6)**: popped and pushed inside the same locked section that links or reclaims
//!   the node, so no CAS and no ABA; never-used slots are handed out in order from
//!   `unused_from`, which keeps `new` a `const fn`.
//!
//! # Invariants (numbered; the code cites them as `I1`...)
//!
//! - I1. A handle is valid exactly when its slot's state has `HANDLE` and its generation
//!   ([`crate::engine::slot`]). Every operation validates first and touches nothing when invalid.
//! - I2. A node is in its parent's child list exactly when it is allocated, not settled, has a
//!   parent slot, and is neither detached nor a claimed callback. Cancel walks reach exactly
//!   these nodes.
//! - I3. `refs` of a slot counts its allocated children, in any state, callback registrations
//!   included (until they have run or been stopped). A slot is
//!   reclaimed when it has no `HANDLE` and `refs == 0`; reclamation walks up the parent chain
//!   iteratively (Q4). So a released node's ancestors live as long as any descendant is held
//!   (SPEC A5, V3), and nothing else keeps a slot.
//! - I4. A settled node (`ERR` 1 or 2) has no children in its list: the walk that settled it
//!   drained the list, and children created under a done parent are born settled (SPEC C7).
//! - I5. A deadline owner is in the deadline queue exactly when it is not settled
//!   ([`crate::engine::deadline`]).
//! - I6. `deadline`, `parent`, `kind` and the payload of a slot never change while it is allocated;
//!   lock-free readers may therefore read them after validating the handle and re-validate after.
//!
//! # Critical sections (SPEC T3)
//!
//! | operation | work under the lock |
//! |---|---|
//! | create | O(1), plus for a deadline owner the sorted insertion, O(deadlines pending later than it) — O(1) when timeouts are created in deadline order |
//! | cancel, release, expire (per deadline handled) | O(size of the subtree being canceled) + O(depth) for reclamation |
//! | `after_func`, `stop` | O(1) |
//!
//! The longest is a cancel (or release, or expiry) of the largest subtree: at most `N` node visits,
//! each a constant handful of loads and stores (about a dozen accesses: detach from the list,
//! write cause and state, step down or up), so its bound is linear in the capacity and independent
//! of anything else. An application that must bound interrupt latency more tightly keeps the
//! subtrees it cancels from interrupt-sensitive code small, or sizes `N` accordingly. Callbacks,
//! wakers and user code never run inside it.

use core::ops::Deref;

use crate::clock::{default_clock, Clock};
use crate::context::Ctx;
use crate::engine::handle::Handle;
use crate::engine::lock::Lock;
use crate::engine::slot::{AtomicIdx, Idx, Slot, NONE};
use crate::engine::sync::{AtomicU32, Ordering::Relaxed};

/// Arena storage with the capacity as part of the type (`Arena<N>`) or erased (`ArenaView`).
///
/// Use the aliases [`Arena`] and [`ArenaView`]; this type is public only so that the two can
/// share one definition.
#[derive(Debug)]
pub struct ArenaInner<S: ?Sized> {
    pub(crate) header: Header,
    pub(crate) slots: S,
}

/// A fixed-capacity arena of `N` contexts (SPEC A1): no heap, `const` constructor, usable as a
/// `static`.
///
/// Every context, value layer and callback registration takes one slot; roots take none.
/// `N` must be below 65 535 on 32-bit targets and below 2^32 - 1 on 64-bit ones.
///
/// ```
/// use stopwire::{Arena, Error};
///
/// static ARENA: Arena<8> = Arena::new();
///
/// let root = ARENA.background();
/// let job = root.with_cancel()?;          // a child: cancel it, or drop it to release it
/// let step = job.with_timeout(1_000_000)?; // one second on the default host clock
/// assert!(!step.is_done());
/// job.cancel();                            // cancels the whole subtree at once
/// assert_eq!(step.err(), Err(Error::Canceled));
/// # Ok::<(), Error>(())
/// ```
pub type Arena<const N: usize> = ArenaInner<[Slot; N]>;

/// An arena with its capacity erased: what every operation takes. `&Arena<N>` derefs to it.
pub type ArenaView = ArenaInner<[Slot]>;

/// Arena-wide state, all of it changed only under [`Header::lock`].
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) lock: Lock,
    pub(crate) clock: &'static dyn Clock,
    /// Head of the list of recycled slots, linked through `links`.
    pub(crate) free_head: AtomicIdx,
    /// Slots from here to the end have never been used.
    pub(crate) unused_from: AtomicIdx,
    /// Deadline queue ([`crate::engine::deadline`]), sorted by deadline.
    pub(crate) dq_head: AtomicIdx,
    pub(crate) dq_tail: AtomicIdx,
    pub(crate) in_use: AtomicU32,
    pub(crate) high_water: AtomicU32,
    pub(crate) full_count: AtomicU32,
}

impl core::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Clock")
    }
}

macro_rules! header_new {
    ($clock:expr) => {
        Header {
            lock: Lock::new(),
            clock: $clock,
            free_head: AtomicIdx::new(NONE),
            unused_from: AtomicIdx::new(0),
            dq_head: AtomicIdx::new(NONE),
            dq_tail: AtomicIdx::new(NONE),
            in_use: AtomicU32::new(0),
            high_water: AtomicU32::new(0),
            full_count: AtomicU32::new(0),
        }
    };
}

impl<const N: usize> ArenaInner<[Slot; N]> {
    const CAPACITY_FITS: () = assert!(
        N < NONE as usize,
        "arena capacity must be below the index sentinel (65535 on 32-bit targets)"
    );

    /// An empty arena reading the default clock: [`crate::StdClock`] with feature `std`,
    /// [`crate::NoClock`] without.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self::with_clock(default_clock())
    }

    /// An empty arena reading `clock` (SPEC T4).
    #[cfg(not(loom))]
    pub const fn with_clock(clock: &'static dyn Clock) -> Self {
        #[allow(
            clippy::let_unit_value,
            reason = "forces the compile-time capacity check"
        )]
        let () = Self::CAPACITY_FITS;
        ArenaInner {
            header: header_new!(clock),
            slots: [const { Slot::new() }; N],
        }
    }

    /// An empty arena (loom builds: not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self::with_clock(default_clock())
    }

    /// An empty arena reading `clock` (loom builds: not `const`).
    #[cfg(loom)]
    pub fn with_clock(clock: &'static dyn Clock) -> Self {
        #[allow(
            clippy::let_unit_value,
            reason = "forces the compile-time capacity check"
        )]
        let () = Self::CAPACITY_FITS;
        ArenaInner {
            header: header_new!(clock),
            slots: core::array::from_fn(|_| Slot::new()),
        }
    }

    /// The capacity-erased view (also reached by deref).
    pub fn view(&self) -> &ArenaView {
        self
    }
}

#[cfg(not(loom))]
impl<const N: usize> Default for ArenaInner<[Slot; N]> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Deref for ArenaInner<[Slot; N]> {
    type Target = ArenaView;
    fn deref(&self) -> &ArenaView {
        self
    }
}

/// Arena figures (SPEC A6).
///
/// ```
/// use stopwire::{Arena, Stats};
/// static ARENA: Arena<4> = Arena::new();
/// let a = ARENA.background().with_cancel().unwrap();
/// let s = ARENA.stats();
/// assert_eq!((s.capacity, s.in_use, s.high_water, s.full_count), (4, 1, 1, 0));
/// drop(a);
/// assert_eq!(ARENA.stats().in_use, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Slots in the arena.
    pub capacity: u32,
    /// Slots in use now: contexts held, released contexts kept for their descendants, pending
    /// callback registrations.
    pub in_use: u32,
    /// Most slots ever in use at once.
    pub high_water: u32,
    /// Creations refused because the arena was full.
    pub full_count: u32,
}

impl ArenaView {
    /// The background root (SPEC R1): never done, no deadline, no values. Free, never fails.
    pub fn background(&self) -> Ctx<'_> {
        Ctx::from_handle(self, Handle::BACKGROUND)
    }

    /// The todo root (SPEC R1): like [`ArenaView::background`], for code not yet given a context.
    pub fn todo(&self) -> Ctx<'_> {
        Ctx::from_handle(self, Handle::TODO)
    }

    /// A view of an existing context from its raw handle (no check is made until it is used).
    pub fn ctx(&self, handle: Handle) -> Ctx<'_> {
        Ctx::from_handle(self, handle)
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The current tick of this arena's clock.
    pub fn now(&self) -> u64 {
        self.header.clock.now()
    }

    /// Capacity, slots in use, high-water mark and refused creations (SPEC A6). Lock-free.
    pub fn stats(&self) -> Stats {
        let h = &self.header;
        Stats {
            capacity: self.slots.len() as u32,
            in_use: h.in_use.load(Relaxed),
            high_water: h.high_water.load(Relaxed),
            full_count: h.full_count.load(Relaxed),
        }
    }

    #[inline]
    pub(crate) fn slot(&self, i: Idx) -> &Slot {
        &self.slots[i as usize]
    }
}
