//! loom models of the races of the design (run with `RUSTFLAGS="--cfg loom"`, and again with
//! `--cfg stopwire_no_cas` for the paths of chips without compare-and-swap; see `cargo xtask
//! test`). Each model names the SPEC rule it guards and stays small enough to finish in seconds
//! with `LOOM_MAX_PREEMPTIONS=2`, and prints how many interleavings it explored (`cargo xtask
//! verify loom` tabulates them).
//!
//! A model explores a race only if loom sees the racing accesses as dependent. loom 0.7 records the
//! last access of each location: a thread that loads a location before storing it (as every
//! locked step does) hides an earlier load of another thread from it, and the model then runs a
//! single interleaving. So the lock-free readers run on a spawned thread while the model's main
//! thread makes the changes they race with. `cargo xtask verify mutants` checks that the models can
//! fail: each of its mutations of the engine must make one fail.
//!
//! The waiting models (N4, N5, N6, module `waiting`) poll [`stopwire::Done`] futures: they need
//! feature `async` and the futures built under loom (see `WAITING_UNDER_LOOM` in
//! `xtask/src/verify.rs`).
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;
use loom::thread;
use stopwire::{Arena, Callback, Clock, Error, Handle, ManualClock};

/// Explores `f` as `loom::model` does (loom's builder reads `LOOM_MAX_PREEMPTIONS` and the other
/// `LOOM_*` variables), with room for `max_branches` scheduling points per execution, and prints
/// how many interleavings it ran: `loom model <name>: <n> interleavings` (`cargo xtask verify
/// loom` collects these lines).
fn explore_with(name: &str, max_branches: usize, f: impl Fn() + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let mut b = loom::model::Builder::new();
    b.max_branches = max_branches;
    b.check(move || {
        counter.fetch_add(1, SeqCst);
        f();
    });
    println!("loom model {name}: {} interleavings", runs.load(SeqCst));
}

/// [`explore_with`] with loom's default bound on scheduling points per execution.
fn explore(name: &str, f: impl Fn() + Sync + Send + 'static) {
    explore_with(name, loom::model::Builder::new().max_branches, f);
}

fn arena<const N: usize>() -> Arc<Arena<N>> {
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new(0)));
    Arc::new(Arena::with_clock(clock))
}

/// A clock loom can see: its reads and writes are part of the explored interleavings.
struct LoomClock(AtomicU64);

impl Clock for LoomClock {
    fn now(&self) -> u64 {
        self.0.load(SeqCst)
    }
}

fn loom_clock_arena<const N: usize>(start: u64) -> (&'static LoomClock, Arc<Arena<N>>) {
    let clock: &'static LoomClock = Box::leak(Box::new(LoomClock(AtomicU64::new(start))));
    (clock, Arc::new(Arena::with_clock(clock)))
}

/// C10: a child created while another thread cancels the parent always ends done.
#[test]
fn loom_c10_create_child_vs_cancel_parent() {
    explore("loom_c10_create_child_vs_cancel_parent", || {
        let a = arena::<4>();
        let parent = a.with_cancel(Handle::BACKGROUND).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || {
            a2.cancel(parent, 0).unwrap();
        });
        let child = a.with_cancel(parent).unwrap();
        t.join().unwrap();
        assert_eq!(a.err(child), Err(Error::Canceled));
        a.release(child).unwrap();
        a.release(parent).unwrap();
        assert_eq!(a.stats().in_use, 0);
    });
}

/// C3: two concurrent cancels of one context: exactly one is told it was first, and its cause is
/// the one recorded (K3).
#[test]
fn loom_c3_concurrent_cancels_exactly_one_first() {
    explore("loom_c3_concurrent_cancels_exactly_one_first", || {
        let a = arena::<2>();
        let c = a.with_cancel(Handle::BACKGROUND).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || a2.cancel(c, 2).unwrap());
        let mine = a.cancel(c, 1).unwrap();
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one first");
        let want = if mine { 1 } else { 2 };
        assert_eq!(a.cause(c).unwrap().map(|c| c.get()), Some(want));
        a.release(c).unwrap();
    });
}

static RAN: AtomicUsize = AtomicUsize::new(0);
fn ran(_: usize) {
    RAN.fetch_add(1, SeqCst);
}

/// F4: stop racing the cancel that would run the callback: exactly one of "stop returned true"
/// and "the callback ran".
#[test]
fn loom_f4_stop_vs_cancel_exactly_one_wins() {
    explore("loom_f4_stop_vs_cancel_exactly_one_wins", || {
        RAN.store(0, SeqCst);
        let a = arena::<2>();
        let c = a.with_cancel(Handle::BACKGROUND).unwrap();
        let reg = a.after_func(c, Callback::new(ran, 0)).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || a2.stop(reg));
        a.cancel(c, 0).unwrap();
        let stopped = t.join().unwrap();
        let runs = RAN.load(SeqCst);
        assert!(runs <= 1);
        assert!(stopped ^ (runs == 1), "stopped {stopped}, ran {runs}");
        assert!(!a.stop(reg));
        a.release(c).unwrap();
        assert_eq!(a.stats().in_use, 0);
    });
}

