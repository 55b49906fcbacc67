//! The cancel walk, in bounded steps (SPEC C2, C5, C6, C10, T3; docs/design.md 3, 4, 9).
//!
//! Canceling marks the node, then visits its subtree iteratively with no stack: it repeatedly
//! detaches the first child of the current node (the *cursor*), marks it and descends into it;
//! when the cursor has no child left it climbs to its parent. Every node is marked once, detached
//! once and climbed out of once: O(subtree) work, O(1) memory, no recursion. Detaching as it goes
//! makes a canceled child stop costing its parent anything (C9).
//!
//! The walk runs in locked steps of a bounded budget ([`crate::engine::run`]). Between two steps
//! anything may happen to the subtree, and the walk stays right:
//!
//! - The root is marked in the first step, so a child created under it afterwards is born done
//!   (C7); a child created under a node not reached yet is linked in that node's list and the walk
//!   reaches it later (C10). There is no third case, so no cancellation is lost.
//! - A node not reached yet may be canceled or released by someone else: their walk settles it and
//!   unlinks it, so this walk never reaches it (each walk owns the nodes it detached).
//! - The cursor is *pinned* while the walk is paused: it holds a reference on it (I3), so it is
//!   never reclaimed or reused under the walk. Its ancestors up to the root stay allocated because
//!   the cursor is their descendant. Climbing from a pinned cursor pins the parent first, then
//!   drops the old pin (which may reclaim the old cursor, released meanwhile; the cascade stops at
//!   the pinned parent).
//! - When `cancel` returns, the walk has visited every node linked under the root: C2 holds.
//!
//! Each node is marked with the Err and cause of the node it was reached from (C6, K4), except
//! that a node whose own effective deadline has passed is marked `DeadlineExceeded` with its
//! deadline owner's cause (found in O(1) through `dl_owner`): that is what a check would already
//! have reported (C4, D4, K5).
//!
//! # Marking a node with a deadline (C4 on every target)
//!
//! A lock-free check of a node with a deadline may find the deadline passed while no walk has
//! marked the node; it reports `DeadlineExceeded`, and the walk must not record anything else.
//! Only nodes with `CLOCKED` are checked so ([`crate::engine::slot`]): a node created while a
//! real-time driver served the arena is written by no one but locked walks, and is marked with
//! plain stores, its Err decided by what reached it. For the others:
//!
//! - With compare-and-swap: the check records `ERR_TRANSIENT` ("deadline seen") with one CAS; the
//!   walk decides and stores with a CAS loop, and honours a "seen" it finds.
//! - Without it (thumbv6m, RP2040, riscv32imc; `cfg(stopwire_no_cas)` on hosts), on one core or
//!   several: the walk stores `ERR_TRANSIENT` ("marking") first, then a sequentially consistent
//!   fence, then reads the clock *afresh* and stores the final value. A check that finds the
//!   deadline passed issues the same fence and reads the state again: if it still reads "not
//!   done", the walk's fence comes after its own in the fence order, so the walk's clock reading
//!   comes after the check's, sees the deadline passed too, and records `DeadlineExceeded`. If it
//!   reads "marking", it waits for the final value (the walk holds the lock for a few
//!   instructions: on one core the check cannot run meanwhile, on two it waits for the other
//!   core). No rule relies on there being one core.

use crate::engine::callback::Callback;
use crate::engine::run::Tree;
use crate::engine::slot::{
    is_settled, kind_of, with_err, Idx, Kind, State, CB_CLAIMED, CLOCKED, ERR_DEADLINE, ERR_MASK,
    ERR_NONE, ERR_TRANSIENT, HANDLE, HAS_DL, NONE,
};
use crate::engine::sync::Ordering::{Relaxed, Release};
use crate::engine::waiter::WaiterList;

/// A walk in progress: its root, its cursor, and what it still has to do at the cursor.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walk {
    root: Idx,
    cur: Idx,
    /// The walk holds a reference on `cur` (it was paused there).
    pinned: bool,
    /// `cur`'s waiters have still to be taken out.
    drain: bool,
    /// Whether to visit the subtree (false: only wake the root's waiters, for a release that
    /// cancels nothing, V4, W1).
    descend: bool,
}

impl Walk {
    /// Its root: `Work` keeps it as the walk's head (never `NONE`).
    #[inline]
    pub(crate) fn key(&self) -> Idx {
        self.root
    }
}

