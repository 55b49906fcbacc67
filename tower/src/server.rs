//! The server layer: one context per request, under the server's root.

use core::fmt;
use core::future::Future;
use core::num::NonZeroU64;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use core::task::{ready, Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use bytes::Buf;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use stopwire::{Ctx, Error, GrpcTimeout, GrpcTimeoutError, OwnedCtx};
use tower::{Layer, Service};

use crate::driver::{duration_to_ticks, rate_of};
use crate::grpc::{is_grpc, Refusal};

/// A tower layer that gives each request a context: a child of `root` with the deadline of
/// its `grpc-timeout` header, clamped by [`ServerLayer::max_timeout`] (Go's gRPC server
/// context).
///
/// The handler finds it in the request's extensions as a [`Ctx<'static>`]
/// (`req.extensions().get::<stopwire::Ctx<'static>>()`; in tonic `request.extensions()`; in
/// axum the `ReqCtx` extractor, feature `axum`). The layer owns it and releases it, which cancels it
/// and everything made under it, when the response body is finished, or when the response
/// future or body is dropped: hyper drops them when the client resets the stream or closes the
/// connection, so a client that goes away cancels the work done for it. Canceling `root` (at
/// graceful shutdown) cancels every request in flight at once.
///
/// Requests the layer answers itself, without calling the service (trailers-only gRPC status
/// for gRPC requests, the HTTP status for others), each counted in [`ServerStats`]:
///
/// | when | gRPC status | HTTP | counter |
/// |---|---|---|---|
/// | no arena slot is free | `RESOURCE_EXHAUSTED` (8) | 503 | [`ServerStats::full`] |
/// | `grpc-timeout` is malformed | `INTERNAL` (13) | 400 | [`ServerStats::bad_timeout`] |
/// | the budget is already spent (`0n`, or a root past its deadline) | `DEADLINE_EXCEEDED` (4) | 504 | [`ServerStats::expired`] |
/// | `root` is canceled or released (shutting down) | `UNAVAILABLE` (14) | 503 | [`ServerStats::shutting_down`] |
///
/// A `grpc-timeout` too long for 64-bit ticks at the layer's rate means no deadline from the
/// header (the server maximum still applies). Nothing in the layer panics.
///
/// ```
/// use std::time::Duration;
/// use stopwire::Arena;
/// use stopwire_tower::ServerLayer;
///
/// static ARENA: Arena<1024> = Arena::new();
/// let root = ARENA.background().with_cancel().unwrap();
/// let layer = ServerLayer::new(*root).max_timeout(Duration::from_secs(10));
/// let stats = layer.stats();
/// // tonic::transport::Server::builder().layer(layer).add_service(...)
/// // ... and at shutdown: root.cancel();
/// assert_eq!(stats.full(), 0);
/// ```
#[derive(Clone)]
pub struct ServerLayer {
    root: Ctx<'static>,
    rate: Option<NonZeroU64>,
    max: Option<Duration>,
    drive: bool,
    stats: Arc<ServerStats>,
}

impl fmt::Debug for ServerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerLayer")
            .field("root", &self.root)
            .field("rate", &self.rate)
            .field("max", &self.max)
            .field("drive", &self.drive)
            .finish_non_exhaustive()
    }
}

impl ServerLayer {
    /// Requests become children of `root` (usually a `with_cancel` child of a `static` arena's
    /// background, canceled at shutdown). `grpc-timeout` is converted at the rate the arena's
    /// clock reports ([`stopwire::Clock::ticks_per_second`]), or 1 MHz
    /// ([`GrpcTimeout::STD_CLOCK_RATE`]) for a clock that reports none, unless [`Self::rate`]
    /// says otherwise; no server maximum.
    pub fn new(root: Ctx<'static>) -> Self {
        ServerLayer {
            root,
            rate: None,
            max: None,
            drive: true,
            stats: Arc::default(),
        }
    }

