//! Callback registrations (`after_func`, SPEC F) and where they run (DESIGN-QUESTIONS 8).
//!
//! A registration is a slot of kind `CallbackRust` or `CallbackC` (SPEC F6), linked in its
//! context's child list like a child, so the cancel walk finds it. The walk *claims* it (bumps the
//! generation, so `stop` answers false from then on, F4) and chains it into a list local to the
//! canceling call ([`Pending`]). Once the walk is over and the lock released, the canceler pops the
//! list one entry at a time: under the lock it reads the function and data and reclaims the slot
//! (and its context's, if a released context waited only for it, I3), then it calls the function
//! with no lock held (F3). So a callback may call any operation, and
//! `stop` never waits for a running callback: it only takes the lock for O(1) work (F4).

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

/// Callbacks claimed by one walk, waiting to run once the lock is released. A list threaded
/// through the claimed slots' `links` words, so it needs no storage of its own.
#[derive(Debug)]
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
}

impl ArenaView {
    /// Runs every callback of `pending`, one lock entry each, no lock held during the call.
    pub(crate) fn run_pending(&self, pending: Pending) {
        let mut head = pending.0;
        while head != NONE {
            let (cb, next) = self.locked(|t| {
                let slot = t.arena.slot(head);
                let cb = Callback {
                    kind: kind_of(slot.state.load(Relaxed)),
                    f: slot.ptr(0),
                    data: slot.ptr(1),
                };
                let (next, _) = unpack(slot.links.load(Relaxed));
                t.reclaim(head); // frees it, and its context if that was all it waited for
                (cb, next)
            });
            cb.call();
            head = next;
        }
    }
}