/// A2: lock-free reads through a handle whose slot is released and handed to newcomers while the
/// reads run. The reads run on the spawned thread and the release and reuse on the model's main
/// thread, so that loom's search moves each read before each of the writer's stores (a writer that
/// loads a location before storing it would otherwise hide the race from loom's dependency
/// tracking). A one-slot arena: the first newcomer is a value layer with the same key and another
/// value, the second a cancelable context with a cause of its own; the stale reads report the old
/// context's own answer or `Stale`, never a newcomer's value or cause.
#[test]
fn loom_a2_stale_check_never_sees_the_reused_slot() {
    explore("loom_a2_stale_check_never_sees_the_reused_slot", || {
        let a = arena::<1>();
        let old = a.with_value(Handle::BACKGROUND, 1, 10).unwrap();
        let a2 = a.clone();
        let reader = thread::spawn(move || (a2.value(old, 1), a2.cause(old)));
        a.release(old).unwrap();
        let layer = a.with_value(Handle::BACKGROUND, 1, 20).unwrap();
        a.release(layer).unwrap();
        let new = a.with_cancel(Handle::BACKGROUND).unwrap();
        a.cancel(new, 77).unwrap();
        let (v, c) = reader.join().unwrap();
        assert!(matches!(v, Ok(Some(10)) | Err(Error::Stale)), "{v:?}");
        assert!(
            matches!(c, Err(Error::NotDone) | Err(Error::Stale)),
            "{c:?}"
        );
        assert_eq!(a.err(old), Err(Error::Stale));
        assert_eq!(a.cause(new).unwrap().map(|c| c.get()), Some(77));
        a.release(new).unwrap();
        assert_eq!(a.stats().in_use, 0);
    });
}

/// A2: the done check alone, racing the release of its context and the reuse of the slot by a
/// newcomer born done with a deadline (reads on the spawned thread, as above): `Ok`, `Canceled`
/// (by the release), or `Stale` once released; never the newcomer's `DeadlineExceeded`.
#[test]
fn loom_a2_stale_err_never_reads_the_newcomer() {
    explore("loom_a2_stale_err_never_reads_the_newcomer", || {
        let a = arena::<1>();
        let old = a.with_cancel(Handle::BACKGROUND).unwrap();
        let a2 = a.clone();
        let reader = thread::spawn(move || (a2.err(old), a2.is_done(old), a2.err(old)));
        a.release(old).unwrap();
        let new = a.with_deadline_cause(Handle::BACKGROUND, 0, 5).unwrap();
        let (e1, done, e2) = reader.join().unwrap();
        for e in [e1, e2] {
            // `Canceled`: the release cancels the context in the step that retires its handle.
            assert!(
                matches!(e, Ok(()) | Err(Error::Canceled) | Err(Error::Stale)),
                "{e:?}"
            );
        }
        // Never backwards: not done, then canceled, then stale (the handle never becomes valid
        // again, and never reads the newcomer in between).
        let rank = |e: Result<(), Error>| match e {
            Ok(()) => 0,
            Err(Error::Canceled) => 1,
            _ => 2,
        };
        assert!(rank(e1) <= rank(e2), "{e1:?} then {e2:?}");
        assert!(done || e1 == Ok(()), "{e1:?} then not done");
        assert!(!done || e2 != Ok(()), "done, then {e2:?}");
        assert_eq!(a.err(new), Err(Error::DeadlineExceeded));
        a.release(new).unwrap();
    });
}

/// A2: the cause of a canceled context read while it is released (reads on the spawned thread):
/// the recorded cause or `Stale` once released, never a word the release wrote (the free-list
/// link, the sibling links that share the cause's word).
#[test]
fn loom_a2_cause_read_during_release_never_sees_the_free_list() {
    explore(
        "loom_a2_cause_read_during_release_never_sees_the_free_list",
        || {
            let a = arena::<3>();
            let old = a.with_cancel(Handle::BACKGROUND).unwrap();
            let other = a.with_cancel(Handle::BACKGROUND).unwrap();
            a.cancel(old, 9).unwrap();
            let a2 = a.clone();
            let reader = thread::spawn(move || a2.cause(old));
            a.release(other).unwrap();
            a.release(old).unwrap();
            let c = reader.join().unwrap();
            assert!(
                matches!(c, Ok(Some(n)) if n.get() == 9) || c == Err(Error::Stale),
                "{c:?}"
            );
        },
    );
}