    /// The rate of the arena's clock in ticks per second, over the one the clock reports (for a
    /// clock that reports none, or wrongly).
    pub fn rate(mut self, ticks_per_second: NonZeroU64) -> Self {
        self.rate = Some(ticks_per_second);
        self
    }

    /// The longest budget a request gets: requests with a longer `grpc-timeout`, or none, get
    /// this one.
    pub fn max_timeout(mut self, max: Duration) -> Self {
        self.max = Some(max);
        self
    }

    /// Whether the layer starts the root's arena's host deadline driver
    /// ([`stopwire::ArenaView::drive`]) when it builds its service (default: yes; see the crate
    /// docs). Off, the arena's deadlines fire as the engine alone decides: by themselves for an
    /// arena in a `static` on a real-time clock, otherwise only at
    /// [`stopwire::ArenaView::expire`] (a test that expires a manual clock's deadlines itself).
    pub fn drive_deadlines(mut self, on: bool) -> Self {
        self.drive = on;
        self
    }

    /// The counters, shared by every service this layer makes.
    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.stats)
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = Server<S>;

    fn layer(&self, inner: S) -> Server<S> {
        if self.drive {
            // The requests' deadlines fire by themselves from now on (idempotent).
            self.root.arena().drive();
        }
        let rate = rate_of(self.rate, self.root.arena());
        Server {
            inner,
            root: self.root,
            rate,
            max_ticks: self.max.map(|d| duration_to_ticks(d, rate)),
            stats: Arc::clone(&self.stats),
        }
    }
}

/// What the server layer did, as counters (monotonic, except the gauge [`ServerStats::active`]).
/// Relaxed atomics: read them from a metrics exporter at any time.
#[derive(Debug, Default)]
pub struct ServerStats {
    accepted: AtomicU64,
    active: AtomicU64,
    full: AtomicU64,
    bad_timeout: AtomicU64,
    expired: AtomicU64,
    shutting_down: AtomicU64,
    clamped: AtomicU64,
}

impl ServerStats {
    /// Requests passed to the service with a context.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Relaxed)
    }
    /// Requests whose context is held now (in the service, or streaming their response).
    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }
    /// Requests refused with `RESOURCE_EXHAUSTED` / 503: the arena was full.
    pub fn full(&self) -> u64 {
        self.full.load(Relaxed)
    }
    /// Requests refused with `INTERNAL` / 400: malformed `grpc-timeout`.
    pub fn bad_timeout(&self) -> u64 {
        self.bad_timeout.load(Relaxed)
    }
    /// Requests refused with `DEADLINE_EXCEEDED` / 504: their budget was spent on arrival.
    pub fn expired(&self) -> u64 {
        self.expired.load(Relaxed)
    }
    /// Requests refused with `UNAVAILABLE` / 503: the root was canceled or released.
    pub fn shutting_down(&self) -> u64 {
        self.shutting_down.load(Relaxed)
    }
    /// Accepted requests whose budget the server maximum shortened.
    pub fn clamped(&self) -> u64 {
        self.clamped.load(Relaxed)
    }
}

/// The service of [`ServerLayer`].
#[derive(Clone)]
pub struct Server<S> {
    inner: S,
    root: Ctx<'static>,
    rate: NonZeroU64,
    max_ticks: Option<u64>,
    stats: Arc<ServerStats>,
}

impl<S> fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("root", &self.root)
            .field("max_ticks", &self.max_ticks)
            .finish_non_exhaustive()
    }
}

impl<S> Server<S> {
    /// The counters of the layer that made this service.
    pub fn stats(&self) -> Arc<ServerStats> {
        Arc::clone(&self.stats)
    }

