//! Waiters: threads and futures waiting for a context to be done (SPEC N2-N6;
//! docs/design.md 8).
//!
//! A waiter is a [`WaiterNode`] that lives in the waiting thread's stack frame or inside the
//! pinned future, never in the arena: any number can wait on one context, no registry to size.
//! Nodes are linked into a doubly-linked list headed by the context slot's `waiters` field.
//!
//! # Invariants (cited as `N-I1`...)
//!
//! - N-I1. Every field of a node, and every slot's `waiters` head, is read and written only while
//!   the arena lock is held. So the lock orders a node's registration, the walk that takes it out,
//!   and its owner's removal.
//! - N-I2. A node is linked only on a live, not-done, allocated slot (I7). The locked step that
//!   makes the slot done (a walk marking it) or releases it takes every node out, and with it the
//!   node's wake target (a `Waker`, or a thread handle), which it moves into a local
//!   [`WakeBatch`]. The batch is woken after the lock is released, so no waker runs inside a
//!   critical section, and nothing touches the node after the lock is released: the owner may
//!   free it as soon as it can take the lock itself (SPEC N5).
//! - N-I3. No lost wakeup (SPEC N4): registration checks the slot's state and links the node in
//!   one locked step; the step that marks the slot done takes the node out. Either the
//!   registration comes first and the marking step finds the node, or the marking comes first and
//!   the registration sees "done" and does not wait.
//! - N-I4. The owner removes its node (under the lock) before the node's memory goes away: the
//!   `Done` future in `Drop`, a blocking wait before it returns. A node that a walk has taken out
//!   is simply not linked any more.

use core::cell::{Cell, UnsafeCell};
use core::marker::PhantomPinned;
use core::pin::Pin;
use core::task::Waker;

use crate::engine::slot::{Idx, NONE};

/// Whom to wake.
#[derive(Debug, Default)]
#[cfg_attr(
    not(any(feature = "async", feature = "std")),
    allow(dead_code, reason = "the waiting layers are off")
)]
#[cfg_attr(
    loom,
    allow(
        dead_code,
        reason = "blocking waits (`Thread`) are not built under loom"
    )
)]
pub(crate) enum WakeTarget {
    #[default]
    None,
    Waker(Waker),
    #[cfg(feature = "std")]
    Thread(std::thread::Thread),
}

impl WakeTarget {
    pub(crate) fn wake(self) {
        match self {
            WakeTarget::None => {}
            WakeTarget::Waker(w) => w.wake(),
            #[cfg(feature = "std")]
            WakeTarget::Thread(t) => t.unpark(),
        }
    }
}

/// A waiter: a node of a context's waiter list. Pin it, register it with
/// [`crate::ArenaView::wait_poll`], and remove it with [`crate::ArenaView::wait_remove`] before it is
/// dropped (N-I4).
#[derive(Debug)]
pub(crate) struct WaiterNode {
    next: Cell<*const WaiterNode>,
    prev: Cell<*const WaiterNode>,
    /// The slot whose list holds this node, or `NONE`.
    slot: Cell<Idx>,
    target: UnsafeCell<WakeTarget>,
    /// Set by the step that takes the node out.
    woken: Cell<bool>,
    _pinned: PhantomPinned,
}

// SAFETY: every field is accessed only while the arena lock is held (N-I1), which serialises all
// threads and interrupt handlers; the wake target it holds is `Send` (a `Waker` or a `Thread`).
unsafe impl Sync for WaiterNode {}
// SAFETY: as above; a node is moved between threads only when it is not linked.
unsafe impl Send for WaiterNode {}

#[cfg_attr(
    not(any(feature = "async", feature = "std")),
    allow(dead_code, reason = "the waiting layers are off")
)]
impl WaiterNode {
    pub(crate) const fn new() -> Self {
        WaiterNode {
            next: Cell::new(core::ptr::null()),
            prev: Cell::new(core::ptr::null()),
            slot: Cell::new(NONE),
            target: UnsafeCell::new(WakeTarget::None),
            woken: Cell::new(false),
            _pinned: PhantomPinned,
        }
    }

