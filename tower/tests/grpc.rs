//! The layers under real tonic servers and clients on 127.0.0.1: the budget travels through
//! two hops, the tree stops at the client's deadline, a client that goes away and a server that
//! shuts down cancel the work in flight, and the answers the server layer gives by itself.
//!
//! No timing threshold decides a test: the exact figures come from a `ManualClock`, the
//! real-clock tests use budgets far above the work's latency and assert on outcomes and order,
//! and every wait is bounded (a generous limit that fails the test rather than hang it).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::{call, client, ctx_of, handler, serve, status_for, timeout_header};
use stopwire::{Arena, Ctx, Error, GrpcTimeout, ManualClock};
use stopwire_tower::{run_until_done, ServerLayer};
use tokio::sync::mpsc;
use tonic::{Code, Response};

/// Longest wait for anything that must happen: far above what it takes, so it only stops a
/// broken test from hanging.
const PATIENCE: Duration = Duration::from_secs(30);

/// Work that outlasts every budget of these tests.
const FOREVER: Duration = Duration::from_secs(120);

/// What a handler saw, sent when it ends: finished, or dropped by the server.
#[derive(Debug)]
struct Ended {
    who: &'static str,
    header: Option<String>,
    deadline: Option<u64>,
    /// `ctx.err()` at the end.
    outcome: Result<(), Error>,
}

/// Sends an [`Ended`] when dropped: also when the server drops the handler's future.
struct Report {
    who: &'static str,
    ctx: Ctx<'static>,
    header: Option<String>,
    deadline: Option<u64>,
    tx: mpsc::UnboundedSender<Ended>,
}

impl Report {
    fn new<T>(
        who: &'static str,
        req: &tonic::Request<T>,
        tx: &mpsc::UnboundedSender<Ended>,
    ) -> Self {
        let ctx = ctx_of(req);
        Report {
            who,
            ctx,
            header: timeout_header(req),
            deadline: ctx.deadline().unwrap(),
            tx: tx.clone(),
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        let _ = self.tx.send(Ended {
            who: self.who,
            header: self.header.take(),
            deadline: self.deadline,
            outcome: self.ctx.err(),
        });
    }
}

/// The next `n` reports, sorted by `who`.
async fn reports(rx: &mut mpsc::UnboundedReceiver<Ended>, n: usize) -> Vec<Ended> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(PATIENCE, rx.recv()).await {
            Ok(Some(e)) => got.push(e),
            other => panic!("only {} of {n} handlers reported: {other:?}", got.len()),
        }
    }
    got.sort_by_key(|e| e.who);
    got
}

/// Waits until `f()` holds, within [`PATIENCE`].
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let start = tokio::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn decode(header: &Option<String>) -> u64 {
    let h = header.as_deref().expect("a grpc-timeout header");
    GrpcTimeout::decode(h.as_bytes(), GrpcTimeout::STD_CLOCK_RATE).unwrap()
}