/// A2 and V2: a handle handed to another thread with no synchronization of its own (a `Relaxed`
/// store and load, as through a plain shared word): the checks' `Acquire` load of the state word
/// is what makes the context's fields visible with it. The reader gets the new context's value or
/// `Stale` (it may still see the slot's previous state), never the previous occupant's value. The
/// previous occupant has another key: a lookup reads the key before anything else, so a stale
/// key shows as "no such key".
#[test]
fn loom_a2_v2_handle_passed_without_sync_never_reads_the_old_occupant() {
    explore(
        "loom_a2_v2_handle_passed_without_sync_never_reads_the_old_occupant",
        || {
            let a = arena::<1>();
            let before = a.with_value(Handle::BACKGROUND, 2, 5).unwrap();
            a.release(before).unwrap();
            let mailbox = Arc::new(AtomicU64::new(0));
            let (a2, m2) = (a.clone(), mailbox.clone());
            let reader = thread::spawn(move || {
                let raw = m2.load(std::sync::atomic::Ordering::Relaxed);
                (raw != 0).then(|| a2.value(Handle::from_raw(raw), 1))
            });
            let h = a.with_value(Handle::BACKGROUND, 1, 10).unwrap();
            mailbox.store(h.to_raw(), std::sync::atomic::Ordering::Relaxed);
            let got = reader.join().unwrap();
            assert!(
                matches!(got, None | Some(Ok(Some(10))) | Some(Err(Error::Stale))),
                "{got:?}"
            );
            a.release(h).unwrap();
        },
    );
}

/// C4: a deadline check (which records what it saw with a compare-and-swap) racing a cancel while
/// the clock reaches the deadline: the Err a check reported is never changed, and cancel is told
/// it was first exactly when the Err ends as Canceled.
#[test]
fn loom_c4_deadline_check_vs_cancel_err_never_changes() {
    explore("loom_c4_deadline_check_vs_cancel_err_never_changes", || {
        let (clock, a) = loom_clock_arena::<2>(9);
        let d = a.with_deadline_cause(Handle::BACKGROUND, 10, 103).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || a2.cancel(d, 104).unwrap());
        clock.0.store(10, SeqCst);
        let seen = a.err(d);
        let first = t.join().unwrap();
        let end = a.err(d);
        assert_ne!(seen, Ok(()), "the clock is at the deadline");
        assert_eq!(seen, end, "C4: the Err seen first never changes");
        let cause = a.cause(d).unwrap().map(|c| c.get());
        match end {
            Err(Error::Canceled) => assert!(first && cause == Some(104)),
            Err(Error::DeadlineExceeded) => assert!(!first && cause == Some(103)),
            other => panic!("{other:?}"),
        }
        a.release(d).unwrap();
    });
}

/// K6 with C4: a check on a child of a deadline owner races a cancel of the owner as the clock
/// reaches the deadline: the child's Err and cause, once reported, never change.
#[test]
fn loom_k6_child_cause_seen_by_a_check_never_changes() {
    explore("loom_k6_child_cause_seen_by_a_check_never_changes", || {
        let (clock, a) = loom_clock_arena::<3>(9);
        let owner = a.with_deadline_cause(Handle::BACKGROUND, 10, 103).unwrap();
        let child = a.with_cancel(owner).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || a2.cancel(owner, 104).unwrap());
        clock.0.store(10, SeqCst);
        let seen = a.err(child);
        let seen_cause = a.cause(child);
        t.join().unwrap();
        if let Err(e) = a.audit() {
            panic!("audit after the race: {e} (seen {seen:?} {seen_cause:?})");
        }
        assert_eq!(a.err(child), seen, "C4: the Err a check reported changed");
        assert_eq!(
            a.cause(child),
            seen_cause,
            "K6: the cause a check reported (right) is not the one recorded (left)"
        );
        a.release(child).unwrap();
        a.release(owner).unwrap();
    });
}

/// F4 and T5: stop racing the deadline driver that would run the callback: exactly one of
/// "stop returned true" and "the callback ran"; the owner is counted once either way.
#[test]
fn loom_f4_t5_stop_vs_expire() {
    explore("loom_f4_t5_stop_vs_expire", || {
        RAN2.store(0, SeqCst);
        let a = arena::<2>();
        let d = a.with_deadline_cause(Handle::BACKGROUND, 5, 0).unwrap();
        let reg = a.after_func(d, Callback::new(ran2, 0)).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || a2.stop(reg));
        assert_eq!(a.expire(5), 1);
        let stopped = t.join().unwrap();
        assert!(stopped ^ (RAN2.load(SeqCst) == 1));
        assert_eq!(a.err(d), Err(Error::DeadlineExceeded));
        a.release(d).unwrap();
        assert_eq!(a.stats().in_use, 0);
    });
}

