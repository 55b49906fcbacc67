//! The arena lock: what guards the tree (docs/design.md 2).
//!
//! Every change to the tree — linking a child, the cancel walk, unlinking and reclaiming, the
//! free list, the deadline queue, the statistics — happens while this lock is held. Checks
//! (`err`, `is_done`, `cause`, `deadline`, `value`) never take it (SPEC T2).
//!
//! The strategy is chosen at compile time, one engine for both:
//!
//! Each strategy gives a guard ([`Lock::lock`]; the lock is held until it is dropped) and the
//! closure form [`Lock::with`]. The operations take the guard, so that on hosts the first step of
//! an operation inlines into it with no closure in between ([`crate::engine::run`]).
//!
//! - **Without `std`** (microcontrollers): `critical_section::acquire` / `release` (what
//!   `critical_section::with` does, held by the guard). On a single-core MCU the
//!   firmware's critical-section implementation masks interrupts, so an interrupt handler can call
//!   any operation: it can never interrupt a holder of the lock (docs/embedded.md: a spin lock would
//!   deadlock there). The library enables no implementation; the firmware picks one.
//! - **With `std`** (hosts): a per-arena test-and-test-and-set lock that spins briefly and then
//!   *sleeps* in growing steps (2 µs doubling to 100 µs) until the lock is free. Uncontended it costs
//!   one atomic swap and one plain store (the `std` critical section is one process-wide mutex,
//!   about 13 ns per entry; a futex mutex needs a second atomic read-modify-write to unlock).
//!   Sleeping rather than yielding matters with real-time threads: `yield_now` never hands the CPU
//!   to a holder of lower priority, so a `SCHED_FIFO` thread spinning on a lock held by a
//!   preempted normal thread would starve it for good; a sleep lets the holder run and finish its
//!   step, which is bounded (SPEC T3), so the waiter's delay is bounded by a few of its sleeps.
//!   Measured by `cargo run --release --example rt_lock` (a `SCHED_FIFO` thread creating and
//!   canceling contexts beside a normal thread building 931-node trees, both pinned to CPU 0,
//!   3 s, load average 5.9 from other builds): 12 765 operations, worst 2.8 ms; the same threads
//!   on a `std::sync::Mutex`: 24 449 operations (one push each), worst 5.1 ms. The spin-and-yield
//!   lock of the previous release completed 2 operations in 3 s (worst 2.0 s) in the same setup.
//!   Hosts have no interrupt handlers; a POSIX signal handler must not create, cancel or release
//!   (checks are fine: they take no lock).
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

    /// Interrupts stay masked until this is dropped.
    pub(crate) struct Guard(critical_section::RestoreState);

    /// What [`Lock::lock`] returns.
    pub(crate) type LockGuard<'a> = Guard;

    impl Drop for Guard {
        #[inline]
        fn drop(&mut self) {
            // SAFETY: `self.0` came from the `acquire` in `Lock::lock`, and guards are dropped
            // in the reverse order of their creation (they live in the stack frames of the
            // operations and are never forgotten), which is the nesting `release` requires.
            unsafe { critical_section::release(self.0) };
        }
    }

    impl Lock {
        pub(crate) const fn new() -> Self {
            Lock
        }

        /// Takes the lock (masks interrupts) until the guard is dropped.
        #[inline]
        pub(crate) fn lock(&self) -> Guard {
            // SAFETY: the matching `release` is in `Guard::drop` (see there for the nesting).
            Guard(unsafe { critical_section::acquire() })
        }
    }
}

#[cfg(loom)]
mod imp {
    /// What [`Lock::lock`] returns.
    pub(crate) type LockGuard<'a> = loom::sync::MutexGuard<'a, ()>;

    /// loom's mutex: explored as a blocking lock.
    #[derive(Debug)]
    pub(crate) struct Lock(loom::sync::Mutex<()>);

    impl Lock {
        pub(crate) fn new() -> Self {
            Lock(loom::sync::Mutex::new(()))
        }

        /// Takes the lock until the guard is dropped.
        #[inline]
        pub(crate) fn lock(&self) -> LockGuard<'_> {
            self.0.lock().expect("the engine never panics while locked")
        }
    }
}

#[cfg(all(feature = "std", not(loom)))]
mod imp {
    use crate::engine::sync::{AtomicBool, Ordering};

    /// Test-and-test-and-set lock that spins briefly, then sleeps (module docs).
    #[derive(Debug)]
    pub(crate) struct Lock {
        held: AtomicBool,
    }

    /// Releases the lock when dropped, also if the holder unwinds.
    pub(crate) struct Guard<'a>(&'a AtomicBool);

    /// What [`Lock::lock`] returns.
    pub(crate) type LockGuard<'a> = Guard<'a>;

    impl Drop for Guard<'_> {
        #[inline]
        fn drop(&mut self) {
            self.0.store(false, Ordering::Release);
        }
    }

    /// Spins of the first phase (each a load and a pause instruction: about a microsecond in all).
    const SPINS: u32 = 128;
    /// The first and the longest sleep of the second phase.
    const SLEEP_MIN_US: u64 = 2;
    const SLEEP_MAX_US: u64 = 100;

    impl Lock {
        pub(crate) const fn new() -> Self {
            Lock {
                held: AtomicBool::new(false),
            }
        }

        /// Takes the lock until the guard is dropped.
        #[inline(always)]
        pub(crate) fn lock(&self) -> Guard<'_> {
            if self.held.swap(true, Ordering::Acquire) {
                self.contended();
            }
            Guard(&self.held)
        }

        #[cold]
        #[inline(never)]
        fn contended(&self) {
            let mut spins = 0u32;
            let mut sleep_us = SLEEP_MIN_US;
            loop {
                while self.held.load(Ordering::Relaxed) {
                    if spins < SPINS {
                        spins += 1;
                        core::hint::spin_loop();
                    } else {
                        // The holder may be a preempted thread of lower priority: sleeping (not
                        // yielding) gives it the CPU whatever the scheduling policies.
                        std::thread::sleep(core::time::Duration::from_micros(sleep_us));
                        sleep_us = (sleep_us * 2).min(SLEEP_MAX_US);
                    }
                }
                if !self.held.swap(true, Ordering::Acquire) {
                    return;
                }
            }
        }
    }
}

pub(crate) use imp::{Lock, LockGuard};

impl Lock {
    /// Runs `f` with the lock held (the guard of [`Lock::lock`] around it, whatever the
    /// strategy), released also if `f` unwinds.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.lock();
        f()
    }
}