    /// The request's context, or the answer to give instead.
    fn open<B>(&self, req: &Request<B>) -> Result<OwnedCtx<'static>, Refusal> {
        let sent = match req.headers().get(GrpcTimeout::HEADER) {
            None => None,
            Some(v) => match GrpcTimeout::decode(v.as_bytes(), self.rate) {
                Ok(ticks) => Some(ticks),
                Err(GrpcTimeoutError::Overflow) => None,
                Err(_) => {
                    self.stats.bad_timeout.fetch_add(1, Relaxed);
                    return Err(Refusal::BAD_TIMEOUT);
                }
            },
        };
        let budget = match (sent, self.max_ticks) {
            (Some(s), Some(m)) if m < s => {
                self.stats.clamped.fetch_add(1, Relaxed);
                Some(m)
            }
            (s, m) => s.or(m),
        };
        let child = match budget {
            Some(ticks) => self.root.with_timeout(ticks),
            None => self.root.with_cancel(),
        };
        let ctx = match child {
            Ok(ctx) => ctx,
            Err(Error::Full) => {
                self.stats.full.fetch_add(1, Relaxed);
                return Err(Refusal::FULL);
            }
            Err(_) => {
                self.stats.shutting_down.fetch_add(1, Relaxed);
                return Err(Refusal::SHUTTING_DOWN);
            }
        };
        match ctx.err() {
            Ok(()) => Ok(ctx),
            Err(Error::DeadlineExceeded) => {
                self.stats.expired.fetch_add(1, Relaxed);
                Err(Refusal::EXPIRED)
            }
            Err(_) => {
                self.stats.shutting_down.fetch_add(1, Relaxed);
                Err(Refusal::SHUTTING_DOWN)
            }
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Server<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body,
{
    type Response = Response<ServerBody<ResBody>>;
    type Error = S::Error;
    type Future = ServerFuture<S::Future, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let ctx = match self.open(&req) {
            Ok(ctx) => ctx,
            Err(refusal) => {
                let grpc = is_grpc(req.headers());
                return ServerFuture {
                    state: State::Refused {
                        answer: Some((refusal, grpc)),
                        request: Some(req.into_body()),
                        drained: 0,
                    },
                };
            }
        };
        req.extensions_mut().insert(ctx.ctx());
        self.stats.accepted.fetch_add(1, Relaxed);
        self.stats.active.fetch_add(1, Relaxed);
        let scope = Scope {
            ctx,
            stats: Arc::clone(&self.stats),
        };
        ServerFuture {
            state: State::Running {
                inner: self.inner.call(req),
                scope: Some(scope),
            },
        }
    }
}

/// What a request holds while it is served: its context, counted in [`ServerStats::active`].
struct Scope {
    ctx: OwnedCtx<'static>,
    stats: Arc<ServerStats>,
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.stats.active.fetch_sub(1, Relaxed);
        // `ctx` is released after this: the context and its subtree are canceled.
    }
}

