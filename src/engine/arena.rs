//! The arena: fixed storage for every context, and the concurrency design of the engine.
//!
//! # Design (answers to docs/design.md)
//!
//! - **What guards the tree (Q2)**: one lock per arena ([`crate::engine::lock`]): a critical
//!   section on microcontrollers (interrupts masked, plus the firmware's cross-core lock on
//!   multi-core chips), a spin-then-sleep lock on hosts. Every mutation of the tree is done under it;
//!   every check is lock-free ([`crate::engine::query`]).
//! - **Bounded critical sections (Q3, SPEC T3)**: no operation holds the lock for more than a
//!   constant amount of work. Operations whose work grows (a cancel walk over a subtree, a
//!   reclamation cascade up a chain of released ancestors, waking many waiters, a deadline insert
//!   that must scan, `expire` of many deadlines) run as a sequence of locked *steps* of at most
//!   [`crate::engine::run::STEP_BUDGET`] units each, leaving the lock between steps so that an
//!   interrupt handler or another core can run, and then cancel, create, release or reuse nodes of
//!   the same subtree ([`crate::engine::run`], [`crate::engine::walk`]).
//! - **Thin layers, one engine (Q10)**: [`ArenaView`] has one method per operation on raw
//!   [`Handle`]s. The Rust types, the C API (`ffi/`), blocking waits and futures only translate
//!   arguments and call these methods; no rule is implemented twice.
//! - **Capacity erasure**: `Arena<N>` is `ArenaInner<[Slot; N]>` and derefs to
//!   `ArenaView = ArenaInner<[Slot]>` (the heapless `VecView` pattern), so the engine is compiled
//!   once whatever the capacities in a program.
//! - **Free list (Q6)**: first in, first out, popped and pushed inside the same locked step that
//!   links or reclaims the node, so no CAS and no ABA. FIFO spreads reuse over every free slot, so a
//!   stale handle can alias a newcomer only after `2^generation_bits x free slots` creations
//!   (SPEC A2). Never-used slots are handed out in order from `unused_from`, which keeps `new` a
//!   `const fn`.
//!
//! # Invariants (numbered; the code cites them as `I1`...)
//!
//! - I1. A handle is valid exactly when its slot's state has `HANDLE` and its generation
//!   ([`crate::engine::slot`]). Every operation validates first and touches nothing when invalid.
//! - I2. A node is in its parent's child list exactly when it is allocated, not settled, has a
//!   parent slot, and is neither detached nor a claimed or stopped callback. Walks reach exactly
//!   these nodes.
//! - I3. `refs` of a slot counts its allocated children in any state (registrations included,
//!   until they have run or been stopped), plus one for each walk or reclamation paused at it
//!   between two locked steps, and one for each deadline insertion paused with it as its cursor
//!   or as the owner it inserts. A slot is reclaimed when it has no `HANDLE` and `refs == 0`. So
//!   a released node's ancestors live as long as any descendant is held (SPEC A5, V3), a paused
//!   walk's cursor and a paused insertion's cursor and owner are never reclaimed or reused under
//!   them (docs/design.md 3, 4, 7), and nothing else keeps a slot.
//! - I4. A settled node (`ERR` 1 or 2) has no children in its list: the walk that settled it
//!   drained the list (children created under it meanwhile are born settled, SPEC C7), except
//!   while that walk is still in progress below it.
//! - I5. A deadline owner is in a deadline lane exactly when it is not settled, except while its
//!   creation is still inserting it ([`crate::engine::deadline`]).
//! - I6. `deadline`, `parent`, `dl_owner`, `kind` and the payload of a slot never change while it
//!   is allocated; lock-free readers may therefore read them after validating the handle and
//!   re-validate after.
//! - I7. Waiters ([`crate::engine::waiter`]) are linked only on allocated, live, not-done nodes;
//!   the step that makes a node done or releases it takes them out.
//! - I8. Every slot index the engine stores (in `parent`, `first_child`, `links`, `dl_owner`, the
//!   free list, the deadline lanes, a paused `Work`) is below the capacity or one of the
//!   sentinels `NONE` / `NOT_QUEUED`, which the code tests before following an index; indices
//!   decoded from handles are bounds-checked when resolved. So the locked steps index the slot
//!   array without a bounds check ([`ArenaView::slot`]; debug builds, Miri included, and loom
//!   builds check it).
//!
//! # Critical sections (SPEC T3)
//!
//! | operation | work under the lock, per step |
//! |---|---|
//! | create | O(1) with the deadline lanes' fast paths; a deadline insert that must scan a lane scans at most one step's budget per step |
//! | cancel, release, expire | at most one step's budget of nodes marked, callbacks claimed, waiters taken or slots reclaimed |
//! | `after_func`, `stop`, one callback dispatched | O(1), plus a bounded reclamation step |
//! | waiter registration and removal | O(1) |
//!
//! The longest is the first step of a creation whose deadline must be placed by a lane scan
//! (validation, allocation, the survey of the lanes, then the scan units left in that step); next
//! comes a walk step marking deadline owners (lane removal, the cause found in O(1) through
//! `dl_owner`, and without compare-and-swap the marking fence and a fresh clock reading). Neither
//! depends on the capacity, the depth, the size of a subtree or the number of pending deadlines.
//! Callbacks, wakers and user code never run inside a step.
//!
//! Measured by `cargo xtask latency` (instructions with interrupts masked, QEMU `-icount`, longest
//! step of each operation, the same at N = 64 and N = 4096; `STEP_BUDGET` 3 on these 32-bit
//! targets; `cargo xtask test` fails above 1000):
//!
//! | operation (N = 64 / 4096) | thumbv6m | thumbv7m | riscv32imc |
//! |---|---|---|---|
//! | cancel, flat tree (63 / 4096 nodes) | 540 | 407 | 459 |
//! | cancel, flat tree of deadline owners (63 / 4096) | 693 | 575 | 556 |
//! | cancel, chain (63 / 512 deep) | 590 | 444 | 507 |
//! | release cascade up a zombie chain (63 / 512) | 381 | 292 | 336 |
//! | deadline insert, later ones pending (50 / 1000) | 578 | 474 | 486 |
//! | deadline insert scanning a lane (50 / 1000 later in it) | 893 | 760 | 784 |
//! | `expire` of passed deadlines (50 / 1000) | 469 | 374 | 425 |

