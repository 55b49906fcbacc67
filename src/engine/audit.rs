//! An audit of the arena's structural invariants (I1-I5 of [`crate::engine::arena`]): for tests, fuzzing
//! and debugging. O(N²) in the capacity; call it when no other operation is in flight.

use core::fmt;

use crate::engine::arena::ArenaView;
use crate::engine::slot::{
    is_settled, kind_of, unpack, Idx, Kind, Pair, CLOCKED, ERR_MASK, ERR_TRANSIENT, HANDLE, HAS_DL,
    NONE,
};
use crate::engine::sync::Ordering::Relaxed;

/// A broken invariant found by [`ArenaView::audit`]: what is wrong, and at which slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditError {
    /// The invariant that does not hold.
    pub what: &'static str,
    /// The slot where it was found.
    pub slot: usize,
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arena invariant broken at slot {}: {}",
            self.slot, self.what
        )
    }
}

impl core::error::Error for AuditError {}

impl ArenaView {
    /// Checks every structural invariant of the arena: slot accounting, child lists, `refs`,
    /// released slots kept only for descendants, inherited deadlines, the deadline queue.
    ///
    /// Meant for tests and debugging, with no other operation in flight (a callback being run by
    /// another thread holds a slot that is in no list). Takes the lock; O(N²).
    ///
    /// ```
    /// use stopwire::Arena;
    /// static ARENA: Arena<8> = Arena::new();
    /// let a = ARENA.background().with_cancel().unwrap();
    /// let _b = a.with_timeout(1_000).unwrap();
    /// a.cancel();
    /// assert_eq!(ARENA.audit(), Ok(()));
    /// ```
    pub fn audit(&self) -> Result<(), AuditError> {
        self.locked(|_| self.audit_locked())
    }

