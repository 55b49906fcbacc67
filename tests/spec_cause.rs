//! SPEC K1-K7: the cause of a cancellation.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

use common::{arena, clock, nz, CH, EARLY, P, SLOW};
use stopwire::{Arena, ArenaView, Clock, Error, Handle};

/// What a row expects: `Err` of the context (`None`: not done) and its cause (`None`: not done,
/// `Some(0)`: done with no cause).
type Outcome = (Option<Error>, Option<u32>);

fn observe(a: &ArenaView, h: Handle) -> Outcome {
    let err = a.err(h).err();
    let cause = match a.cause(h) {
        Ok(c) => Some(c.map_or(0, |c| c.get())),
        Err(Error::NotDone) => None,
        Err(e) => panic!("cause({h:?}) failed: {e:?}"),
    };
    (err, cause)
}

const FOREVER: u64 = u64::MAX;

/// K7: the 20 rows of the SPEC table, through the Rust API, each on a fresh manual clock; every
/// row must also give its slots back.
#[test]
fn k7_go_cause_table_holds_row_by_row() {
    type Row = fn(&ArenaView) -> Outcome;
    let canceled = Some(Error::Canceled);
    let deadline = Some(Error::DeadlineExceeded);
    let rows: [(u32, Row, Outcome); 20] = [
        (1, |a| observe(a, a.background().handle()), (None, None)),
        (2, |a| observe(a, a.todo().handle()), (None, None)),
        (
            3,
            |a| {
                let c = a.background().with_cancel().unwrap();
                c.cancel();
                observe(a, c.handle())
            },
            (canceled, Some(0)),
        ),
        (
            4,
            |a| {
                let c = a.background().with_cancel().unwrap();
                c.cancel_with_cause(nz(P));
                observe(a, c.handle())
            },
            (canceled, Some(P)),
        ),
        (
            5,
            |a| {
                let c = a.background().with_cancel().unwrap();
                assert!(c.cancel());
                assert!(!c.cancel_with_cause(nz(P)), "a second cancel is not first");
                observe(a, c.handle())
            },
            (canceled, Some(0)),
        ),
        (
            6,
            |a| {
                let parent = a.background().with_cancel().unwrap();
                let child = parent.with_cancel().unwrap();
                parent.cancel_with_cause(nz(P));
                child.cancel_with_cause(nz(CH));
                observe(a, child.handle())
            },
            (canceled, Some(P)),
        ),
        (
            7,
            |a| {
                let parent = a.background().with_cancel().unwrap();
                let child = parent.with_cancel().unwrap();
                child.cancel_with_cause(nz(CH));
                parent.cancel_with_cause(nz(P));
                observe(a, child.handle())
            },
            (canceled, Some(CH)),
        ),
        (
            8,
            |a| {
                let parent = a.background().with_cancel().unwrap();
                let child = parent.with_cancel().unwrap();
                parent.cancel_with_cause(nz(P));
                child.cancel();
                observe(a, child.handle())
            },
            (canceled, Some(P)),
        ),
        (
            9,
            |a| {
                let parent = a.background().with_cancel().unwrap();
                let child = parent.with_cancel().unwrap();
                child.cancel();
                parent.cancel_with_cause(nz(P));
                observe(a, child.handle())
            },
            (canceled, Some(0)),
        ),
        (
            10,
            |a| {
                let parent = a.background().with_cancel().unwrap();
                let child = parent.with_cancel().unwrap();
                parent.cancel();
                child.cancel_with_cause(nz(CH));
                observe(a, child.handle())
            },
            (canceled, Some(0)),
        ),
        (
            11,
            |a| {
                let parent = a.background().with_cancel().unwrap();
                let child = parent.with_cancel().unwrap();
                child.cancel_with_cause(nz(CH));
                parent.cancel();
                observe(a, child.handle())
            },
            (canceled, Some(CH)),
        ),
        (
            12,
            |a| {
                let c = a.background().with_timeout(0).unwrap();
                c.cancel();
                observe(a, c.handle())
            },
            (deadline, Some(0)),
        ),
        (
            13,
            |a| {
                let c = a.background().with_timeout(FOREVER).unwrap();
                c.cancel();
                observe(a, c.handle())
            },
            (canceled, Some(0)),
        ),
        (
            14,
            |a| {
                let c = a.background().with_timeout_cause(0, nz(SLOW)).unwrap();
                c.cancel();
                observe(a, c.handle())
            },
            (deadline, Some(SLOW)),
        ),
        (
            15,
            |a| {
                let c = a
                    .background()
                    .with_timeout_cause(FOREVER, nz(SLOW))
                    .unwrap();
                c.cancel();
                observe(a, c.handle())
            },
            (canceled, Some(0)),
        ),
        (
            16,
            |a| {
                let parent = a.background().with_cancel().unwrap();
                let child = parent.with_timeout_cause(0, nz(SLOW)).unwrap();
                parent.cancel_with_cause(nz(EARLY));
                observe(a, child.handle())
            },
            (deadline, Some(SLOW)),
        ),
        (
            17,
            |a| {
                let parent = a.background().with_cancel().unwrap();
                let child = parent.with_timeout_cause(FOREVER, nz(SLOW)).unwrap();
                parent.cancel_with_cause(nz(EARLY));
                observe(a, child.handle())
            },
            (canceled, Some(EARLY)),
        ),
        (
            18,
            |a| {
                let d = a.background().without_cancel().unwrap();
                observe(a, d.handle())
            },
            (None, None),
        ),
        (
            19,
            |a| {
                let parent = a.background().with_cancel().unwrap();
                let d = parent.without_cancel().unwrap();
                parent.cancel_with_cause(nz(EARLY));
                observe(a, d.handle())
            },
            (None, None),
        ),
        (
            20,
            |a| {
                let t = a.background().with_timeout_cause(0, nz(SLOW)).unwrap();
                let d = t.without_cancel().unwrap();
                observe(a, d.handle())
            },
            (None, None),
        ),
    ];
    for (n, row, want) in rows {
        let a = arena::<8>(clock(1_000));
        assert_eq!(row(&a), want, "K7 row {n}");
        assert_eq!(a.stats().in_use, 0, "K7 row {n} leaked a slot");
    }
}

