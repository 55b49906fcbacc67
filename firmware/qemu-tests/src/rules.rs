//! Rule tests that need no threads, named by SPEC rule id. Each test builds its own arena on the
//! stack (except where a callback must reach one: those use a `static`), reading one manual
//! clock that only moves when a test moves it.

use core::cell::Cell;
use core::num::{NonZeroU32, NonZeroUsize};

use critical_section::Mutex;
use stopwire::{Arena, Callback, Clock, Error, Handle, ManualClock};

use crate::{check, check_eq, Test};

type R = Result<(), &'static str>;

static CLOCK: ManualClock = ManualClock::new(1_000);
const FOREVER: u64 = u64::MAX / 4;

fn arena() -> Arena<16> {
    Arena::with_clock(&CLOCK)
}

fn now() -> u64 {
    CLOCK.now()
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

fn key(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("non-zero")
}

/// A counter that interrupt handlers and thread mode may both bump (no CAS on thumbv6m).
pub(crate) struct Counter(Mutex<Cell<u32>>);

impl Counter {
    pub(crate) const fn new() -> Self {
        Counter(Mutex::new(Cell::new(0)))
    }
    pub(crate) fn add(&self, n: u32) {
        critical_section::with(|cs| {
            let c = self.0.borrow(cs);
            c.set(c.get() + n);
        });
    }
    pub(crate) fn get(&self) -> u32 {
        critical_section::with(|cs| self.0.borrow(cs).get())
    }
    pub(crate) fn take(&self) -> u32 {
        critical_section::with(|cs| self.0.borrow(cs).replace(0))
    }
}

static RAN: Counter = Counter::new();
fn bump(n: usize) {
    RAN.add(n as u32);
}

pub(crate) static TESTS: &[Test] = &[
    ("r1_roots_are_never_done_and_cost_nothing", r1),
    ("r2_roots_cannot_be_canceled_or_released", r2),
    ("r3_the_zero_handle_is_never_valid", r3),
    ("c1_a_new_child_is_not_done", c1),
    ("c2_cancel_reaches_the_whole_subtree_before_it_returns", c2),
    ("c3_only_the_first_cancel_is_told_it_was_first", c3),
    ("c4_err_never_changes_once_seen", c4),
    ("c5_cancel_passes_value_deadline_and_callback_layers", c5),
    ("c6_descendants_get_the_ancestors_err_and_cause", c6),
    ("c7_child_of_a_done_parent_is_born_done", c7),
    ("c8_canceling_a_child_leaves_parent_and_siblings", c8),
    ("c9_canceled_children_cost_their_parent_nothing", c9),
    ("d1_timeout_is_now_plus_ticks_saturating", d1),
    ("d2_the_effective_deadline_is_the_earliest", d2),
    ("d3_a_past_deadline_is_done_at_creation", d3),
    ("d4_reaching_the_deadline_makes_the_subtree_done", d4),
    ("d6_roots_and_detached_contexts_have_no_deadline", d6),
    ("d7_cancel_before_the_deadline_gives_canceled", d7),
    ("d8_a_deadline_under_a_detached_context_is_not_clamped", d8),
    ("v1_key_zero_is_rejected", v1),
    ("v2_the_nearest_layer_shadows_farther_ones", v2),
    ("v3_values_outlive_cancel_and_released_ancestors", v3),
    ("v4_a_value_layer_has_its_parents_state", v4),
    ("k1_k3_the_first_cancel_cause_wins", k1_k3),
    ("k5_deadline_cause_only_when_the_deadline_fires", k5),
    ("k7_the_twenty_row_cause_table", k7),
    ("w1_a_detached_context_is_never_done", w1),
    (
        "w2_descendants_of_a_detached_context_are_not_canceled_from_above",
        w2,
    ),
    (
        "f1_f3_a_callback_runs_once_after_done_and_may_call_the_library",
        f1_f3,
    ),
    ("f2_a_callback_on_a_done_context_runs_at_registration", f2),
    ("f4_stop_prevents_the_callback_and_says_so_once", f4),
    ("f5_callbacks_on_one_context_are_independent", f5),
    ("f6_a_registration_takes_one_slot_until_run_or_stopped", f6),
    ("f7_callbacks_on_roots_and_detached_never_run", f7),
    ("a2_a_stale_handle_never_touches_the_slots_new_owner", a2),
    ("a3_a_full_arena_refuses_and_recovers", a3),
    ("a4_release_cancels_and_makes_the_handle_stale", a4),
    (
        "a5_released_ancestors_are_kept_for_descendants_then_freed",
        a5,
    ),
    ("a6_slots_in_use_return_to_the_baseline", a6),
    ("t5_expire_handles_each_deadline_once_in_order", t5_order),
    ("t5_expire_skips_contexts_done_by_other_means", t5_skip),
];

fn r1() -> R {
    let a = arena();
    for root in [a.background(), a.todo()] {
        check_eq!(root.err(), Ok(()));
        check_eq!(root.deadline(), Ok(None));
        check_eq!(root.value(key(1)), Ok(None));
        check_eq!(root.cause(), Err(Error::NotDone));
    }
    check_eq!(a.stats().in_use, 0);
    Ok(())
}

fn r2() -> R {
    let a = arena();
    check_eq!(a.cancel(Handle::BACKGROUND, 0), Err(Error::Root));
    check_eq!(a.release(Handle::TODO), Err(Error::Root));
    check_eq!(a.background().err(), Ok(()));
    Ok(())
}

fn r3() -> R {
    let a = arena();
    check_eq!(a.err(Handle::DEAD), Err(Error::Stale));
    check!(a.is_done(Handle::DEAD));
    check_eq!(a.with_cancel(Handle::DEAD), Err(Error::Stale));
    check_eq!(a.cancel(Handle::DEAD, 0), Err(Error::Stale));
    Ok(())
}

fn c1() -> R {
    let a = arena();
    let c = a.background().with_cancel().map_err(|_| "create")?;
    check_eq!(c.err(), Ok(()));
    check!(!c.is_done());
    Ok(())
}

fn c2() -> R {
    let a = arena();
    let top = a.background().with_cancel().map_err(|_| "create")?;
    let l1 = top.with_cancel().map_err(|_| "create")?;
    let l2 = l1.with_cancel().map_err(|_| "create")?;
    let l3 = l2.with_cancel().map_err(|_| "create")?;
    let side = top.with_cancel().map_err(|_| "create")?;
    let side2 = side.with_cancel().map_err(|_| "create")?;
    check!(top.cancel());
    for c in [&top, &l1, &l2, &l3, &side, &side2] {
        check_eq!(c.err(), Err(Error::Canceled));
    }
    Ok(())
}

fn c3() -> R {
    let a = arena();
    let c = a.background().with_cancel().map_err(|_| "create")?;
    check!(c.cancel());
    check!(!c.cancel());
    check!(!c.cancel_with_cause(nz(5)));
    check_eq!(c.cause(), Ok(None));
    Ok(())
}

fn c4() -> R {
    let a = arena();
    let c = a.background().with_timeout(10).map_err(|_| "create")?;
    check_eq!(c.err(), Ok(()));
    CLOCK.advance(10);
    check_eq!(c.err(), Err(Error::DeadlineExceeded));
    check!(!c.cancel());
    check_eq!(c.err(), Err(Error::DeadlineExceeded));
    a.expire(now());
    check_eq!(c.err(), Err(Error::DeadlineExceeded));
    Ok(())
}

fn c5() -> R {
    let a = arena();
    RAN.take();
    let top = a.background().with_cancel().map_err(|_| "create")?;
    let v = top.with_value(key(3), 30).map_err(|_| "create")?;
    let d = v.with_timeout(FOREVER).map_err(|_| "create")?;
    let leaf = d.with_cancel().map_err(|_| "create")?;
    let reg = leaf.after_func(bump, 1).map_err(|_| "register")?;
    top.cancel();
    check_eq!(v.err(), Err(Error::Canceled));
    check_eq!(d.err(), Err(Error::Canceled));
    check_eq!(leaf.err(), Err(Error::Canceled));
    check_eq!(RAN.take(), 1);
    check!(!reg.stop());
    Ok(())
}

fn c6() -> R {
    let a = arena();
    let top = a.background().with_cancel().map_err(|_| "create")?;
    let mid = top.with_cancel().map_err(|_| "create")?;
    let leaf = mid.with_value(key(1), 1).map_err(|_| "create")?;
    top.cancel_with_cause(nz(77));
    check_eq!(leaf.err(), Err(Error::Canceled));
    check_eq!(leaf.cause(), Ok(Some(nz(77))));
    let p = a.background().with_timeout(5).map_err(|_| "create")?;
    let ch = p.with_cancel().map_err(|_| "create")?;
    CLOCK.advance(5);
    a.expire(now());
    check_eq!(ch.err(), Err(Error::DeadlineExceeded));
    Ok(())
}

fn c7() -> R {
    let a = arena();
    let p = a.background().with_cancel().map_err(|_| "create")?;
    p.cancel_with_cause(nz(9));
    let c = p.with_cancel().map_err(|_| "create")?;
    check_eq!(c.err(), Err(Error::Canceled));
    check_eq!(c.cause(), Ok(Some(nz(9))));
    let t = p.with_timeout(FOREVER).map_err(|_| "create")?;
    check_eq!(t.err(), Err(Error::Canceled));
    Ok(())
}

fn c8() -> R {
    let a = arena();
    let p = a.background().with_cancel().map_err(|_| "create")?;
    let x = p.with_cancel().map_err(|_| "create")?;
    let y = p.with_cancel().map_err(|_| "create")?;
    x.cancel();
    check_eq!(p.err(), Ok(()));
    check_eq!(y.err(), Ok(()));
    Ok(())
}

fn c9() -> R {
    let a = arena();
    let p = a.background().with_cancel().map_err(|_| "create")?;
    for _ in 0..100 {
        let c = p.with_cancel().map_err(|_| "create")?;
        c.cancel();
    }
    check_eq!(a.stats().in_use, 1);
    check!(a.stats().high_water <= 2);
    Ok(())
}

fn d1() -> R {
    let a = arena();
    let t = a.background().with_timeout(25).map_err(|_| "create")?;
    check_eq!(t.deadline(), Ok(Some(now() + 25)));
    let s = a
        .background()
        .with_timeout(u64::MAX)
        .map_err(|_| "create")?;
    check_eq!(s.deadline(), Ok(Some(u64::MAX)));
    let d = a
        .background()
        .with_deadline(now() + 7)
        .map_err(|_| "create")?;
    check_eq!(d.deadline(), Ok(Some(now() + 7)));
    Ok(())
}

fn d2() -> R {
    let a = arena();
    let p = a.background().with_timeout(100).map_err(|_| "create")?;
    let later = p.with_timeout(500).map_err(|_| "create")?;
    let sooner = p.with_timeout(50).map_err(|_| "create")?;
    let plain = p.with_cancel().map_err(|_| "create")?;
    check_eq!(later.deadline(), Ok(Some(now() + 100)));
    check_eq!(sooner.deadline(), Ok(Some(now() + 50)));
    check_eq!(plain.deadline(), Ok(Some(now() + 100)));
    Ok(())
}

fn d3() -> R {
    let a = arena();
    let t = a.background().with_timeout(0).map_err(|_| "create")?;
    check_eq!(t.err(), Err(Error::DeadlineExceeded));
    let d = a
        .background()
        .with_deadline(now() - 1)
        .map_err(|_| "create")?;
    check_eq!(d.err(), Err(Error::DeadlineExceeded));
    Ok(())
}

fn d4() -> R {
    let a = arena();
    let t = a.background().with_timeout(20).map_err(|_| "create")?;
    let c = t.with_cancel().map_err(|_| "create")?;
    let canceled = t.with_cancel().map_err(|_| "create")?;
    canceled.cancel();
    CLOCK.advance(19);
    check_eq!(c.err(), Ok(()));
    CLOCK.advance(1);
    check_eq!(t.err(), Err(Error::DeadlineExceeded));
    check_eq!(c.err(), Err(Error::DeadlineExceeded));
    check_eq!(canceled.err(), Err(Error::Canceled));
    Ok(())
}

fn d6() -> R {
    let a = arena();
    check_eq!(a.background().deadline(), Ok(None));
    let t = a.background().with_timeout(10).map_err(|_| "create")?;
    let w = t.without_cancel().map_err(|_| "create")?;
    check_eq!(w.deadline(), Ok(None));
    Ok(())
}

fn d7() -> R {
    let a = arena();
    let t = a.background().with_timeout(10).map_err(|_| "create")?;
    t.cancel();
    CLOCK.advance(10);
    check_eq!(t.err(), Err(Error::Canceled));
    check_eq!(a.expire(now()), 0);
    check_eq!(t.err(), Err(Error::Canceled));
    Ok(())
}

fn d8() -> R {
    let a = arena();
    let t = a.background().with_timeout(10).map_err(|_| "create")?;
    let w = t.without_cancel().map_err(|_| "create")?;
    let inner = w.with_timeout(1_000).map_err(|_| "create")?;
    check_eq!(inner.deadline(), Ok(Some(now() + 1_000)));
    CLOCK.advance(10);
    a.expire(now());
    check_eq!(inner.err(), Ok(()));
    Ok(())
}

fn v1() -> R {
    let a = arena();
    check_eq!(a.with_value(Handle::BACKGROUND, 0, 1), Err(Error::ZeroKey));
    check_eq!(a.stats().in_use, 0);
    Ok(())
}

fn v2() -> R {
    let a = arena();
    let outer = a
        .background()
        .with_value(key(1), 10)
        .map_err(|_| "create")?;
    let other = outer.with_value(key(2), 20).map_err(|_| "create")?;
    let inner = other.with_value(key(1), 11).map_err(|_| "create")?;
    check_eq!(inner.value(key(1)), Ok(Some(11)));
    check_eq!(inner.value(key(2)), Ok(Some(20)));
    check_eq!(other.value(key(1)), Ok(Some(10)));
    check_eq!(inner.value(key(3)), Ok(None));
    Ok(())
}

fn v3() -> R {
    let a = arena();
    let top = a
        .background()
        .with_value(key(4), 40)
        .map_err(|_| "create")?;
    let leaf = top.with_cancel().map_err(|_| "create")?;
    let leaf = leaf.with_value(key(5), 50).map_err(|_| "create")?;
    top.cancel();
    check_eq!(leaf.value(key(4)), Ok(Some(40)));
    drop(top);
    check_eq!(leaf.value(key(4)), Ok(Some(40)));
    check_eq!(leaf.value(key(5)), Ok(Some(50)));
    Ok(())
}

fn v4() -> R {
    let a = arena();
    let t = a.background().with_timeout(30).map_err(|_| "create")?;
    let v = t.with_value(key(1), 1).map_err(|_| "create")?;
    check_eq!(v.deadline(), Ok(Some(now() + 30)));
    check_eq!(v.err(), Ok(()));
    t.cancel_with_cause(nz(3));
    check_eq!(v.err(), Err(Error::Canceled));
    check_eq!(v.cause(), Ok(Some(nz(3))));
    Ok(())
}

fn k1_k3() -> R {
    let a = arena();
    let c = a.background().with_cancel().map_err(|_| "create")?;
    check_eq!(c.cause(), Err(Error::NotDone));
    check!(c.cancel_with_cause(nz(11)));
    check!(!c.cancel_with_cause(nz(12)));
    check_eq!(c.cause(), Ok(Some(nz(11))));
    check_eq!(a.cancel(c.handle(), 0), Ok(false));
    let d = a.background().with_cancel().map_err(|_| "create")?;
    d.cancel();
    check_eq!(d.cause(), Ok(None));
    Ok(())
}

fn k5() -> R {
    let a = arena();
    let t = a
        .background()
        .with_timeout_cause(5, nz(21))
        .map_err(|_| "create")?;
    let u = a
        .background()
        .with_timeout_cause(5, nz(22))
        .map_err(|_| "create")?;
    u.cancel();
    CLOCK.advance(5);
    a.expire(now());
    check_eq!(t.cause(), Ok(Some(nz(21))));
    check_eq!(u.cause(), Ok(None));
    Ok(())
}

/// SPEC K7, row by row.
fn k7() -> R {
    const P: u32 = 101;
    const CH: u32 = 102;
    const SLOW: u32 = 103;
    const EARLY: u32 = 104;
    let a = arena();
    let bg = a.background();
    type Row = (Result<(), Error>, Result<Option<NonZeroU32>, Error>);
    let done = |e: Error, c: u32| -> Row { (Err(e), Ok(NonZeroU32::new(c))) };
    let live: Row = (Ok(()), Err(Error::NotDone));
    let got = |c: stopwire::Ctx<'_>| -> Row { (c.err(), c.cause()) };

    check_eq!(got(a.background()), live); // 1
    check_eq!(got(a.todo()), live); // 2
    {
        let c = bg.with_cancel().map_err(|_| "create")?;
        c.cancel();
        check_eq!(got(*c), done(Error::Canceled, 0)); // 3
    }
    {
        let c = bg.with_cancel().map_err(|_| "create")?;
        c.cancel_with_cause(nz(P));
        check_eq!(got(*c), done(Error::Canceled, P)); // 4
    }
    {
        let c = bg.with_cancel().map_err(|_| "create")?;
        c.cancel();
        check_eq!(got(*c), done(Error::Canceled, 0)); // 5
    }
    // Rows 6-11: (parent first?, parent cause, child cause, expected)
    let rows: [(bool, u32, u32, u32); 6] = [
        (true, P, CH, P),
        (false, P, CH, CH),
        (true, P, 0, P),
        (false, P, 0, 0),
        (true, 0, CH, 0),
        (false, 0, CH, CH),
    ];
    for (parent_first, pc, cc, want) in rows {
        let p = bg.with_cancel().map_err(|_| "create")?;
        let c = p.with_cancel().map_err(|_| "create")?;
        let cancel = |o: &stopwire::OwnedCtx<'_>, cause: u32| match NonZeroU32::new(cause) {
            Some(k) => o.cancel_with_cause(k),
            None => o.cancel(),
        };
        if parent_first {
            cancel(&p, pc);
            cancel(&c, cc);
        } else {
            cancel(&c, cc);
            cancel(&p, pc);
        }
        check_eq!(got(*c), done(Error::Canceled, want)); // 6-11
    }
    {
        let c = bg.with_timeout(0).map_err(|_| "create")?;
        c.cancel();
        check_eq!(got(*c), done(Error::DeadlineExceeded, 0)); // 12
    }
    {
        let c = bg.with_timeout(FOREVER).map_err(|_| "create")?;
        c.cancel();
        check_eq!(got(*c), done(Error::Canceled, 0)); // 13
    }
    {
        let c = bg.with_timeout_cause(0, nz(SLOW)).map_err(|_| "create")?;
        c.cancel();
        check_eq!(got(*c), done(Error::DeadlineExceeded, SLOW)); // 14
    }
    {
        let c = bg
            .with_timeout_cause(FOREVER, nz(SLOW))
            .map_err(|_| "create")?;
        c.cancel();
        check_eq!(got(*c), done(Error::Canceled, 0)); // 15
    }
    {
        let p = bg.with_cancel().map_err(|_| "create")?;
        let c = p.with_timeout_cause(0, nz(SLOW)).map_err(|_| "create")?;
        p.cancel_with_cause(nz(EARLY));
        check_eq!(got(*c), done(Error::DeadlineExceeded, SLOW)); // 16
    }
    {
        let p = bg.with_cancel().map_err(|_| "create")?;
        let c = p
            .with_timeout_cause(FOREVER, nz(SLOW))
            .map_err(|_| "create")?;
        p.cancel_with_cause(nz(EARLY));
        check_eq!(got(*c), done(Error::Canceled, EARLY)); // 17
    }
    {
        let w = bg.without_cancel().map_err(|_| "create")?;
        check_eq!(got(*w), live); // 18
    }
    {
        let p = bg.with_cancel().map_err(|_| "create")?;
        let w = p.without_cancel().map_err(|_| "create")?;
        p.cancel_with_cause(nz(EARLY));
        check_eq!(got(*w), live); // 19
    }
    {
        let t = bg.with_timeout_cause(0, nz(SLOW)).map_err(|_| "create")?;
        let w = t.without_cancel().map_err(|_| "create")?;
        check_eq!(got(*w), live); // 20
    }
    check_eq!(a.stats().in_use, 0);
    Ok(())
}

