//! The server layer in front of a plain HTTP/1.1 axum service on 127.0.0.1, called over a raw
//! TCP socket: the answers for requests it refuses are HTTP statuses (503 for a full arena or a
//! server shutting down, 504 for a spent budget, 400 for a malformed `grpc-timeout`), and a
//! client that closes its connection mid-request cancels the request's context.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Router};
use stopwire::{Arena, Ctx, Error};
use stopwire_tower::{run_until_done, ServerLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(30);

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn request(headers: &[(&str, &str)]) -> String {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// Status code and body of one request.
async fn fetch(addr: SocketAddr, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request(headers).as_bytes()).await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(PATIENCE, s.read_to_string(&mut text))
        .await
        .expect("an answer")
        .unwrap();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

/// The handler: the ticks left in its context.
async fn left(Extension(ctx): Extension<Ctx<'static>>) -> String {
    match ctx.deadline() {
        Ok(Some(d)) => (d - ctx.arena().now()).to_string(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_get_http_statuses() {
    static ARENA: Arena<2> = Arena::new();
    let root = ARENA.background().with_cancel().unwrap();
    let layer = ServerLayer::new(*root);
    let stats = layer.stats();
    let addr = serve(Router::new().route("/", get(left)).layer(layer)).await;

    let (code, body) = fetch(addr, &[("grpc-timeout", "2S")]).await;
    assert_eq!(code, 200);
    let ticks: u64 = body.parse().unwrap();
    assert!(ticks <= 2_000_000, "{ticks}");
    assert_eq!(fetch(addr, &[]).await, (200, "Ok(None)".to_string()));

    assert_eq!(fetch(addr, &[("grpc-timeout", "2 S")]).await.0, 400);
    assert_eq!(fetch(addr, &[("grpc-timeout", "0n")]).await.0, 504);
    let hog = root.with_cancel().unwrap();
    assert_eq!(fetch(addr, &[("grpc-timeout", "2S")]).await.0, 503);
    drop(hog);
    root.cancel();
    assert_eq!(fetch(addr, &[]).await.0, 503);

    assert_eq!(stats.accepted(), 2);
    assert_eq!(
        (
            stats.bad_timeout(),
            stats.expired(),
            stats.full(),
            stats.shutting_down()
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_connection_cancels_the_request() {
    static ARENA: Arena<8> = Arena::new();
    let root = ARENA.background().with_cancel().unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<Result<(), Error>>();

    /// Sends `ctx.err()` when dropped: the handler's future is dropped when the client goes.
    struct Report(Ctx<'static>, mpsc::UnboundedSender<Result<(), Error>>);
    impl Drop for Report {
        fn drop(&mut self) {
            let _ = self.1.send(self.0.err());
        }
    }

    let router = Router::new()
        .route(
            "/",
            get(move |Extension(ctx): Extension<Ctx<'static>>| {
                let (started, ended) = (started_tx.clone(), ended_tx.clone());
                async move {
                    let _report = Report(ctx, ended);
                    let _ = started.send(());
                    let slept = run_until_done(ctx, tokio::time::sleep(PATIENCE * 4)).await;
                    format!("{slept:?}")
                }
            }),
        )
        .layer(ServerLayer::new(*root));
    let addr = serve(router).await;

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request(&[]).as_bytes()).await.unwrap();
    tokio::time::timeout(PATIENCE, started.recv())
        .await
        .expect("handler started");
    drop(s); // the client goes away
    let outcome = tokio::time::timeout(PATIENCE, ended.recv())
        .await
        .expect("handler dropped")
        .unwrap();
    assert_eq!(outcome, Err(Error::Canceled));
    drop(root);
}
