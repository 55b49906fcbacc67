//! SPEC C1-C12: cancellation. (C10 and C11 under real threads: `tests/stress.rs`; models of the
//! races: `tests/loom.rs`.)

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

use common::{arena, clock, key, nz, EARLY, P, SLOW};
use stopwire::{ArenaView, Error, Handle, OwnedCtx};

#[test]
fn c1_with_cancel_makes_a_child_that_is_not_done() {
    let a = arena::<8>(clock(0));
    let parent = a.background().with_cancel().unwrap();
    let child = parent.with_cancel().unwrap();
    let grandchild = child.with_cancel().unwrap();
    for c in [&parent, &child, &grandchild] {
        assert_eq!(c.err(), Ok(()));
        assert!(!c.is_done());
        assert_eq!(c.cause(), Err(Error::NotDone));
    }
    let todo_child = a.todo().with_cancel().unwrap();
    assert!(!todo_child.is_done());
}

/// Builds a tree of `n` nodes (random shape from `seed`), every node returned with its parent's
/// index (`usize::MAX` for the top).
fn random_tree<'a>(a: &'a ArenaView, n: usize, seed: u64) -> Vec<(OwnedCtx<'a>, usize)> {
    let mut rng = common::Rng::new(seed);
    let mut nodes: Vec<(OwnedCtx<'a>, usize)> =
        vec![(a.background().with_cancel().unwrap(), usize::MAX)];
    while nodes.len() < n {
        let p = rng.below(nodes.len());
        let parent = nodes[p].0.ctx();
        let child = match rng.below(4) {
            0 => parent.with_cancel(),
            1 => parent.with_value(key(rng.below(5) + 1), p),
            2 => parent.with_deadline(1_000_000 + rng.below(1000) as u64),
            _ => parent.with_timeout(u64::MAX),
        }
        .unwrap();
        nodes.push((child, p));
    }
    nodes
}

#[test]
fn c2_when_cancel_returns_every_descendant_reports_done() {
    let a = arena::<256>(clock(0));
    // A deep chain...
    let top = a.background().with_cancel().unwrap();
    let mut chain = vec![];
    let mut cur = top.ctx();
    for _ in 0..100 {
        let next = cur.with_cancel().unwrap();
        cur = next.ctx();
        chain.push(next);
    }
    assert!(top.cancel());
    assert!(chain.iter().all(|c| c.err() == Err(Error::Canceled)));
    // ... and random bushy trees.
    for seed in 0..10 {
        let nodes = random_tree(&a, 120, seed);
        assert!(nodes.iter().all(|(c, _)| !c.is_done()));
        assert!(nodes[0].0.cancel());
        for (c, _) in &nodes {
            assert_eq!(c.err(), Err(Error::Canceled), "seed {seed}");
        }
    }
}

#[test]
fn c3_cancel_is_idempotent_and_only_the_first_call_is_told_so() {
    let a = arena::<8>(clock(0));
    let c = a.background().with_cancel().unwrap();
    assert!(c.cancel_with_cause(nz(P)));
    for _ in 0..3 {
        assert!(!c.cancel());
        assert!(!c.cancel_with_cause(nz(SLOW)));
        assert_eq!(a.cancel(c.handle(), 0), Ok(false));
    }
    assert_eq!(c.cause(), Ok(Some(nz(P))));
    // From many threads at once: exactly one is first.
    for round in 0..100 {
        let c = a.background().with_cancel().unwrap();
        let h = c.handle();
        let firsts = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let (a, firsts) = (&a, &firsts);
                s.spawn(move || {
                    if a.cancel(h, t + 1) == Ok(true) {
                        firsts.fetch_add(1, SeqCst);
                    }
                });
            }
        });
        assert_eq!(firsts.load(SeqCst), 1, "round {round}");
        let cause = c.cause().unwrap().unwrap().get();
        assert!((1..=4).contains(&cause));
    }
}

#[test]
fn c4_err_never_changes_once_set() {
    let clk = clock(0);
    let a = arena::<8>(clk);
    // Canceled, then the deadline passes, then the driver runs: still Canceled.
    let c = a.background().with_deadline(10).unwrap();
    assert_eq!(c.err(), Ok(()));
    c.cancel();
    clk.set(20);
    assert_eq!(a.expire(20), 0);
    assert_eq!(c.err(), Err(Error::Canceled));
    // Deadline seen by a check, then canceled: still DeadlineExceeded, below it too.
    let d = a.background().with_deadline(30).unwrap();
    let below = d.with_cancel().unwrap();
    clk.set(30);
    assert_eq!(d.err(), Err(Error::DeadlineExceeded));
    assert!(
        !d.cancel(),
        "C3: a deadline made it done, no cancel is first"
    );
    assert_eq!(d.err(), Err(Error::DeadlineExceeded));
    assert_eq!(below.err(), Err(Error::DeadlineExceeded));
    // Never set while not done: a context not done reports no Err and no cause.
    let e = a.background().with_deadline(40).unwrap();
    assert_eq!((e.err(), e.cause()), (Ok(()), Err(Error::NotDone)));
}

