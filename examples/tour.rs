//! A tour of stopwire through the seed's "when to use context" list, in about a second:
//! background, with_cancel, with_timeout, with_deadline, with_value, a group, and a leak report.
//!
//! ```text
//! cargo run --example tour
//! ```
//!
//! Ticks are microseconds here: the arena reads the default host clock (1 MHz).

use std::num::NonZeroUsize;
use std::thread;
use std::time::{Duration, Instant};

use stopwire::{Arena, Ctx, Error, Handle};

/// 64 contexts, no heap: every context of this program lives here.
static ARENA: Arena<64> = Arena::new();

const MS: u64 = 1_000; // ticks per millisecond on the host clock

fn section(title: &str, when: &str) {
    println!("\n== {title}");
    println!("   when: {when}");
}

/// Simulated work: slices of 10 ms, checking the context before each one; `steps` of them, or
/// with `None` as many as it takes until the context is done.
fn work(ctx: Ctx<'_>, steps: Option<u32>) -> Result<u32, Error> {
    let mut done = 0;
    while steps.is_none_or(|n| done < n) {
        if let Err(why) = ctx.err() {
            println!("   ... stopped after {done} steps: {why}");
            return Err(why);
        }
        thread::sleep(Duration::from_millis(10));
        done += 1;
    }
    Ok(done)
}

fn background() {
    section(
        "Background: the root of every tree",
        "a root context for a new process or top-level function",
    );
    let root = ARENA.background();
    println!(
        "   ARENA.background(): err() = {:?}, deadline() = {:?}, slots used = {}",
        root.err(),
        root.deadline(),
        ARENA.stats().in_use
    );
    println!("   (roots are never done and cost no slot; todo() is the same for unfinished code)");
}

fn with_cancel() -> Result<(), Error> {
    section(
        "WithCancel: stop a task from another thread",
        "to cancel a task manually from another goroutine (here: thread)",
    );
    let job = ARENA.background().with_cancel()?;
    let view = *job; // the Copy view goes to the worker; the owner stays here
    let worker = thread::spawn(move || work(view, None)); // runs until canceled
    thread::sleep(Duration::from_millis(35));
    println!("   main: cancel() -> {}", job.cancel());
    println!("   main: cancel() again -> {} (idempotent)", job.cancel());
    let outcome = worker.join().expect("worker");
    println!("   worker returned {outcome:?}");
    Ok(()) // `job` dropped: released, Go's `defer cancel()` made automatic
}

fn with_timeout() -> Result<(), Error> {
    section(
        "WithTimeout: a task that must finish within a duration",
        "a database query or an external API call with a time budget",
    );
    let query = ARENA.background().with_timeout(50 * MS)?;
    let started = Instant::now();
    let outcome = work(*query, Some(100)); // would take a second
    println!(
        "   query with a 50 ms timeout returned {outcome:?} after {} ms",
        started.elapsed().as_millis()
    );
    Ok(())
}

fn with_deadline() -> Result<(), Error> {
    section(
        "WithDeadline: work that must be complete by an absolute time",
        "syncing with a scheduled batch job",
    );
    let batch_at = ARENA.now() + 80 * MS; // the batch job starts at this tick
    let sync = ARENA.background().with_deadline(batch_at)?;
    // A child asking for a later deadline keeps the earlier one (Go does the same).
    let step = sync.with_deadline(batch_at + 1_000 * MS)?;
    println!(
        "   batch at tick {batch_at}; child asked for +1 s, effective deadline {:?}",
        step.deadline()?
    );
    let mut synced = 0;
    while step.err().is_ok() {
        synced += 1; // one record synced
        thread::sleep(Duration::from_millis(10));
    }
    println!(
        "   synced {synced} records before the batch started: {:?}",
        step.err()
    );
    Ok(())
}

fn with_value() -> Result<(), Error> {
    section(
        "WithValue: request-scoped data, sparingly",
        "user ids and trace ids, never optional parameters or caches",
    );
    const TRACE_ID: NonZeroUsize = NonZeroUsize::new(1).unwrap();
    const USER_ID: NonZeroUsize = NonZeroUsize::new(2).unwrap();
    let request = ARENA.background().with_value(TRACE_ID, 0xC0FFEE)?;
    let fetch = request.with_timeout(1_000 * MS)?;
    let inner = fetch.with_cancel()?;
    let trace = inner.value(TRACE_ID)?;
    println!(
        "   three levels down: trace id = {}, user id = {:?}",
        trace.map_or("none".to_string(), |v| format!("{v:#x}")),
        inner.value(USER_ID)?
    );
    println!("   (a value is a pointer-sized integer; the key a non-zero constant of your crate)");
    Ok(())
}

/// A unit of the group: fetches for a while, or fails at once if it is the broken one.
fn fetcher(ctx: Ctx<'_>, name: &str, broken: bool) -> Result<(), BoxError> {
    if broken {
        println!("   {name}: upstream refused, failing the group");
        return Err(format!("{name}: upstream refused").into());
    }
    match work(ctx, None) {
        Ok(_) => Ok(()),
        Err(why) => {
            println!("   {name}: stopped ({why})");
            Err(why.into())
        }
    }
}

/// Any error: a group's error type only needs `From<stopwire::Error>` and `Send`.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn group() {
    section(
        "Group: wait for all, cancel the rest on the first error",
        "sync.WaitGroup, always combined with a context (Go's errgroup)",
    );
    let result = ARENA.background().group(|g| {
        g.spawn(|ctx| fetcher(ctx, "fetch users", false));
        g.spawn(|ctx| fetcher(ctx, "fetch orders", false));
        g.spawn(|ctx| {
            thread::sleep(Duration::from_millis(30));
            fetcher(ctx, "fetch prices", true)
        });
        g.units()
    });
    println!(
        "   group returned {result:?}; slots in use after it: {}",
        ARENA.stats().in_use
    );
}

fn leak_report() -> Result<(), Error> {
    section(
        "Leak report: the bug that never logs, logged",
        "at shutdown or in tests: has everything been released?",
    );
    let service = ARENA.background().with_cancel()?;
    let _session = service.with_timeout(60_000 * MS)?; // held properly
    let forgotten = service.with_cancel()?.into_handle(); // the bug: never released
    println!("   live contexts, oldest first:");
    for line in ARENA.report().to_string().lines() {
        println!("   | {line}");
    }
    drop(_session);
    match service.check_released() {
        Ok(()) => println!("   leak check under `service`: clean"),
        Err(leaks) => {
            println!("   leak check under `service`:");
            for line in leaks.to_string().lines() {
                println!("   | {line}");
            }
        }
    }
    ARENA.release(forgotten)?;
    drop(service);
    println!(
        "   after releasing it: {:?}",
        ARENA
            .check_released(Handle::BACKGROUND)
            .map_err(|l| l.count())
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    println!("stopwire tour: the seed's \"when to use context\" list, run for real");
    background();
    with_cancel()?;
    with_timeout()?;
    with_deadline()?;
    with_value()?;
    group();
    leak_report()?;
    println!("\n== And when not to use a context");
    println!("   to send data between threads, use a channel: a context only signals.");
    let s = ARENA.stats();
    println!(
        "\ndone: {} slots in use, high water {} of {}",
        s.in_use, s.high_water, s.capacity
    );
    Ok(())
}