impl Tree<'_> {
    /// Marks `r` with `err`/`cause` (unless it is settled already) and starts a walk of its
    /// subtree, unless it has no children and no waiters (then the walk would end where it
    /// starts). Returns true when this call set `r`'s Err to `err` (SPEC C3).
    #[cfg_attr(target_pointer_width = "64", inline(always))]
    pub(crate) fn cancel_node(&mut self, r: Idx, err: State, cause: u32) -> bool {
        let s = self.state(r);
        if is_settled(s) {
            return false;
        }
        if self.slot(r).parent() != NONE {
            self.unlink_child(r); // I2: unsettled, not detached, has a parent: linked
        }
        let e = self.mark(r, err, cause);
        if self.slot(r).first_child() == NONE && self.slot(r).waiters.load(Relaxed).is_null() {
            // Nothing below and nobody waiting (N-I1: both read under the lock): the walk would
            // end where it starts. What its end does, done here.
            self.spend();
            self.reclaim_if_unneeded(r);
        } else {
            self.start_walk(r, true);
        }
        s & ERR_MASK == ERR_NONE && e == err
    }

    /// Starts a walk at `r` (already marked, or `descend == false`).
    pub(crate) fn start_walk(&mut self, r: Idx, descend: bool) {
        self.spend();
        self.work.put_walk(Walk {
            root: r,
            cur: r,
            pinned: false,
            drain: true,
            descend,
        });
    }

    #[inline]
    pub(crate) fn state(&self, i: Idx) -> State {
        self.slot(i).state.load(Relaxed)
    }

    /// Continues a walk within this step's budget.
    pub(crate) fn resume_walk(&mut self, mut w: Walk) {
        loop {
            if self.exhausted() || self.work.has_reclaim() {
                if !w.pinned {
                    self.slot(w.cur).add_ref(); // I3: the cursor survives the pause
                    w.pinned = true;
                }
                self.work.put_walk(w);
                return;
            }
            if w.drain {
                let list = WaiterList {
                    head: &self.slot(w.cur).waiters,
                };
                if let Some(t) = list.pop() {
                    self.work.wakes.push(t);
                    self.spend();
                    continue;
                }
                w.drain = false;
            }
            let cur = w.cur;
            let child = if w.descend {
                self.slot(cur).first_child()
            } else {
                NONE
            };
            if child == NONE {
                if cur == w.root {
                    self.end_walk(w);
                    return;
                }
                let p = self.slot(cur).parent();
                w.cur = p;
                if w.pinned {
                    self.slot(p).add_ref();
                    self.release_ref(cur); // may reclaim `cur`; stops at the pinned parent
                }
                self.spend();
                continue;
            }
            // Detach the first child.
            let (next, _) = self.slot(child).siblings();
            self.slot(cur).first_child.store(next, Relaxed);
            if next != NONE {
                let (nn, _) = self.slot(next).siblings();
                self.slot(next).set_siblings(nn, NONE);
            }
            self.spend();
            let cs = self.state(child);
            if kind_of(cs).is_callback() {
                // Claimed: unlinked, still stoppable until dispatched (SPEC F4).
                self.slot(child)
                    .state
                    .store(with_err(cs, CB_CLAIMED), Release);
                self.work.pending.push(self.arena, child);
                continue;
            }
            let from = self.state(cur) & ERR_MASK;
            let cause = self.slot(cur).cause();
            self.mark(child, from, cause);
            let c = self.slot(child);
            if c.first_child() == NONE && c.waiters.load(Relaxed).is_null() {
                // A leaf nobody waits for: marked is visited; no need to descend and climb back.
                continue;
            }
            if w.pinned {
                // `cur` keeps a reference through its child: dropping the pin frees nothing.
                self.slot(cur).drop_ref();
                w.pinned = false;
            }
            w.cur = child;
            w.drain = true;
        }
    }

    /// The walk is over: drop its pin, and reclaim the root if it was released and nothing needs
    /// it (SPEC A5).
    fn end_walk(&mut self, w: Walk) {
        if w.pinned {
            self.slot(w.root).drop_ref();
        }
        self.reclaim_if_unneeded(w.root);
    }

    /// Reclaims `r` if its owner has released it and nothing needs it any more (I3, SPEC A5):
    /// what the end of a walk does for its root.
    #[inline(always)]
    pub(crate) fn reclaim_if_unneeded(&mut self, r: Idx) {
        if self.state(r) & HANDLE == 0 && self.slot(r).refs() == 0 {
            self.reclaim_from(r);
        }
    }

    /// The cause a deadline expiry gives node `i` (its deadline owner's, K5). O(1).
    #[inline]
    pub(crate) fn dl_cause(&self, i: Idx) -> u32 {
        self.slot(self.slot(i).dl_owner.load(Relaxed)).word(0) as u32
    }

    /// Writes the final Err and cause of node `i`, reached from a node done with `err`/`cause`.
    /// Returns the Err recorded.
    #[inline]
    pub(crate) fn mark(&mut self, i: Idx, err: State, cause: u32) -> State {
        let s = self.state(i);
        if s & HAS_DL == 0 {
            // No deadline (so not a deadline owner either): no lock-free check writes this node.
            return self.mark_plain(i, s, err, cause);
        }
        self.mark_deadline(i, s, err, cause)
    }

    /// Marks node `i` (loaded as `s`), which no lock-free check writes, with plain stores.
    #[inline]
    fn mark_plain(&self, i: Idx, s: State, err: State, cause: u32) -> State {
        let slot = self.slot(i);
        slot.set_cause(cause);
        slot.state.store(with_err(s, err), Release);
        err
    }

    /// [`Tree::mark`] for a node with a deadline.
    #[inline(never)]
    fn mark_deadline(&mut self, i: Idx, s: State, err: State, cause: u32) -> State {
        let slot = self.slot(i);
        if kind_of(s) == Kind::Deadline {
            self.lane_remove(i); // I5
        }
        if err == ERR_DEADLINE {
            // Reached from an expired node: its deadline is no later (D2), so it has passed too;
            // an equal deadline of its own keeps its own cause (D2, K5).
            let c = self.dl_cause(i);
            slot.set_cause(c);
            self.store_err(i, s, ERR_DEADLINE);
            return ERR_DEADLINE;
        }
        if s & CLOCKED == 0 {
            // No check compares this deadline with the clock, nor writes this node (module docs).
            return self.mark_plain(i, s, err, cause);
        }
        self.mark_deadline_node(i, s, err, cause)
    }

    /// Stores Err `e` on node `i` (loaded as `s`) over whatever a lock-free check recorded
    /// meanwhile ("deadline seen" is the only thing a check writes, and `e` subsumes it here).
    fn store_err(&self, i: Idx, s: State, e: State) {
        let slot = self.slot(i);
        #[cfg(all(target_has_atomic = "32", not(stopwire_no_cas)))]
        if s & CLOCKED != 0 {
            let mut cur = s;
            loop {
                match slot
                    .state
                    .compare_exchange(cur, with_err(cur, e), Release, Relaxed)
                {
                    Ok(_) => return,
                    Err(actual) => cur = actual,
                }
            }
        }
        // No CAS on this target (the walk holds the lock: a check may only wait), or no check
        // writes this node.
        slot.state.store(with_err(s, e), Release);
    }

    /// [`Tree::mark`] for a node with a deadline reached from a canceled node (module docs).
    #[cfg(all(target_has_atomic = "32", not(stopwire_no_cas)))]
    fn mark_deadline_node(&mut self, i: Idx, mut s: State, err: State, cause: u32) -> State {
        let read_clock = self.arena.checks_read_clock();
        loop {
            let expired = s & ERR_MASK == ERR_TRANSIENT
                || (read_clock && self.now() >= self.slot(i).deadline.get());
            let (e, c) = if expired {
                (ERR_DEADLINE, self.dl_cause(i))
            } else {
                (err, cause)
            };
            let slot = self.slot(i);
            slot.set_cause(c);
            match slot
                .state
                .compare_exchange(s, with_err(s, e), Release, Relaxed)
            {
                Ok(_) => return e,
                // A check recorded "deadline seen" meanwhile: decide again.
                Err(actual) => s = actual,
            }
        }
    }

    /// [`Tree::mark`] for a node with a deadline reached from a canceled node (module docs).
    #[cfg(any(not(target_has_atomic = "32"), stopwire_no_cas))]
    fn mark_deadline_node(&mut self, i: Idx, s: State, err: State, cause: u32) -> State {
        use crate::engine::sync::{fence, Ordering::SeqCst};
        let slot = self.slot(i);
        slot.state.store(with_err(s, ERR_TRANSIENT), Relaxed);
        fence(SeqCst);
        // A fresh reading, after the fence (module docs): not the step's cached one.
        let t = self.arena.header.clock.now();
        let (e, c) = if t >= slot.deadline.get() {
            (ERR_DEADLINE, self.dl_cause(i))
        } else {
            (err, cause)
        };
        slot.set_cause(c);
        slot.state.store(with_err(s, e), Release);
        e
    }

    /// Dispatches claimed registration `i`: retires its handle (from now on `stop` answers false:
    /// it has started, F4), takes its function out and reclaims its slot; the callback runs once
    /// the lock is released. A registration stopped while claimed is only reclaimed.
    pub(crate) fn dispatch(&mut self, i: Idx) {
        let s = self.state(i);
        self.spend();
        if s & ERR_MASK == CB_CLAIMED {
            self.work.set_call(Callback::of(self.slot(i)));
        }
        self.slot(i).state.store(s & !HANDLE, Relaxed);
        self.reclaim_from(i);
    }
}
