//! `grpc/propagate`: what the layers add to one request that makes one outgoing call, against
//! the same tower services without them, in the same run (`grpc/baseline`).
//!
//! Both variants take an incoming request carrying `grpc-timeout: 300m`, run a handler that
//! builds one outgoing request and calls a downstream service that answers at once (no
//! network: the figure is the layers' own cost), and drop the responses. With the layers, that
//! adds: decoding the header, creating the request's context (and arming its deadline timer),
//! putting it in the extensions, encoding the remaining budget into the outgoing request,
//! registering the call's wait on the context, and releasing both. Futures are polled by hand
//! with a no-op waker inside a tokio runtime (whose timer the layers use), so no executor
//! scheduling is measured.
//!
//! Run: `cargo bench -p stopwire-tower --bench propagate`.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use stopwire::{Arena, Ctx};
use stopwire_tower::{ClientLayer, ServerLayer};
use tower::{Layer, Service};

static ARENA: Arena<64> = Arena::new();

/// Polls a future that must be ready at once.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the benchmark's services answer at once"),
    }
}

fn incoming() -> Request<String> {
    Request::builder()
        .uri("/demo.Work/Do")
        .header("content-type", "application/grpc")
        .header("grpc-timeout", "300m")
        .body(String::new())
        .unwrap()
}

fn outgoing(ctx: Option<Ctx<'static>>) -> Request<String> {
    let mut req = Request::builder()
        .uri("http://127.0.0.1:50052/demo.Work/Do")
        .header("content-type", "application/grpc")
        .body(String::new())
        .unwrap();
    if let Some(ctx) = ctx {
        req.extensions_mut().insert(ctx);
    }
    req
}

/// The downstream service: answers at once.
fn downstream() -> impl Service<
    Request<String>,
    Response = Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<String>, Infallible>>,
> + Clone {
    tower::service_fn(|_req: Request<String>| async { Ok(Response::new(String::new())) })
}

fn propagate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let root = ARENA.background().with_cancel().unwrap();
    let mut g = c.benchmark_group("grpc");

    // Without the layers: the handler calls downstream directly.
    let mut plain = tower::service_fn(|req: Request<String>| {
        let mut down = downstream();
        async move {
            black_box(req.headers());
            let res = down.call(outgoing(None)).await?;
            Ok::<_, Infallible>(Response::new(res.into_body()))
        }
    });
    g.bench_function("baseline", |b| {
        b.iter(|| {
            let res = now(plain.call(incoming())).unwrap();
            black_box(res);
        })
    });

    // With them: the server layer in front, the client layer in front of downstream.
    let handler = tower::service_fn(|req: Request<String>| {
        let ctx = req.extensions().get::<Ctx<'static>>().copied();
        let mut down = ClientLayer::new().layer(downstream());
        async move {
            let res = down.call(outgoing(ctx)).await?;
            black_box(res.headers());
            Ok::<_, tower::BoxError>(Response::new(String::new()))
        }
    });
    let mut layered = ServerLayer::new(*root).layer(handler);
    g.bench_function("propagate", |b| {
        b.iter(|| {
            let res = now(layered.call(incoming())).unwrap();
            black_box(res);
        })
    });
    g.finish();
    drop(layered);
    drop(root);
    assert_eq!(ARENA.stats().in_use, 0, "every context was released");
}

criterion_group!(benches, propagate);
criterion_main!(benches);
