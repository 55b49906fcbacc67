//! The client layer: outgoing calls made under a context carry its remaining budget, and end
//! when it is done.

use core::fmt;
use core::future::Future;
use core::num::NonZeroU64;
use core::pin::Pin;
use core::task::{ready, Context, Poll};

use http::{HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use stopwire::{Ctx, Done, GrpcTimeout};
use tower::{BoxError, Layer, Service};

use crate::grpc::{is_grpc, Refusal};

/// A tower layer for clients: a request whose extensions hold a [`Ctx<'static>`] is made under
/// that context (Go's `grpc.Invoke(ctx, ...)`).
///
/// - When the context is already done, the call is not made: a gRPC request (content type
///   `application/grpc`) gets a trailers-only answer with `DEADLINE_EXCEEDED` or `CANCELLED`
///   at once, as a Go client does, which tonic reports as that [`tonic` `Status`]; any other
///   request fails with a [`ContextDone`] error.
/// - Otherwise, when the context has a deadline, the request's `grpc-timeout` is set to what
///   remains of it ([`GrpcTimeout::remaining`]; a shorter value already there is kept).
/// - When the context becomes done while the call is in flight, the call is dropped at once:
///   before the response headers, the answer is the one above; while the body streams, a gRPC
///   body ends with `grpc-status` trailers for the reason and any other body ends with a
///   [`ContextDone`] error. Dropping the call resets the HTTP/2 stream, so the server's own
///   request context is canceled in turn (its [`crate::ServerLayer`] sees the client go away).
///
/// Requests without a context pass through untouched.
///
/// [`tonic` `Status`]: https://docs.rs/tonic/latest/tonic/struct.Status.html
///
/// ```
/// use stopwire::Ctx;
/// use stopwire_tower::ClientLayer;
/// use tower::ServiceBuilder;
///
/// # fn make<C>(channel: C, ctx: Ctx<'static>) {
/// // let channel = tonic::transport::Channel::from_static("http://127.0.0.1:50051").connect_lazy();
/// let svc = ServiceBuilder::new().layer(ClientLayer::new()).service(channel);
/// // let mut grpc = tonic::client::Grpc::new(svc);
/// // let mut req = tonic::Request::new(msg);
/// // req.extensions_mut().insert(ctx); // the handler's context: the budget goes along
/// # let _ = (svc, ctx);
/// # }
/// ```
#[derive(Clone, Copy)]
pub struct ClientLayer {
    rate: Option<NonZeroU64>,
    drive: bool,
    waiters: fn(Ctx<'static>) -> Done<'static>,
}

impl fmt::Debug for ClientLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientLayer")
            .field("rate", &self.rate)
            .field("drive", &self.drive)
            .finish_non_exhaustive()
    }
}

impl Default for ClientLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientLayer {
    /// A layer that converts `grpc-timeout` at the rate of each call's arena clock
    /// ([`stopwire::Clock::ticks_per_second`]), or 1 MHz ([`GrpcTimeout::STD_CLOCK_RATE`]) for a
    /// clock that reports none, waiting with waiters (no slot, no registry).
    pub fn new() -> Self {
        ClientLayer {
            rate: None,
            drive: true,
            waiters: crate::done,
        }
    }

    /// The rate of the arenas' clock in ticks per second, over the one the clock reports (for a
    /// clock that reports none, or wrongly).
    pub fn rate(mut self, ticks_per_second: NonZeroU64) -> Self {
        self.rate = Some(ticks_per_second);
        self
    }

    /// Whether a call starts its context's arena's host deadline driver
    /// ([`stopwire::ArenaView::drive`]) if it has none (default: yes; see the crate docs). Off,
    /// the arena's deadlines fire as the engine alone decides, as for
    /// [`crate::ServerLayer::drive_deadlines`].
    pub fn drive_deadlines(mut self, on: bool) -> Self {
        self.drive = on;
        self
    }

    /// How a call waits for its context: for instance `|ctx| ctx.done()` with a
    /// registry of one's own. The default is [`crate::done`].
    pub fn waiters(mut self, done: fn(Ctx<'static>) -> Done<'static>) -> Self {
        self.waiters = done;
        self
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = Client<S>;

    fn layer(&self, inner: S) -> Client<S> {
        Client { inner, cfg: *self }
    }
}

/// The service of [`ClientLayer`].
#[derive(Clone, Debug)]
pub struct Client<S> {
    inner: S,
    cfg: ClientLayer,
}

/// The error of a call refused or dropped because its context is done: the context's reason
/// (`Canceled`, `DeadlineExceeded`, or `Stale` when it was released).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextDone(pub stopwire::Error);

impl fmt::Display for ContextDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call ended: {}", self.0)
    }
}

