//! SPEC D1-D8: deadlines.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use common::{arena, clock, key, nz, EARLY, P, SLOW};
use stopwire::{Error, Handle};

#[test]
fn d1_with_deadline_is_absolute_and_with_timeout_is_now_plus_saturating() {
    let clk = clock(1_000);
    let a = arena::<8>(clk);
    let d = a.background().with_deadline(1_500).unwrap();
    assert_eq!(d.deadline(), Ok(Some(1_500)));
    let t = a.background().with_timeout(250).unwrap();
    assert_eq!(t.deadline(), Ok(Some(1_250)));
    let r = a.with_timeout_cause(Handle::BACKGROUND, 7, 0).unwrap();
    assert_eq!(a.deadline(r), Ok(Some(1_007)));
    a.release(r).unwrap();
    clk.set(u64::MAX - 5);
    let s = a.background().with_timeout(10).unwrap();
    assert_eq!(s.deadline(), Ok(Some(u64::MAX)));
    assert_eq!(s.err(), Ok(()));
    let forever = a.background().with_timeout(u64::MAX).unwrap();
    assert_eq!(forever.deadline(), Ok(Some(u64::MAX)));
}

#[test]
fn d2_effective_deadline_is_the_earliest_and_a_later_one_makes_a_plain_child() {
    let clk = clock(0);
    let a = arena::<32>(clk);
    let parent = a.background().with_deadline_cause(10, nz(P)).unwrap();
    let mid = parent.with_value(key(1), 1).unwrap();
    let later = mid.with_deadline_cause(20, nz(SLOW)).unwrap();
    let later_t = mid.with_timeout_cause(20, nz(SLOW)).unwrap();
    let earlier = mid.with_deadline_cause(5, nz(EARLY)).unwrap();
    let equal = mid.with_deadline_cause(10, nz(SLOW)).unwrap();
    let under_later = later.with_cancel().unwrap();
    assert_eq!(
        later.deadline(),
        Ok(Some(10)),
        "reports the parent's deadline"
    );
    assert_eq!(later_t.deadline(), Ok(Some(10)));
    assert_eq!(under_later.deadline(), Ok(Some(10)));
    assert_eq!(earlier.deadline(), Ok(Some(5)));
    assert_eq!(equal.deadline(), Ok(Some(10)));
    // The later child has no deadline of its own: only three owners wait for the driver.
    assert_eq!(a.next_deadline(), Some(5));
    clk.set(5);
    assert_eq!(a.expire(5), 1);
    assert_eq!(
        (earlier.err(), earlier.cause()),
        (Err(Error::DeadlineExceeded), Ok(Some(nz(EARLY))))
    );
    assert_eq!(later.err(), Ok(()));
    clk.set(10);
    // Equal deadlines are kept as given: the child's own cause.
    assert_eq!(equal.cause(), Ok(Some(nz(SLOW))));
    assert_eq!(
        a.expire(10),
        1,
        "the parent; the equal child is done with it"
    );
    assert_eq!(later.cause(), Ok(Some(nz(P))));
    assert_eq!(later_t.cause(), Ok(Some(nz(P))));
    assert_eq!(under_later.cause(), Ok(Some(nz(P))));
    assert_eq!(equal.cause(), Ok(Some(nz(SLOW))));
    assert_eq!(
        a.expire(u64::MAX),
        0,
        "nothing left: the clamped children were never owners"
    );
    // A clamped child is an ordinary cancelable child: canceling it leaves the parent alone.
    let p2 = a.background().with_deadline(100).unwrap();
    let c2 = p2.with_deadline(200).unwrap();
    assert!(c2.cancel());
    assert_eq!(p2.err(), Ok(()));
    assert_eq!(c2.err(), Err(Error::Canceled));
}