static RAN2: AtomicUsize = AtomicUsize::new(0);
fn ran2(_: usize) {
    RAN2.fetch_add(1, SeqCst);
}

/// C10 with release: a child created while the parent is released and its
/// slot reused is either refused as stale or born done; the newcomer in the slot is untouched.
#[test]
fn loom_c10_create_child_vs_release_parent_and_reuse() {
    explore("loom_c10_create_child_vs_release_parent_and_reuse", || {
        let a = arena::<2>();
        let parent = a.with_cancel(Handle::BACKGROUND).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || {
            a2.release(parent).unwrap();
            a2.with_cancel(Handle::BACKGROUND)
        });
        let child = a.with_cancel(parent);
        let newcomer = t.join().unwrap();
        match child {
            Ok(c) => {
                assert_eq!(a.err(c), Err(Error::Canceled));
                a.release(c).unwrap();
            }
            Err(e) => assert_eq!(e, Error::Stale),
        }
        // With the child holding the parent's slot, the arena may have been full.
        if let Ok(n) = newcomer {
            assert_eq!(a.err(n), Ok(()));
            a.release(n).unwrap();
        } else {
            assert_eq!(newcomer, Err(Error::Full));
        }
        assert_eq!(a.stats().in_use, 0);
    });
}

/// A waker loom can see: `wake` sets a flag with a loom store.
struct Flag(loom::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

/// N1: the deadline driver polls (learning the earliest deadline, its waker stored) while another
/// thread creates an earlier deadline: either the driver's poll already answers the earlier
/// deadline, or the creation wakes the driver, so it never sleeps past a deadline. A later
/// deadline created afterwards does not wake it.
#[test]
fn loom_n1_driver_poll_vs_earlier_deadline_created() {
    explore("loom_n1_driver_poll_vs_earlier_deadline_created", || {
        let a = arena::<4>();
        let late = a.with_deadline_cause(Handle::BACKGROUND, 100, 1).unwrap();
        let flag = std::sync::Arc::new(Flag(loom::sync::atomic::AtomicBool::new(false)));
        let waker = std::task::Waker::from(flag.clone());
        let a2 = a.clone();
        let driver = thread::spawn(move || a2.driver_poll(&waker));
        let early = a.with_deadline_cause(Handle::BACKGROUND, 10, 2).unwrap();
        let sleeps_until = driver.join().unwrap();
        let woken = flag.0.load(SeqCst);
        match sleeps_until {
            Some(10) => {}
            Some(100) => assert!(woken, "N1: the driver sleeps until 100, never woken for 10"),
            other => panic!("driver_poll answered {other:?}"),
        }
        // Once woken the waker is spent; after a fresh poll, a later deadline does not wake it.
        flag.0.store(false, SeqCst);
        let waker = std::task::Waker::from(flag.clone());
        assert_eq!(a.driver_poll(&waker), Some(10));
        let later = a.with_deadline_cause(Handle::BACKGROUND, 50, 3).unwrap();
        assert!(!flag.0.load(SeqCst), "a later deadline woke the driver");
        assert_eq!(a.expire(10), 1);
        assert_eq!(a.err(early), Err(Error::DeadlineExceeded));
        for h in [early, later, late] {
            a.release(h).unwrap();
        }
        assert_eq!(a.stats().in_use, 0);
    });
}

/// Children of the root in the chunked-walk model: a walk marks a leaf in one unit (no descent,
/// no climb back), and under loom a step has 3 units (the microcontrollers' `STEP_BUDGET`), so
/// the walk pauses several times, also inside the subtree of `kids[0]` once it has a child.
const WALK_CHILDREN: usize = 8;

/// C2, C10, A5 with a walk in more than one locked step: while `cancel` walks a root with
/// [`WALK_CHILDREN`] children, another thread creates a grandchild under the child the walk
/// reaches last, cancels a child with a cause of its own, releases two children the walk reaches
/// late (one may be the walk's paused cursor), and creates a child of the root in a freed slot. When `cancel` returns every context
/// of the subtree that is still held reports `Canceled` (C2), including those created during the
/// walk (C10); the audit holds, and releasing everything frees every slot (A5).
#[test]
fn loom_c2_c10_a5_chunked_walk_vs_release_and_reuse() {
    explore_with(
        "loom_c2_c10_a5_chunked_walk_vs_release_and_reuse",
        100_000,
        || {
            let a = arena::<{ WALK_CHILDREN + 3 }>();
            let root = a.with_cancel(Handle::BACKGROUND).unwrap();
            // Children are linked at the head: the walk detaches the newest first, `kids[0]` last.
            let kids: Vec<Handle> = (0..WALK_CHILDREN)
                .map(|_| a.with_cancel(root).unwrap())
                .collect();
            let (first, second, third, fourth) = (kids[0], kids[1], kids[2], kids[3]);
            let a2 = a.clone();
            let t = thread::spawn(move || {
                let grandchild = a2.with_cancel(first).unwrap();
                a2.cancel(fourth, 8).unwrap();
                a2.release(third).unwrap();
                a2.release(second).unwrap();
                let newcomer = a2.with_cancel(root).unwrap();
                (grandchild, newcomer)
            });
            assert!(a.cancel(root, 7).unwrap());
            // C2 at return: everything still linked under the root is done.
            for &k in &kids[3..] {
                assert_eq!(a.err(k), Err(Error::Canceled));
            }
            // Canceled by whichever walk reached it first, with that walk's cause (C3, K4).
            let c = a.cause(fourth).unwrap().map(|c| c.get());
            assert!(matches!(c, Some(7) | Some(8)), "{c:?}");
            assert_eq!(a.err(first), Err(Error::Canceled));
            let (grandchild, newcomer) = t.join().unwrap();
            for h in [grandchild, newcomer, first] {
                assert_eq!(a.err(h), Err(Error::Canceled), "C10");
                assert_eq!(a.cause(h).unwrap().map(|c| c.get()), Some(7), "K4");
            }
            if let Err(e) = a.audit() {
                panic!("audit after the race: {e}");
            }
            a.release(grandchild).unwrap();
            a.release(newcomer).unwrap();
            for &k in kids.iter().filter(|&&k| k != second && k != third) {
                a.release(k).unwrap();
            }
            a.release(root).unwrap();
            assert_eq!(a.stats().in_use, 0, "A5: every slot back");
            if let Err(e) = a.audit() {
                panic!("audit after releasing everything: {e}");
            }
        },
    );
}

/// C2, A5 with a walk paused inside a subtree: the walk descends into `x` (it has children) and
/// pauses there, its cursor pinned (I3); meanwhile another thread releases every child of `x`
/// and `x` itself, which would leave `x` unneeded, and creates as many contexts as slots were
/// freed (reuse is first in first out, so the last of them takes `x`'s slot if it was freed).
/// The walk must resume on `x`, not on a newcomer in its slot: the newcomers (children of the
/// background root) are never canceled, and every slot comes back.
#[test]
fn loom_c2_a5_walk_paused_inside_a_subtree_vs_its_release() {
    explore_with(
        "loom_c2_a5_walk_paused_inside_a_subtree_vs_its_release",
        100_000,
        || {
            let a = arena::<8>();
            let root = a.with_cancel(Handle::BACKGROUND).unwrap();
            let x = a.with_cancel(root).unwrap();
            let kids: Vec<Handle> = (0..4).map(|_| a.with_cancel(x).unwrap()).collect();
            let a2 = a.clone();
            let t = thread::spawn(move || {
                for k in kids {
                    a2.release(k).unwrap();
                }
                a2.release(x).unwrap();
                (0..5)
                    .map(|_| a2.with_cancel(Handle::BACKGROUND).unwrap())
                    .collect::<Vec<_>>()
            });
            assert!(a.cancel(root, 9).unwrap());
            let newcomers = t.join().unwrap();
            for &n in &newcomers {
                assert_eq!(
                    a.err(n),
                    Ok(()),
                    "a newcomer was canceled by a walk it is not under"
                );
            }
            if let Err(e) = a.audit() {
                panic!("audit after the race: {e}");
            }
            release_all(&a, newcomers.into_iter().chain([root]));
        },
    );
}

/// Deadlines of the scanning-insertion models, in creation order: lane 0 gets 100, 200, 201, 202
/// (each at its tail), lanes 1 to 3 get 50, 40, 30 (each into an empty lane), then 160, 159, 158
/// (each to the lane with the latest tail not after it). So every lane spans [`SCAN_NEW`]: its
/// head is earlier, its tail later, and a new owner of 150 is inserted by a backward scan of
/// lane 0 from 202. Under loom a step has 3 units: one chooses the scan, two move the cursor to
/// 201 then 200, and the insertion pauses there, its cursor pinned on 200 (I3); the next step
/// links the new owner between 100 and 200.
const SCAN_LANES: [u64; 10] = [100, 200, 201, 202, 50, 40, 30, 160, 159, 158];
/// The deadline of the new owner of the scanning-insertion models.
const SCAN_NEW: u64 = 150;

/// Creates the owners of [`SCAN_LANES`] under `parent` for those of lane 0 after 100 (200, 201,
/// 202) and under the background root for the others; returns `(deadline, handle)` of each.
fn spanning_lanes(a: &stopwire::ArenaView, parent: Handle) -> Vec<(u64, Handle)> {
    SCAN_LANES
        .iter()
        .map(|&d| {
            let p = if (200..=202).contains(&d) {
                parent
            } else {
                Handle::BACKGROUND
            };
            (d, a.with_deadline_cause(p, d, 0).unwrap())
        })
        .collect()
}

/// Releases every context of `hs`, the last handles on the arena: then every slot is back (A5).
fn release_all(a: &stopwire::ArenaView, hs: impl IntoIterator<Item = Handle>) {
    for h in hs {
        a.release(h).unwrap();
    }
    assert_eq!(a.stats().in_use, 0, "A5: every slot back");
}

/// After a race: the audit holds (I5: the lanes hold exactly the pending owners, each lane in
/// deadline order), and `next_deadline` and `expire` then reach the pending owners `owners` one
/// deadline at a time, in deadline order (T5), each one `DeadlineExceeded` in its turn.
fn lanes_in_order(a: &stopwire::ArenaView, mut owners: Vec<(u64, Handle)>) {
    if let Err(e) = a.audit() {
        panic!("audit after the race: {e}");
    }
    owners.sort_unstable();
    for (d, h) in owners {
        assert_eq!(
            a.next_deadline(),
            Some(d),
            "T5: the earliest pending is {d}"
        );
        assert_eq!(a.expire(d), 1, "T5: exactly the owner of {d} is due");
        assert_eq!(a.err(h), Err(Error::DeadlineExceeded), "{d} handled");
    }
    assert_eq!(a.next_deadline(), None);
}

/// T3, I3, I5: a scanning insertion paused with its cursor pinned on 200 ([`SCAN_LANES`]) while
/// another thread releases 200 and creates an owner of 10 (at the head of lane 0). The arena
/// has a slot for the newcomer whatever the timing, and the free list is empty before the
/// release, so the newcomer takes 200's slot exactly when the release freed it. The insertion
/// must see that its cursor was settled and start over from the tail (not follow the links of an
/// owner no longer queued), and the pin must keep 200's slot from the newcomer until then (a
/// newcomer at the cursor's slot would be queued, and the insertion would link 150 before it,
/// ahead of 10 and 100). When both are done the lanes are in deadline order and every slot
/// comes back.
#[test]
fn loom_t3_i3_i5_paused_insert_vs_release_of_its_cursor() {
    explore_with(
        "loom_t3_i3_i5_paused_insert_vs_release_of_its_cursor",
        100_000,
        || {
            let a = arena::<{ SCAN_LANES.len() + 2 }>();
            let mut owners = spanning_lanes(&a, Handle::BACKGROUND);
            let cursor = owners.remove(1);
            assert_eq!(cursor.0, 200);
            let a2 = a.clone();
            let t = thread::spawn(move || {
                a2.release(cursor.1).unwrap();
                a2.with_deadline_cause(Handle::BACKGROUND, 10, 0).unwrap()
            });
            let new = a
                .with_deadline_cause(Handle::BACKGROUND, SCAN_NEW, 0)
                .unwrap();
            let newcomer = t.join().unwrap();
            assert_eq!(a.err(cursor.1), Err(Error::Stale));
            owners.extend([(SCAN_NEW, new), (10, newcomer)]);
            lanes_in_order(&a, owners.clone());
            release_all(&a, owners.iter().map(|&(_, h)| h));
        },
    );
}

/// T3, I5, C7: a scanning insertion paused (as above) while another thread cancels the parent of
/// the new owner, whose walk settles it before it is queued. The insertion must see it settled and
/// queue nothing (a settled owner in a lane breaks I5, and `expire` would count it). Whatever the
/// timing the new owner ends `Canceled` (born done, settled in the pause, or removed from its
/// lane), and the lanes hold exactly the other owners, in order.
#[test]
fn loom_t3_i5_paused_insert_vs_cancel_of_the_new_owner() {
    explore_with(
        "loom_t3_i5_paused_insert_vs_cancel_of_the_new_owner",
        100_000,
        || {
            let a = arena::<{ SCAN_LANES.len() + 2 }>();
            let owners = spanning_lanes(&a, Handle::BACKGROUND);
            let parent = a.with_cancel(Handle::BACKGROUND).unwrap();
            let a2 = a.clone();
            let t = thread::spawn(move || a2.cancel(parent, 5).unwrap());
            let new = a.with_deadline_cause(parent, SCAN_NEW, 0).unwrap();
            assert!(t.join().unwrap());
            assert_eq!(a.err(new), Err(Error::Canceled), "C7 or C2");
            assert_eq!(a.cause(new).unwrap().map(|c| c.get()), Some(5));
            lanes_in_order(&a, owners.clone());
            release_all(&a, owners.iter().map(|&(_, h)| h).chain([new, parent]));
        },
    );
}

/// T3, I5: a scanning insertion paused (as above) while another thread cancels the parent of
/// 200, 201 and 202: every owner of lane 0 later than the new one leaves it, and lane 0 no
/// longer spans 150 (its tail, 100, is earlier). Starting over from that tail, the insertion
/// must still link 150 after 100, not before it.
#[test]
fn loom_t3_i5_paused_insert_vs_cancel_of_every_later_owner_of_its_lane() {
    explore_with(
        "loom_t3_i5_paused_insert_vs_cancel_of_every_later_owner_of_its_lane",
        100_000,
        || {
            let a = arena::<{ SCAN_LANES.len() + 2 }>();
            let parent = a.with_cancel(Handle::BACKGROUND).unwrap();
            let owners = spanning_lanes(&a, parent);
            let a2 = a.clone();
            let t = thread::spawn(move || a2.cancel(parent, 5).unwrap());
            let new = a
                .with_deadline_cause(Handle::BACKGROUND, SCAN_NEW, 0)
                .unwrap();
            assert!(t.join().unwrap());
            let (later, mut pending): (Vec<_>, Vec<_>) = owners
                .iter()
                .copied()
                .partition(|&(d, _)| (200..=202).contains(&d));
            for &(_, h) in &later {
                assert_eq!(a.err(h), Err(Error::Canceled));
            }
            pending.push((SCAN_NEW, new));
            lanes_in_order(&a, pending);
            release_all(&a, owners.iter().map(|&(_, h)| h).chain([new, parent]));
        },
    );
}

/// T1, A2, I5: a scanning insertion paused (as above) while another thread releases the new owner
/// through its handle, known in advance (handles are an index and a generation: a twin arena
/// built the same way issues the same one), then creates an owner of 10, which takes the new
/// owner's slot exactly when the release freed it. The insertion must not link the newcomer a
/// second time, in the released owner's place.
#[test]
fn loom_t1_a2_i5_paused_insert_vs_release_of_the_new_owner() {
    explore_with(
        "loom_t1_a2_i5_paused_insert_vs_release_of_the_new_owner",
        100_000,
        || {
            let twin = arena::<{ SCAN_LANES.len() + 2 }>();
            spanning_lanes(&twin, Handle::BACKGROUND);
            let known = twin
                .with_deadline_cause(Handle::BACKGROUND, SCAN_NEW, 0)
                .unwrap();
            let a = arena::<{ SCAN_LANES.len() + 2 }>();
            let mut owners = spanning_lanes(&a, Handle::BACKGROUND);
            let a2 = a.clone();
            let t = thread::spawn(move || {
                let released = a2.release(known);
                (
                    released,
                    a2.with_deadline_cause(Handle::BACKGROUND, 10, 0).unwrap(),
                )
            });
            let new = a
                .with_deadline_cause(Handle::BACKGROUND, SCAN_NEW, 0)
                .unwrap();
            let (released, newcomer) = t.join().unwrap();
            owners.push((10, newcomer));
            if released.is_ok() {
                assert_eq!(new, known, "the handle known in advance is the new owner's");
                assert_eq!(a.err(new), Err(Error::Stale));
            } else {
                assert_eq!(
                    released,
                    Err(Error::Stale),
                    "released before it was created"
                );
                owners.push((SCAN_NEW, new));
            }
            lanes_in_order(&a, owners.clone());
            release_all(&a, owners.iter().map(|&(_, h)| h));
        },
    );
}

/// The waiting layer's models: they need [`stopwire::Done`] under loom (feature `async`; see the
/// `waiters` tier of `cargo xtask verify` for the state of that).
#[cfg(feature = "async")]
mod waiting {
    use super::*;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll};

    fn flag() -> (std::sync::Arc<Flag>, std::task::Waker) {
        let f = std::sync::Arc::new(Flag(loom::sync::atomic::AtomicBool::new(false)));
        let w = std::task::Waker::from(f.clone());
        (f, w)
    }

    /// Polls `h`'s `done()` future once while thread `t` makes `h` done, joins `t`, and checks
    /// that no wake-up was lost: either that poll was ready with `why`, or it was pending, `t`
    /// woke it (else `lost` is the failure), and the next poll is ready with `why`. Returns what
    /// `t` returned.
    fn poll_racing<T>(
        a: &stopwire::ArenaView,
        h: Handle,
        t: thread::JoinHandle<T>,
        why: Error,
        lost: &str,
    ) -> T {
        let (woken, waker) = flag();
        let mut cx = Context::from_waker(&waker);
        let ctx = a.ctx(h);
        let mut done = pin!(ctx.done());
        let first = done.as_mut().poll(&mut cx);
        let r = t.join().unwrap();
        match first {
            Poll::Ready(got) => assert_eq!(got, why),
            Poll::Pending => {
                assert!(woken.0.load(SeqCst), "{lost}");
                assert_eq!(done.as_mut().poll(&mut cx), Poll::Ready(why));
            }
        }
        r
    }

    /// N4 (wait vs cancel, no lost wakeup): a future polls for a context while another thread
    /// cancels it. Either the poll sees it done, or it registers in time and the cancel wakes it;
    /// the next poll is then ready. Never `Pending` with no wake-up coming.
    #[test]
    fn loom_n4_wait_vs_cancel_no_lost_wakeup() {
        explore("loom_n4_wait_vs_cancel_no_lost_wakeup", || {
            let a = arena::<2>();
            let c = a.with_cancel(Handle::BACKGROUND).unwrap();
            let a2 = a.clone();
            let t = thread::spawn(move || a2.cancel(c, 3).unwrap());
            let first = poll_racing(
                &*a,
                c,
                t,
                Error::Canceled,
                "N4: pending, and the cancel woke no one",
            );
            assert!(first);
            a.release(c).unwrap();
            assert_eq!(a.stats().in_use, 0);
        });
    }

    /// N4 for a waiter on a leaf below the context canceled: the walk reaches the leaf from its
    /// parent, and marking a leaf without descending into it (one unit) must still take its
    /// waiters out. Either the poll sees the leaf done, or it registers in time and the parent's
    /// cancel wakes it.
    #[test]
    fn loom_n4_wait_on_leaf_vs_cancel_of_its_parent() {
        explore("loom_n4_wait_on_leaf_vs_cancel_of_its_parent", || {
            let a = arena::<3>();
            let p = a.with_cancel(Handle::BACKGROUND).unwrap();
            let c = a.with_cancel(p).unwrap();
            let a2 = a.clone();
            let t = thread::spawn(move || a2.cancel(p, 5).unwrap());
            let first = poll_racing(
                &*a,
                c,
                t,
                Error::Canceled,
                "N4: pending on the leaf, and its parent's cancel woke no one",
            );
            assert!(first);
            if let Err(e) = a.audit() {
                panic!("audit after the race: {e}");
            }
            a.release(c).unwrap();
            a.release(p).unwrap();
            assert_eq!(a.stats().in_use, 0);
        });
    }

    /// N5 (a waiter leaving vs a walk taking it out): two futures wait on one context; one is
    /// dropped while another thread cancels it. The one that stays is woken; the list the walk
    /// and the drop both edit stays whole (the audit), and nothing is left linked.
    #[test]
    fn loom_n5_waiter_drop_vs_walk_taking_it_out() {
        explore("loom_n5_waiter_drop_vs_walk_taking_it_out", || {
            let a = arena::<2>();
            let c = a.with_cancel(Handle::BACKGROUND).unwrap();
            let (woken_stay, waker_stay) = flag();
            let (_, waker_leave) = flag();
            {
                let ctx = a.ctx(c);
                let mut stay = pin!(ctx.done());
                let mut leave = Box::pin(ctx.done());
                let mut cx = Context::from_waker(&waker_stay);
                assert_eq!(stay.as_mut().poll(&mut cx), Poll::Pending);
                let mut cx_leave = Context::from_waker(&waker_leave);
                assert_eq!(leave.as_mut().poll(&mut cx_leave), Poll::Pending);
                let a2 = a.clone();
                let t = thread::spawn(move || a2.cancel(c, 4).unwrap());
                drop(leave);
                assert!(t.join().unwrap());
                assert!(
                    woken_stay.0.load(SeqCst),
                    "N4: the waiter that stayed was not woken"
                );
                assert_eq!(stay.as_mut().poll(&mut cx), Poll::Ready(Error::Canceled));
            }
            if let Err(e) = a.audit() {
                panic!("audit after the race: {e}");
            }
            a.release(c).unwrap();
            assert_eq!(a.stats().in_use, 0);
        });
    }

    /// N6 with V4: a future waits on a value layer (which no cancel walk ever reaches from above
    /// while its parent lives) while another thread releases the layer: the release wakes it, and
    /// its next poll is ready with `Stale` (A4).
    #[test]
    fn loom_n6_waiter_on_value_layer_vs_release() {
        explore("loom_n6_waiter_on_value_layer_vs_release", || {
            let a = arena::<2>();
            let layer = a.with_value(Handle::BACKGROUND, 1, 1).unwrap();
            let a2 = a.clone();
            let t = thread::spawn(move || a2.release(layer).unwrap());
            poll_racing(&*a, layer, t, Error::Stale, "N6: the release woke no one");
            assert_eq!(a.stats().in_use, 0);
        });
    }
}