impl core::error::Error for ContextDone {}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Client<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<CallBody<ResBody>>;
    type Error = BoxError;
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let Some(ctx) = req.extensions().get::<Ctx<'static>>().copied() else {
            return CallFuture::new(Some(self.inner.call(req)), None, None);
        };
        let grpc = is_grpc(req.headers());
        if let Err(why) = ctx.err() {
            return CallFuture::new(None, None, Some((why, grpc)));
        }
        if let Ok(Some(deadline)) = ctx.deadline() {
            if self.cfg.drive {
                // The call ends at its deadline by itself (idempotent; one load once it runs).
                ctx.arena().drive();
            }
            let left = deadline.saturating_sub(ctx.arena().now());
            let rate = crate::driver::rate_of(self.cfg.rate, ctx.arena());
            let headers = req.headers_mut();
            let shorter_there = headers
                .get(GrpcTimeout::HEADER)
                .and_then(|v| GrpcTimeout::decode(v.as_bytes(), rate).ok())
                .is_some_and(|there| there <= left);
            if !shorter_there {
                let mut buf = [0; GrpcTimeout::MAX_LEN];
                let text = GrpcTimeout::from_ticks(left, rate).encode(&mut buf);
                if let Ok(v) = HeaderValue::from_str(text) {
                    headers.insert(GrpcTimeout::HEADER, v);
                }
            }
        }
        let watch = Watch {
            done: std::boxed::Box::pin((self.cfg.waiters)(ctx)),
            grpc,
        };
        CallFuture::new(Some(self.inner.call(req)), Some(watch), None)
    }
}

/// A call's wait for its context.
struct Watch {
    /// Pinned: a waiting `Done` holds its waiter node inside itself.
    done: core::pin::Pin<std::boxed::Box<Done<'static>>>,
    grpc: bool,
}

impl Watch {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<stopwire::Error> {
        self.done.as_mut().poll_done(cx)
    }
}

/// The answer to a call whose context is done for `why`.
fn refused<B>(why: stopwire::Error, grpc: bool) -> Result<Response<CallBody<B>>, BoxError> {
    if grpc {
        Ok(Refusal::of(why).response(true, CallBody::empty()))
    } else {
        Err(Box::new(ContextDone(why)))
    }
}

pin_project! {
    /// The response future of [`Client`]: the call, dropped when its context is done.
    pub struct CallFuture<F> {
        #[pin]
        inner: Option<F>,
        watch: Option<Watch>,
        refused: Option<(stopwire::Error, bool)>,
    }
}

impl<F> CallFuture<F> {
    fn new(
        inner: Option<F>,
        watch: Option<Watch>,
        refused: Option<(stopwire::Error, bool)>,
    ) -> Self {
        CallFuture {
            inner,
            watch,
            refused,
        }
    }
}

impl<F> fmt::Debug for CallFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFuture")
            .field("in_flight", &self.inner.is_some())
            .field("watched", &self.watch.is_some())
            .finish()
    }
}

impl<F, B, E> Future for CallFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<CallBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some((why, grpc)) = this.refused.take() {
            return Poll::Ready(refused(why, grpc));
        }
        if let Some(w) = this.watch.as_mut() {
            if let Poll::Ready(why) = w.poll(cx) {
                // Drop the call now: its stream is reset, the server sees the caller go away.
                this.inner.set(None);
                let grpc = w.grpc;
                *this.watch = None;
                return Poll::Ready(refused(why, grpc));
            }
        }
        let Some(call) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(Err(Box::new(ContextDone(stopwire::Error::Stale))));
        };
        let res = ready!(call.poll(cx));
        this.inner.set(None);
        let watch = this.watch.take();
        Poll::Ready(match res {
            Ok(r) => Ok(r.map(|b| CallBody::new(b, watch))),
            Err(e) => Err(e.into()),
        })
    }
}

pin_project! {
    /// The response body of [`Client`]: the service's, ended early when the call's context is
    /// done (with `grpc-status` trailers for gRPC, with a [`ContextDone`] error otherwise).
    pub struct CallBody<B> {
        #[pin]
        inner: Option<B>,
        watch: Option<Watch>,
    }
}

impl<B> fmt::Debug for CallBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallBody")
            .field("open", &self.inner.is_some())
            .field("watched", &self.watch.is_some())
            .finish()
    }
}

impl<B> CallBody<B> {
    fn new(inner: B, watch: Option<Watch>) -> Self {
        CallBody {
            inner: Some(inner),
            watch,
        }
    }

    fn empty() -> Self {
        CallBody {
            inner: None,
            watch: None,
        }
    }

    /// The service's body; `None` once the layer has ended it, or when it answered itself.
    pub fn inner(&self) -> Option<&B> {
        self.inner.as_ref()
    }
}

impl<B> Body for CallBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let mut this = self.project();
        if this.inner.is_none() {
            return Poll::Ready(None);
        }
        if let Some(w) = this.watch.as_mut() {
            if let Poll::Ready(why) = w.poll(cx) {
                this.inner.set(None);
                let grpc = w.grpc;
                *this.watch = None;
                return Poll::Ready(Some(if grpc {
                    Ok(Frame::trailers(Refusal::of(why).status_headers()))
                } else {
                    Err(Box::new(ContextDone(why)))
                }));
            }
        }
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(inner.poll_frame(cx));
        let last = match &frame {
            None | Some(Err(_)) => true,
            Some(Ok(f)) => f.is_trailers(),
        };
        if last {
            // Finished: stop waiting (frees the registration slot and the waker cell).
            *this.watch = None;
        }
        Poll::Ready(frame.map(|r| r.map_err(Into::into)))
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
