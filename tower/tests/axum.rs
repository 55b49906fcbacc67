//! The axum extractor `ReqCtx` (feature `axum`): the request's context in a handler behind the
//! server layer, and a 500 naming the missing layer on a route without it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use stopwire::Arena;
use stopwire_tower::{ReqCtx, ServerLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn fetch(addr: SocketAddr, path: &str, timeout: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\ngrpc-timeout: {timeout}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_string(&mut text))
        .await
        .expect("an answer")
        .unwrap();
    text
}

async fn deadline(ReqCtx(ctx): ReqCtx) -> String {
    format!(
        "deadline in {:?} ticks",
        ctx.deadline().unwrap().map(|d| d - ctx.arena().now() > 0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_ctx_extracts_the_request_context() {
    static ARENA: Arena<8> = Arena::new();
    let root = ARENA.background().with_cancel().unwrap();
    let router = Router::new()
        .route("/with", get(deadline))
        .layer(ServerLayer::new(*root))
        .route("/without", get(deadline));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let with = fetch(addr, "/with", "5S").await;
    assert!(with.starts_with("HTTP/1.1 200"), "{with}");
    assert!(with.ends_with("deadline in Some(true) ticks"), "{with}");
    let without = fetch(addr, "/without", "5S").await;
    assert!(without.starts_with("HTTP/1.1 500"), "{without}");
    assert!(
        without.contains("not wrapped by stopwire_tower::ServerLayer"),
        "{without}"
    );
    drop(root);
}
