//! Where deadlines wait: the deadline lanes, the driver `expire`, and the driver's wake-up
//! (SPEC D5, T3, T5, N1; docs/design.md 7).
//!
//! # Lanes
//!
//! The owners of pending deadlines are kept in [`LANES`] sorted, doubly-linked lists (*lanes*)
//! threaded through the owners' payload (`payload[1]` holds next and previous), so they cost no
//! memory beyond the slot and the lane heads. Each lane is sorted by deadline; the earliest pending
//! deadline is the least of the lane heads, so `next_deadline` is exact and `expire` pops in
//! deadline order, O(lanes) per owner (T5: its cost grows with what it handles, never with the
//! capacity).
//!
//! Programs create deadlines in a few monotone streams: one fixed timeout per request, another per
//! connection, a few absolute deadlines. A new deadline goes, in O(lanes):
//!
//! 1. at the tail of the lane whose tail is the latest deadline not after it (a stream keeps its
//!    lane: appends in creation order);
//! 2. else into an empty lane;
//! 3. else at the head of a lane whose head is later than it;
//! 4. else (every lane spans it) into a lane by a backward scan from its tail. The scan runs in
//!    bounded locked steps ([`crate::engine::run`]): between steps the scan's position, a queued
//!    owner, is pinned (I3), and the scan resumes there if that owner is still queued (every node
//!    queued after it meanwhile has a later deadline, so the position is still right), or starts
//!    over from the tail if it was settled meanwhile (or goes after the tail, if every owner later
//!    than it went meanwhile). The new owner is published before it is queued, and pinned too (a
//!    handle forged before its creation returns could release it, and its slot must not be reused
//!    under the scan); a walk that settles it meanwhile finds it unqueued (`NOT_QUEUED` links) and
//!    the scan stops (I5).
//!
//! So one long timeout per connection beside short per-request timeouts costs nothing per
//! request: the two streams live in two lanes.
//!
//! # Equal deadlines
//!
//! A child asked for the same deadline as its parent's owns it (SPEC D2). It goes right after
//! the nearest owner above it (its parent's deadline owner, whose deadline is then equal), in that
//! owner's lane, in O(1). So of two owners with one deadline where one is above the other, the one
//! above is always nearer its lane's head: `expire` handles it first and its walk makes the one
//! below done with it, which is then not counted (T5; the reading of docs/spec.md that the
//! reference model takes: equal deadlines in creation order). Which of two unrelated owners with
//! one deadline goes first changes no count and no cause. The exception is an owner above that
//! is not queued when the child is created, which needs a handle forged while the owner's own
//! creation is still queueing it: the child is then queued as any new owner.
//!
//! # What `expire` counts (T5)
//!
//! The owners it settles itself. An owner that another call settled first — a cancel or release
//! (even one made after the deadline had passed: that call runs the callbacks and records
//! `DeadlineExceeded`), an ancestor's walk, or its own creation when it is born done (D3) — has
//! had its reaction already and is not counted again. Keeping settled owners queued until a driver
//! counts them would hold their slots until `expire` runs, so a program that never calls `expire`
//! would leak them (A6).
//!
//! # The driver (SPEC N1)
//!
//! Whoever drives the arena's deadlines (the host driver thread, an embassy task, a firmware alarm)
//! registers a waker with [`ArenaView::driver_poll`], which also tells it the earliest deadline to
//! sleep until. A creation whose deadline is earlier than that takes the waker out and wakes it
//! after the lock (N-I2 of [`crate::engine::waiter`]), so the driver never sleeps past a deadline
//! and is woken only when the earliest deadline gets earlier: creating later deadlines, canceling
//! and releasing never wake it.

use core::task::Waker;

use crate::engine::arena::ArenaView;
use crate::engine::run::Tree;
use crate::engine::slot::{
    is_settled, kind_of, pack, unpack, AtomicPair, Idx, Kind, Pair, ERR_DEADLINE, NONE, NOT_QUEUED,
};
use crate::engine::sync::Ordering::Relaxed;

/// Number of deadline lanes.
pub(crate) const LANES: usize = 4;