#[test]
fn d3_deadline_at_or_before_now_is_done_at_creation() {
    let clk = clock(100);
    let a = arena::<8>(clk);
    for at in [0, 99, 100] {
        let c = a.background().with_deadline(at).unwrap();
        assert_eq!(c.err(), Err(Error::DeadlineExceeded), "at {at}");
        assert_eq!(c.deadline(), Ok(Some(at)));
        let below = c.with_cancel().unwrap();
        assert_eq!(below.err(), Err(Error::DeadlineExceeded));
    }
    let t = a.background().with_timeout_cause(0, nz(SLOW)).unwrap();
    assert_eq!(
        (t.err(), t.cause()),
        (Err(Error::DeadlineExceeded), Ok(Some(nz(SLOW))))
    );
    let not_yet = a.background().with_deadline(101).unwrap();
    assert_eq!(not_yet.err(), Ok(()));
    assert_eq!(a.expire(100), 0, "T5: born done, never pending");
}

#[test]
fn d4_reaching_the_deadline_makes_the_subtree_done_unless_canceled_first() {
    let clk = clock(0);
    let a = arena::<16>(clk);
    let d = a.background().with_deadline(50).unwrap();
    let kids = [
        d.with_cancel().unwrap(),
        d.with_value(key(1), 1).unwrap(),
        d.with_deadline(60).unwrap(),
    ];
    let canceled = d.with_cancel().unwrap();
    let deep = kids[0].with_cancel().unwrap();
    canceled.cancel();
    clk.set(49);
    assert!(kids.iter().all(|k| k.err() == Ok(())));
    assert_eq!(d.err(), Ok(()));
    clk.set(50);
    // By check alone, in any order (descendants first).
    assert_eq!(deep.err(), Err(Error::DeadlineExceeded));
    for k in &kids {
        assert_eq!(k.err(), Err(Error::DeadlineExceeded));
    }
    assert_eq!(d.err(), Err(Error::DeadlineExceeded));
    assert_eq!(canceled.err(), Err(Error::Canceled));
    // The driver agrees with every check already made.
    assert_eq!(a.expire(50), 1);
    for k in kids.iter().chain([&deep, &d]) {
        assert_eq!(k.err(), Err(Error::DeadlineExceeded));
    }
    assert_eq!(canceled.err(), Err(Error::Canceled));
}

/// Callbacks of the D5 test only: tests run in parallel, and another test's callback counted
/// here would make the D5 counts wrong.
static FIRED: AtomicUsize = AtomicUsize::new(0);
fn fired(_: usize) {
    FIRED.fetch_add(1, SeqCst);
}
/// Callbacks of the D7 test.
fn ran_at_cancel(_: usize) {}

#[test]
fn d5_checks_need_no_timer_and_reactions_come_from_the_driver() {
    let clk = clock(0);
    let a = arena::<8>(clk);
    let d = a.background().with_deadline(10).unwrap();
    let reg = d.after_func(fired, 0).unwrap();
    let before = FIRED.load(SeqCst);
    clk.set(10);
    // The check compares with the clock: done, though nothing ran.
    assert!(d.is_done());
    assert_eq!(
        FIRED.load(SeqCst),
        before,
        "F3: callbacks wait for the driver"
    );
    assert_eq!(a.next_deadline(), Some(10));
    assert_eq!(a.expire(10), 1);
    assert_eq!(FIRED.load(SeqCst), before + 1);
    assert!(!reg.stop());
    assert_eq!(a.next_deadline(), None);
    // expire(now) with an explicit now ahead of the clock drives deadlines too.
    let e = a.background().with_deadline(1_000).unwrap();
    let reg_e = e.after_func(fired, 0).unwrap();
    assert_eq!(a.expire(999), 0);
    assert_eq!(e.err(), Ok(()));
    assert_eq!(a.expire(1_000), 1);
    assert_eq!(e.err(), Err(Error::DeadlineExceeded));
    assert_eq!(FIRED.load(SeqCst), before + 2);
    drop(reg_e);
}

