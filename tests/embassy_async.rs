//! The async layer (feature `embassy`) on the host: `Ctx::done`, `run_until_done`,
//! `run_with_timeout` and `EmbassyClock`, under embassy-executor (std platform), under tokio, and
//! polled by hand. Time is embassy-time's mock driver: it moves only when a test advances it.
//!
//! Run with `cargo test --features embassy --test embassy_async`.
#![cfg(feature = "embassy")]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use embassy_time::{Duration, MockDriver};
use stopwire::{Arena, Ctx, EmbassyClock, Error};

/// Tests that advance the mock clock run one at a time (the clock is process-wide); the others
/// only use deadlines far beyond anything advanced here.
fn time_lock() -> MutexGuard<'static, ()> {
    static TIME: Mutex<()> = Mutex::new(());
    TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counting_waker() -> (Arc<Count>, Waker) {
    let c = Arc::new(Count::default());
    (c.clone(), Waker::from(c))
}

fn poll_once<F: Future>(f: std::pin::Pin<&mut F>, w: &Waker) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(w))
}

const FAR: u64 = 1 << 50;

#[test]
fn c2_cancel_wakes_a_polled_done_future_once_and_it_reports_canceled() {
    static ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
    let ctx = ARENA.background().with_cancel().unwrap();
    let (count, waker) = counting_waker();
    let mut done = pin!(ctx.done());
    assert_eq!(poll_once(done.as_mut(), &waker), Poll::Pending);
    assert_eq!(
        count.0.load(SeqCst),
        0,
        "a registered waiter never busy-polls"
    );
    ctx.cancel();
    assert_eq!(count.0.load(SeqCst), 1, "the canceler woke the task");
    assert_eq!(
        poll_once(done.as_mut(), &waker),
        Poll::Ready(Error::Canceled)
    );
    // N5: a waiter takes no slot: only the context is in use.
    assert_eq!(ARENA.stats().in_use, 1);
}

#[test]
fn n5_a_waiting_future_takes_no_slot_and_a_dropped_one_is_never_woken() {
    static ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
    let ctx = ARENA.background().with_cancel().unwrap();
    let (count, waker) = counting_waker();
    {
        let mut done = pin!(ctx.done());
        assert_eq!(poll_once(done.as_mut(), &waker), Poll::Pending);
        assert_eq!(
            ARENA.stats().in_use,
            1,
            "the waiter node lives in the future"
        );
    }
    assert_eq!(ARENA.stats().in_use, 1);
    ctx.cancel();
    assert_eq!(count.0.load(SeqCst), 0, "a dropped future is never woken");
}

#[test]
fn c7_done_is_ready_at_once_for_a_done_context_and_takes_nothing() {
    static ARENA: Arena<4> = Arena::with_clock(&EmbassyClock);
    let ctx = ARENA.background().with_cancel().unwrap();
    ctx.cancel();
    let (_, waker) = counting_waker();
    let mut done = pin!(ctx.done());
    assert_eq!(
        poll_once(done.as_mut(), &waker),
        Poll::Ready(Error::Canceled)
    );
    assert_eq!(ARENA.stats().in_use, 1);
}

#[test]
fn a4_n6_release_wakes_a_waiter_with_stale() {
    static ARENA: Arena<4> = Arena::with_clock(&EmbassyClock);
    let owned = ARENA.background().with_cancel().unwrap();
    let view = *owned;
    let (count, waker) = counting_waker();
    let mut done = pin!(view.done());
    assert_eq!(poll_once(done.as_mut(), &waker), Poll::Pending);
    drop(owned);
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(poll_once(done.as_mut(), &waker), Poll::Ready(Error::Stale));
}

#[test]
fn r1_a_root_never_completes_and_takes_nothing() {
    static ARENA: Arena<4> = Arena::with_clock(&EmbassyClock);
    let (count, waker) = counting_waker();
    let mut done = pin!(ARENA.background().done());
    assert_eq!(poll_once(done.as_mut(), &waker), Poll::Pending);
    assert_eq!((ARENA.stats().in_use, count.0.load(SeqCst)), (0, 0));
}

