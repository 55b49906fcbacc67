//! Where deadlines wait: the deadline queue and the driver `expire` (SPEC D5, T5;
//! DESIGN-QUESTIONS 7).
//!
//! Checks need no timer: a node stores its effective deadline and a check compares it with the
//! clock. Code that must *react* at the deadline (run callbacks, wake a task) is served by the
//! driver [`ArenaView::expire`], which needs the owners of pending deadlines in order.
//!
//! The queue is a doubly-linked list of deadline owners sorted by deadline (ties in creation
//! order), threaded through the owners' payload (`payload[1]` holds next and previous), so it
//! costs no memory beyond the slot. Insertion scans from the tail, so timeouts created in
//! deadline order — the usual case, one fixed timeout per request — insert in O(1); the worst case
//! is O(owners pending later than the new one). Removal is O(1); `expire` pops from the head, so
//! its cost grows with what it handles, never with the capacity (T5). Invariant I5: an owner is in
//! the queue exactly while it is not settled.
//!
//! What `expire` counts (T5): the owners it settles itself. An owner that another call settled
//! first — a cancel or release (even one made after the deadline had passed: that call runs the
//! callbacks and records `DeadlineExceeded`), an ancestor's walk, or its own creation when it is
//! born done (D3) — has had its reaction already and is not counted again. Keeping settled owners
//! queued until a driver counts them would hold their slots until `expire` runs, so a program that
//! never calls `expire` would leak them (A6).

use crate::engine::arena::ArenaView;
use crate::engine::callback::Pending;
use crate::engine::slot::{pack, unpack, Idx, Pair, ERR_DEADLINE, NONE};
use crate::engine::sync::Ordering::Relaxed;
use crate::engine::tree::Tree;

impl Tree<'_> {
    fn dq_links(&self, i: Idx) -> (Idx, Idx) {
        unpack(self.arena.slot(i).word(1) as Pair)
    }

    fn set_dq_links(&self, i: Idx, next: Idx, prev: Idx) {
        self.arena.slot(i).set_word(1, pack(next, prev) as usize);
    }

    fn deadline_of(&self, i: Idx) -> u64 {
        self.arena.slot(i).deadline.get()
    }

    /// Inserts owner `i` in deadline order.
    pub(crate) fn dq_insert(&mut self, i: Idx) {
        let h = &self.arena.header;
        let d = self.deadline_of(i);
        let mut after = h.dq_tail.load(Relaxed);
        while after != NONE && self.deadline_of(after) > d {
            after = self.dq_links(after).1;
        }
        let next = if after == NONE {
            h.dq_head.load(Relaxed)
        } else {
            self.dq_links(after).0
        };
        self.set_dq_links(i, next, after);
        if after == NONE {
            h.dq_head.store(i, Relaxed);
        } else {
            let (_, ap) = self.dq_links(after);
            self.set_dq_links(after, i, ap);
        }
        if next == NONE {
            h.dq_tail.store(i, Relaxed);
        } else {
            let (nn, _) = self.dq_links(next);
            self.set_dq_links(next, nn, i);
        }
    }

    /// Removes owner `i` (I5: it is in the queue).
    pub(crate) fn dq_remove(&mut self, i: Idx) {
        let h = &self.arena.header;
        let (next, prev) = self.dq_links(i);
        if prev == NONE {
            h.dq_head.store(next, Relaxed);
        } else {
            let (_, pp) = self.dq_links(prev);
            self.set_dq_links(prev, next, pp);
        }
        if next == NONE {
            h.dq_tail.store(prev, Relaxed);
        } else {
            let (nn, _) = self.dq_links(next);
            self.set_dq_links(next, nn, prev);
        }
    }
}

impl ArenaView {
    /// The deadline driver (SPEC T5): handles every deadline owner whose deadline is `<= now`
    /// that no earlier call handled and that was not done before by other means; each is made
    /// done with its subtree (`DeadlineExceeded`, its cause), the callbacks this makes due run in
    /// this call, and the count of owners handled is returned.
    ///
    /// Each owner is handled in its own locked section; callbacks run between them with no lock.
    ///
    /// ```
    /// use stopwire::{Arena, Error, ManualClock};
    /// static CLOCK: ManualClock = ManualClock::new(0);
    /// static ARENA: Arena<4> = Arena::with_clock(&CLOCK);
    /// let a = ARENA.background().with_deadline(10).unwrap();
    /// let b = ARENA.background().with_deadline(20).unwrap();
    /// assert_eq!(ARENA.expire(15), 1);
    /// assert_eq!(a.err(), Err(Error::DeadlineExceeded));
    /// assert_eq!(ARENA.expire(15), 0);
    /// assert_eq!(ARENA.next_deadline(), Some(20));
    /// # drop(b);
    /// ```
    pub fn expire(&self, now: u64) -> u32 {
        let mut handled = 0u32;
        // Nodes below an owner are judged by the later of `now` and the clock, so that a walk
        // never contradicts what a check may already have reported.
        let walk_now = now.max(self.now());
        loop {
            let mut pending = Pending::new();
            let more = self.locked_at(Some(walk_now), |t| {
                let head = t.arena.header.dq_head.load(Relaxed);
                if head == NONE || t.arena.slot(head).deadline.get() > now {
                    return false;
                }
                let cause = t.arena.slot(head).word(0) as u32;
                t.cancel_walk(head, ERR_DEADLINE, cause, &mut pending);
                true
            });
            self.run_pending(pending);
            if !more {
                return handled;
            }
            handled = handled.saturating_add(1);
        }
    }

    /// The earliest pending deadline among owners not yet handled: when the deadline driver
    /// should next run (an async timer or a hardware alarm).
    pub fn next_deadline(&self) -> Option<u64> {
        self.locked(|t| {
            let head = t.arena.header.dq_head.load(Relaxed);
            (head != NONE).then(|| t.arena.slot(head).deadline.get())
        })
    }
}
