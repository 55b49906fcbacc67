//! SPEC A1 for the benchmark workloads (`benches/context.rs`, docs/benchmark-ids.md):
//! a counting global allocator, armed per thread, watches one run of each stopwire workload, on an
//! arena with the default host clock (`StdClock`) and the default features, as the benches run
//! them. Storage that the harness itself needs (the vector holding a tree's handles, the threads)
//! is made before the counter is armed, as the benches do outside the timed part.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Barrier;
use std::thread;

use stopwire::{Arena, OwnedCtx};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::heap_calls;

/// Asserts that `f` made no heap call, naming the workload.
fn assert_no_heap<R>(workload: &str, f: impl FnOnce() -> R) -> R {
    let (calls, r) = heap_calls(f);
    assert_eq!(calls, 0, "{workload}: {calls} heap calls");
    r
}

const HOUR: u64 = 3_600_000_000;

#[cfg(feature = "std")]
static ARENA: Arena<1024> = Arena::new();
/// Without `std` there is no default clock (D1): a manual one.
#[cfg(not(feature = "std"))]
static CLOCK: stopwire::ManualClock = stopwire::ManualClock::new(0);
#[cfg(not(feature = "std"))]
static ARENA: Arena<1024> = Arena::with_clock(&CLOCK);

fn tree(fanout: usize, hold: &mut Vec<OwnedCtx<'static>>) {
    let root = ARENA.background().with_cancel().unwrap();
    for _ in 0..fanout {
        let child = root.with_cancel().unwrap();
        for _ in 0..fanout {
            hold.push(child.with_cancel().unwrap());
        }
        hold.push(child);
    }
    assert!(root.cancel());
    assert!(hold.iter().all(|c| c.is_done()));
    drop(root);
    hold.clear();
}

#[test]
fn a1_every_benchmark_workload_runs_without_allocating() {
    // Warm-up outside the armed window: the first StdClock reading sets its epoch, and the first
    // deadline starts the arena's driver thread (once per arena, N1).
    let _ = ARENA.now();
    drop(ARENA.background().with_timeout(HOUR).unwrap());
    let mut hold: Vec<OwnedCtx<'static>> = Vec::with_capacity(1024);
    let key = NonZeroUsize::new(1).unwrap();

    assert_no_heap("check/depth1, check/depth10, check/deadline", || {
        let d1 = ARENA.background().with_cancel().unwrap();
        assert!(!black_box(*d1).is_done());
        let mut chain = [const { None::<OwnedCtx<'static>> }; 10];
        let mut parent = ARENA.background();
        for link in chain.iter_mut() {
            let c = parent.with_cancel().unwrap();
            parent = *c;
            *link = Some(c);
        }
        assert!(!black_box(parent).is_done());
        let dl = ARENA.background().with_timeout(HOUR).unwrap();
        assert!(!black_box(*dl).is_done());
    });

    let parent = ARENA.background().with_cancel().unwrap();
    assert_no_heap("create_cancel/cancel", || {
        let child = parent.with_cancel().unwrap();
        assert!(child.cancel());
        drop(child);
    });
    assert_no_heap("create_cancel/timeout", || {
        let child = parent.with_timeout(HOUR).unwrap();
        assert!(child.cancel());
        drop(child);
    });

    assert_no_heap("tree/111", || tree(10, &mut hold));
    assert_no_heap("tree/931", || tree(30, &mut hold));

    assert_no_heap("value/depth10", || {
        let mut layers = [const { None::<OwnedCtx<'static>> }; 11];
        let mut up = ARENA.background();
        for (k, layer) in (1..).zip(layers.iter_mut()) {
            let v = up
                .with_value(NonZeroUsize::new(k).unwrap(), k * 10)
                .unwrap();
            up = *v;
            *layer = Some(v);
        }
        assert_eq!(black_box(up).value(key), Ok(Some(10)));
    });

    // Two threads under one parent; each arms its own counter once both are running.
    let p = *parent;
    let barrier = Barrier::new(2);
    let calls: Vec<usize> = thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    heap_calls(|| {
                        for _ in 0..1000 {
                            let child = p.with_cancel().unwrap();
                            child.cancel();
                            drop(child);
                        }
                    })
                    .0
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(
        calls,
        [0, 0],
        "contended/create_cancel: heap calls per thread"
    );
    drop(parent);
    assert_eq!(ARENA.stats().in_use, 0, "every workload released its slots");
    // The counter works: a Box counts.
    assert!(heap_calls(|| drop(Box::new(1u8))).0 >= 1);
}

/// `wake/1000` in miniature: futures awaiting `done()` on children of one root, polled by hand
/// with a waker that needs no heap, woken by the cancel of the root.
#[cfg(feature = "embassy")]
#[test]
fn a1_waiting_for_done_and_waking_does_not_allocate() {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use stopwire::Error;

    static WAKE: Arena<8> = Arena::new();
    let _ = WAKE.now();
    let mut cx = Context::from_waker(Waker::noop());
    assert_no_heap("wake/1000", || {
        let root = WAKE.background().with_cancel().unwrap();
        let a = root.with_cancel().unwrap();
        let b = root.with_cancel().unwrap();
        let mut fa = pin!(a.done());
        let mut fb = pin!(b.done());
        assert_eq!(fa.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(fb.as_mut().poll(&mut cx), Poll::Pending);
        assert!(root.cancel());
        assert_eq!(fa.as_mut().poll(&mut cx), Poll::Ready(Error::Canceled));
        assert_eq!(fb.as_mut().poll(&mut cx), Poll::Ready(Error::Canceled));
    });
    assert_eq!(WAKE.stats().in_use, 0);
}
