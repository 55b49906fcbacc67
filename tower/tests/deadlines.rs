//! Deadlines under the layers fire with no timer of the crate's own and no runtime at all: the
//! engine's host driver fires them, and the layers start it. The arenas here are leaked
//! (`Box::leak`), not `static`s, so the engine would not start their driver by itself; and the
//! futures run on a minimal executor of the test's own thread (no tokio runtime exists here,
//! so no tokio timer could fire anything).
//!
//! No timing threshold decides a test: each waits for an outcome, bounded by [`PATIENCE`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use http::{Request, Response};
use stopwire::{Arena, ArenaView, Ctx, Error, ManualClock};
use stopwire_tower::{done, ClientLayer, ContextDone, ServerLayer};
use tower::{Layer, Service};

/// Longest wait for anything that must happen: far above what it takes, so it only stops a
/// broken test from hanging.
const PATIENCE: Duration = Duration::from_secs(30);

/// A fresh `'static` arena on the default (real-time) clock that is not a `static`.
fn leaked() -> &'static ArenaView {
    let arena: &'static Arena<8> = Box::leak(Box::new(Arena::new()));
    arena
}

/// A minimal executor on the test's thread: it polls a future once at first, and then only when
/// the future's waker has been called since the last poll (so a future that nothing wakes is
/// never seen ready, even if a poll would find it so).
struct Executor {
    flag: Arc<Flag>,
    waker: Waker,
}

/// Wakes the test's thread and says it was woken.
struct Flag {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, SeqCst);
        self.thread.unpark();
    }
}

impl Executor {
    fn new() -> Self {
        assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "no tokio runtime here"
        );
        let flag = Arc::new(Flag {
            thread: thread::current(),
            woken: AtomicBool::new(true),
        });
        let waker = Waker::from(Arc::clone(&flag));
        Executor { flag, waker }
    }

    /// Runs `fut` for at most `patience`: its output, or `None` if it was not ready by then.
    fn run<F: Future>(&self, mut fut: Pin<&mut F>, patience: Duration) -> Option<F::Output> {
        let mut cx = Context::from_waker(&self.waker);
        let end = Instant::now() + patience;
        loop {
            if self.flag.woken.swap(false, SeqCst) {
                if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                    return Some(out);
                }
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            thread::park_timeout(end - now);
        }
    }
}

/// A handler that waits for its request's context to be done and answers with the reason.
fn waits_for_its_context() -> impl Service<
    Request<String>,
    Response = Response<Error>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Error>, Infallible>>,
> + Clone {
    tower::service_fn(|req: Request<String>| {
        let ctx = *req
            .extensions()
            .get::<Ctx<'static>>()
            .expect("the layer's context");
        async move { Ok(Response::new(done(ctx).await)) }
    })
}

fn with_timeout(value: &str) -> Request<String> {
    Request::builder()
        .header("grpc-timeout", value)
        .body(String::new())
        .unwrap()
}

#[test]
fn a_request_deadline_fires_without_a_runtime() {
    let arena = leaked();
    let root = arena.background().with_cancel().unwrap();
    let mut svc = ServerLayer::new(*root).layer(waits_for_its_context());
    let start = Instant::now();
    let fut = pin!(svc.call(with_timeout("50m")));
    let res = Executor::new()
        .run(fut, PATIENCE)
        .expect("the handler woke at its deadline")
        .unwrap();
    assert_eq!(res.body().inner(), Some(&Error::DeadlineExceeded));
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "not before it"
    );
    drop(res); // releases the request's context
    assert_eq!(arena.stats().in_use, 1, "the root only");
}

#[test]
fn a_call_ends_at_its_deadline_without_a_runtime() {
    let arena = leaked();
    let ctx = arena.background().with_timeout(50_000).unwrap(); // 50 ms
    let never = tower::service_fn(|_req: Request<String>| {
        std::future::pending::<Result<Response<String>, Infallible>>()
    });
    let mut client = ClientLayer::new().layer(never);
    let mut req = Request::new(String::new());
    req.extensions_mut().insert(*ctx);
    let fut = pin!(client.call(req));
    let got = Executor::new()
        .run(fut, PATIENCE)
        .expect("the call ended at its deadline");
    let err = got.expect_err("the call was dropped");
    assert_eq!(
        err.downcast_ref::<ContextDone>(),
        Some(&ContextDone(Error::DeadlineExceeded))
    );
}

