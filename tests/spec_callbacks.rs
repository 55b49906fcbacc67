//! SPEC F1-F7: callbacks (`after_func`).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::thread::ThreadId;

use common::{arena, clock};
use stopwire::{Arena, ArenaView, Callback, Error, Handle, ManualClock};

/// Per-test counters: each test passes the address of its own counter as the callback's data.
fn inc(counter: usize) {
    // SAFETY: every test passes the address of an `AtomicUsize` that outlives its registrations.
    let c = unsafe { &*(counter as *const AtomicUsize) };
    c.fetch_add(1, SeqCst);
}

fn addr(c: &AtomicUsize) -> usize {
    c as *const AtomicUsize as usize
}

#[test]
fn f1_runs_exactly_once_after_done_and_never_before() {
    let clk = clock(0);
    let a = arena::<16>(clk);
    let n = AtomicUsize::new(0);
    let c = a.background().with_cancel().unwrap();
    let child = c.with_cancel().unwrap();
    let reg = child.after_func(inc, addr(&n)).unwrap();
    let other = a.background().with_cancel().unwrap();
    other.cancel();
    let sibling = c.with_cancel().unwrap();
    sibling.cancel();
    assert_eq!(n.load(SeqCst), 0, "never before its context is done");
    c.cancel();
    assert_eq!(n.load(SeqCst), 1);
    child.cancel();
    c.cancel();
    drop(child);
    assert_eq!(n.load(SeqCst), 1, "exactly once");
    assert!(!reg.stop());
    // By the deadline driver as well.
    let d = a.background().with_deadline(10).unwrap();
    let dreg = d.after_func(inc, addr(&n)).unwrap();
    clk.set(10);
    assert_eq!(n.load(SeqCst), 1);
    assert_eq!(a.expire(10), 1);
    assert_eq!(n.load(SeqCst), 2);
    assert_eq!(a.expire(10), 0);
    drop(d);
    assert_eq!(n.load(SeqCst), 2);
    drop(dreg);
}

#[test]
fn f2_already_done_runs_before_after_func_returns() {
    let clk = clock(0);
    let a = arena::<4>(clk);
    let n = AtomicUsize::new(0);
    let c = a.background().with_cancel().unwrap();
    c.cancel();
    let in_use = a.stats().in_use;
    let reg = c.after_func(inc, addr(&n)).unwrap();
    assert_eq!(n.load(SeqCst), 1);
    assert_eq!(a.stats().in_use, in_use, "no slot taken");
    assert!(!reg.stop());
    let raw = a
        .after_func(c.handle(), Callback::new(inc, addr(&n)))
        .unwrap();
    assert_eq!(raw, Handle::DEAD);
    assert_eq!(n.load(SeqCst), 2);
    // Past its deadline, before any check or driver: done, so it runs now.
    let d = a.background().with_deadline(5).unwrap();
    clk.set(5);
    let _r = d.after_func(inc, addr(&n)).unwrap();
    assert_eq!(n.load(SeqCst), 3);
    // Even with the arena full.
    let _fill: Vec<_> = (0..2)
        .map(|_| a.background().with_cancel().unwrap())
        .collect();
    assert_eq!(a.background().with_cancel().err(), Some(Error::Full));
    let _r2 = c.after_func(inc, addr(&n)).unwrap();
    assert_eq!(n.load(SeqCst), 4);
}

// F3: which thread runs it, and what it may call. A static arena so the callback can reach it.
static F3_CLOCK: ManualClock = ManualClock::new(0);
static F3_ARENA: Arena<32> = Arena::with_clock(&F3_CLOCK);
static F3_THREAD: Mutex<Option<ThreadId>> = Mutex::new(None);
static F3_TARGET: AtomicU64 = AtomicU64::new(0);
static F3_OK: AtomicUsize = AtomicUsize::new(0);

fn note_thread(_: usize) {
    *F3_THREAD.lock().unwrap() = Some(std::thread::current().id());
}

/// Calls into the library from inside a callback: cancel, create, register, stop, release.
fn reenter(_: usize) {
    let a: &ArenaView = &F3_ARENA;
    let other = Handle::from_raw(F3_TARGET.load(SeqCst));
    assert_eq!(a.cancel(other, 9), Ok(true));
    let fresh = a.with_cancel(Handle::BACKGROUND).unwrap();
    let under = a.with_value(fresh, 1, 2).unwrap();
    let reg = a.after_func(fresh, Callback::new(note_thread, 0)).unwrap();
    assert!(a.stop(reg));
    assert_eq!(a.expire(0), 0);
    a.release(under).unwrap();
    a.release(fresh).unwrap();
    a.release(other).unwrap();
    F3_OK.fetch_add(1, SeqCst);
}