/// The lane heads and tails, `pack(head, tail)` each.
pub(crate) type Lanes = [AtomicPair; LANES];

macro_rules! lanes_new {
    () => {
        [
            $crate::engine::slot::AtomicPair::new($crate::engine::slot::pack(
                $crate::engine::slot::NONE,
                $crate::engine::slot::NONE,
            )),
            $crate::engine::slot::AtomicPair::new($crate::engine::slot::pack(
                $crate::engine::slot::NONE,
                $crate::engine::slot::NONE,
            )),
            $crate::engine::slot::AtomicPair::new($crate::engine::slot::pack(
                $crate::engine::slot::NONE,
                $crate::engine::slot::NONE,
            )),
            $crate::engine::slot::AtomicPair::new($crate::engine::slot::pack(
                $crate::engine::slot::NONE,
                $crate::engine::slot::NONE,
            )),
        ]
    };
}
pub(crate) use lanes_new as LANES_NEW;

/// A deadline insertion paused between two steps: `node` goes into `lane` after the last owner
/// before `cursor` whose deadline is not later; `cursor` (pinned) has a later deadline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Insert {
    node: Idx,
    lane: usize,
    cursor: Idx,
}

impl Insert {
    /// The node inserted: `Work` keeps it as the insertion's head (never `NONE`).
    #[inline]
    pub(crate) fn key(&self) -> Idx {
        self.node
    }
}

