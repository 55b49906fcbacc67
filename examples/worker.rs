//! The seed's minimal cancellation: a worker prints "Working..." every half second until its
//! context is canceled, then prints why it stopped.
//!
//! ```text
//! cargo run --example worker
//! ```
//!
//! Go's version selects on `ctx.Done()` and a 500 ms timer; here `ctx.sleep(500 ms)` is that
//! select: `Ok` after the timer, `Err(why)` the moment the context is canceled (the thread blocks,
//! nothing polls).

use std::thread;
use std::time::Duration;

use stopwire::{Arena, Ctx};

static ARENA: Arena<16> = Arena::new();

/// Runs until the context is canceled.
fn worker(ctx: Ctx<'static>) {
    loop {
        match ctx.sleep(Duration::from_millis(500)) {
            // select { case <-ctx.Done(): ... }
            Err(why) => {
                println!("Stopped: {why}");
                return;
            }
            // case <-time.After(500 * time.Millisecond): simulate a small unit of work.
            Ok(()) => println!("Working..."),
        }
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