#[test]
fn f3_runs_in_the_thread_that_made_it_done_and_may_call_anything() {
    let a: &ArenaView = &F3_ARENA;
    let base = a.stats().in_use;
    // The canceler's thread.
    let c = a.background().with_cancel().unwrap();
    let _r = c.after_func(note_thread, 0).unwrap();
    let h = c.handle();
    let canceler = std::thread::spawn(move || {
        F3_ARENA.cancel(h, 0).unwrap();
        std::thread::current().id()
    })
    .join()
    .unwrap();
    assert_eq!(*F3_THREAD.lock().unwrap(), Some(canceler));
    // The driver's thread for an expiry.
    let d = a.background().with_deadline(100).unwrap();
    let _rd = d.after_func(note_thread, 0).unwrap();
    let driver = std::thread::spawn(|| {
        assert_eq!(F3_ARENA.expire(100), 1);
        std::thread::current().id()
    })
    .join()
    .unwrap();
    assert_eq!(*F3_THREAD.lock().unwrap(), Some(driver));
    // No lock held while it runs: it may call every operation.
    let target = a.with_cancel(Handle::BACKGROUND).unwrap();
    F3_TARGET.store(target.to_raw(), SeqCst);
    let e = a.background().with_cancel().unwrap();
    e.after_func(reenter, 0).unwrap().forget();
    e.cancel();
    assert_eq!(F3_OK.load(SeqCst), 1);
    // And at registration (F2) too.
    let target2 = a.with_cancel(Handle::BACKGROUND).unwrap();
    F3_TARGET.store(target2.to_raw(), SeqCst);
    let _now = e.after_func(reenter, 0).unwrap();
    assert_eq!(F3_OK.load(SeqCst), 2);
    drop((c, d, e, _r, _rd, _now));
    assert_eq!(a.stats().in_use, base);
}

#[test]
fn f4_stop_is_true_exactly_when_it_prevented_the_call() {
    let a = arena::<16>(clock(0));
    let n = AtomicUsize::new(0);
    let c = a.background().with_cancel().unwrap();
    let stopped = c.after_func(inc, addr(&n)).unwrap();
    let ran = c.after_func(inc, addr(&n)).unwrap();
    assert!(stopped.stop());
    assert!(!stopped.stop(), "every call after the first is false");
    c.cancel();
    assert_eq!(n.load(SeqCst), 1, "a stopped callback never runs");
    assert!(!ran.stop(), "false once it has run");
    assert!(!ran.stop());
    // Raw handles: a stop handle stays stale once its slot is reused.
    let c2 = a.background().with_cancel().unwrap();
    let reg = a
        .after_func(c2.handle(), Callback::new(inc, addr(&n)))
        .unwrap();
    assert!(a.stop(reg));
    let reuse = c2.with_cancel().unwrap();
    assert!(!a.stop(reg));
    assert_eq!(reuse.err(), Ok(()));
    // A context handle is not a stop handle.
    assert!(!a.stop(c2.handle()));
    assert_eq!(c2.err(), Ok(()));
    // release() of a stop handle behaves as stop (C API contract).
    let reg2 = a
        .after_func(c2.handle(), Callback::new(inc, addr(&n)))
        .unwrap();
    assert_eq!(a.release(reg2), Ok(()));
    assert!(!a.stop(reg2));
    c2.cancel();
    assert_eq!(n.load(SeqCst), 1);
}

static SIBLING_STOP: AtomicU64 = AtomicU64::new(0);
static SIBLING_RESULT: Mutex<Option<bool>> = Mutex::new(None);
static SIB_ARENA: Arena<8> = Arena::new();
static SIB_RAN: AtomicUsize = AtomicUsize::new(0);
fn stop_sibling(_: usize) {
    let r = SIB_ARENA.stop(Handle::from_raw(SIBLING_STOP.load(SeqCst)));
    *SIBLING_RESULT.lock().unwrap() = Some(r);
}
fn sib_ran(_: usize) {
    SIB_RAN.fetch_add(1, SeqCst);
}

/// F4/F5: a callback that stops another registration of the same context: whatever the (unspecified)
/// order, stop answers true exactly when the other one then never runs.
#[test]
fn f4_f5_stop_from_a_sibling_callback_agrees_with_what_ran() {
    let c = SIB_ARENA.background().with_cancel().unwrap();
    let stopper = c.after_func(stop_sibling, 0).unwrap();
    let target = SIB_ARENA
        .after_func(c.handle(), Callback::new(sib_ran, 0))
        .unwrap();
    SIBLING_STOP.store(target.to_raw(), SeqCst);
    c.cancel();
    let stopped = SIBLING_RESULT.lock().unwrap().expect("the stopper ran");
    assert_eq!(
        stopped,
        SIB_RAN.load(SeqCst) == 0,
        "stop = true exactly when it prevented the run"
    );
    assert!(!SIB_ARENA.stop(target));
    drop((stopper, c));
    assert_eq!(SIB_ARENA.stats().in_use, 0);
}

static GATE_RUNNING: AtomicBool = AtomicBool::new(false);
static GATE_RELEASE: AtomicBool = AtomicBool::new(false);
fn wait_at_gate(_: usize) {
    GATE_RUNNING.store(true, SeqCst);
    while !GATE_RELEASE.load(SeqCst) {
        std::thread::yield_now();
    }
}

