//! The arena lock: what guards the tree (DESIGN-QUESTIONS 2).
//!
//! Every change to the tree — linking a child, the cancel walk, unlinking and reclaiming, the
//! free list, the deadline queue, the statistics — happens while this lock is held. Checks
//! (`err`, `is_done`, `cause`, `deadline`, `value`) never take it (SPEC T2).
//!
//! The strategy is chosen at compile time, one engine for both:
//!
//! - **Without `std`** (microcontrollers): `critical_section::with`. On a single-core MCU the
//!   firmware's critical-section implementation masks interrupts, so an interrupt handler can call
//!   any operation: it can never interrupt a holder of the lock (EMBEDDED.md: a spin lock would
//!   deadlock there). The library enables no implementation; the firmware picks one.
//! - **With `std`** (hosts): a per-arena test-and-test-and-set spin lock that yields to the OS
//!   scheduler after a short spin. The `std` critical section is one process-wide mutex (about
//!   13 ns per entry, BENCHMARKS.md) shared by every arena; the spin lock costs one uncontended
//!   atomic swap and one store, and two arenas never contend. Hosts have no interrupt handlers; a
//!   POSIX signal handler must not create, cancel or release (checks are fine: they take no lock).
//! - **Under loom**: loom's `Mutex`, which loom models as a blocking lock (a spin loop would make
//!   the model's state space explode without testing anything the spin lock adds).
//!
//! Lock order: there is one lock per arena and no operation ever holds two (no callback, clock read
//! or user code runs while it is held, except the clock read, which must not touch the arena). So
//! no lock-order cycle and no deadlock can exist.

#[cfg(not(any(feature = "std", loom)))]
mod imp {
    /// Critical-section lock: zero-sized, interrupts masked while held.
    #[derive(Debug)]
    pub(crate) struct Lock;

    impl Lock {
        pub(crate) const fn new() -> Self {
            Lock
        }

        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce() -> R) -> R {
            critical_section::with(|_| f())
        }
    }
}

#[cfg(loom)]
mod imp {
    /// loom's mutex: explored as a blocking lock.
    #[derive(Debug)]
    pub(crate) struct Lock(loom::sync::Mutex<()>);

    impl Lock {
        pub(crate) fn new() -> Self {
            Lock(loom::sync::Mutex::new(()))
        }

        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce() -> R) -> R {
            let _guard = self.0.lock().expect("the engine never panics while locked");
            f()
        }
    }
}

#[cfg(all(feature = "std", not(loom)))]
mod imp {
    use crate::engine::sync::{AtomicBool, Ordering};

    /// Test-and-test-and-set spin lock.
    #[derive(Debug)]
    pub(crate) struct Lock {
        held: AtomicBool,
    }

    /// Releases the lock when dropped, also if the closure unwinds.
    struct Guard<'a>(&'a AtomicBool);

    impl Drop for Guard<'_> {
        #[inline]
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }

    impl Lock {
        pub(crate) const fn new() -> Self {
            Lock {
                held: AtomicBool::new(false),
            }
        }

        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce() -> R) -> R {
            if self.held.swap(true, Ordering::Acquire) {
                self.contended();
            }
            let _guard = Guard(&self.held);
            f()
        }

        #[cold]
        #[inline(never)]
        fn contended(&self) {
            let mut spins = 0u32;
            loop {
                while self.held.load(Ordering::Relaxed) {
                    spins += 1;
                    if spins < 64 {
                        core::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
                if !self.held.swap(true, Ordering::Acquire) {
                    return;
                }
            }
        }
    }
}

pub(crate) use imp::Lock;