/// K7 rows 3, 4, 7, 14 and 16 again through the raw handle API, where cause 0 means "no cause".
#[test]
fn k7_raw_api_rows_agree() {
    let c = clock(50);
    let a = arena::<8>(c);
    let bg = Handle::BACKGROUND;
    let x = a.with_cancel(bg).unwrap();
    assert_eq!(a.cancel(x, 0), Ok(true));
    assert_eq!(observe(&a, x), (Some(Error::Canceled), Some(0)));
    let y = a.with_cancel(bg).unwrap();
    assert_eq!(a.cancel(y, P), Ok(true));
    assert_eq!(observe(&a, y), (Some(Error::Canceled), Some(P)));
    let parent = a.with_cancel(bg).unwrap();
    let child = a.with_cancel(parent).unwrap();
    assert_eq!(a.cancel(child, CH), Ok(true));
    assert_eq!(a.cancel(parent, P), Ok(true));
    assert_eq!(observe(&a, child), (Some(Error::Canceled), Some(CH)));
    let t = a.with_timeout_cause(bg, 0, SLOW).unwrap();
    assert_eq!(a.cancel(t, 0), Ok(false));
    assert_eq!(observe(&a, t), (Some(Error::DeadlineExceeded), Some(SLOW)));
    let p2 = a.with_cancel(bg).unwrap();
    let c2 = a.with_timeout_cause(p2, 0, SLOW).unwrap();
    assert_eq!(a.cancel(p2, EARLY), Ok(true));
    assert_eq!(observe(&a, c2), (Some(Error::DeadlineExceeded), Some(SLOW)));
    for h in [x, y, child, parent, t, c2, p2] {
        a.release(h).unwrap();
    }
    assert_eq!(a.stats().in_use, 0);
}

#[test]
fn k1_cancel_with_cause_records_the_code_with_canceled() {
    let a = arena::<4>(clock(0));
    let c = a.background().with_cancel().unwrap();
    assert_eq!(c.cause(), Err(Error::NotDone));
    assert!(c.cancel_with_cause(nz(u32::MAX)));
    assert_eq!(c.err(), Err(Error::Canceled));
    assert_eq!(c.cause(), Ok(Some(nz(u32::MAX))));
}

