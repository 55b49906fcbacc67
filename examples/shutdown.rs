//! Graceful shutdown: a root context canceled on Ctrl-C or SIGTERM (the seed's "the load balancer
//! marks your instance unhealthy and sends a shutdown signal"), workers that stop, a [`Group`]
//! that waits for all of them, and a leak check before a clean exit.
//!
//! ```text
//! cargo run --example shutdown        # then press Ctrl-C, or: kill -TERM <pid>
//! ```
//!
//! The signal handler only wakes a pipe (all a handler may safely do: signal-hook's `Signals`); the
//! main thread blocks on it and turns it into a cancellation of the root context, which wakes every
//! worker at once: each sleeps in `ctx.sleep(100 ms)` between jobs, nothing polls.
//!
//! [`Group`]: stopwire::Group

use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use stopwire::{Arena, Ctx, Error, Handle};

static ARENA: Arena<16> = Arena::new();

/// A worker: one small job every 100 ms until its context is done.
fn worker(ctx: Ctx<'_>, id: u32) -> Result<(), Error> {
    let mut jobs = 0u32;
    loop {
        if let Err(why) = ctx.sleep(Duration::from_millis(100)) {
            println!("worker {id}: stopped after {jobs} jobs ({why})");
            return Ok(()); // stopping on shutdown is the plan, not a failure
        }
        jobs += 1;
    }
}

fn main() -> Result<(), Error> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).expect("signal handler");

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
        let _ = signals.forever().next(); // blocks until a signal arrives
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
