//! The seed's minimal cancellation: a worker prints "Working..." every half second until its
//! context is canceled, then prints why it stopped.
//!
//! ```text
//! cargo run --example worker
//! ```
//!
//! Go's version selects on `ctx.Done()` and a 500 ms timer; here the worker waits in short slices
//! and checks its context between them, so it stops within one slice of the cancel.

use std::thread;
use std::time::{Duration, Instant};

use stopwire::{Arena, Ctx};

static ARENA: Arena<16> = Arena::new();

/// Waits up to `d`, returning early once `ctx` is done.
fn sleep_or_done(ctx: Ctx<'_>, d: Duration) {
    let until = Instant::now() + d;
    while !ctx.is_done() && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs until the context is canceled.
fn worker(ctx: Ctx<'static>) {
    loop {
        if let Err(why) = ctx.err() {
            // Exit as soon as the context is canceled.
            println!("Stopped: {why}");
            return;
        }
        sleep_or_done(ctx, Duration::from_millis(500));
        if ctx.is_done() {
            continue;
        }
        // Simulate a small unit of work.
        println!("Working...");
    }
}

fn main() {
    // WithCancel: a context and, through its owner, the cancel function.
    let ctx = ARENA
        .background()
        .with_cancel()
        .expect("a fresh arena has room");
    let view = *ctx;
    let handle = thread::spawn(move || worker(view));
    thread::sleep(Duration::from_millis(1100));
    ctx.cancel();
    handle.join().expect("worker thread");
    // Dropping `ctx` releases its slot: Go's `defer cancel()`, made automatic.
    drop(ctx);
    let stats = ARENA.stats();
    println!(
        "arena: {} of {} slots in use after release",
        stats.in_use, stats.capacity
    );
}
