//! Being woken (SPEC N1-N6), and a panicking callback losing nothing (F1, A6). Outcomes only: a
//! test waits for an event (a blocked `wait`, a channel) and never decides by elapsed time; the
//! virtual-clock tests move a `ManualClock` and the arena's driver reacts.
#![cfg(feature = "std")]

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use stopwire::{Arena, ArenaView, Callback, Error, Handle, ManualClock};

/// A `'static` arena on its own manual clock, driven by the host driver thread (N1).
fn driven<const N: usize>(start: u64) -> (&'static ManualClock, &'static Arena<N>) {
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new(start)));
    let arena: &'static Arena<N> = Box::leak(Box::new(Arena::with_clock(clock)));
    arena.drive();
    (clock, arena)
}

/// Senders of fired callbacks, keyed by the callback's data.
static FIRED: Mutex<Option<mpsc::Sender<usize>>> = Mutex::new(None);
fn fired(n: usize) {
    if let Some(tx) = FIRED.lock().unwrap().as_ref() {
        let _ = tx.send(n);
    }
}
/// Serialises the tests that share `FIRED`.
static FIRED_TESTS: Mutex<()> = Mutex::new(());

#[test]
fn n1_an_after_func_and_a_waiter_run_at_a_deadline_on_the_real_clock_with_no_expire_call() {
    let _g = FIRED_TESTS.lock().unwrap();
    let (tx, rx) = mpsc::channel();
    *FIRED.lock().unwrap() = Some(tx);
    // A `static` on the default clock: the driver starts by itself at the first deadline.
    static ARENA: Arena<8> = Arena::new();
    let ctx = ARENA.background().with_timeout(20_000).unwrap(); // 20 ms
    let reg = ctx.after_func(fired, 1).unwrap();
    assert_eq!(ctx.wait(), Error::DeadlineExceeded, "the driver expired it");
    assert_eq!(
        rx.recv().unwrap(),
        1,
        "the callback ran in the driver thread"
    );
    assert!(!reg.stop());
    *FIRED.lock().unwrap() = None;
}

#[test]
fn n1_t5_the_driver_reacts_to_virtual_time_in_deadline_order() {
    let _g = FIRED_TESTS.lock().unwrap();
    let (tx, rx) = mpsc::channel();
    *FIRED.lock().unwrap() = Some(tx);
    let (clock, arena) = driven::<16>(0);
    let late = arena.background().with_deadline(300).unwrap();
    let early = arena.background().with_deadline(100).unwrap();
    let canceled = arena.background().with_deadline(200).unwrap();
    late.after_func(fired, 300).unwrap().forget();
    early.after_func(fired, 100).unwrap().forget();
    canceled.after_func(fired, 200).unwrap().forget();
    // Canceled before it fires (D7): its callback runs now, by the cancel, not by the driver.
    canceled.cancel();
    assert_eq!(rx.recv().unwrap(), 200);
    // Created while the driver sleeps until 100: an earlier deadline wakes it (N1).
    let earliest = arena.background().with_deadline(50).unwrap();
    earliest.after_func(fired, 50).unwrap().forget();
    clock.set(60);
    assert_eq!(earliest.wait(), Error::DeadlineExceeded);
    assert_eq!(rx.recv().unwrap(), 50);
    clock.set(1_000);
    assert_eq!(late.wait(), Error::DeadlineExceeded);
    let mut rest = [rx.recv().unwrap(), rx.recv().unwrap()];
    rest.sort_unstable();
    assert_eq!(rest, [100, 300]);
    assert_eq!(early.err(), Err(Error::DeadlineExceeded));
    assert_eq!(arena.next_deadline(), None);
    drop((late, early, canceled, earliest));
    assert_eq!(arena.stats().in_use, 0);
    *FIRED.lock().unwrap() = None;
}

#[test]
fn n1_a6_releasing_the_last_deadline_while_the_driver_sleeps_leaves_nothing() {
    let (clock, arena) = driven::<4>(0);
    let d = arena.background().with_deadline(100).unwrap();
    drop(d); // released while the driver sleeps until 100
    assert_eq!(arena.next_deadline(), None);
    clock.set(500);
    // A later deadline still fires: the driver survived the empty queue.
    let e = arena.background().with_deadline(600).unwrap();
    clock.set(600);
    assert_eq!(e.wait(), Error::DeadlineExceeded);
    drop(e);
    assert_eq!(arena.stats().in_use, 0);
}