fn bump(n: usize) {
    CALLED.fetch_add(n, SeqCst);
}
static CALLED: AtomicUsize = AtomicUsize::new(0);

#[test]
fn c5_cancel_passes_through_value_deadline_and_callback_layers() {
    let a = arena::<16>(clock(0));
    let top = a.background().with_cancel().unwrap();
    let v = top.with_value(key(1), 1).unwrap();
    let d = v.with_deadline(u64::MAX).unwrap();
    let t = d.with_timeout(1_000).unwrap();
    let reg = t.after_func(bump, 1_000).unwrap();
    let leaf = t.with_value(key(2), 2).unwrap();
    let w = leaf.with_cancel().unwrap();
    let before = CALLED.load(SeqCst);
    top.cancel_with_cause(nz(P));
    assert!(
        CALLED.load(SeqCst) - before >= 1_000,
        "the callback layer was reached"
    );
    assert!(!reg.stop());
    for c in [&v, &d, &t, &leaf, &w] {
        assert_eq!(c.err(), Err(Error::Canceled));
        assert_eq!(c.cause(), Ok(Some(nz(P))));
    }
}

#[test]
fn c6_descendants_get_the_ancestor_err_and_cause() {
    let clk = clock(0);
    let a = arena::<16>(clk);
    let top = a.background().with_cancel().unwrap();
    let mid = top.with_value(key(1), 1).unwrap();
    let low = mid.with_cancel().unwrap();
    top.cancel_with_cause(nz(EARLY));
    assert_eq!(
        (low.err(), low.cause()),
        (Err(Error::Canceled), Ok(Some(nz(EARLY))))
    );
    // An expiry arrives below as DeadlineExceeded, with the deadline's cause, by check and driver.
    let owner = a.background().with_deadline_cause(10, nz(SLOW)).unwrap();
    let x = owner.with_cancel().unwrap();
    let y = x.with_value(key(2), 2).unwrap();
    let z = owner.with_cancel().unwrap();
    clk.set(10);
    assert_eq!(
        (y.err(), y.cause()),
        (Err(Error::DeadlineExceeded), Ok(Some(nz(SLOW))))
    );
    assert_eq!(a.expire(10), 1);
    for c in [&owner, &x, &y, &z] {
        assert_eq!(
            (c.err(), c.cause()),
            (Err(Error::DeadlineExceeded), Ok(Some(nz(SLOW))))
        );
    }
}

#[test]
fn c7_a_child_of_a_done_parent_is_born_done_with_its_err_and_cause() {
    let clk = clock(0);
    let a = arena::<32>(clk);
    let p = a.background().with_cancel().unwrap();
    p.cancel_with_cause(nz(P));
    let children = [
        p.with_cancel().unwrap(),
        p.with_value(key(1), 1).unwrap(),
        p.with_deadline(u64::MAX).unwrap(),
        p.with_timeout_cause(1_000, nz(SLOW)).unwrap(),
    ];
    for c in &children {
        assert_eq!(
            (c.err(), c.cause()),
            (Err(Error::Canceled), Ok(Some(nz(P))))
        );
        assert!(!c.cancel(), "born done: nothing left to cancel");
    }
    // Under a parent past its deadline, before any check or driver saw it.
    let q = a.background().with_deadline_cause(5, nz(SLOW)).unwrap();
    let q_child = q.with_cancel().unwrap();
    clk.set(5);
    let born = q.with_cancel().unwrap();
    let born_dl = q.with_deadline_cause(100, nz(EARLY)).unwrap();
    let born_under_child = q_child.with_value(key(3), 3).unwrap();
    for c in [&born, &born_dl, &born_under_child] {
        assert_eq!(
            (c.err(), c.cause()),
            (Err(Error::DeadlineExceeded), Ok(Some(nz(SLOW))))
        );
    }
    assert_eq!(a.expire(5), 1, "T5: the owner, not the children born done");
    // Raw API too.
    let r = a.with_cancel(p.handle()).unwrap();
    assert_eq!(a.err(r), Err(Error::Canceled));
    a.release(r).unwrap();
}