/// A clock without a real-time rate: the driver the layer started fires the deadline when the
/// clock is moved past it.
#[test]
fn a_manual_clock_deadline_fires_when_the_clock_moves() {
    static CLOCK: ManualClock = ManualClock::new(0);
    let arena: &'static Arena<8> = Box::leak(Box::new(Arena::with_clock(&CLOCK)));
    let root = arena.background().with_cancel().unwrap();
    let mut svc = ServerLayer::new(*root).layer(waits_for_its_context());
    let mut fut = pin!(svc.call(with_timeout("1S"))); // 1 000 000 ticks at 1 MHz
    let exec = Executor::new();
    assert!(exec.run(fut.as_mut(), Duration::ZERO).is_none(), "waiting");
    CLOCK.set(999_999);
    CLOCK.set(1_000_000);
    let res = exec
        .run(fut, PATIENCE)
        .expect("woken at the clock's move")
        .unwrap();
    assert_eq!(res.body().inner(), Some(&Error::DeadlineExceeded));
}

/// Told not to drive, the layer leaves a non-`static` arena's deadlines to whoever runs
/// `expire`: the handler stays asleep far past its deadline until then.
#[test]
fn without_driving_the_deadline_waits_for_expire() {
    let arena = leaked();
    let root = arena.background().with_cancel().unwrap();
    let mut svc = ServerLayer::new(*root)
        .drive_deadlines(false)
        .layer(waits_for_its_context());
    let mut fut = pin!(svc.call(with_timeout("20m")));
    let exec = Executor::new();
    assert!(
        exec.run(fut.as_mut(), Duration::from_millis(200)).is_none(),
        "nothing fired the deadline"
    );
    assert_eq!(arena.expire(arena.now()), 1);
    let res = exec.run(fut, PATIENCE).expect("woken by expire").unwrap();
    assert_eq!(res.body().inner(), Some(&Error::DeadlineExceeded));
}

/// A clock at 1 kHz (milliseconds) that says so, moved by hand.
struct MsClock(std::sync::atomic::AtomicU64);
impl stopwire::Clock for MsClock {
    fn now(&self) -> u64 {
        self.0.load(SeqCst)
    }
    fn ticks_per_second(&self) -> Option<u64> {
        Some(1_000)
    }
}

/// Both layers convert `grpc-timeout` at the rate the arena's clock reports when none is set on
/// them: one second is 1 000 ticks of a millisecond clock, not 1 000 000.
#[test]
fn the_layers_convert_at_the_rate_the_clock_reports() {
    static MS: MsClock = MsClock(std::sync::atomic::AtomicU64::new(5_000));
    let arena: &'static Arena<8> = Box::leak(Box::new(Arena::with_clock(&MS)));
    let root = arena.background().with_cancel().unwrap();
    let deadline_of = tower::service_fn(|req: Request<String>| {
        let ctx = *req
            .extensions()
            .get::<Ctx<'static>>()
            .expect("the layer's context");
        std::future::ready(Ok::<_, Infallible>(Response::new(ctx.deadline())))
    });
    let mut svc = ServerLayer::new(*root)
        .drive_deadlines(false)
        .layer(deadline_of);
    let res = Executor::new()
        .run(pin!(svc.call(with_timeout("1S"))), PATIENCE)
        .expect("ready")
        .unwrap();
    assert_eq!(
        res.body().inner(),
        Some(&Ok(Some(6_000))),
        "one second after 5 000 ms"
    );
    drop(res);

    let header_of = tower::service_fn(|req: Request<String>| {
        let sent = req
            .headers()
            .get("grpc-timeout")
            .map(|v| v.to_str().unwrap().to_owned());
        std::future::ready(Ok::<_, Infallible>(Response::new(sent)))
    });
    let mut client = ClientLayer::new().drive_deadlines(false).layer(header_of);
    let ctx = arena.background().with_deadline(5_250).unwrap(); // 250 ms left
    let mut req = Request::new(String::new());
    req.extensions_mut().insert(*ctx);
    let res = Executor::new()
        .run(pin!(client.call(req)), PATIENCE)
        .expect("ready")
        .unwrap();
    let sent = res
        .body()
        .inner()
        .cloned()
        .flatten()
        .expect("a grpc-timeout header");
    let thousand = std::num::NonZeroU64::new(1_000).unwrap();
    assert_eq!(
        stopwire::GrpcTimeout::decode(sent.as_bytes(), thousand),
        Ok(250),
        "{sent}"
    );
}