#[test]
fn n3_a_full_arena_does_not_stop_a_future_from_waiting_without_busy_polling() {
    static ARENA: Arena<1> = Arena::with_clock(&EmbassyClock);
    let ctx = ARENA.background().with_cancel().unwrap();
    let (c1, w1) = counting_waker();
    let (c2, w2) = counting_waker();
    let mut first = pin!(ctx.done());
    let mut second = pin!(ctx.done());
    // Waiters take no slot: a full arena (1 slot, in use) does not matter.
    assert_eq!(poll_once(first.as_mut(), &w1), Poll::Pending);
    assert_eq!(poll_once(second.as_mut(), &w2), Poll::Pending);
    assert_eq!(poll_once(second.as_mut(), &w2), Poll::Pending);
    assert_eq!(
        (c1.0.load(SeqCst), c2.0.load(SeqCst)),
        (0, 0),
        "N3: no busy polling"
    );
    ctx.cancel();
    assert_eq!(
        (c1.0.load(SeqCst), c2.0.load(SeqCst)),
        (1, 1),
        "N4: both woken once"
    );
    assert_eq!(
        poll_once(second.as_mut(), &w2),
        Poll::Ready(Error::Canceled)
    );
    assert_eq!(poll_once(first.as_mut(), &w1), Poll::Ready(Error::Canceled));
}

#[test]
fn n1_d5_the_embassy_driver_wakes_the_waiter_and_runs_callbacks_at_the_deadline() {
    let _t = time_lock();
    static ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
    static SIBLING_RAN: AtomicBool = AtomicBool::new(false);
    fn note(_: usize) {
        SIBLING_RAN.store(true, SeqCst);
    }
    let req = ARENA.background().with_timeout(1_000).unwrap();
    let sibling = ARENA.background().with_timeout(500).unwrap();
    let _reg = sibling.after_func(note, 0).unwrap();
    let (count, waker) = counting_waker();
    let (dcount, dwaker) = counting_waker();
    let mut driver = pin!(ARENA.embassy_driver());
    let mut done = pin!(req.done());
    assert_eq!(poll_once(done.as_mut(), &waker), Poll::Pending);
    assert!(poll_once(driver.as_mut(), &dwaker).is_pending());
    MockDriver::get().advance(Duration::from_ticks(499));
    assert_eq!(
        dcount.0.load(SeqCst),
        0,
        "the driver sleeps until the earliest deadline"
    );
    MockDriver::get().advance(Duration::from_ticks(1));
    assert!(dcount.0.load(SeqCst) >= 1, "its timer woke it");
    assert!(poll_once(driver.as_mut(), &dwaker).is_pending());
    assert!(
        SIBLING_RAN.load(SeqCst),
        "the driver ran the sibling's callback (F3)"
    );
    MockDriver::get().advance(Duration::from_ticks(499));
    assert!(poll_once(driver.as_mut(), &dwaker).is_pending());
    assert_eq!(count.0.load(SeqCst), 0, "not woken before the deadline");
    MockDriver::get().advance(Duration::from_ticks(1));
    assert!(poll_once(driver.as_mut(), &dwaker).is_pending());
    assert_eq!(
        count.0.load(SeqCst),
        1,
        "woken once, at the deadline, by the driver"
    );
    assert_eq!(
        poll_once(done.as_mut(), &waker),
        Poll::Ready(Error::DeadlineExceeded)
    );
    assert_eq!(sibling.err(), Err(Error::DeadlineExceeded));
}

#[test]
fn d2_a_child_waits_for_its_parents_earlier_deadline() {
    let _t = time_lock();
    static ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
    let parent = ARENA.background().with_timeout(300).unwrap();
    let child = parent.with_cancel().unwrap();
    let (count, waker) = counting_waker();
    let (_, dwaker) = counting_waker();
    let mut driver = pin!(ARENA.embassy_driver());
    let mut done = pin!(child.done());
    assert_eq!(poll_once(done.as_mut(), &waker), Poll::Pending);
    assert!(poll_once(driver.as_mut(), &dwaker).is_pending());
    MockDriver::get().advance(Duration::from_ticks(300));
    assert!(poll_once(driver.as_mut(), &dwaker).is_pending());
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(
        poll_once(done.as_mut(), &waker),
        Poll::Ready(Error::DeadlineExceeded)
    );
}