pin_project! {
    /// The response future of [`Server`]: the service's, under the request's context. Dropping
    /// it (the client went away) cancels the context, then drops the service's future, then
    /// releases the context: the handler's own drop code sees its context done.
    pub struct ServerFuture<F, ReqBody> {
        #[pin]
        state: State<F, ReqBody>,
    }

    impl<F, ReqBody> PinnedDrop for ServerFuture<F, ReqBody> {
        fn drop(this: Pin<&mut Self>) {
            if let StateProj::Running { scope: Some(s), .. } = this.project().state.project() {
                s.ctx.cancel();
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ReqBody> {
        // The request body is read to its end (up to `DRAIN_LIMIT` bytes) before the answer:
        // an HTTP/2 server that answers while the client still sends resets the stream, and a
        // client may then see the reset instead of the answer.
        Refused { answer: Option<(Refusal, bool)>, #[pin] request: Option<ReqBody>, drained: usize },
        Running { #[pin] inner: F, scope: Option<Scope> },
    }
}

impl<F, ReqBody> fmt::Debug for ServerFuture<F, ReqBody> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerFuture")
    }
}

impl<F, ReqBody, B, E> Future for ServerFuture<F, ReqBody>
where
    F: Future<Output = Result<Response<B>, E>>,
    ReqBody: Body,
{
    type Output = Result<Response<ServerBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Refused {
                answer,
                mut request,
                drained,
            } => {
                if let Some(body) = request.as_mut().as_pin_mut() {
                    if !drain(body, drained, cx).is_ready() {
                        return Poll::Pending;
                    }
                    request.set(None);
                }
                let (refusal, grpc) = answer.take().unwrap_or((Refusal::SHUTTING_DOWN, false));
                Poll::Ready(Ok(refusal.response(grpc, ServerBody::empty())))
            }
            StateProj::Running { inner, scope } => {
                let res = ready!(inner.poll(cx));
                let scope = scope.take();
                Poll::Ready(res.map(|r| r.map(|b| ServerBody::new(b, scope))))
            }
        }
    }
}

/// How much of a refused request's body is read before answering it anyway.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Reads and discards `body` until its end, an error, or [`DRAIN_LIMIT`] bytes in all.
fn drain<B: Body>(mut body: Pin<&mut B>, drained: &mut usize, cx: &mut Context<'_>) -> Poll<()> {
    while !body.is_end_stream() && *drained <= DRAIN_LIMIT {
        match ready!(body.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => {
                let n = frame.data_ref().map_or(0, Buf::remaining);
                *drained = drained.saturating_add(n.max(1));
            }
            None | Some(Err(_)) => break,
        }
    }
    Poll::Ready(())
}

pin_project! {
    /// The response body of [`Server`]: the service's body, holding the request's context
    /// until the body is finished (its trailers or its end) or dropped, so that a streaming
    /// response keeps its context while it streams. Empty for a request the layer refused.
    pub struct ServerBody<B> {
        #[pin]
        inner: Option<B>,
        scope: Option<Scope>,
    }

    impl<B> PinnedDrop for ServerBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before its end (the client went away): cancel before the body goes.
            if let Some(s) = this.project().scope {
                s.ctx.cancel();
            }
        }
    }
}

impl<B> fmt::Debug for ServerBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBody")
            .field("refused", &self.inner.is_none())
            .field("holds_ctx", &self.scope.is_some())
            .finish()
    }
}

impl<B> ServerBody<B> {
    fn new(inner: B, scope: Option<Scope>) -> Self {
        ServerBody {
            inner: Some(inner),
            scope,
        }
    }

    fn empty() -> Self {
        ServerBody {
            inner: None,
            scope: None,
        }
    }

    /// The service's body; `None` when the layer answered the request itself.
    pub fn inner(&self) -> Option<&B> {
        self.inner.as_ref()
    }

    /// The request's context while the body holds it.
    pub fn ctx(&self) -> Option<Ctx<'static>> {
        self.scope.as_ref().map(|s| s.ctx.ctx())
    }
}