impl Tree<'_> {
    fn lane(&self, l: usize) -> (Idx, Idx) {
        unpack(self.arena.header.lanes[l].load(Relaxed))
    }

    fn set_lane(&self, l: usize, head: Idx, tail: Idx) {
        self.arena.header.lanes[l].store(pack(head, tail), Relaxed)
    }

    fn links(&self, i: Idx) -> (Idx, Idx) {
        unpack(self.slot(i).word(1) as Pair)
    }

    fn set_links(&self, i: Idx, next: Idx, prev: Idx) {
        self.slot(i).set_word(1, pack(next, prev) as usize);
    }

    fn dl(&self, i: Idx) -> u64 {
        self.slot(i).deadline.get()
    }

    /// Marks owner `i` as in no lane.
    pub(crate) fn lane_unqueued(&self, i: Idx) {
        self.set_links(i, NOT_QUEUED, NOT_QUEUED);
    }

    fn is_queued(&self, i: Idx) -> bool {
        self.links(i).0 != NOT_QUEUED
    }

    /// Links `i` between `prev` and `next` in lane `l` (either may be `NONE`).
    fn lane_link(&self, l: usize, i: Idx, prev: Idx, next: Idx) {
        self.set_links(i, next, prev);
        let (mut head, mut tail) = self.lane(l);
        if prev == NONE {
            head = i;
        } else {
            let (_, pp) = self.links(prev);
            self.set_links(prev, i, pp);
        }
        if next == NONE {
            tail = i;
        } else {
            let (nn, _) = self.links(next);
            self.set_links(next, nn, i);
        }
        self.set_lane(l, head, tail);
    }

    /// Queues the new owner `i` (module docs), and wakes the driver if its deadline is earlier
    /// than the one the driver sleeps until. `above` is the nearest owner above `i` (its parent's
    /// deadline owner) when that one's deadline equals `i`'s: `i` then goes right after it, in its
    /// lane (module docs, "Equal deadlines").
    pub(crate) fn lane_insert(&mut self, i: Idx, above: Idx) {
        let d = self.dl(i);
        if above != NONE && self.is_queued(above) {
            debug_assert_eq!(
                self.dl(above),
                d,
                "only an equal deadline is placed after its owner"
            );
            let (next, _) = self.links(above);
            // `lane_link` needs the lane only to move one of its ends: here, when `above` is a tail.
            let l = if next == NONE {
                self.lane_ending_at(above)
            } else {
                0
            };
            self.lane_link(l, i, above, next);
            self.queued(i);
            return;
        }
        // Rules 1 and 2 of the module docs need only the tails; rule 3 reads the heads, and only
        // when neither applies.
        let mut append: Option<(usize, u64)> = None;
        let mut empty = None;
        for l in 0..LANES {
            let (head, tail) = self.lane(l);
            if head == NONE {
                empty.get_or_insert(l);
                continue;
            }
            let td = self.dl(tail);
            if td <= d && append.is_none_or(|(_, best)| td > best) {
                append = Some((l, td));
            }
        }
        self.spend();
        if let Some((l, _)) = append {
            let (_, tail) = self.lane(l);
            self.lane_link(l, i, tail, NONE);
        } else if let Some(l) = empty {
            self.lane_link(l, i, NONE, NONE);
        } else if let Some(l) = (0..LANES).find(|&l| self.dl(self.lane(l).0) > d) {
            let (head, _) = self.lane(l);
            self.lane_link(l, i, NONE, head);
        } else {
            // Every lane spans `d`: scan lane 0 from its tail, in steps. Until it is linked, `i`
            // is published but in no lane (I5: a walk that settles it meanwhile finds it so).
            // Both the cursor and `i` are pinned (I3): `i` may be released meanwhile (through a
            // handle forged before its creation returns), and its slot must not be reused under
            // the insertion.
            self.lane_unqueued(i);
            self.slot(i).add_ref();
            let (_, tail) = self.lane(0);
            self.slot(tail).add_ref();
            self.work.put_insert(Insert {
                node: i,
                lane: 0,
                cursor: tail,
            });
            return;
        }
        self.queued(i);
    }

    /// Continues a scanning insertion within this step's budget.
    pub(crate) fn resume_insert(&mut self, mut ins: Insert) {
        let d = self.dl(ins.node);
        // Settled meanwhile (canceled, released, expired by an ancestor): nothing to queue. The
        // slot is pinned, so it is still this owner's.
        let node_state = self.slot(ins.node).state.load(Relaxed);
        debug_assert_eq!(
            kind_of(node_state),
            Kind::Deadline,
            "I3: the new owner is pinned"
        );
        if is_settled(node_state) {
            self.release_ref(ins.cursor);
            self.release_ref(ins.node);
            return;
        }
        loop {
            if !self.is_queued(ins.cursor) {
                // The position was settled meanwhile: start over from the tail.
                self.release_ref(ins.cursor);
                let (_, tail) = self.lane(ins.lane);
                if tail == NONE || self.dl(tail) <= d {
                    // Empty, or every owner later than `d` went meanwhile: `node` goes last.
                    self.lane_link(ins.lane, ins.node, tail, NONE);
                    self.inserted(ins.node);
                    return;
                }
                self.slot(tail).add_ref();
                ins.cursor = tail;
            }
            // `cursor` is queued and later than `d`: look at the one before it.
            let (_, prev) = self.links(ins.cursor);
            if prev == NONE || self.dl(prev) <= d {
                let next = ins.cursor;
                self.lane_link(ins.lane, ins.node, prev, next);
                self.release_ref(next);
                self.inserted(ins.node);
                return;
            }
            self.slot(prev).add_ref();
            self.release_ref(ins.cursor);
            ins.cursor = prev;
            if self.spend() || self.work.has_reclaim() {
                self.work.put_insert(ins);
                return;
            }
        }
    }

    /// A paused insertion has linked owner `i`: wake the driver if needed, and unpin `i`.
    fn inserted(&mut self, i: Idx) {
        self.queued(i);
        self.release_ref(i);
    }

    /// Owner `i` is queued: wake the driver if it sleeps past `i`'s deadline.
    fn queued(&mut self, i: Idx) {
        let h = &self.arena.header;
        let d = self.dl(i);
        if d < h.driver_until.get() {
            h.driver_until.set(d);
            // SAFETY: `driver_waker` is only accessed under the lock, which this step holds.
            if let Some(w) = unsafe { (*h.driver_waker.get()).take() } {
                self.work.set_driver(w);
            }
        }
    }

    /// The lane of queued owner `i`, which is at one of its ends (owners keep no lane number).
    fn lane_ending_at(&self, i: Idx) -> usize {
        (0..LANES)
            .find(|&l| {
                let (head, tail) = self.lane(l);
                head == i || tail == i
            })
            .expect("a queued owner at an end of a list is a lane's head or tail")
    }

    /// Removes owner `i` from its lane, if it is in one (I5).
    pub(crate) fn lane_remove(&mut self, i: Idx) {
        let (next, prev) = self.links(i);
        if next == NOT_QUEUED {
            return;
        }
        if prev == NONE || next == NONE {
            let l = self.lane_ending_at(i);
            let (mut head, mut tail) = self.lane(l);
            if prev == NONE {
                head = next;
            }
            if next == NONE {
                tail = prev;
            }
            self.set_lane(l, head, tail);
        }
        if prev != NONE {
            let (_, pp) = self.links(prev);
            self.set_links(prev, next, pp);
        }
        if next != NONE {
            let (nn, _) = self.links(next);
            self.set_links(next, nn, prev);
        }
        self.lane_unqueued(i);
    }

    /// The owner with the earliest pending deadline.
    pub(crate) fn earliest(&self) -> Option<Idx> {
        (0..LANES)
            .map(|l| self.lane(l).0)
            .filter(|&h| h != NONE)
            .min_by_key(|&h| self.dl(h))
    }
}