    /// Under the lock: whether a step took the node out and woke (or is about to wake) it.
    pub(crate) fn was_woken(&self) -> bool {
        self.woken.get()
    }

    /// Under the lock: the wake target, to set or update.
    ///
    /// # Safety
    /// The arena lock must be held (N-I1) and no other reference to the target may be live.
    #[allow(
        clippy::mut_from_ref,
        reason = "the arena lock, not the borrow, makes the access exclusive (N-I1)"
    )]
    pub(crate) unsafe fn target_mut(&self) -> &mut WakeTarget {
        // SAFETY: the caller holds the lock, which makes this the only access (N-I1).
        unsafe { &mut *self.target.get() }
    }
}

/// The list operations, under the lock. `head` is the slot's `waiters` field.
pub(crate) struct WaiterList<'a> {
    pub(crate) head: &'a crate::engine::sync::AtomicPtr<()>,
}

#[cfg_attr(
    not(any(feature = "async", feature = "std")),
    allow(dead_code, reason = "the waiting layers are off")
)]
impl WaiterList<'_> {
    fn head(&self) -> *const WaiterNode {
        self.head
            .load(crate::engine::sync::Ordering::Relaxed)
            .cast_const()
            .cast()
    }

    fn set_head(&self, n: *const WaiterNode) {
        self.head
            .store(n.cast_mut().cast(), crate::engine::sync::Ordering::Relaxed)
    }

    /// Links `node` at the head (it must not be linked).
    pub(crate) fn push(&self, slot: Idx, node: Pin<&WaiterNode>) {
        let node = node.get_ref();
        let head = self.head();
        node.next.set(head);
        node.prev.set(core::ptr::null());
        if !head.is_null() {
            // SAFETY: linked nodes are alive (N-I4) and accessed under the lock (N-I1).
            unsafe { (*head).prev.set(node) };
        }
        node.slot.set(slot);
        node.woken.set(false);
        self.set_head(node);
    }

    /// Unlinks `node` (it must be in this list).
    pub(crate) fn remove(&self, node: &WaiterNode) {
        let (next, prev) = (node.next.get(), node.prev.get());
        if prev.is_null() {
            self.set_head(next);
        } else {
            // SAFETY: a linked node's neighbours are linked, alive and under the lock (N-I1).
            unsafe { (*prev).next.set(next) };
        }
        if !next.is_null() {
            // SAFETY: as above.
            unsafe { (*next).prev.set(prev) };
        }
        node.slot.set(NONE);
        node.next.set(core::ptr::null());
        node.prev.set(core::ptr::null());
    }

    /// Takes the first node out and returns its wake target, or `None` when the list is empty.
    pub(crate) fn pop(&self) -> Option<WakeTarget> {
        let head = self.head();
        if head.is_null() {
            return None;
        }
        // SAFETY: linked nodes are alive (N-I4) and this runs under the lock (N-I1).
        let node = unsafe { &*head };
        self.remove(node);
        node.woken.set(true);
        // SAFETY: under the lock; no other reference to the target exists (N-I1).
        Some(core::mem::take(unsafe { node.target_mut() }))
    }
}

/// Wake targets taken out under the lock, woken after it (N-I2). Bounded: a step ends when it is
/// full, so that the stack cost is fixed. The storage is left uninitialised until used: every
/// locked step has a batch, and most wake no one, so building or dropping all of it would cost
/// more than the step's work (the benchmark profile measured it at 42 % of a create and cancel).
#[repr(C)]
pub(crate) struct WakeBatch {
    /// How many of `items` are initialised (first: `Work` keeps it beside its flags).
    len: u32,
    /// `items[..len]` are initialised; the rest are not.
    items: [core::mem::MaybeUninit<WakeTarget>; WAKE_BATCH],
}

/// Wake targets per step.
#[cfg(target_pointer_width = "64")]
pub(crate) const WAKE_BATCH: usize = 32;
/// Wake targets per step.
#[cfg(not(target_pointer_width = "64"))]
pub(crate) const WAKE_BATCH: usize = 8;

