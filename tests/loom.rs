//! loom models of the races of the design (run with `RUSTFLAGS="--cfg loom"`; see
//! `cargo xtask test`). Each model names the SPEC rule it guards and stays small enough to finish
//! in seconds with `LOOM_MAX_PREEMPTIONS=2`.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;
use loom::thread;
use stopwire::{Arena, Callback, Clock, Error, Handle, ManualClock};

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
    loom::model(|| {
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
    loom::model(|| {
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
    loom::model(|| {
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

/// A2: lock-free checks with a handle that is being released while its slot is reused (a
/// one-slot arena): they report the old context's own state or "stale", never the newcomer's.
#[test]
fn loom_a2_stale_check_never_sees_the_reused_slot() {
    loom::model(|| {
        let a = arena::<1>();
        let old = a.with_value(Handle::BACKGROUND, 1, 10).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || {
            a2.release(old).unwrap();
            // A cancelable newcomer: it has no value for key 1 (a read of it would answer
            // `Ok(None)`) and a cause of its own (value layers cannot be canceled, V4).
            let new = a2.with_cancel(Handle::BACKGROUND).unwrap();
            a2.cancel(new, 77).unwrap();
            new
        });
        let v = a.value(old, 1);
        let c = a.cause(old);
        let new = t.join().unwrap();
        assert!(matches!(v, Ok(Some(10)) | Err(Error::Stale)), "{v:?}");
        assert!(
            matches!(c, Err(Error::NotDone) | Ok(None) | Err(Error::Stale)),
            "{c:?}"
        );
        assert_eq!(a.err(old), Err(Error::Stale));
        assert_eq!(a.cause(new).unwrap().map(|c| c.get()), Some(77));
        a.release(new).unwrap();
    });
}

/// A2: the done check alone, racing release and reuse: never the newcomer's Err.
#[test]
fn loom_a2_stale_err_never_reads_the_newcomer() {
    loom::model(|| {
        let a = arena::<1>();
        let old = a.with_cancel(Handle::BACKGROUND).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || {
            a2.release(old).unwrap();
            // The newcomer is born done with a deadline: a different Err from the old context's.
            a2.with_deadline_cause(Handle::BACKGROUND, 0, 5).unwrap()
        });
        let e = a.err(old);
        let new = t.join().unwrap();
        assert!(
            matches!(e, Ok(()) | Err(Error::Canceled) | Err(Error::Stale)),
            "{e:?}"
        );
        a.release(new).unwrap();
    });
}

/// A2: the cause of a settled context read while it is released and its slot freed in the same
/// locked section (the free list is threaded through the word that holds the cause): the
/// recorded cause or "stale", never a free-list link.
#[test]
fn loom_a2_cause_read_during_release_never_sees_the_free_list() {
    loom::model(|| {
        let a = arena::<2>();
        let old = a.with_cancel(Handle::BACKGROUND).unwrap();
        a.cancel(old, 0).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || a2.release(old).unwrap());
        let c = a.cause(old);
        t.join().unwrap();
        assert!(matches!(c, Ok(None) | Err(Error::Stale)), "{c:?}");
    });
}

/// C4: a deadline check (which records what it saw with a compare-and-swap) racing a cancel while
/// the clock reaches the deadline: the Err a check reported is never changed, and cancel is told
/// it was first exactly when the Err ends as Canceled.
#[test]
fn loom_c4_deadline_check_vs_cancel_err_never_changes() {
    loom::model(|| {
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
    loom::model(|| {
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
        assert_eq!(a.err(child), seen);
        assert_eq!(a.cause(child), seen_cause);
        a.release(child).unwrap();
        a.release(owner).unwrap();
    });
}

/// F4 and T5: stop racing the deadline driver that would run the callback: exactly one of
/// "stop returned true" and "the callback ran"; the owner is counted once either way.
#[test]
fn loom_f4_t5_stop_vs_expire() {
    loom::model(|| {
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
    loom::model(|| {
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