use core::cell::UnsafeCell;
use core::ops::Deref;
use core::task::Waker;

use crate::clock::Clock;
use crate::engine::deadline::{Lanes, LANES_NEW};
use crate::engine::handle::{Handle, Packing};
use crate::engine::lock::Lock;
use crate::engine::slot::{AtomicIdx, Idx, Slot, Ticks, MAX_SLOTS, NONE};
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
/// `N` must be below 65 534 on 32-bit targets and below 2^32 - 2 on 64-bit ones.
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

/// Who drives deadlines of this arena, and whether checks may skip the clock.
pub(crate) const DRIVEN_NONE: u32 = 0;
/// A driver runs whose clock is real time and whose lateness is bounded (the host driver): checks
/// of contexts with a deadline need not read the clock, expiry is a state change (SPEC D4, D5).
#[cfg_attr(
    not(feature = "std"),
    allow(dead_code, reason = "only the host driver sets it")
)]
pub(crate) const DRIVEN_REALTIME: u32 = 1;

/// Arena-wide state, all of it changed only under [`Header::lock`] unless said otherwise.
pub(crate) struct Header {
    pub(crate) lock: Lock,
    pub(crate) clock: &'static dyn Clock,
    pub(crate) packing: Packing,
    /// FIFO of recycled slots, linked through `first_child`.
    pub(crate) free_head: AtomicIdx,
    pub(crate) free_tail: AtomicIdx,
    /// Slots from here to the end have never been used.
    pub(crate) unused_from: AtomicIdx,
    /// The deadline lanes ([`crate::engine::deadline`]).
    pub(crate) lanes: Lanes,
    pub(crate) in_use: AtomicU32,
    pub(crate) high_water: AtomicU32,
    pub(crate) full_count: AtomicU32,
    /// `DRIVEN_*`: read lock-free by checks (Relaxed: a stale value only makes a check read the
    /// clock once more, or skip it while a driver that was just attached already runs).
    pub(crate) driven: AtomicU32,
    /// The host driver looked whether this arena is a `static` (to start its driver without
    /// being asked), and it is not: it does not look again at every deadline.
    #[cfg(all(feature = "std", not(loom)))]
    pub(crate) not_static: core::sync::atomic::AtomicBool,
    /// The tick until which the deadline driver sleeps (`u64::MAX`: until woken).
    pub(crate) driver_until: Ticks,
    /// The driver's waker, woken when a deadline earlier than `driver_until` is created. Only
    /// touched under the lock.
    pub(crate) driver_waker: UnsafeCell<Option<Waker>>,
    /// Creations so far (diagnostics: oldest first).
    #[cfg(feature = "diagnostics")]
    pub(crate) seq: AtomicU32,
    /// The most recent clock reading of a locked step (diagnostics: creation ages).
    #[cfg(feature = "diagnostics")]
    pub(crate) last_tick: Ticks,
}