fn w1() -> R {
    let a = arena();
    let p = a
        .background()
        .with_value(key(6), 60)
        .map_err(|_| "create")?;
    let p = p.with_timeout(5).map_err(|_| "create")?;
    let w = p.without_cancel().map_err(|_| "create")?;
    check_eq!(w.value(key(6)), Ok(Some(60)));
    check!(!w.cancel());
    p.cancel_with_cause(nz(1));
    CLOCK.advance(5);
    a.expire(now());
    check_eq!(w.err(), Ok(()));
    check_eq!(w.cause(), Err(Error::NotDone));
    Ok(())
}

fn w2() -> R {
    let a = arena();
    let p = a.background().with_cancel().map_err(|_| "create")?;
    let w = p.without_cancel().map_err(|_| "create")?;
    let below = w.with_cancel().map_err(|_| "create")?;
    p.cancel();
    check_eq!(below.err(), Ok(()));
    drop(p);
    check_eq!(below.err(), Ok(()));
    below.cancel();
    check_eq!(below.err(), Err(Error::Canceled));
    Ok(())
}

static F3_ARENA: Arena<8> = Arena::with_clock(&CLOCK);
static F3_TARGET: Mutex<Cell<Handle>> = Mutex::new(Cell::new(Handle::DEAD));
fn cancel_target(_: usize) {
    let h = critical_section::with(|cs| F3_TARGET.borrow(cs).get());
    // F3: no lock is held here, so a callback may cancel, create and release.
    let _ = F3_ARENA.cancel(h, 8);
    if let Ok(extra) = F3_ARENA.with_cancel(Handle::BACKGROUND) {
        let _ = F3_ARENA.release(extra);
    }
    RAN.add(1);
}