impl ArenaView {
    /// The deadline driver (SPEC T5): handles every deadline owner whose deadline is `<= now`
    /// that no earlier call handled and that was not done before by other means; each is made
    /// done with its subtree (`DeadlineExceeded`, its cause), the callbacks this makes due run in
    /// this call, and the count of owners handled is returned.
    ///
    /// Each owner is handled in its own locked steps; callbacks run between them with no lock.
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
        self.expire_while(now, || true)
    }

    /// [`ArenaView::expire`] for a driver that may act only while `allowed()` holds, asked
    /// inside each locked step (so after every change that step can see): the host driver asks
    /// whether its clock still has a rate, which the C library's clock can lose at any moment.
    pub(crate) fn expire_while(&self, now: u64, allowed: impl Fn() -> bool) -> u32 {
        let mut handled = 0u32;
        // Nodes below an owner are judged by the later of `now` and the clock, so that a walk
        // never contradicts what a check may already have reported.
        let walk_now = now.max(self.now());
        loop {
            let more = self.run(Some(walk_now), |t| {
                if !allowed() {
                    return false;
                }
                let Some(head) = t.earliest() else {
                    return false;
                };
                if t.arena.slot(head).deadline.get() > now {
                    return false;
                }
                let cause = t.arena.slot(head).word(0) as u32;
                t.cancel_node(head, ERR_DEADLINE, cause);
                true
            });
            if !more {
                return handled;
            }
            handled = handled.saturating_add(1);
        }
    }

    /// The earliest pending deadline among owners not yet handled: when the deadline driver
    /// should next run (an async timer or a hardware alarm). O(lanes).
    pub fn next_deadline(&self) -> Option<u64> {
        self.run(None, |t| {
            t.earliest().map(|h| t.arena.slot(h).deadline.get())
        })
    }

    /// For a deadline driver: the earliest pending deadline (what to sleep until), and, in the
    /// same locked step, `waker` stored to be woken as soon as an earlier deadline is created
    /// (module docs). One driver per arena: a second one replaces the first's waker.
    pub fn driver_poll(&self, waker: &Waker) -> Option<u64> {
        self.driver_poll_as(waker, true)
    }

    /// [`ArenaView::driver_poll`] for a driver that may be unable to sleep by time
    /// (`sleeps_until_next == false`: its clock has no real-time rate and it waits for
    /// notifications): then every new deadline wakes it, not only an earlier one.
    pub(crate) fn driver_poll_as(&self, waker: &Waker, sleeps_until_next: bool) -> Option<u64> {
        self.run(None, |t| {
            let next = t.earliest().map(|h| t.arena.slot(h).deadline.get());
            let h = &t.arena.header;
            let until = if sleeps_until_next {
                next.unwrap_or(u64::MAX)
            } else {
                u64::MAX
            };
            h.driver_until.set(until);
            // SAFETY: `driver_waker` is only accessed under the lock, which this step holds.
            let slot = unsafe { &mut *h.driver_waker.get() };
            match slot {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
            next
        })
    }
}