// SAFETY: `driver_waker` is only accessed while `lock` is held (see its field docs), which
// serialises every thread and interrupt handler; every other field is an atomic or immutable.
unsafe impl Sync for Header {}

impl core::fmt::Debug for Header {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Header")
            .field("in_use", &self.in_use.load(Relaxed))
            .field("capacity_bits", &self.packing.idx_bits)
            .finish_non_exhaustive()
    }
}

macro_rules! header_new {
    ($clock:expr, $n:expr) => {
        Header {
            lock: Lock::new(),
            clock: $clock,
            packing: Packing::for_capacity($n),
            free_head: AtomicIdx::new(NONE),
            free_tail: AtomicIdx::new(NONE),
            unused_from: AtomicIdx::new(0),
            lanes: LANES_NEW!(),
            in_use: AtomicU32::new(0),
            high_water: AtomicU32::new(0),
            full_count: AtomicU32::new(0),
            driven: AtomicU32::new(DRIVEN_NONE),
            #[cfg(all(feature = "std", not(loom)))]
            not_static: core::sync::atomic::AtomicBool::new(false),
            driver_until: Ticks::with(u64::MAX),
            driver_waker: UnsafeCell::new(None),
            #[cfg(feature = "diagnostics")]
            seq: AtomicU32::new(0),
            #[cfg(feature = "diagnostics")]
            last_tick: Ticks::with(0),
        }
    };
}

impl<const N: usize> ArenaInner<[Slot; N]> {
    const CAPACITY_FITS: () = assert!(
        N < MAX_SLOTS,
        "arena capacity must be below the index sentinels (65534 on 32-bit targets)"
    );

    /// An empty arena reading the default clock: [`crate::StdClock`] with feature `std`. Without
    /// `std` there is no default clock: the arena reads [`crate::NoClock`], and creating a
    /// deadline on it is refused with [`crate::Error::NoClock`] (SPEC D1) — firmware names its
    /// clock with [`Arena::with_clock`].
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self::with_clock(crate::clock::default_clock())
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
            header: header_new!(clock, N),
            slots: [const { Slot::new() }; N],
        }
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
            header: header_new!(clock, N),
            slots: core::array::from_fn(|_| Slot::new()),
        }
    }

    /// An empty arena reading the default clock (loom builds: not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        Self::with_clock(crate::clock::default_clock())
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
    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The current tick of this arena's clock.
    pub fn now(&self) -> u64 {
        self.header.clock.now()
    }

    /// The clock this arena reads.
    pub fn clock(&self) -> &'static dyn Clock {
        self.header.clock
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

    /// Slot `i` (I8: `i` is in range). For the locked steps, which follow stored indices; a
    /// lock-free reader bounds-checks instead (`slots.get`), since it may hold a forged handle.
    #[inline]
    pub(crate) fn slot(&self, i: Idx) -> &Slot {
        // Checked in debug builds and under loom (its models run optimised): a broken engine
        // there panics instead of reading out of bounds.
        if cfg!(any(debug_assertions, loom)) {
            assert!(
                (i as usize) < self.slots.len(),
                "I8: slot index {i} out of range"
            );
        }
        // SAFETY: I8, every index the engine follows is below the capacity (`slots.len()`).
        unsafe { self.slots.get_unchecked(i as usize) }
    }

    /// The handle of slot `i` at generation `generation`.
    #[inline]
    pub(crate) fn handle_of(&self, i: Idx, generation: u64) -> Handle {
        self.header.packing.encode(i as usize, generation)
    }

    /// The slot index a handle names, if it names one of this arena's slots (no validity check).
    pub fn slot_index(&self, h: Handle) -> Option<usize> {
        let (i, _) = self.header.packing.decode(h);
        (i < self.slots.len() && !h.is_root()).then_some(i)
    }

    /// Whether checks of contexts with a deadline must compare the clock themselves (no driver
    /// with bounded lateness runs, SPEC D5).
    #[inline]
    pub(crate) fn checks_read_clock(&self) -> bool {
        // A clock may stop being real-time (the C library's, once `sw_set_clock` installs a
        // function): ask it, but only on arenas a real-time driver serves.
        self.header.driven.load(Relaxed) != DRIVEN_REALTIME
            || self.header.clock.ticks_per_second().is_none()
    }
}