fn f1_f3() -> R {
    RAN.take();
    let ctx = F3_ARENA.background().with_cancel().map_err(|_| "create")?;
    let other = F3_ARENA.background().with_cancel().map_err(|_| "create")?;
    critical_section::with(|cs| F3_TARGET.borrow(cs).set(other.handle()));
    let reg = ctx.after_func(cancel_target, 0).map_err(|_| "register")?;
    check_eq!(RAN.get(), 0);
    ctx.cancel();
    check_eq!(RAN.get(), 1);
    ctx.cancel();
    check_eq!(RAN.take(), 1);
    check_eq!(other.cause(), Ok(Some(nz(8))));
    check!(!reg.stop());
    drop((reg, ctx, other));
    check_eq!(F3_ARENA.stats().in_use, 0);
    Ok(())
}

fn f2() -> R {
    let a = arena();
    RAN.take();
    let c = a.background().with_cancel().map_err(|_| "create")?;
    c.cancel();
    let reg = c.after_func(bump, 3).map_err(|_| "register")?;
    check_eq!(RAN.take(), 3);
    check!(!reg.stop());
    check_eq!(a.stats().in_use, 1);
    Ok(())
}

fn f4() -> R {
    let a = arena();
    RAN.take();
    let c = a.background().with_cancel().map_err(|_| "create")?;
    let reg = c.after_func(bump, 1).map_err(|_| "register")?;
    check!(reg.stop());
    check!(!reg.stop());
    c.cancel();
    check_eq!(RAN.take(), 0);
    let d = a.background().with_cancel().map_err(|_| "create")?;
    let reg = d.after_func(bump, 1).map_err(|_| "register")?;
    d.cancel();
    check!(!reg.stop());
    check_eq!(RAN.take(), 1);
    Ok(())
}