#[test]
fn k2_cancel_and_expiry_without_cause_record_no_cause() {
    let clk = clock(0);
    let a = arena::<8>(clk);
    let c = a.background().with_cancel().unwrap();
    c.cancel();
    assert_eq!(c.cause(), Ok(None));
    // Raw cancel with code 0 is "no cause", not an error.
    let r = a.with_cancel(Handle::BACKGROUND).unwrap();
    assert_eq!(a.cancel(r, 0), Ok(true));
    assert_eq!(a.cause(r), Ok(None));
    a.release(r).unwrap();
    // Expiry seen by a check, and expiry by the driver.
    let seen = a.background().with_deadline(10).unwrap();
    let driven = a.background().with_deadline(10).unwrap();
    let below = driven.with_cancel().unwrap();
    clk.set(10);
    assert_eq!(seen.err(), Err(Error::DeadlineExceeded));
    assert_eq!(seen.cause(), Ok(None));
    assert_eq!(a.expire(10), 2);
    assert_eq!(driven.cause(), Ok(None));
    assert_eq!(below.cause(), Ok(None));
    assert_eq!(seen.cause(), Ok(None));
}

#[test]
fn k3_first_cancellation_wins() {
    let clk = clock(0);
    let a = arena::<8>(clk);
    let c = a.background().with_cancel().unwrap();
    assert!(c.cancel_with_cause(nz(1)));
    assert!(!c.cancel_with_cause(nz(2)));
    assert!(!c.cancel());
    assert_eq!(c.cause(), Ok(Some(nz(1))));
    // A deadline firing later changes nothing either.
    let d = a.background().with_deadline_cause(5, nz(SLOW)).unwrap();
    assert!(d.cancel_with_cause(nz(EARLY)));
    clk.set(6);
    assert_eq!(a.expire(6), 0);
    assert_eq!(d.err(), Err(Error::Canceled));
    assert_eq!(d.cause(), Ok(Some(nz(EARLY))));
    // And a deadline first: a later cancel changes nothing.
    let e = a.background().with_deadline_cause(8, nz(SLOW)).unwrap();
    clk.set(8);
    assert!(!e.cancel_with_cause(nz(EARLY)));
    assert_eq!(e.err(), Err(Error::DeadlineExceeded));
    assert_eq!(e.cause(), Ok(Some(nz(SLOW))));
}

#[test]
fn k4_descendants_carry_the_ancestor_cause() {
    let a = arena::<16>(clock(0));
    let root = a.background().with_cancel().unwrap();
    let v = root.with_value(common::key(1), 1).unwrap();
    let d = v.with_deadline(1_000).unwrap();
    let leaf = d.with_cancel().unwrap();
    let late = leaf.with_cancel().unwrap();
    root.cancel_with_cause(nz(P));
    let born = leaf.with_cancel().unwrap();
    for c in [&v, &d, &leaf, &late, &born] {
        assert_eq!(c.cause(), Ok(Some(nz(P))));
        assert_eq!(c.err(), Err(Error::Canceled));
    }
}

#[test]
fn k5_deadline_cause_only_when_the_deadline_fires() {
    let clk = clock(0);
    let a = arena::<16>(clk);
    // Canceled by hand: no cause.
    let by_hand = a.background().with_deadline_cause(10, nz(SLOW)).unwrap();
    by_hand.cancel();
    assert_eq!(by_hand.cause(), Ok(None));
    // Fires: its cause, below it too.
    let fires = a.background().with_timeout_cause(10, nz(SLOW)).unwrap();
    let below = fires.with_cancel().unwrap();
    // The parent's earlier deadline fires first: the child carries the parent's Err and cause.
    let parent = a.background().with_deadline_cause(10, nz(EARLY)).unwrap();
    let later = parent.with_deadline_cause(20, nz(SLOW)).unwrap();
    let later_timeout = parent.with_timeout_cause(20, nz(SLOW)).unwrap();
    clk.set(10);
    assert_eq!(later.cause(), Ok(Some(nz(EARLY))), "seen by a check");
    assert_eq!(a.expire(10), 2);
    assert_eq!(fires.cause(), Ok(Some(nz(SLOW))));
    assert_eq!(below.cause(), Ok(Some(nz(SLOW))));
    assert_eq!(later.err(), Err(Error::DeadlineExceeded));
    assert_eq!(later.cause(), Ok(Some(nz(EARLY))));
    assert_eq!(later_timeout.cause(), Ok(Some(nz(EARLY))));
    assert_eq!(parent.cause(), Ok(Some(nz(EARLY))));
}