/// F4: stop never waits for a running callback (if it did, this test would deadlock).
#[test]
fn f4_stop_does_not_wait_for_a_running_callback() {
    let a = arena::<4>(clock(0));
    let c = a.background().with_cancel().unwrap();
    let reg = a
        .after_func(c.handle(), Callback::new(wait_at_gate, 0))
        .unwrap();
    let h = c.handle();
    std::thread::scope(|s| {
        let canceler = s.spawn(|| a.cancel(h, 0));
        while !GATE_RUNNING.load(SeqCst) {
            std::thread::yield_now();
        }
        assert!(!a.stop(reg), "it has started");
        let other = a.background().with_cancel().unwrap();
        assert!(other.cancel(), "the lock is free while a callback runs");
        GATE_RELEASE.store(true, SeqCst);
        assert_eq!(canceler.join().unwrap(), Ok(true));
    });
}

static SET: Mutex<Vec<usize>> = Mutex::new(Vec::new());
fn into_set(n: usize) {
    SET.lock().unwrap().push(n);
}

#[test]
fn f5_several_callbacks_are_independent_order_unspecified() {
    let a = arena::<16>(clock(0));
    let c = a.background().with_cancel().unwrap();
    let regs: Vec<_> = (0..6).map(|i| c.after_func(into_set, i).unwrap()).collect();
    assert!(regs[2].stop());
    assert!(regs[4].stop());
    SET.lock().unwrap().clear();
    c.cancel();
    let got: BTreeSet<usize> = SET.lock().unwrap().iter().copied().collect();
    assert_eq!(got, BTreeSet::from([0, 1, 3, 5]));
    assert_eq!(SET.lock().unwrap().len(), 4);
}

#[test]
fn f6_a_registration_holds_one_slot_until_run_or_stopped() {
    let a = arena::<4>(clock(0));
    let n = AtomicUsize::new(0);
    let c = a.background().with_cancel().unwrap();
    assert_eq!(a.stats().in_use, 1);
    let r1 = c.after_func(inc, addr(&n)).unwrap();
    let r2 = c.after_func(inc, addr(&n)).unwrap();
    assert_eq!(a.stats().in_use, 3);
    assert!(r1.stop());
    assert_eq!(a.stats().in_use, 2);
    let kept = r2.forget();
    let r3 = c.after_func(inc, addr(&n)).unwrap();
    let _r4 = c.after_func(inc, addr(&n)).unwrap();
    assert_eq!(c.after_func(inc, addr(&n)).err(), Some(Error::Full));
    c.cancel();
    assert_eq!(n.load(SeqCst), 3);
    assert_eq!(a.stats().in_use, 1, "run: slots back");
    assert!(!a.stop(kept));
    drop(r3);
}

fn never(_: usize) {
    panic!("F7: must never run");
}

#[test]
fn f7_on_a_context_that_can_never_be_done_it_never_runs() {
    let clk = clock(0);
    let a = arena::<16>(clk);
    let p = a.background().with_deadline(10).unwrap();
    let w = p.without_cancel().unwrap();
    let regs = [
        a.background().after_func(never, 0).unwrap(),
        a.todo().after_func(never, 0).unwrap(),
        w.after_func(never, 0).unwrap(),
    ];
    assert_eq!(a.stats().in_use, 5);
    p.cancel();
    clk.set(100);
    assert_eq!(a.expire(100), 0);
    drop(p);
    drop(w);
    for r in &regs {
        assert!(r.stop(), "the first stop prevents it");
        assert!(!r.stop());
    }
    assert_eq!(a.stats().in_use, 0);
}

/// F6: a registration occupies a slot but is not a context: every context operation on its stop
/// handle is refused, and changes nothing.
#[test]
fn f6_a_stop_handle_is_not_a_context() {
    let a = arena::<4>(clock(0));
    let n = AtomicUsize::new(0);
    let c = a.background().with_cancel().unwrap();
    let reg = a
        .after_func(c.handle(), Callback::new(inc, addr(&n)))
        .unwrap();
    assert_eq!(a.err(reg), Err(Error::NotContext));
    assert!(a.is_done(reg));
    assert_eq!(a.cause(reg), Err(Error::NotContext));
    assert_eq!(a.deadline(reg), Err(Error::NotContext));
    assert_eq!(a.value(reg, 1), Err(Error::NotContext));
    assert_eq!(a.with_cancel(reg), Err(Error::NotContext));
    assert_eq!(a.cancel(reg, 0), Err(Error::NotContext));
    assert_eq!(
        a.after_func(reg, Callback::new(inc, addr(&n))),
        Err(Error::NotContext)
    );
    assert_eq!(a.stats().in_use, 2);
    c.cancel();
    assert_eq!(n.load(SeqCst), 1, "still registered after the refusals");
}