impl WakeBatch {
    pub(crate) const fn new() -> Self {
        WakeBatch {
            len: 0,
            items: [const { core::mem::MaybeUninit::uninit() }; WAKE_BATCH],
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len as usize == WAKE_BATCH
    }

    pub(crate) fn push(&mut self, t: WakeTarget) {
        assert!(
            !self.is_full(),
            "a step stops taking wake targets when the batch is full"
        );
        self.items[self.len as usize].write(t);
        self.len += 1;
    }

    /// Takes the targets out one by one (for waking outside the lock).
    pub(crate) fn pop(&mut self) -> Option<WakeTarget> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: `items[..len]` are initialised (the field's invariant): the one at the old
        // `len - 1` was written by `push` and is read out once, as `len` now excludes it.
        Some(unsafe { self.items[self.len as usize].assume_init_read() })
    }
}

impl Drop for WakeBatch {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

/// What to wake a waiter with.
#[cfg_attr(
    not(all(feature = "async", feature = "std")),
    allow(dead_code, reason = "each waiting layer uses its own variant")
)]
#[cfg_attr(
    loom,
    allow(
        dead_code,
        reason = "blocking waits (`Thread`) are not built under loom"
    )
)]
pub(crate) enum Want<'w> {
    /// A task's waker.
    Waker(&'w Waker),
    /// The calling thread (blocking waits).
    #[cfg(feature = "std")]
    Thread,
}

#[cfg_attr(
    not(any(feature = "async", feature = "std")),
    allow(dead_code, reason = "the waiting layers are off")
)]
impl crate::engine::arena::ArenaView {
    /// One poll of a waiter on `h`, in one locked step (N-I3): `Some(reason)` when `h` is done
    /// (canceled, expired, released, stale: the node is not linked afterwards), `None` when it is
    /// not, with `node` linked and its target set from `want`. A root is never done: `None`,
    /// and nothing is linked (nothing could ever wake it).
    pub(crate) fn wait_poll(
        &self,
        h: crate::engine::handle::Handle,
        node: Pin<&WaiterNode>,
        want: Want<'_>,
    ) -> Option<crate::error::Error> {
        self.run(None, |t| {
            let reason = t.arena.err(h).err();
            let linked_to = node.slot.get();
            if reason.is_some() || h.is_root() {
                if linked_to != NONE {
                    WaiterList {
                        head: &t.slot(linked_to).waiters,
                    }
                    .remove(node.get_ref());
                }
                return reason;
            }
            let (i, _) = t.resolve(h).ok()?;
            if linked_to != i {
                if linked_to != NONE {
                    WaiterList {
                        head: &t.slot(linked_to).waiters,
                    }
                    .remove(node.get_ref());
                }
                WaiterList {
                    head: &t.slot(i).waiters,
                }
                .push(i, node);
            }
            // SAFETY: under the lock (N-I1); no other reference to the target is live.
            let target = unsafe { node.target_mut() };
            match want {
                Want::Waker(w) => match target {
                    WakeTarget::Waker(old) if old.will_wake(w) => {}
                    _ => *target = WakeTarget::Waker(w.clone()),
                },
                #[cfg(feature = "std")]
                Want::Thread => {
                    if !matches!(target, WakeTarget::Thread(_)) {
                        *target = WakeTarget::Thread(std::thread::current());
                    }
                }
            }
            None
        })
    }

    /// Takes `node` out of its list if it is still in one (N-I4, SPEC N5). Returns whether a step
    /// had taken it out to wake it.
    pub(crate) fn wait_remove(&self, node: Pin<&WaiterNode>) -> bool {
        self.run(None, |t| {
            let i = node.slot.get();
            if i != NONE {
                WaiterList {
                    head: &t.slot(i).waiters,
                }
                .remove(node.get_ref());
            }
            // SAFETY: under the lock (N-I1).
            drop(core::mem::take(unsafe { node.target_mut() }));
            node.was_woken()
        })
    }
}