#[test]
fn k6_cause_is_absent_before_done_and_exact_after_under_concurrency() {
    for round in 0..50u32 {
        let a = arena::<4>(clock(0));
        let c = a.background().with_cancel().unwrap();
        let h = c.handle();
        let code = 1_000 + round;
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut seen_done = false;
                for _ in 0..2_000 {
                    match a.cause(h) {
                        Err(Error::NotDone) => assert!(!seen_done, "K6: done, then not done"),
                        Ok(got) => {
                            assert_eq!(got, Some(nz(code)), "K6: torn or wrong cause");
                            seen_done = true;
                        }
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            });
            s.spawn(|| assert_eq!(a.cancel(h, code), Ok(true)));
            reader.join().unwrap();
        });
        assert_eq!(c.cause(), Ok(Some(nz(code))));
    }
}

/// A clock that, on one armed reading, moves time to the deadline and makes a check on a target
/// context before returning the reading it took: a check that runs while a cancel walk is in
/// progress (the walk reads the clock inside its locked section), made deterministic.
struct RaceClock {
    ticks: AtomicU64,
    jump_to: AtomicU64,
    armed: AtomicBool,
    target: AtomicU64,
    seen_cause: AtomicU64,
}

static RACE: RaceClock = RaceClock {
    ticks: AtomicU64::new(9),
    jump_to: AtomicU64::new(10),
    armed: AtomicBool::new(false),
    target: AtomicU64::new(0),
    seen_cause: AtomicU64::new(u64::MAX),
};
static RACE_ARENA: Arena<8> = Arena::with_clock(&RACE);

impl Clock for RaceClock {
    fn now(&self) -> u64 {
        let t = self.ticks.load(SeqCst);
        if self.armed.swap(false, SeqCst) {
            self.ticks.store(self.jump_to.load(SeqCst), SeqCst);
            let h = Handle::from_raw(self.target.load(SeqCst));
            // Lock-free checks (T2): safe inside the walk's locked section.
            assert_eq!(RACE_ARENA.err(h), Err(Error::DeadlineExceeded));
            let c = RACE_ARENA.cause(h).unwrap().map_or(0, |c| c.get());
            self.seen_cause.store(c as u64, SeqCst);
        }
        t
    }
}

/// K6 and C4 regression: a check saw a child of a deadline owner expire (cause = the owner's
/// deadline cause) while a cancel of the owner, which had read the clock just before, was
/// walking. The walk used to overwrite the child's cause with the cancel's cause.
#[test]
fn k6_c4_cause_seen_by_a_check_is_not_rewritten_by_a_racing_cancel() {
    let a: &ArenaView = &RACE_ARENA;
    let owner = a.background().with_deadline_cause(10, nz(SLOW)).unwrap();
    let child = owner.with_cancel().unwrap();
    let grandchild = child.with_value(common::key(3), 3).unwrap();
    RACE.target.store(grandchild.handle().to_raw(), SeqCst);
    RACE.armed.store(true, SeqCst);
    // The walk reads the clock (9) first; then the check sees 10 and reports SLOW.
    assert!(owner.cancel_with_cause(nz(EARLY)));
    assert!(!RACE.armed.load(SeqCst), "the clock was read by the walk");
    assert_eq!(RACE.seen_cause.load(SeqCst), SLOW as u64);
    assert_eq!(owner.err(), Err(Error::Canceled));
    assert_eq!(owner.cause(), Ok(Some(nz(EARLY))));
    // C4: the Err the check reported stays; K6: so does the cause.
    assert_eq!(grandchild.err(), Err(Error::DeadlineExceeded));
    assert_eq!(grandchild.cause(), Ok(Some(nz(SLOW))));
}
