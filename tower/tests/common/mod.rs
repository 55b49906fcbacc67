//! A tiny gRPC service written by hand for the tests and the example: one unary method,
//! `/demo.Work/Do`, whose messages are UTF-8 strings sent as raw bytes (no protobuf, so no
//! protoc and no build script), served by real tonic servers on 127.0.0.1 and called through
//! real tonic channels.
#![allow(dead_code, unreachable_pub, reason = "each test file uses a part")]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut};
use stopwire::Ctx;
use stopwire_tower::{Client, ClientLayer, ServerLayer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tower::{Service, ServiceBuilder};

/// The method's path.
pub const PATH: &str = "/demo.Work/Do";

/// Strings as raw UTF-8 bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct StrCodec;

impl Codec for StrCodec {
    type Encode = String;
    type Decode = String;
    type Encoder = StrCodec;
    type Decoder = StrCodec;

    fn encoder(&mut self) -> StrCodec {
        StrCodec
    }

    fn decoder(&mut self) -> StrCodec {
        StrCodec
    }
}

impl Encoder for StrCodec {
    type Item = String;
    type Error = Status;

    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for StrCodec {
    type Item = String;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Status::internal("message is not UTF-8"))
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A handler of the method.
pub type Handler =
    Arc<dyn Fn(Request<String>) -> BoxFuture<Result<Response<String>, Status>> + Send + Sync>;

/// Wraps an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<String>, Status>> + Send + 'static,
{
    Arc::new(move |req| Box::pin(f(req)))
}

/// The service `demo.Work` as tonic's router wants it.
#[derive(Clone)]
pub struct Work(pub Handler);

impl NamedService for Work {
    const NAME: &'static str = "demo.Work";
}

struct Unary(Handler);

impl UnaryService<String> for Unary {
    type Response = String;
    type Future = BoxFuture<Result<Response<String>, Status>>;

    fn call(&mut self, req: Request<String>) -> Self::Future {
        (self.0)(req)
    }
}

impl Service<http::Request<Body>> for Work {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let h = Arc::clone(&self.0);
        Box::pin(async move {
            if req.uri().path() != PATH {
                return Ok(Status::unimplemented(req.uri().path().to_string()).into_http());
            }
            let mut grpc = tonic::server::Grpc::new(StrCodec);
            Ok(grpc.unary(Unary(h), req).await)
        })
    }
}

/// A server on 127.0.0.1, stopped gracefully by [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Running {
    /// Graceful shutdown: no new connections, then waits for the requests in flight.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task)
            .await
            .expect("server task")
            .expect("server");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `handler` behind `layer` on a free loopback port.
pub async fn serve(layer: ServerLayer, handler: Handler) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(Work(handler))
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = rx.await;
            })
            .await
    });
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

/// A tonic client of `demo.Work` behind the client layer.
pub type WorkClient = tonic::client::Grpc<Client<Channel>>;

/// A lazily connecting client of the server at `addr`.
pub fn client(addr: SocketAddr) -> WorkClient {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(10))
        .connect_lazy();
    tonic::client::Grpc::new(
        ServiceBuilder::new()
            .layer(ClientLayer::new())
            .service(channel),
    )
}

/// One call of `/demo.Work/Do`: under `ctx` when given (the client layer sets `grpc-timeout`
/// and ends the call with the context), with tonic's own `grpc-timeout` when `timeout` is.
pub async fn call(
    client: &mut WorkClient,
    ctx: Option<Ctx<'static>>,
    timeout: Option<Duration>,
    msg: &str,
) -> Result<String, Status> {
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut req = Request::new(msg.to_string());
    if let Some(ctx) = ctx {
        req.extensions_mut().insert(ctx);
    }
    if let Some(t) = timeout {
        req.set_timeout(t);
    }
    client
        .unary(req, http::uri::PathAndQuery::from_static(PATH), StrCodec)
        .await
        .map(Response::into_inner)
}

/// The request's context, put there by the server layer.
pub fn ctx_of<T>(req: &Request<T>) -> Ctx<'static> {
    *req.extensions()
        .get::<Ctx<'static>>()
        .expect("the server layer puts the context in the extensions")
}

/// The `grpc-timeout` the request arrived with, as text.
pub fn timeout_header<T>(req: &Request<T>) -> Option<String> {
    req.metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The status a handler answers with when its context is done for `why`.
pub fn status_for(why: stopwire::Error) -> Status {
    Status::new(
        tonic::Code::from(stopwire_tower::code_of(why).as_i32()),
        why.to_string(),
    )
}