impl<B: Body> Body for ServerBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(inner.poll_frame(cx));
        let last = match &frame {
            None | Some(Err(_)) => true,
            Some(Ok(f)) => f.is_trailers(),
        };
        if last {
            // Finished: release the request's context now, not when hyper drops the body.
            *this.scope = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stopwire::Arena;

    struct Guard(Ctx<'static>, std::sync::mpsc::Sender<Result<(), Error>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.1.send(self.0.err());
        }
    }

    #[test]
    fn dropping_the_future_cancels_before_the_handler_goes() {
        static ARENA: Arena<4> = Arena::new();
        let root = ARENA.background().with_cancel().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let svc = tower::service_fn(move |req: Request<String>| {
            let g = Guard(*req.extensions().get::<Ctx<'static>>().unwrap(), tx.clone());
            async move {
                let _g = g;
                core::future::pending::<()>().await;
                Ok::<_, core::convert::Infallible>(Response::new(()))
            }
        });
        let mut s = ServerLayer::new(*root).drive_deadlines(false).layer(svc);
        let mut fut = Box::pin(s.call(Request::new(String::new())));
        let waker = core::task::Waker::noop();
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(waker))
            .is_pending());
        drop(fut);
        assert_eq!(rx.recv().unwrap(), Err(Error::Canceled));
        assert_eq!(ARENA.stats().in_use, 1);
    }

    /// One request through a layer over a service that answers 200; the answer is ready at the
    /// first poll in every case here.
    fn answer(
        layer: &ServerLayer,
        grpc: bool,
        timeout: Option<&str>,
    ) -> Response<ServerBody<String>> {
        let svc = tower::service_fn(|_req: Request<String>| async {
            Ok::<_, core::convert::Infallible>(Response::new(String::from("served")))
        });
        let mut s = layer.clone().drive_deadlines(false).layer(svc);
        let mut req = Request::builder();
        if grpc {
            req = req.header("content-type", "application/grpc");
        }
        if let Some(t) = timeout {
            req = req.header("grpc-timeout", t);
        }
        let mut fut = Box::pin(s.call(req.body(String::new()).unwrap()));
        match fut
            .as_mut()
            .poll(&mut Context::from_waker(core::task::Waker::noop()))
        {
            Poll::Ready(Ok(res)) => res,
            other => panic!("not answered at once: {:?}", other.map(|r| r.map(|_| ()))),
        }
    }

    fn grpc_status<B>(res: &Response<B>) -> Option<&str> {
        res.headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap())
    }

    #[test]
    fn refusals_have_the_documented_answers_and_counters() {
        static ARENA: Arena<2> = Arena::new();
        let root = ARENA.background().with_cancel().unwrap();
        let layer = ServerLayer::new(*root);
        let stats = layer.stats();

        let ok = answer(&layer, true, Some("1S"));
        assert_eq!(
            (ok.status(), grpc_status(&ok)),
            (http::StatusCode::OK, None)
        );
        assert_eq!(ok.body().inner().map(String::as_str), Some("served"));
        drop(ok);

        for (grpc, timeout, code, http) in [
            (true, Some("1x"), Some("13"), 200),
            (false, Some("1x"), None, 400),
            (true, Some("0n"), Some("4"), 200),
            (false, Some("0u"), None, 504),
        ] {
            let res = answer(&layer, grpc, timeout);
            assert_eq!(grpc_status(&res), code, "{timeout:?}");
            assert_eq!(res.status().as_u16(), http, "{timeout:?}");
            assert!(res.body().inner().is_none());
        }
        assert_eq!((stats.bad_timeout(), stats.expired()), (2, 2));

        let hog = root.with_cancel().unwrap(); // the arena is full now
        for (grpc, code, http) in [(true, Some("8"), 200), (false, None, 503)] {
            let res = answer(&layer, grpc, None);
            assert_eq!((grpc_status(&res), res.status().as_u16()), (code, http));
        }
        assert_eq!(stats.full(), 2);
        drop(hog);

        root.cancel(); // shutting down
        for (grpc, code, http) in [(true, Some("14"), 200), (false, None, 503)] {
            let res = answer(&layer, grpc, Some("1S"));
            assert_eq!((grpc_status(&res), res.status().as_u16()), (code, http));
        }
        drop(root); // released: still shutting down
        let res = answer(&layer, true, None);
        assert_eq!(grpc_status(&res), Some("14"));
        assert_eq!((stats.shutting_down(), stats.accepted()), (3, 1));
        assert_eq!(stats.active(), 0);
        assert_eq!(ARENA.stats().in_use, 0);
    }

    #[test]
    fn a_budget_beyond_the_clock_means_no_deadline_from_the_header() {
        static ARENA: Arena<2> = Arena::new();
        let layer = ServerLayer::new(ARENA.background()).rate(NonZeroU64::new(u64::MAX).unwrap());
        let res = answer(&layer, true, Some("99999999H"));
        assert_eq!(grpc_status(&res), None);
        assert_eq!(res.body().ctx().unwrap().deadline(), Ok(None));
    }
}