#[test]
fn d6_deadline_reports_the_effective_one_or_none() {
    let a = arena::<16>(clock(0));
    assert_eq!(a.background().deadline(), Ok(None));
    assert_eq!(a.todo().deadline(), Ok(None));
    let plain = a.background().with_cancel().unwrap();
    assert_eq!(plain.deadline(), Ok(None));
    let d = plain.with_deadline(70).unwrap();
    let v = d.with_value(key(1), 1).unwrap();
    let c = v.with_cancel().unwrap();
    assert_eq!(v.deadline(), Ok(Some(70)));
    assert_eq!(c.deadline(), Ok(Some(70)));
    let w = c.without_cancel().unwrap();
    assert_eq!(w.deadline(), Ok(None), "detached: none");
    let under_w = w.with_cancel().unwrap();
    assert_eq!(under_w.deadline(), Ok(None));
    // After cancel and after release of an ancestor, still reported.
    d.cancel();
    assert_eq!(c.deadline(), Ok(Some(70)));
    drop(d);
    assert_eq!(c.deadline(), Ok(Some(70)));
}

#[test]
fn d7_cancel_before_the_deadline_wins_and_the_deadline_stops_mattering() {
    let clk = clock(0);
    let a = arena::<8>(clk);
    let d = a.background().with_deadline_cause(10, nz(SLOW)).unwrap();
    let below = d.with_cancel().unwrap();
    let reg = d.after_func(ran_at_cancel, 0).unwrap();
    clk.set(5);
    assert!(d.cancel());
    assert_eq!(a.next_deadline(), None, "no longer waits for the driver");
    clk.set(100);
    assert_eq!(a.expire(100), 0);
    for c in [&d, &below] {
        assert_eq!((c.err(), c.cause()), (Err(Error::Canceled), Ok(None)));
    }
    assert!(!reg.stop(), "it ran at the cancel");
}

#[test]
fn d8_a_deadline_under_a_detached_context_is_not_clamped_from_above() {
    let clk = clock(0);
    let a = arena::<16>(clk);
    let top = a.background().with_deadline(10).unwrap();
    let w = top.without_cancel().unwrap();
    let d = w.with_deadline(30).unwrap();
    let v = w.with_value(key(1), 1).unwrap();
    let dv = v.with_timeout(40).unwrap();
    assert_eq!(d.deadline(), Ok(Some(30)));
    assert_eq!(dv.deadline(), Ok(Some(40)));
    clk.set(15);
    assert_eq!(a.expire(15), 1);
    assert_eq!(top.err(), Err(Error::DeadlineExceeded));
    assert_eq!(d.err(), Ok(()));
    assert_eq!(dv.err(), Ok(()));
    clk.set(30);
    assert_eq!(d.err(), Err(Error::DeadlineExceeded));
    assert_eq!(dv.err(), Ok(()));
    assert_eq!(a.expire(40), 2);
    assert_eq!(dv.err(), Err(Error::DeadlineExceeded));
}

/// D1: an arena without a clock refuses deadlines with a clear error (they could never fire),
/// and changes nothing; a duration-taking timeout converts by the clock's rate.
#[test]
fn d1_an_arena_without_a_clock_refuses_deadlines_and_durations_convert() {
    static NONE: stopwire::NoClock = stopwire::NoClock;
    let n: stopwire::Arena<2> = stopwire::Arena::with_clock(&NONE);
    assert_eq!(
        n.background().with_deadline(5).unwrap_err(),
        stopwire::Error::NoClock
    );
    assert_eq!(
        n.background()
            .with_timeout_duration(core::time::Duration::from_millis(1))
            .unwrap_err(),
        stopwire::Error::NoClock
    );
    assert_eq!(n.stats().in_use, 0);
    assert_eq!(n.background().with_cancel().map(|c| c.is_done()), Ok(false));
    // A manual clock has no known rate: a duration is read in microseconds.
    let m: &'static stopwire::ManualClock = Box::leak(Box::new(stopwire::ManualClock::new(100)));
    let a: stopwire::Arena<2> = stopwire::Arena::with_clock(m);
    let t = a
        .background()
        .with_timeout_duration(core::time::Duration::from_millis(3))
        .unwrap();
    assert_eq!(t.deadline(), Ok(Some(3_100)));
}