fn f5() -> R {
    let a = arena();
    RAN.take();
    let c = a.background().with_cancel().map_err(|_| "create")?;
    let r1 = c.after_func(bump, 1).map_err(|_| "register")?;
    let r2 = c.after_func(bump, 10).map_err(|_| "register")?;
    let r3 = c.after_func(bump, 100).map_err(|_| "register")?;
    check!(r2.stop());
    c.cancel();
    check_eq!(RAN.take(), 101);
    check!(!r1.stop());
    check!(!r3.stop());
    Ok(())
}

fn f6() -> R {
    let a = arena();
    let c = a.background().with_cancel().map_err(|_| "create")?;
    let reg = c.after_func(bump, 0).map_err(|_| "register")?;
    check_eq!(a.stats().in_use, 2);
    reg.stop();
    check_eq!(a.stats().in_use, 1);
    let raw = a
        .after_func(c.handle(), Callback::new(bump, 0))
        .map_err(|_| "register")?;
    check_eq!(a.stats().in_use, 2);
    RAN.take();
    c.cancel();
    check_eq!(a.stats().in_use, 1);
    check!(!a.stop(raw));
    RAN.take();
    Ok(())
}

fn f7() -> R {
    let a = arena();
    RAN.take();
    let on_root = a.background().after_func(bump, 1).map_err(|_| "register")?;
    let p = a.background().with_cancel().map_err(|_| "create")?;
    let w = p.without_cancel().map_err(|_| "create")?;
    let on_detached = w.after_func(bump, 1).map_err(|_| "register")?;
    p.cancel();
    check_eq!(RAN.take(), 0);
    check!(on_root.stop());
    check!(on_detached.stop());
    Ok(())
}

