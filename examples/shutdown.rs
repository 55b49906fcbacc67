//! Graceful shutdown: a root context canceled on Ctrl-C or SIGTERM (the seed's "the load balancer
//! marks your instance unhealthy and sends a shutdown signal"), workers that stop, a [`Group`]
//! that waits for all of them, and a leak check before a clean exit.
//!
//! ```text
//! cargo run --example shutdown        # then press Ctrl-C, or: kill -TERM <pid>
//! ```
//!
//! The signal handler only sets a flag (all a handler may safely do); the main thread turns it into
//! a cancellation of the root context, which reaches every worker's context at once.
//!
//! [`Group`]: stopwire::Group

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use stopwire::{Arena, Ctx, Error, Handle};

static ARENA: Arena<16> = Arena::new();

/// A worker: one small job every 100 ms until its context is done.
fn worker(ctx: Ctx<'_>, id: u32) -> Result<(), Error> {
    let mut jobs = 0u32;
    loop {
        for _ in 0..10 {
            if let Err(why) = ctx.err() {
                println!("worker {id}: stopped after {jobs} jobs ({why})");
                return Ok(()); // stopping on shutdown is the plan, not a failure
            }
            thread::sleep(Duration::from_millis(10));
        }
        jobs += 1;
    }
}

fn main() -> Result<(), Error> {
    let signaled = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&signaled)).expect("signal handler");
    }

    let root = ARENA.background().with_cancel()?;
    let result = root.group(|g| {
        for id in 1..=3 {
            g.spawn(move |ctx| worker(ctx, id));
        }
        println!(
            "ready: {} workers running, pid {}; press Ctrl-C or send SIGTERM to stop",
            g.units(),
            std::process::id()
        );
        while !signaled.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(10));
        }
        println!("shutdown: signal received, canceling the root context");
        root.cancel();
    });
    // The group has waited for every worker.
    result?;
    drop(root);
    println!("shutdown: all workers stopped");
    match ARENA.check_released(Handle::BACKGROUND) {
        Ok(()) => println!("shutdown: leak check clean, exiting"),
        Err(leaks) => {
            eprint!("shutdown: {leaks}");
            std::process::exit(1);
        }
    }
    Ok(())
}
