//! Callback registrations (`after_func`, SPEC F) and where they run (docs/design.md 8).
//!
//! A registration is a slot of kind `CallbackRust` or `CallbackC` (SPEC F6), linked in its
//! context's child list like a child, so the cancel walk finds it. The walk *claims* it: unlinks
//! it, marks it claimed and chains it into a list local to the canceling call ([`Pending`]); its
//! handle stays valid, so `stop` can still prevent it. Between the walk's locked steps and after
//! the last one, the canceler dispatches the list one entry at a time
//! ([`crate::engine::run`]): under the lock it retires the handle (from then on `stop` answers
//! false: the callback has started, F4), reads the function and data and reclaims the slot (and
//! its context's, if a released context waited only for it, I3); then it calls the function with
//! no lock held (F3). So a callback may call any operation, and `stop` never waits for a running
//! callback: it only takes the lock for O(1) work (F4).
//!
//! # What a callback may do
//!
//! Anything the library offers, on any context, without deadlock: it runs with no lock and no
//! critical section held. It runs in the thread or interrupt handler that made the context done,
//! so it should be short. With `std`, a callback that panics does not abandon the others: the
//! dispatcher catches the panic, runs every remaining callback, finishes the walk (every slot
//! comes back, waiters are woken) and then resumes the first panic in the caller (SPEC F1, A6).
//! Without `std` there is no unwinding to catch: a callback must not panic (firmware builds abort
//! on panic anyway).

use core::ffi::c_void;

use crate::engine::arena::ArenaView;
use crate::engine::slot::{kind_of, pack, unpack, Idx, Kind, NONE};
use crate::engine::sync::Ordering::Relaxed;

/// A function to run when a context is done: a Rust `fn(usize)` with its argument, or a C
/// `void (*)(void *)` with its `userdata`.
///
/// ```
/// use stopwire::{Arena, Callback};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static RAN: AtomicUsize = AtomicUsize::new(0);
/// fn note(n: usize) { RAN.store(n, Ordering::SeqCst); }
///
/// static ARENA: Arena<4> = Arena::new();
/// let ctx = ARENA.background().with_cancel().unwrap();
/// ARENA.after_func(ctx.handle(), Callback::new(note, 7)).unwrap();
/// ctx.cancel();
/// assert_eq!(RAN.load(Ordering::SeqCst), 7);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Callback {
    pub(crate) kind: Kind,
    pub(crate) f: *mut (),
    pub(crate) data: *mut (),
}

impl Callback {
    /// A Rust function and its argument.
    pub fn new(f: fn(usize), data: usize) -> Self {
        Callback {
            kind: Kind::CallbackRust,
            f: f as *mut (),
            data: core::ptr::without_provenance_mut(data),
        }
    }

    /// A C function and its `userdata`.
    ///
    /// # Safety
    /// Calling `f(userdata)` once, from whichever thread or interrupt handler makes the context
    /// done (or from this thread if it already is), must be sound for as long as the registration
    /// exists.
    pub unsafe fn from_c(f: unsafe extern "C" fn(*mut c_void), userdata: *mut c_void) -> Self {
        Callback {
            kind: Kind::CallbackC,
            f: f as *mut (),
            data: userdata.cast(),
        }
    }

    /// Runs the callback.
    pub(crate) fn call(self) {
        match self.kind {
            Kind::CallbackC => {
                // SAFETY: `f` came from an `unsafe extern "C" fn(*mut c_void)` in `from_c` (the
                // kind records which constructor made it); same size, same pointer provenance.
                let f = unsafe {
                    core::mem::transmute::<*mut (), unsafe extern "C" fn(*mut c_void)>(self.f)
                };
                // SAFETY: the caller of `from_c` promised that this call is sound.
                unsafe { f(self.data.cast()) }
            }
            _ => {
                // SAFETY: every other callback was built by `new` from a `fn(usize)`.
                let f = unsafe { core::mem::transmute::<*mut (), fn(usize)>(self.f) };
                f(self.data.addr())
            }
        }
    }
}

/// Callbacks claimed by one operation's walks, waiting to run once the lock is released. A list
/// threaded through the claimed slots' `links` words, so it needs no storage of its own.
///
/// A claimed registration keeps its handle until it is dispatched: `stop` called meanwhile still
/// prevents it (marks it stopped and returns true), so that `stop` answers false only once the
/// callback has started (SPEC F4).
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct Pending(pub(crate) Idx);

impl Pending {
    pub(crate) const fn new() -> Self {
        Pending(NONE)
    }

    /// Chains claimed registration `i` in front of the list.
    pub(crate) fn push(&mut self, arena: &ArenaView, i: Idx) {
        arena.slot(i).links.store(pack(self.0, NONE), Relaxed);
        self.0 = i;
    }

    /// Takes the first entry off the list.
    pub(crate) fn pop(&mut self, arena: &ArenaView) -> Option<Idx> {
        if self.0 == NONE {
            return None;
        }
        let i = self.0;
        self.0 = unpack(arena.slot(i).links.load(Relaxed)).0;
        Some(i)
    }
}

impl Callback {
    /// The callback stored in registration slot `slot`.
    pub(crate) fn of(slot: &crate::engine::slot::Slot) -> Callback {
        Callback {
            kind: kind_of(slot.state.load(Relaxed)),
            f: slot.ptr(0),
            data: slot.ptr(1),
        }
    }
}