fn a2() -> R {
    let a = arena();
    let old = a.background().with_cancel().map_err(|_| "create")?;
    let stale = old.handle();
    drop(old);
    let new = a.background().with_cancel().map_err(|_| "create")?;
    check_eq!(a.err(stale), Err(Error::Stale));
    check!(a.is_done(stale));
    check_eq!(a.cancel(stale, 3), Err(Error::Stale));
    check_eq!(a.release(stale), Err(Error::Stale));
    check_eq!(a.with_cancel(stale), Err(Error::Stale));
    check_eq!(a.value(stale, 1), Err(Error::Stale));
    check_eq!(new.err(), Ok(()));
    // The slot is reused many times; the first handle stays stale throughout.
    for _ in 0..1_000 {
        let again = a.background().with_cancel().map_err(|_| "create")?;
        check!(again.handle() != stale);
        check_eq!(a.err(stale), Err(Error::Stale));
    }
    Ok(())
}

fn a3() -> R {
    let a: Arena<3> = Arena::with_clock(&CLOCK);
    let x = a.background().with_cancel().map_err(|_| "create")?;
    let y = x.with_cancel().map_err(|_| "create")?;
    let z = y.with_cancel().map_err(|_| "create")?;
    check_eq!(z.with_cancel().map(|_| ()), Err(Error::Full));
    check_eq!(
        a.background().with_value(key(1), 1).map(|_| ()),
        Err(Error::Full)
    );
    check_eq!(a.stats().full_count, 2);
    check_eq!(x.err(), Ok(()));
    drop(z);
    let again = y.with_cancel().map_err(|_| "create after release")?;
    check_eq!(again.err(), Ok(()));
    Ok(())
}