/// Sets a flag when dropped: shows when `run_until_done` drops the work.
struct DropFlag(&'static AtomicBool);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

#[test]
fn c2_run_until_done_drops_the_work_when_canceled_and_returns_the_reason() {
    static ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
    static DROPPED: AtomicBool = AtomicBool::new(false);
    let ctx = ARENA.background().with_cancel().unwrap();
    let work = async {
        let _guard = DropFlag(&DROPPED);
        std::future::pending::<u32>().await
    };
    let (_, waker) = counting_waker();
    let mut run = pin!(ctx.run_until_done(work));
    assert_eq!(poll_once(run.as_mut(), &waker), Poll::Pending);
    assert!(!DROPPED.load(SeqCst));
    ctx.cancel_with_cause(std::num::NonZeroU32::new(7).unwrap());
    assert_eq!(
        poll_once(run.as_mut(), &waker),
        Poll::Ready(Err(Error::Canceled))
    );
    assert!(
        DROPPED.load(SeqCst),
        "the work is dropped when the result is returned"
    );
    assert_eq!(ctx.cause().unwrap().map(|c| c.get()), Some(7));
}

#[test]
fn c1_run_until_done_returns_the_output_of_work_that_finishes() {
    static ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
    let ctx = ARENA.background().with_timeout(FAR).unwrap();
    let (_, waker) = counting_waker();
    {
        let mut run = pin!(ctx.run_until_done(async { 42 }));
        assert_eq!(poll_once(run.as_mut(), &waker), Poll::Ready(Ok(42)));
    }
    assert_eq!(ARENA.stats().in_use, 1, "the registration is gone");
}

#[test]
fn c7_run_until_done_never_polls_work_under_a_done_context() {
    static ARENA: Arena<4> = Arena::with_clock(&EmbassyClock);
    static POLLED: AtomicBool = AtomicBool::new(false);
    let ctx = ARENA.background().with_cancel().unwrap();
    ctx.cancel();
    let (_, waker) = counting_waker();
    let mut run = pin!(ctx.run_until_done(async {
        POLLED.store(true, SeqCst);
    }));
    assert_eq!(
        poll_once(run.as_mut(), &waker),
        Poll::Ready(Err(Error::Canceled))
    );
    assert!(!POLLED.load(SeqCst));
}

#[test]
fn d1_run_with_timeout_gives_deadline_exceeded_and_releases_its_child() {
    let _t = time_lock();
    static ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
    let req = ARENA.background().with_cancel().unwrap();
    let (count, waker) = counting_waker();
    let (_, dwaker) = counting_waker();
    let mut driver = pin!(ARENA.embassy_driver());
    let mut run = pin!(req.run_with_timeout(50, std::future::pending::<()>()));
    assert_eq!(poll_once(run.as_mut(), &waker), Poll::Pending);
    assert_eq!(
        ARENA.stats().in_use,
        2,
        "request and timeout child: waiting takes no slot"
    );
    assert!(poll_once(driver.as_mut(), &dwaker).is_pending());
    MockDriver::get().advance(Duration::from_ticks(50));
    assert!(poll_once(driver.as_mut(), &dwaker).is_pending());
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(
        poll_once(run.as_mut(), &waker),
        Poll::Ready(Err(Error::DeadlineExceeded))
    );
    assert_eq!(ARENA.stats().in_use, 1, "only the request is left");
    assert_eq!(req.err(), Ok(()), "the parent is not affected (C8)");
}

#[test]
fn a3_run_with_timeout_reports_full_without_polling() {
    static ARENA: Arena<1> = Arena::with_clock(&EmbassyClock);
    let req = ARENA.background().with_cancel().unwrap();
    let (_, waker) = counting_waker();
    let mut run = pin!(req.run_with_timeout(50, async { 1 }));
    assert_eq!(
        poll_once(run.as_mut(), &waker),
        Poll::Ready(Err(Error::Full))
    );
}

#[test]
fn t4_embassy_clock_reads_embassy_ticks() {
    let _t = time_lock();
    static ARENA: Arena<1> = Arena::with_clock(&EmbassyClock);
    let before = embassy_time::Instant::now().as_ticks();
    assert_eq!(ARENA.now(), before);
    MockDriver::get().advance(Duration::from_ticks(5));
    assert_eq!(ARENA.now(), before + 5);
}

// ---- tokio: the same future on another executor -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c10_tokio_tasks_awaiting_children_all_wake_when_the_root_is_canceled() {
    const TASKS: usize = 64;
    static ARENA: Arena<{ 2 * 64 + 1 }> = Arena::with_clock(&EmbassyClock);
    // Fewer cells than tasks: the rest busy-poll (W4) and must still see the cancel.
    let root = ARENA.background().with_cancel().unwrap();
    let root_ctx: Ctx<'static> = *root;
    let mut joins = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(TASKS);
    for _ in 0..TASKS {
        let tx = ready_tx.clone();
        joins.push(tokio::spawn(async move {
            let child = root_ctx.with_cancel().unwrap();
            let mut done = pin!(child.done());
            // Poll once so the waiter is registered before the cancel.
            let first = std::future::poll_fn(|cx| Poll::Ready(done.as_mut().poll(cx))).await;
            assert!(first.is_pending());
            tx.send(()).await.unwrap();
            done.await
        }));
    }
    for _ in 0..TASKS {
        ready_rx.recv().await.unwrap();
    }
    std::thread::spawn(move || {
        root.cancel();
        drop(root);
    })
    .join()
    .unwrap();
    for j in joins {
        assert_eq!(j.await.unwrap(), Error::Canceled);
    }
    assert_eq!(ARENA.stats().in_use, 0, "A6: every slot is back");
}

