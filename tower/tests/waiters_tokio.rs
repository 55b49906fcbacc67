//! stopwire's own waiting on tokio (SPEC N1, N3, N4), in a crate whose dependency tree has tokio
//! and stopwire with feature `async` only — no embassy-time, no timer crate of stopwire's: 1000
//! tasks await `done()` on one context and all complete after one cancel, then after a deadline
//! that fires by itself (the host driver thread). A counting wrapper proves there is no busy
//! polling: each waiting future is polled at most twice (the first `Pending`, then `Ready`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};

use stopwire::{Arena, Ctx, Error};

/// One arena per test (they run in parallel).
static ARENA: Arena<64> = Arena::new();
static TIMED: Arena<64> = Arena::new();
const TASKS: usize = 1000;

/// Counts the polls of the future it wraps.
struct Counted<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicUsize>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

async fn wait_all(ctx: Ctx<'static>, trigger: impl FnOnce()) -> Vec<(Error, usize)> {
    let mut handles = Vec::with_capacity(TASKS);
    let polls: Vec<_> = (0..TASKS).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let started = Arc::new(AtomicUsize::new(0));
    for p in &polls {
        let p = Arc::clone(p);
        let started = Arc::clone(&started);
        handles.push(tokio::spawn(async move {
            started.fetch_add(1, SeqCst);
            Counted {
                inner: Box::pin(ctx.done()),
                polls: p,
            }
            .await
        }));
    }
    // Let every task reach its first `Pending` before the trigger (outcome, not timing: a task
    // that has not polled yet simply completes at its first poll).
    while started.load(SeqCst) < TASKS {
        tokio::task::yield_now().await;
    }
    trigger();
    let mut out = Vec::with_capacity(TASKS);
    for (h, p) in handles.into_iter().zip(&polls) {
        out.push((h.await.unwrap(), p.load(SeqCst)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_n4_a_thousand_tokio_tasks_wake_after_one_cancel_without_busy_polling() {
    let job = ARENA.background().with_cancel().unwrap();
    let view = *job;
    let results = wait_all(view, || {
        job.cancel();
    })
    .await;
    assert!(results.iter().all(|&(why, _)| why == Error::Canceled));
    let most = results.iter().map(|&(_, n)| n).max().unwrap();
    assert!(most <= 2, "a waiting future was polled {most} times");
    drop(job);
    assert_eq!(ARENA.stats().in_use, 0, "waiters take no slot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n1_n3_a_thousand_tokio_tasks_wake_at_a_deadline_nobody_expires() {
    // 50 ms on the default host clock: the arena's driver thread fires it.
    let req = TIMED.background().with_timeout(50_000).unwrap();
    let results = wait_all(*req, || {}).await;
    assert!(results
        .iter()
        .all(|&(why, _)| why == Error::DeadlineExceeded));
    let most = results.iter().map(|&(_, n)| n).max().unwrap();
    assert!(most <= 2, "a waiting future was polled {most} times");
    drop(req);
}
