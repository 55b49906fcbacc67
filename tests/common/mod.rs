//! Helpers shared by the rule tests (`tests/spec_*.rs`, `tests/stress.rs`, `tests/alloc.rs`).
#![allow(dead_code, reason = "each test file uses a different subset")]

use core::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use stopwire::{Arena, Clock, ManualClock};

/// User causes of the K7 table.
pub(crate) const P: u32 = 101;
pub(crate) const CH: u32 = 102;
pub(crate) const SLOW: u32 = 103;
pub(crate) const EARLY: u32 = 104;

/// A non-zero cause.
pub(crate) fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A non-zero key.
pub(crate) fn key(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

/// A manual clock of its own for one test (tests of a file run in parallel).
pub(crate) fn clock(start: u64) -> &'static ManualClock {
    Box::leak(Box::new(ManualClock::new(start)))
}

/// A boxed arena reading `clock`: big arenas stay off the test thread's stack.
pub(crate) fn arena<const N: usize>(clock: &'static dyn Clock) -> Box<Arena<N>> {
    Box::new(Arena::with_clock(clock))
}

/// A manual clock that also counts how often it is read.
#[derive(Debug, Default)]
pub(crate) struct CountingClock {
    pub(crate) ticks: AtomicU64,
    pub(crate) reads: AtomicUsize,
}

impl CountingClock {
    pub(crate) fn leak(start: u64) -> &'static CountingClock {
        let c = Box::leak(Box::<CountingClock>::default());
        c.ticks.store(start, SeqCst);
        c
    }
    pub(crate) fn reads(&self) -> usize {
        self.reads.load(SeqCst)
    }
    pub(crate) fn set(&self, t: u64) {
        self.ticks.store(t, SeqCst);
    }
}

impl Clock for CountingClock {
    fn now(&self) -> u64 {
        self.reads.fetch_add(1, SeqCst);
        self.ticks.load(SeqCst)
    }
}

/// A small deterministic PRNG (xorshift64*): reproducible "random" orders without a dependency.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-enough in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub(crate) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}
