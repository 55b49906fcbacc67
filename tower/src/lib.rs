//! # stopwire-tower
//!
//! Go's request context for tower, tonic and axum services, on a [`stopwire`] arena: each
//! request a server takes gets a child context of the server's root, with the deadline the
//! caller sent in `grpc-timeout`; each call a handler makes under that context carries what is
//! left of the budget to the next service, and is dropped when the context is done. A whole tree
//! of services stops together: at the client's deadline, when the client goes away, or when a
//! server shuts down.
//!
//! ```
//! use std::time::Duration;
//! use stopwire::{Arena, Ctx};
//! use stopwire_tower::{ClientLayer, ServerLayer};
//! use tower::{Layer, Service, ServiceExt};
//!
//! static ARENA: Arena<64> = Arena::new();
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let root = ARENA.background().with_cancel().unwrap(); // canceled at shutdown
//! let server = ServerLayer::new(*root).max_timeout(Duration::from_secs(30));
//!
//! // A handler: its context is in the request's extensions.
//! let handler = tower::service_fn(|req: http::Request<String>| async move {
//!     let ctx = *req.extensions().get::<Ctx<'static>>().unwrap();
//!     let deadline = ctx.deadline().unwrap().unwrap();
//!     Ok::<_, std::convert::Infallible>(http::Response::new(deadline - ARENA.now()))
//! });
//! let mut svc = server.layer(handler);
//!
//! let req = http::Request::builder()
//!     .header("grpc-timeout", "300m")
//!     .body(String::new())
//!     .unwrap();
//! let res = svc.ready().await.unwrap().call(req).await.unwrap();
//! let left = *res.body().inner().unwrap(); // ticks left at the 1 MHz default clock
//! assert!(left <= 300_000 && left > 200_000);
//! drop(res); // the response is done: the request's context is released
//! assert_eq!(ARENA.stats().in_use, 1); // the root only
//! # let _ = ClientLayer::new();
//! # }
//! ```
//!
//! ## What it gives
//!
//! - [`ServerLayer`]: per request, a child of the root given at construction, with the deadline
//!   of `grpc-timeout` (clamped by [`ServerLayer::max_timeout`]), in the request's extensions as
//!   a [`stopwire::Ctx<'static>`] (and as the axum extractor `ReqCtx`, feature `axum`). The
//!   context is released, so canceled, when the response is finished, or dropped because the
//!   client went away. Canceling the root cancels every request in flight (graceful shutdown).
//!   A full arena, a malformed header, a spent budget or a canceled root are answered at once
//!   (table in [`ServerLayer`]) and counted in [`ServerStats`].
//! - [`ClientLayer`]: an outgoing request that carries a `Ctx<'static>` in its extensions gets
//!   `grpc-timeout` set to the context's remaining time, is refused at once when the context is
//!   already done, and is dropped (headers and body) when the context becomes done.
//! - Deadlines fire by themselves: the engine's host deadline driver serves the arena (a thread
//!   per arena that runs [`stopwire::ArenaView::expire`] at each deadline). It starts by itself
//!   for an arena in a `static` on a real-time clock; for any other arena both layers start it
//!   ([`stopwire::ArenaView::drive`]: the arenas of `Ctx<'static>` are `'static`), so handlers
//!   that await [`done`] and calls under a context wake at the deadline.
//!
//! ## Clocks
//!
//! The layers convert between `grpc-timeout` and ticks with the arena clock's rate in ticks
//! per second: the one set on the layer ([`ServerLayer::rate`], [`ClientLayer::rate`]), else the
//! one the clock reports ([`stopwire::Clock::ticks_per_second`]: 1 MHz for `StdClock`, the host
//! default), else 1 MHz ([`stopwire::GrpcTimeout::STD_CLOCK_RATE`]). The rounding rules of
//! the header are those of [`stopwire::GrpcTimeout`]: never a later deadline than was sent.
//!
//! The deadline driver sleeps by the clock's own rate ([`stopwire::Clock::ticks_per_second`]),
//! not the layers'. A clock that reports none (a `ManualClock`, a clock of one's own) must call
//! [`stopwire::advanced`] when it moves, as `ManualClock` does; otherwise the driver cannot know
//! when a deadline passes (checks still see it).
//!
//! ## Runtime
//!
//! None in particular: the layers arm no timer of their own and depend on no runtime, so they
//! work under tokio (hyper, tonic, axum) or any other executor, and deadlines fire the same
//! everywhere.
//!
//! ## Arena size
//!
//! A request in flight holds one slot. Waiting on a context ([`done`], the client layer's calls)
//! takes no slot: the waiter lives in the future.
#![warn(clippy::std_instead_of_core)]

mod client;
mod driver;
#[cfg(feature = "axum")]
mod extract;
mod grpc;
mod server;

use core::future::Future;

use stopwire::{Ctx, Done, UntilDone};

pub use client::{CallBody, CallFuture, Client, ClientLayer, ContextDone};
#[cfg(feature = "axum")]
pub use extract::{MissingCtx, ReqCtx};
pub use grpc::{code_of, Code};
pub use server::{Server, ServerBody, ServerFuture, ServerLayer, ServerStats};

/// `ctx.done()`: completes with the reason once `ctx` is done.
///
/// # Cancellation safety
///
/// Cancel-safe: dropping it unlinks its waiter, and changes nothing.
pub fn done(ctx: Ctx<'static>) -> Done<'static> {
    ctx.done()
}

/// `ctx.run_until_done(fut)`: `Ok` with `fut`'s output, or `Err` with the context's reason after
/// dropping `fut`.
///
/// # Cancellation safety
///
/// As cancel-safe as `fut`: it is dropped at its last `.await` when the context is done.
pub fn run_until_done<F: Future>(ctx: Ctx<'static>, fut: F) -> UntilDone<'static, F> {
    done(ctx).run(fut)
}