#[test]
fn c8_canceling_a_child_leaves_parent_and_siblings_alone() {
    let a = arena::<16>(clock(0));
    let p = a.background().with_cancel().unwrap();
    let s1 = p.with_cancel().unwrap();
    let c = p.with_cancel().unwrap();
    let s2 = p.with_value(key(1), 1).unwrap();
    let nephew = s1.with_cancel().unwrap();
    let grandchild = c.with_cancel().unwrap();
    assert!(c.cancel());
    assert_eq!(grandchild.err(), Err(Error::Canceled));
    for x in [&p, &s1, &s2, &nephew] {
        assert_eq!(x.err(), Ok(()));
    }
    drop(c);
    drop(grandchild);
    for x in [&p, &s1, &s2, &nephew] {
        assert_eq!(x.err(), Ok(()));
    }
}

/// C9: a canceled child leaves its parent's list at once. Observable: once its slot is released
/// and reused by an unrelated context, canceling the old parent does not reach the newcomer (it
/// would if a link to the slot had stayed behind), whichever place in the list it had.
#[test]
fn c9_a_canceled_or_released_child_leaves_the_parent_list() {
    for victim in 0..3 {
        for by_release in [false, true] {
            let a = arena::<5>(clock(0));
            let p = a.background().with_cancel().unwrap();
            let mut kids: Vec<Option<OwnedCtx<'_>>> =
                (0..3).map(|_| Some(p.with_cancel().unwrap())).collect();
            let in_use = a.stats().in_use;
            let gone = kids[victim].take().unwrap();
            if !by_release {
                assert!(gone.cancel());
                assert_eq!(a.stats().in_use, in_use, "held: still one slot");
            }
            drop(gone);
            assert_eq!(
                a.stats().in_use,
                in_use - 1,
                "C9/A5: no slot held once released"
            );
            // The freed slot is reused by an unrelated context (it is the only free one but one).
            let newcomer = a.background().with_cancel().unwrap();
            let other = a.background().with_cancel().unwrap();
            assert_eq!(a.background().with_cancel().err(), Some(Error::Full));
            assert!(p.cancel());
            for k in kids.iter().flatten() {
                assert_eq!(k.err(), Err(Error::Canceled));
            }
            assert_eq!(
                newcomer.err(),
                Ok(()),
                "victim {victim}, release {by_release}"
            );
            assert_eq!(other.err(), Ok(()));
        }
    }
    // A held canceled child keeps its cause when the parent is canceled later (the walk does not
    // reach it again).
    let a = arena::<4>(clock(0));
    let p = a.background().with_cancel().unwrap();
    let c = p.with_cancel().unwrap();
    c.cancel_with_cause(nz(EARLY));
    p.cancel_with_cause(nz(P));
    assert_eq!(c.cause(), Ok(Some(nz(EARLY))));
    // Repeated create/cancel/release under one long-lived parent leaves nothing behind.
    let base = a.stats().in_use;
    let q = a.background().with_cancel().unwrap();
    for _ in 0..10_000 {
        let k = q.with_cancel().unwrap();
        k.cancel();
    }
    assert_eq!(a.stats().in_use, base + 1);
    assert_eq!(a.stats().high_water, 4);
}

static ORDER: Mutex<Vec<usize>> = Mutex::new(Vec::new());
fn record(n: usize) {
    ORDER.lock().unwrap().push(n);
}

/// C12: sibling order is unspecified; all that is promised is that every callback runs after
/// its context is done. Only the set is checked.
#[test]
fn c12_sibling_cancellation_reaches_all_in_some_order() {
    let a = arena::<32>(clock(0));
    let p = a.background().with_cancel().unwrap();
    let kids: Vec<_> = (0..8).map(|_| p.with_cancel().unwrap()).collect();
    let regs: Vec<_> = kids
        .iter()
        .enumerate()
        .map(|(i, k)| k.after_func(record, 100 + i).unwrap())
        .collect();
    let p_reg = p.after_func(record, 1).unwrap();
    ORDER.lock().unwrap().clear();
    p.cancel();
    let got: BTreeSet<usize> = ORDER.lock().unwrap().iter().copied().collect();
    let want: BTreeSet<usize> = std::iter::once(1).chain(100..108).collect();
    assert_eq!(got, want);
    assert_eq!(ORDER.lock().unwrap().len(), 9, "each exactly once");
    assert!(kids.iter().all(|k| k.is_done()));
    drop((regs, p_reg));
}

/// A root-level child, a released handle and a forged one: cancel refuses the last two.
#[test]
fn c2_cancel_refuses_stale_handles_and_changes_nothing() {
    let a = arena::<4>(clock(0));
    let c = a.background().with_cancel().unwrap();
    let h = c.handle();
    drop(c);
    let d = a.background().with_cancel().unwrap();
    assert_eq!(a.cancel(h, 1), Err(Error::Stale));
    assert_eq!(
        a.cancel(Handle::from_raw(d.handle().to_raw() + 1), 1),
        Err(Error::Stale)
    );
    assert_eq!(d.err(), Ok(()));
}