#[test]
fn n2_n4_sixty_four_threads_blocked_on_one_context_all_return_after_one_cancel() {
    static ARENA: Arena<8> = Arena::new();
    let job = ARENA.background().with_cancel().unwrap();
    let view = *job;
    let woke = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..64 {
            s.spawn(|| {
                assert_eq!(view.wait(), Error::Canceled);
                woke.fetch_add(1, SeqCst);
            });
        }
        job.cancel();
    });
    assert_eq!(woke.load(SeqCst), 64);
}

#[test]
fn n2_sleep_is_ok_after_its_duration_and_err_when_canceled_midway() {
    static ARENA: Arena<8> = Arena::new();
    let job = ARENA.background().with_cancel().unwrap();
    assert_eq!(job.sleep(Duration::from_millis(1)), Ok(()));
    let view = *job;
    std::thread::scope(|s| {
        let sleeper = s.spawn(move || view.sleep(Duration::from_secs(3600)));
        job.cancel();
        assert_eq!(sleeper.join().unwrap(), Err(Error::Canceled));
    });
}

#[test]
fn n2_a_blocking_wait_drives_its_own_deadline_on_an_arena_no_driver_serves() {
    // On the stack: never driven behind the program's back; the waiter expires it itself.
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new(0)));
    let arena: Arena<4> = Arena::with_clock(clock);
    let d = arena.background().with_deadline(10).unwrap();
    let view = *d;
    std::thread::scope(|s| {
        let w = s.spawn(move || view.wait());
        clock.set(10); // wakes virtual-time sleepers
        assert_eq!(w.join().unwrap(), Error::DeadlineExceeded);
    });
    assert_eq!(arena.next_deadline(), None, "the waiter ran expire");
}

#[test]
fn n5_n6_a_waiter_on_a_value_layer_returns_when_the_layer_is_released() {
    static ARENA: Arena<8> = Arena::new();
    let key = NonZeroUsize::new(1).unwrap();
    let layer = ARENA.background().with_value(key, 7).unwrap();
    let view = *layer;
    std::thread::scope(|s| {
        let w = s.spawn(move || view.wait());
        // Whether the waiter blocked before the release or not, the answer is the same.
        drop(layer);
        assert_eq!(w.join().unwrap(), Error::Stale);
    });
    // N5: a waiter that gives up leaves nothing behind.
    let job = ARENA.background().with_cancel().unwrap();
    assert_eq!(job.wait_timeout(Duration::from_millis(1)), None);
    drop(job);
    assert_eq!(ARENA.stats().in_use, 0);
}

static RAN: AtomicUsize = AtomicUsize::new(0);
fn counts(_: usize) {
    RAN.fetch_add(1, SeqCst);
}
fn panics(_: usize) {
    panic!("a user callback panics");
}

#[test]
fn f1_a6_a_panicking_callback_loses_nothing_else_and_the_panic_reaches_the_caller() {
    static ARENA: Arena<16> = Arena::new();
    let a: &ArenaView = &ARENA;
    RAN.store(0, SeqCst);
    let root = a.with_cancel(Handle::BACKGROUND).unwrap();
    let child = a.with_cancel(root).unwrap();
    a.after_func(root, Callback::new(counts, 0)).unwrap();
    a.after_func(child, Callback::new(panics, 0)).unwrap();
    a.after_func(child, Callback::new(counts, 0)).unwrap();
    a.after_func(root, Callback::new(counts, 0)).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.cancel(root, 0)));
    assert!(caught.is_err(), "the panic reaches the canceler");
    assert_eq!(RAN.load(SeqCst), 3, "every other callback ran");
    assert_eq!(a.err(child), Err(Error::Canceled), "the walk finished (C2)");
    a.release(child).unwrap();
    a.release(root).unwrap();
    assert_eq!(a.stats().in_use, 0, "every slot came back");
    assert_eq!(a.audit(), Ok(()));
}