    fn audit_locked(&self) -> Result<(), AuditError> {
        let n = self.slots.len();
        let fail = |what, slot: usize| Err(AuditError { what, slot });
        let state = |i: usize| self.slots[i].state.load(Relaxed);
        let h = &self.header;
        let unused = h.unused_from.load(Relaxed) as usize;

        // Slot accounting (A6).
        let mut allocated = 0usize;
        for i in 0..n {
            let s = state(i);
            if kind_of(s) != Kind::Free {
                allocated += 1;
                if i >= unused {
                    return fail("allocated slot beyond the never-used mark", i);
                }
            }
        }
        if allocated != h.in_use.load(Relaxed) as usize {
            return fail("in_use differs from the allocated slots", n);
        }
        let mut free = 0usize;
        let mut f = h.free_head.load(Relaxed);
        let mut last_free = NONE;
        while f != NONE {
            let i = f as usize;
            if i >= n || kind_of(state(i)) != Kind::Free || state(i) & HANDLE != 0 {
                return fail("free list holds a slot that is not free", i.min(n));
            }
            free += 1;
            if free > n {
                return fail("free list has a cycle", i);
            }
            last_free = f;
            f = self.slots[i].first_child();
        }
        if last_free != h.free_tail.load(Relaxed) {
            return fail("free list tail is wrong", n);
        }
        if allocated + free + (n - unused) != n {
            return fail("slots lost: allocated + free + never used != capacity", n);
        }

        let mut owners = 0usize;
        for i in 0..n {
            let s = state(i);
            let kind = kind_of(s);
            if kind == Kind::Free {
                continue;
            }
            let slot = &self.slots[i];
            // I3: refs counts allocated children, registrations included.
            let children = (0..n)
                .filter(|&j| {
                    kind_of(state(j)) != Kind::Free && self.slots[j].parent() as usize == i
                })
                .count();
            if !slot.waiters.load(Relaxed).is_null()
                && (s & HANDLE == 0 || is_settled(s) || kind.is_callback())
            {
                return fail("waiters linked on a node that is done or released (I7)", i);
            }
            if kind.is_callback() {
                if children != 0 || s & HANDLE == 0 {
                    return fail("callback registration with children or no handle", i);
                }
                continue;
            }
            if s & CLOCKED != 0 && s & HAS_DL == 0 {
                return fail("CLOCKED on a node without a deadline", i);
            }
            if s & ERR_MASK == ERR_TRANSIENT && s & CLOCKED == 0 {
                return fail(
                    "deadline seen on a node no check compares with the clock",
                    i,
                );
            }
            if s & HAS_DL != 0 {
                let o = slot.dl_owner.load(Relaxed) as usize;
                if o >= n || kind_of(state(o)) != Kind::Deadline {
                    return fail("dl_owner does not name a deadline owner", i);
                }
                if self.slots[o].deadline.get() != slot.deadline.get() {
                    return fail("dl_owner's deadline differs from the node's", i);
                }
            }
            if slot.refs() as usize != children {
                return fail("refs differs from the allocated children", i);
            }
            // Zombies are kept only for descendants, and are settled unless detached.
            if s & HANDLE == 0 {
                if children == 0 {
                    return fail("released slot with no descendants was not reclaimed", i);
                }
                if !matches!(kind, Kind::Detached | Kind::Value) && !is_settled(s) {
                    return fail("released context is not settled", i);
                }
            }
            // I4: a settled node has no listed children.
            if is_settled(s) && slot.first_child() != NONE {
                return fail("settled context still lists children", i);
            }
            // I2: the child list holds exactly the unsettled, non-detached children and the
            // pending registrations.
            let expected = (0..n)
                .filter(|&j| {
                    let sj = state(j);
                    let k = kind_of(sj);
                    k != Kind::Free
                        && self.slots[j].parent() as usize == i
                        && k != Kind::Detached
                        && (if k.is_callback() {
                            sj & HANDLE != 0
                        } else {
                            !is_settled(sj)
                        })
                })
                .count();
            let mut listed = 0usize;
            let mut prev: Idx = NONE;
            let mut c = slot.first_child();
            while c != NONE {
                let ci = c as usize;
                if ci >= n || self.slots[ci].parent() as usize != i {
                    return fail("child list holds a slot whose parent is elsewhere", i);
                }
                let (next, p) = self.slots[ci].siblings();
                if p != prev {
                    return fail("child list back link is wrong", ci);
                }
                listed += 1;
                if listed > n {
                    return fail("child list has a cycle", i);
                }
                prev = c;
                c = next;
            }
            if listed != expected {
                return fail("child list does not hold exactly the live children", i);
            }
            // D2: deadlines are inherited, never later than the parent's.
            let p = slot.parent();
            if p != NONE && kind != Kind::Detached {
                let ps = state(p as usize);
                if ps & HAS_DL != 0 {
                    let pd = self.slots[p as usize].deadline.get();
                    let d = slot.deadline.get();
                    if s & HAS_DL == 0 || d > pd || (kind != Kind::Deadline && d != pd) {
                        return fail("deadline not inherited from the parent", i);
                    }
                }
            }
            if kind == Kind::Deadline && !is_settled(s) {
                owners += 1;
            }
        }

        // I5: the queue holds exactly the unsettled owners, sorted by deadline.
        let mut queued = 0usize;
        for lane in h.lanes.iter() {
            let (head, tail) = unpack(lane.load(Relaxed));
            let mut prev: Idx = NONE;
            let mut q = head;
            let mut last = 0u64;
            while q != NONE {
                let qi = q as usize;
                if qi >= n {
                    return fail("deadline lane points outside the arena", n);
                }
                let s = state(qi);
                if kind_of(s) != Kind::Deadline || is_settled(s) {
                    return fail("deadline lane holds a slot that is not a pending owner", qi);
                }
                let d = self.slots[qi].deadline.get();
                if d < last {
                    return fail("deadline lane out of order", qi);
                }
                last = d;
                let (next, p) = unpack(self.slots[qi].word(1) as Pair);
                if p != prev {
                    return fail("deadline lane back link is wrong", qi);
                }
                queued += 1;
                if queued > n {
                    return fail("deadline lane has a cycle", qi);
                }
                prev = q;
                q = next;
            }
            if prev != tail {
                return fail("deadline lane tail is wrong", n);
            }
        }
        if queued != owners {
            return fail("deadline lanes miss pending owners", n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Arena, ArenaView, Callback, Handle, ManualClock};

    /// A small deterministic generator (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn noop(_: usize) {}

    /// Random operations on a small arena; the audit holds after each, and releasing everything
    /// returns every slot (A6).
    fn random_ops(arena: &ArenaView, clock: &ManualClock, seed: u64, steps: usize) {
        let mut rng = Rng(seed);
        let mut held: [Handle; 32] = [Handle::DEAD; 32];
        let mut regs: [Handle; 8] = [Handle::DEAD; 8];
        for _ in 0..steps {
            let slot = rng.below(held.len());
            let parent = if rng.below(4) == 0 {
                Handle::BACKGROUND
            } else {
                held[rng.below(held.len())]
            };
            let made = match rng.below(12) {
                0 => arena.with_cancel(parent).ok(),
                1 => arena
                    .with_timeout_cause(parent, rng.below(20) as u64, 7)
                    .ok(),
                2 => arena
                    .with_deadline_cause(parent, clock_now(clock) + rng.below(30) as u64, 0)
                    .ok(),
                3 => arena
                    .with_value(parent, 1 + rng.below(3), rng.below(100))
                    .ok(),
                4 => arena.without_cancel(parent).ok(),
                5 => {
                    let _ = arena.cancel(held[slot], rng.below(3) as u32);
                    None
                }
                6 | 7 => {
                    let _ = arena.release(held[slot]);
                    held[slot] = Handle::DEAD;
                    None
                }
                8 => {
                    clock.advance(rng.below(8) as u64);
                    let _ = arena.expire(clock_now(clock));
                    None
                }
                9 => {
                    let r = rng.below(regs.len());
                    let _ = arena.stop(regs[r]);
                    regs[r] = arena
                        .after_func(parent, Callback::new(noop, 0))
                        .unwrap_or(Handle::DEAD);
                    None
                }
                10 => {
                    let _ = arena.stop(regs[rng.below(regs.len())]);
                    None
                }
                _ => {
                    let _ = arena.is_done(held[slot]);
                    let _ = arena.cause(held[slot]);
                    let _ = arena.value(held[slot], 1);
                    None
                }
            };
            if let Some(h) = made {
                let _ = arena.release(held[slot]);
                held[slot] = h;
            }
            assert_eq!(arena.audit(), Ok(()));
        }
        for h in held.iter().chain(regs.iter()) {
            let _ = arena.release(*h);
        }
        assert_eq!(arena.audit(), Ok(()));
        assert_eq!(arena.stats().in_use, 0, "A6: every slot returns");
    }

    fn clock_now(clock: &ManualClock) -> u64 {
        use crate::Clock;
        clock.now()
    }

    #[test]
    fn a6_random_operations_keep_every_invariant() {
        static CLOCK: ManualClock = ManualClock::new(0);
        let clock = &CLOCK;
        let arena: Arena<24> = Arena::with_clock(clock);
        let steps = if cfg!(miri) { 60 } else { 5_000 };
        for seed in 1u64..=if cfg!(miri) { 2 } else { 20 } {
            random_ops(
                &arena,
                clock,
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                steps,
            );
        }
    }

    #[test]
    fn c2_a5_deep_chain_cancels_and_reclaims_without_recursion() {
        // Thousands of levels: a recursive walk or reclamation would overflow a small stack; the
        // iterative ones need O(1) stack.
        const DEPTH: usize = if cfg!(miri) { 60 } else { 4000 };
        static ARENA: Arena<{ DEPTH + 1 }> = Arena::new();
        let mut chain = std::vec::Vec::new();
        chain.push(ARENA.with_cancel(Handle::BACKGROUND).unwrap());
        for _ in 0..DEPTH {
            let last = *chain.last().unwrap();
            chain.push(ARENA.with_value(last, 1, 2).unwrap());
        }
        let leaf = *chain.last().unwrap();
        assert_eq!(ARENA.value(leaf, 1), Ok(Some(2)));
        ARENA.cancel(chain[0], 0).unwrap();
        assert!(ARENA.is_done(leaf));
        // Release from the root down: each slot is kept for the chain below it (A5)...
        for h in &chain[..DEPTH] {
            ARENA.release(*h).unwrap();
        }
        assert_eq!(ARENA.stats().in_use as usize, DEPTH + 1);
        assert_eq!(
            ARENA.value(leaf, 1),
            Ok(Some(2)),
            "V3: values through released ancestors"
        );
        assert_eq!(ARENA.audit(), Ok(()));
        // ...and the leaf's release reclaims the whole chain.
        ARENA.release(leaf).unwrap();
        assert_eq!(ARENA.stats().in_use, 0);
        assert_eq!(ARENA.audit(), Ok(()));
    }
}