#[tokio::test]
async fn c2_tokio_run_until_done_stops_a_sleeping_task() {
    static ARENA: Arena<4> = Arena::with_clock(&EmbassyClock);
    let ctx = ARENA.background().with_cancel().unwrap();
    let view = *ctx;
    let task = tokio::spawn(async move { view.run_until_done(std::future::pending::<()>()).await });
    tokio::task::yield_now().await;
    ctx.cancel();
    assert_eq!(task.await.unwrap(), Err(Error::Canceled));
}

// ---- embassy-executor (std platform): real tasks canceled from another thread ---------------

static EX_ARENA: Arena<16> = Arena::with_clock(&EmbassyClock);
static EX_RESULTS: Mutex<Vec<(usize, Result<u32, Error>)>> = Mutex::new(Vec::new());
static EX_STARTED: AtomicUsize = AtomicUsize::new(0);

#[embassy_executor::task(pool_size = 3)]
async fn worker(id: usize, ctx: Ctx<'static>) {
    EX_STARTED.fetch_add(1, SeqCst);
    let r = ctx
        .done()
        .run(async move {
            if id == 0 {
                return 10;
            }
            std::future::pending::<u32>().await
        })
        .await;
    EX_RESULTS.lock().unwrap().push((id, r));
}

#[test]
fn c3_embassy_executor_tasks_are_canceled_from_another_thread() {
    let root = EX_ARENA.background().with_cancel().unwrap();
    let a = root.with_cancel().unwrap();
    let b = root.with_cancel().unwrap();
    let c = root.with_cancel().unwrap();
    let (va, vb, vc) = (*a, *b, *c);
    let executor = Box::leak(Box::new(embassy_executor::Executor::new()));
    let canceler = std::thread::spawn(move || {
        while EX_STARTED.load(SeqCst) < 3 {
            std::thread::yield_now();
        }
        // b alone, then the root takes c with it.
        b.cancel();
        root.cancel();
        drop((a, b, c, root));
    });
    executor.run_until(
        |spawner| {
            spawner.spawn(worker(0, va).unwrap());
            spawner.spawn(worker(1, vb).unwrap());
            spawner.spawn(worker(2, vc).unwrap());
        },
        || EX_RESULTS.lock().unwrap().len() == 3,
    );
    canceler.join().unwrap();
    let mut r = EX_RESULTS.lock().unwrap().clone();
    r.sort_by_key(|(id, _)| *id);
    assert_eq!(r[0], (0, Ok(10)));
    assert!(matches!(r[1], (1, Err(Error::Canceled | Error::Stale))));
    assert!(matches!(r[2], (2, Err(Error::Canceled | Error::Stale))));
    assert_eq!(EX_ARENA.stats().in_use, 0);
}

