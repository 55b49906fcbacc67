//! SPEC A1: the core never allocates. A counting global allocator, armed per thread, watches every
//! operation: creation of every kind, cancel, cause, release, checks, values, callbacks
//! (registration, run, stop), the deadline driver, and the refusals.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use stopwire::{Arena, Callback, Error, Handle, ManualClock};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

/// Runs `f` with the counter armed on this thread and returns how many heap calls it made.
fn heap_calls(f: impl FnOnce()) -> usize {
    counting_alloc::heap_calls(f).0
}

static CLOCK: ManualClock = ManualClock::new(0);
static ARENA: Arena<16> = Arena::with_clock(&CLOCK);
static RAN: AtomicUsize = AtomicUsize::new(0);
fn ran(n: usize) {
    RAN.fetch_add(n, SeqCst);
}

const K: NonZeroUsize = NonZeroUsize::new(7).unwrap();
const CAUSE: NonZeroU32 = NonZeroU32::new(42).unwrap();

#[test]
fn a1_no_operation_allocates() {
    // Warm-up outside the armed window: the first StdClock reading, thread-local setup of the
    // test harness, and so on are not the library's.
    let _ = ARENA.stats();
    let calls = heap_calls(|| {
        let a = &ARENA;
        let bg = a.background();
        let todo = a.todo();
        // Every creation kind, Rust API.
        let c = bg.with_cancel().unwrap();
        let d = c.with_deadline(100).unwrap();
        let dc = c.with_deadline_cause(100, CAUSE).unwrap();
        let t = d.with_timeout(50).unwrap();
        let tc = todo.with_timeout_cause(50, CAUSE).unwrap();
        let v = t.with_value(K, 9).unwrap();
        let w = v.without_cancel().unwrap();
        // Raw API.
        let r = a.with_cancel(Handle::BACKGROUND).unwrap();
        let rv = a.with_value(r, 1, 2).unwrap();
        assert_eq!(a.with_value(r, 0, 2), Err(Error::ZeroKey));
        // Checks.
        for x in [&c, &d, &dc, &t, &tc, &v, &w] {
            assert_eq!(x.err(), Ok(()));
            assert!(!x.is_done());
            assert_eq!(x.cause(), Err(Error::NotDone));
            let _ = x.deadline().unwrap();
            let _ = x.value(K).unwrap();
        }
        assert_eq!(a.value(rv, 1), Ok(Some(2)));
        // Callbacks: registered, stopped, run by cancel, run at registration, forgotten.
        let reg = v.after_func(ran, 1).unwrap();
        let stopped = t.after_func(ran, 100).unwrap();
        assert!(stopped.stop());
        let raw_reg = a.after_func(r, Callback::new(ran, 1)).unwrap();
        // Cancel with and without a cause, cause reads.
        assert!(t.cancel_with_cause(CAUSE));
        assert_eq!(v.cause(), Ok(Some(CAUSE)));
        assert!(!reg.stop());
        assert_eq!(a.cancel(r, 0), Ok(true));
        assert!(!a.stop(raw_reg));
        let now = v.after_func(ran, 1).unwrap();
        drop(now);
        // Deadline driver, next deadline, clock checks of an expired context.
        CLOCK.set(100);
        assert!(d.is_done());
        assert_eq!(dc.err(), Err(Error::DeadlineExceeded));
        assert_eq!(a.next_deadline(), Some(50));
        assert_eq!(a.expire(100), 3);
        assert_eq!(dc.cause(), Ok(Some(CAUSE)));
        // Refusals: full, stale, root, detached.
        let fill = [
            bg.with_cancel().unwrap(),
            bg.with_cancel().unwrap(),
            bg.with_cancel().unwrap(),
            bg.with_cancel().unwrap(),
            bg.with_cancel().unwrap(),
            bg.with_cancel().unwrap(),
            bg.with_cancel().unwrap(),
        ];
        assert_eq!(bg.with_cancel().err(), Some(Error::Full));
        assert_eq!(a.cancel(Handle::BACKGROUND, 0), Err(Error::Root));
        assert_eq!(a.cancel(w.handle(), 0), Err(Error::Detached));
        drop(fill);
        // Release by drop and by the raw API; the stale handle after it.
        let stale = c.handle();
        drop((reg, stopped, c, d, dc, t, tc, v, w));
        assert_eq!(a.err(stale), Err(Error::Stale));
        a.release(rv).unwrap();
        a.release(r).unwrap();
        let _ = a.stats();
        let _ = Error::Canceled.as_str();
    });
    assert_eq!(calls, 0, "the core touched the heap {calls} times");
    assert_eq!(ARENA.stats().in_use, 0);
    assert_eq!(RAN.load(SeqCst), 3);
    // The counter works: a Box counts.
    assert!(heap_calls(|| drop(Box::new(1u8))) >= 1);
}