fn a4() -> R {
    let a = arena();
    let p = a.background().with_cancel().map_err(|_| "create")?;
    let c = p.with_cancel().map_err(|_| "create")?;
    let h = p.handle();
    drop(p);
    check_eq!(a.err(h), Err(Error::Stale));
    check_eq!(c.err(), Err(Error::Canceled));
    Ok(())
}

fn a5() -> R {
    let a = arena();
    let top = a.background().with_value(key(2), 2).map_err(|_| "create")?;
    let mid = top.with_cancel().map_err(|_| "create")?;
    let leaf = mid.with_cancel().map_err(|_| "create")?;
    drop(top);
    drop(mid);
    check_eq!(a.stats().in_use, 3);
    check_eq!(leaf.value(key(2)), Ok(Some(2)));
    drop(leaf);
    check_eq!(a.stats().in_use, 0);
    Ok(())
}

fn a6() -> R {
    let a = arena();
    let base = a.stats().in_use;
    for round in 0..50u32 {
        let r = a
            .background()
            .with_timeout(5 + u64::from(round % 3))
            .map_err(|_| "create")?;
        let v = r.with_value(key(1), round as usize).map_err(|_| "create")?;
        let c = v.with_cancel().map_err(|_| "create")?;
        let reg = c.after_func(bump, 0).map_err(|_| "register")?;
        let w = c.without_cancel().map_err(|_| "create")?;
        if round % 2 == 0 {
            r.cancel();
        } else {
            CLOCK.advance(10);
            a.expire(now());
        }
        drop((reg, w, c, v, r));
    }
    RAN.take();
    check_eq!(a.stats().in_use, base);
    Ok(())
}