static DL_ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
static DL_RESULT: Mutex<Option<Result<(), Error>>> = Mutex::new(None);
static DL_WAITING: AtomicBool = AtomicBool::new(false);

#[embassy_executor::task]
async fn dl_driver() {
    match DL_ARENA.embassy_driver().await {}
}

#[embassy_executor::task]
async fn sleeper(ctx: Ctx<'static>) {
    DL_WAITING.store(true, SeqCst);
    let r = ctx.run_until_done(std::future::pending::<()>()).await;
    *DL_RESULT.lock().unwrap() = Some(r);
}

#[test]
fn d4_an_embassy_executor_task_is_woken_by_its_deadline_alone() {
    let _t = time_lock();
    let req = DL_ARENA.background().with_timeout(250).unwrap();
    let view = *req;
    let executor = Box::leak(Box::new(embassy_executor::Executor::new()));
    // Time moves only here, from another thread: nothing else can wake the task.
    let clock = std::thread::spawn(|| {
        while !DL_WAITING.load(SeqCst) {
            std::thread::yield_now();
        }
        while DL_RESULT.lock().unwrap().is_none() {
            MockDriver::get().advance(Duration::from_ticks(50));
            std::thread::yield_now();
        }
    });
    executor.run_until(
        |spawner| {
            spawner.spawn(dl_driver().unwrap());
            spawner.spawn(sleeper(view).unwrap());
        },
        || DL_RESULT.lock().unwrap().is_some(),
    );
    clock.join().unwrap();
    assert_eq!(
        *DL_RESULT.lock().unwrap(),
        Some(Err(Error::DeadlineExceeded))
    );
    assert_eq!(req.err(), Err(Error::DeadlineExceeded));
    drop(req);
    assert_eq!(DL_ARENA.stats().in_use, 0);
}

// ---- N3: a thousand embassy tasks on one context, no busy polling -----------------------------

const N3_TASKS: usize = 1000;
static N3_ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);
static N3_POLLS: [AtomicUsize; N3_TASKS] = [const { AtomicUsize::new(0) }; N3_TASKS];
static N3_STARTED: AtomicUsize = AtomicUsize::new(0);
static N3_DONE: AtomicUsize = AtomicUsize::new(0);

/// Counts the polls of the future it wraps.
struct Counted<F> {
    inner: F,
    polls: &'static AtomicUsize,
}

impl<F: Future + Unpin> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, SeqCst);
        std::pin::Pin::new(&mut self.inner).poll(cx)
    }
}

#[embassy_executor::task(pool_size = 1000)]
async fn n3_waiter(i: usize, ctx: Ctx<'static>) {
    N3_STARTED.fetch_add(1, SeqCst);
    let why = Counted {
        inner: Box::pin(ctx.done()),
        polls: &N3_POLLS[i],
    }
    .await;
    assert_eq!(why, Error::Canceled);
    N3_DONE.fetch_add(1, SeqCst);
}

#[test]
fn n3_n4_a_thousand_embassy_tasks_wake_after_one_cancel_without_busy_polling() {
    let job = N3_ARENA.background().with_cancel().unwrap();
    let view = *job;
    let executor = Box::leak(Box::new(embassy_executor::Executor::new()));
    let canceler = std::thread::spawn(move || {
        while N3_STARTED.load(SeqCst) < N3_TASKS {
            std::thread::yield_now();
        }
        job.cancel();
        job // released after every task has seen Canceled
    });
    executor.run_until(
        |spawner| {
            for i in 0..N3_TASKS {
                spawner.spawn(n3_waiter(i, view).unwrap());
            }
        },
        || N3_DONE.load(SeqCst) == N3_TASKS,
    );
    drop(canceler.join().unwrap());
    let most = N3_POLLS.iter().map(|p| p.load(SeqCst)).max().unwrap();
    assert!(most <= 2, "a waiting future was polled {most} times");
    assert_eq!(N3_ARENA.stats().in_use, 0);
}