/// Client -> A -> B on a manual clock: A gets the client's 300 ms, spends 120 ms, and B gets
/// exactly the 180 ms left, so both contexts end at the same tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hops_carry_the_remaining_budget() {
    static CLOCK: ManualClock = ManualClock::new(0);
    static ARENA: Arena<32> = Arena::with_clock(&CLOCK);
    let (tx, mut rx) = mpsc::unbounded_channel();

    let root_b = ARENA.background().with_cancel().unwrap();
    let layer_b = ServerLayer::new(*root_b).drive_deadlines(false);
    let stats_b = layer_b.stats();
    let txb = tx.clone();
    let b = serve(
        layer_b,
        handler(move |req| {
            let report = Report::new("B", &req, &txb);
            async move {
                drop(report);
                Ok(Response::new("b".to_string()))
            }
        }),
    )
    .await;

    let root_a = ARENA.background().with_cancel().unwrap();
    let layer_a = ServerLayer::new(*root_a).drive_deadlines(false);
    let stats_a = layer_a.stats();
    let b_addr = b.addr;
    let txa = tx.clone();
    let a = serve(
        layer_a,
        handler(move |req| {
            let report = Report::new("A", &req, &txa);
            let ctx = ctx_of(&req);
            async move {
                CLOCK.advance(120_000); // 120 ms of work
                let got = call(&mut client(b_addr), Some(ctx), None, "hop").await;
                drop(report);
                Ok(Response::new(format!("a+{}", got?)))
            }
        }),
    )
    .await;

    let caller = ARENA.background().with_timeout(300_000).unwrap();
    let got = call(&mut client(a.addr), Some(*caller), None, "x").await;
    assert_eq!(got.unwrap(), "a+b");

    let r = reports(&mut rx, 2).await;
    assert_eq!((r[0].who, r[0].header.as_deref()), ("A", Some("300m")));
    assert_eq!((r[1].who, r[1].header.as_deref()), ("B", Some("180m")));
    assert_eq!(r[0].deadline, Some(300_000));
    assert_eq!(r[1].deadline, Some(300_000), "B ends at the tick A ends");
    assert_eq!(caller.deadline(), Ok(Some(300_000)));
    assert!(r.iter().all(|e| e.outcome.is_ok()));

    assert_eq!((stats_a.accepted(), stats_b.accepted()), (1, 1));
    eventually("both requests released", || {
        stats_a.active() == 0 && stats_b.active() == 0
    })
    .await;
    a.stop().await;
    b.stop().await;
    drop(caller);
    drop((root_a, root_b));
    assert_eq!(ARENA.stats().in_use, 0, "no slot leaked");
}

/// The server maximum shortens a longer budget, and gives one to a request that has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_maximum_clamps_the_budget() {
    static CLOCK: ManualClock = ManualClock::new(1_000);
    static ARENA: Arena<16> = Arena::with_clock(&CLOCK);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let root = ARENA.background().with_cancel().unwrap();
    let layer = ServerLayer::new(*root)
        .max_timeout(Duration::from_millis(50))
        .drive_deadlines(false);
    let stats = layer.stats();
    let s = serve(
        layer,
        handler(move |req| {
            drop(Report::new("S", &req, &tx));
            async { Ok(Response::new(String::new())) }
        }),
    )
    .await;
    let mut c = client(s.addr);
    call(&mut c, None, Some(Duration::from_secs(10)), "long")
        .await
        .unwrap();
    call(&mut c, None, Some(Duration::from_millis(20)), "short")
        .await
        .unwrap();
    call(&mut c, None, None, "none").await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(reports(&mut rx, 1).await);
    }
    let deadlines: Vec<_> = got.iter().map(|e| e.deadline).collect();
    assert_eq!(
        deadlines,
        [Some(51_000), Some(21_000), Some(51_000)],
        "10 s clamped to 50 ms, 20 ms kept, none given 50 ms"
    );
    assert_eq!((stats.accepted(), stats.clamped()), (3, 1));
    s.stop().await;
}

/// At the client's deadline every context of the tree is done: the client's call ends with
/// `DEADLINE_EXCEEDED`, and the handlers of A and B, whose work outlasts the budget, end with
/// their contexts done. B was sent a smaller budget than A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_stops_at_the_clients_deadline() {
    static ARENA: Arena<64> = Arena::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let root = ARENA.background().with_cancel().unwrap();

    let txb = tx.clone();
    let b = serve(
        ServerLayer::new(*root),
        handler(move |req| {
            let report = Report::new("B", &req, &txb);
            async move {
                let report = report; // the whole guard, not just its `ctx`
                let slept = run_until_done(report.ctx, tokio::time::sleep(FOREVER)).await;
                slept.map_err(status_for)?;
                Ok(Response::new("slept".to_string()))
            }
        }),
    )
    .await;
    let b_addr = b.addr;
    let txa = tx.clone();
    let a = serve(
        ServerLayer::new(*root),
        handler(move |req| {
            let report = Report::new("A", &req, &txa);
            async move {
                let report = report; // the whole guard, not just its `ctx`
                                     // Some work before the call, so that less is left for B.
                tokio::time::sleep(Duration::from_millis(5)).await;
                let ctx = report.ctx;
                let got = run_until_done(ctx, call(&mut client(b_addr), Some(ctx), None, "b"))
                    .await
                    .map_err(status_for)??;
                Ok(Response::new(got))
            }
        }),
    )
    .await;

    // One second: far above the few milliseconds the calls take on loopback.
    let caller = ARENA.background().with_timeout(1_000_000).unwrap();
    let got = call(&mut client(a.addr), Some(*caller), None, "x").await;
    assert_eq!(got.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(caller.err(), Err(Error::DeadlineExceeded));

    let r = reports(&mut rx, 2).await;
    for e in &r {
        let why = e.outcome.expect_err("the handler's context is done");
        assert!(why.is_done_reason(), "{}: {why:?}", e.who);
    }
    let (for_a, for_b) = (decode(&r[0].header), decode(&r[1].header));
    assert!(for_a <= 1_000_000);
    assert!(for_b < for_a, "B got {for_b} ticks, A {for_a}");
    a.stop().await;
    b.stop().await;
}