fn t5_order() -> R {
    let a = arena();
    let t0 = now();
    let late = a
        .background()
        .with_deadline(t0 + 30)
        .map_err(|_| "create")?;
    let early = a
        .background()
        .with_deadline(t0 + 10)
        .map_err(|_| "create")?;
    let mid = a
        .background()
        .with_deadline(t0 + 20)
        .map_err(|_| "create")?;
    let under = early.with_timeout(FOREVER).map_err(|_| "create")?;
    check_eq!(a.next_deadline(), Some(t0 + 10));
    check_eq!(a.expire(t0 + 9), 0);
    check_eq!(a.expire(t0 + 20), 2);
    check_eq!(early.err(), Err(Error::DeadlineExceeded));
    check_eq!(under.err(), Err(Error::DeadlineExceeded));
    check_eq!(mid.err(), Err(Error::DeadlineExceeded));
    check_eq!(a.expire(t0 + 20), 0);
    check_eq!(late.err(), Ok(()));
    check_eq!(a.next_deadline(), Some(t0 + 30));
    check_eq!(a.expire(u64::MAX), 1);
    check_eq!(a.next_deadline(), None);
    Ok(())
}

fn t5_skip() -> R {
    let a = arena();
    RAN.take();
    let t0 = now();
    let canceled = a.background().with_deadline(t0 + 5).map_err(|_| "create")?;
    let released = a.background().with_deadline(t0 + 5).map_err(|_| "create")?;
    let parent = a.background().with_cancel().map_err(|_| "create")?;
    let by_parent = parent.with_deadline(t0 + 5).map_err(|_| "create")?;
    let counted = a.background().with_deadline(t0 + 5).map_err(|_| "create")?;
    let reg = counted.after_func(bump, 4).map_err(|_| "register")?;
    canceled.cancel();
    drop(released);
    parent.cancel();
    check_eq!(a.expire(t0 + 5), 1);
    check_eq!(RAN.take(), 4);
    check_eq!(counted.err(), Err(Error::DeadlineExceeded));
    check_eq!(by_parent.err(), Err(Error::Canceled));
    check!(!reg.stop());
    Ok(())
}