/// A client that goes away mid-call (its call is dropped) cancels A's context, which drops A's
/// call to B, which cancels B's context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_going_away_cancels_the_tree() {
    static ARENA: Arena<64> = Arena::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let root = ARENA.background().with_cancel().unwrap();

    let txb = tx.clone();
    let b = serve(
        ServerLayer::new(*root),
        handler(move |req| {
            let report = Report::new("B", &req, &txb);
            let started = started_tx.clone();
            async move {
                let report = report; // the whole guard, not just its `ctx`
                let _ = started.send(());
                run_until_done(report.ctx, tokio::time::sleep(FOREVER))
                    .await
                    .map_err(status_for)?;
                Ok(Response::new("slept".to_string()))
            }
        }),
    )
    .await;
    let b_addr = b.addr;
    let txa = tx.clone();
    let a = serve(
        ServerLayer::new(*root),
        handler(move |req| {
            let report = Report::new("A", &req, &txa);
            async move {
                let report = report; // the whole guard, not just its `ctx`
                let ctx = report.ctx;
                let got = run_until_done(ctx, call(&mut client(b_addr), Some(ctx), None, "b"))
                    .await
                    .map_err(status_for)??;
                Ok(Response::new(got))
            }
        }),
    )
    .await;

    let a_addr = a.addr;
    let caller = tokio::spawn(async move { call(&mut client(a_addr), None, None, "x").await });
    tokio::time::timeout(PATIENCE, started.recv())
        .await
        .expect("B started")
        .unwrap();
    caller.abort(); // the client goes away
    assert!(caller.await.unwrap_err().is_cancelled());

    let r = reports(&mut rx, 2).await;
    assert_eq!(r[0].who, "A");
    assert_eq!(r[0].outcome, Err(Error::Canceled));
    assert_eq!(r[1].who, "B");
    assert_eq!(r[1].outcome, Err(Error::Canceled));
    a.stop().await;
    b.stop().await;
}

/// Canceling the server's root at shutdown cancels the requests in flight; requests that come
/// after it are answered `UNAVAILABLE`; graceful shutdown then completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_requests_in_flight() {
    static ARENA: Arena<16> = Arena::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let root = ARENA.background().with_cancel().unwrap();
    let layer = ServerLayer::new(*root);
    let stats = layer.stats();
    let s = serve(
        layer,
        handler(move |req| {
            let report = Report::new("S", &req, &tx);
            let started = started_tx.clone();
            async move {
                let report = report; // the whole guard, not just its `ctx`
                let _ = started.send(());
                run_until_done(report.ctx, tokio::time::sleep(FOREVER))
                    .await
                    .map_err(status_for)?;
                Ok(Response::new("slept".to_string()))
            }
        }),
    )
    .await;
    let addr = s.addr;
    let in_flight = tokio::spawn(async move { call(&mut client(addr), None, None, "x").await });
    let in_flight_2 = tokio::spawn(async move { call(&mut client(addr), None, None, "y").await });
    for _ in 0..2 {
        tokio::time::timeout(PATIENCE, started.recv())
            .await
            .expect("handler started")
            .unwrap();
    }

    root.cancel(); // shutdown begins
    let r = reports(&mut rx, 2).await;
    assert!(r.iter().all(|e| e.outcome == Err(Error::Canceled)), "{r:?}");
    for t in [in_flight, in_flight_2] {
        assert_eq!(t.await.unwrap().unwrap_err().code(), Code::Cancelled);
    }
    let late = call(&mut client(addr), None, None, "late").await;
    assert_eq!(late.unwrap_err().code(), Code::Unavailable);
    assert_eq!((stats.accepted(), stats.shutting_down()), (2, 1));
    tokio::time::timeout(PATIENCE, s.stop())
        .await
        .expect("graceful shutdown completes");
}

/// A full arena is a server limit: `RESOURCE_EXHAUSTED` at once, counted, the handler never
/// called; the next request after a release is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_arena_answers_resource_exhausted() {
    static ARENA: Arena<3> = Arena::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let root = ARENA.background().with_cancel().unwrap();
    let layer = ServerLayer::new(*root);
    let stats = layer.stats();
    let seen = Arc::clone(&calls);
    let s = serve(
        layer,
        handler(move |_req| {
            seen.fetch_add(1, SeqCst);
            async { Ok(Response::new("served".to_string())) }
        }),
    )
    .await;
    let hog1 = root.with_cancel().unwrap();
    let hog2 = root.with_cancel().unwrap();
    assert_eq!(ARENA.stats().in_use, 3);

    let mut c = client(s.addr);
    let got = call(&mut c, None, Some(Duration::from_secs(5)), "x").await;
    let status = got.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("arena full"), "{status:?}");
    assert_eq!((stats.full(), stats.accepted()), (1, 0));
    assert_eq!(calls.load(SeqCst), 0);

    drop(hog1);
    assert_eq!(call(&mut c, None, None, "x").await.unwrap(), "served");
    assert_eq!((stats.full(), stats.accepted()), (1, 1));
    drop(hog2);
    s.stop().await;
}

/// A malformed `grpc-timeout` is refused with `INTERNAL` (as Go's gRPC server does), counted,
/// and never reaches the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_budget_is_answered_by_the_layer() {
    static ARENA: Arena<8> = Arena::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let root = ARENA.background().with_cancel().unwrap();
    let layer = ServerLayer::new(*root);
    let stats = layer.stats();
    let seen = Arc::clone(&calls);
    let s = serve(
        layer,
        handler(move |_req| {
            seen.fetch_add(1, SeqCst);
            async { Ok(Response::new(String::new())) }
        }),
    )
    .await;
    let mut c = client(s.addr);
    // (A spent budget, `0n`, is tested without tonic in tests/http.rs and the unit tests:
    // tonic's client and server both run their own timer for `grpc-timeout`, and with `0n`
    // either of them may answer `CANCELLED` before the layer does.)
    for value in ["5x", "123456789m", "-5S"] {
        c.ready().await.unwrap();
        let mut req = tonic::Request::new(String::new());
        req.metadata_mut()
            .insert("grpc-timeout", value.parse().unwrap());
        let got = c
            .unary(
                req,
                http::uri::PathAndQuery::from_static(common::PATH),
                common::StrCodec,
            )
            .await;
        assert_eq!(
            got.unwrap_err().code(),
            Code::Internal,
            "grpc-timeout: {value}"
        );
    }
    assert_eq!(stats.bad_timeout(), 3);
    assert_eq!(calls.load(SeqCst), 0);
    s.stop().await;
}

/// A call made under a context that is already done is refused by the client layer at once,
/// without reaching the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_under_a_done_context_is_refused_at_once() {
    static ARENA: Arena<8> = Arena::new();
    let root = ARENA.background().with_cancel().unwrap();
    let layer = ServerLayer::new(*root);
    let stats = layer.stats();
    let s = serve(
        layer,
        handler(|_req| async { Ok(Response::new(String::new())) }),
    )
    .await;
    let mut c = client(s.addr);
    let canceled = ARENA.background().with_cancel().unwrap();
    canceled.cancel();
    let got = call(&mut c, Some(*canceled), None, "x").await;
    assert_eq!(got.unwrap_err().code(), Code::Cancelled);
    let expired = ARENA.background().with_timeout(0).unwrap();
    let got = call(&mut c, Some(*expired), None, "x").await;
    assert_eq!(got.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(stats.accepted(), 0, "nothing reached the server");
    s.stop().await;
}
