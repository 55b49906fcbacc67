//! stopwire on embassy, on an emulated Cortex-M3 (QEMU `lm3s6965evb`): a "request" context with
//! a 100 ms deadline and three tasks working under child contexts.
//!
//! - `fetch` finishes its three 8 ms steps well before the deadline;
//! - `sensor` needs three 60 ms steps and is stopped by the request's deadline (an embassy-time
//!   timer wakes it at 100 ms: nothing polls in between);
//! - `upload` would take a second, but at 30 ms an interrupt handler calls a C function
//!   (`c/button.c`, built by arm-none-eabi-gcc) that cancels its context through the C API.
//!
//! Time is embassy-time on a SysTick driver (1 kHz, [`systick`]); the arena is the C API's, so
//! Rust and C share one tree. Output goes through semihosting; the firmware exits 0 when every
//! task ended as described and every slot is free again, 1 otherwise.
#![no_std]
#![no_main]

mod systick;

use core::cell::Cell;
use core::num::NonZeroU32;

use cortex_m::peripheral::SCB;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_executor::Spawner;
use embassy_time::{Instant, Timer};
use semihosting::println;
use stopwire::{Error, OwnedCtx};
use swffi::sw_ctx;

unsafe extern "C" {
    /// Hands the context to cancel to the C code.
    fn demo_c_arm(ctx: sw_ctx);
    /// The C side of the "button" interrupt: cancels the armed context with cause 0xC0DE.
    fn demo_c_button_isr() -> u32;
    /// How many times the C handler ran.
    fn demo_c_presses() -> u32;
}

/// The arena clock is embassy-time's: deadlines and embassy timers count the same ticks.
extern "C" fn embassy_ticks() -> u64 {
    Instant::now().as_ticks()
}

/// How each of the three tasks ended (`None`: still running).
type Outcomes = [Option<Result<u32, Error>>; 3];

/// How each task ended, for the final verdict.
static OUTCOMES: Mutex<Cell<Outcomes>> = Mutex::new(Cell::new([None; 3]));

fn ms() -> u64 {
    Instant::now().as_millis()
}

/// The interrupt the "button" raises: PendSV, pended by software at 30 ms.
#[exception]
fn PendSV() {
    println!(
        "[{:>3} ms] interrupt: C demo_c_button_isr() -> sw_cancel_cause(upload, 0xC0DE)",
        ms()
    );
    // SAFETY: a plain C function with no preconditions; it calls only the C API, which is safe
    // to call from an interrupt handler (SPEC T1).
    let status = unsafe { demo_c_button_isr() };
    if status != 0 {
        println!("           C call returned status {status}");
    }
}

/// One task: `steps` steps of `step_ms` each, run under `ctx` and dropped when it is done.
#[embassy_executor::task(pool_size = 3)]
async fn worker(slot: usize, name: &'static str, ctx: OwnedCtx<'static>, steps: u32, step_ms: u64) {
    println!(
        "[{:>3} ms] {name}: start, {steps} steps of {step_ms} ms",
        ms()
    );
    let work = async {
        for _ in 0..steps {
            Timer::after_millis(step_ms).await;
        }
        steps
    };
    let outcome = ctx.run_until_done(work).await;
    match outcome {
        Ok(n) => println!("[{:>3} ms] {name}: finished {n} steps", ms()),
        Err(why) => {
            let cause = ctx.cause().ok().flatten().map_or(0, NonZeroU32::get);
            println!("[{:>3} ms] {name}: stopped: {why} (cause {cause:#x})", ms());
        }
    }
    drop(ctx); // release: Go's `defer cancel()`
    critical_section::with(|cs| {
        let cell = OUTCOMES.borrow(cs);
        let mut all = cell.get();
        all[slot] = Some(outcome);
        cell.set(all);
    });
}

/// The arena's deadline driver (SPEC N1): one task sleeps with embassy-time until the earliest
/// deadline and expires it, so every waiting task wakes at its deadline with no timer of its own.
#[embassy_executor::task]
async fn deadlines() {
    match swffi::arena().embassy_driver().await {}
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    systick::start();
    // SAFETY: `embassy_ticks` is callable from any context, monotonic, and does not call the
    // library.
    unsafe { swffi::sw_set_clock(Some(embassy_ticks)) };
    let arena = swffi::arena();
    let baseline = arena.stats().in_use;

    let request = match arena.background().with_timeout(100) {
        Ok(r) => r,
        Err(e) => fail(e.as_str()),
    };
    let deadline = request.deadline().ok().flatten().unwrap_or(u64::MAX);
    println!("[{:>3} ms] request: deadline at {deadline} ms", ms());
    let child = || request.with_cancel().unwrap_or_else(|e| fail(e.as_str()));
    let (fetch, sensor, upload) = (child(), child(), child());
    // SAFETY: a plain C function storing a handle by value.
    unsafe { demo_c_arm(upload.handle().into()) };

    spawner.spawn(deadlines().unwrap_or_else(|_| fail("spawn")));
    spawner.spawn(worker(0, "fetch", fetch, 3, 8).unwrap_or_else(|_| fail("spawn")));
    spawner.spawn(worker(1, "sensor", sensor, 3, 60).unwrap_or_else(|_| fail("spawn")));
    spawner.spawn(worker(2, "upload", upload, 1, 1_000).unwrap_or_else(|_| fail("spawn")));

    Timer::after_millis(30).await;
    SCB::set_pendsv(); // the button

    let why = request.done().await;
    println!("[{:>3} ms] request: done: {why}", ms());
    // Let the tasks report.
    while critical_section::with(|cs| OUTCOMES.borrow(cs).get().iter().any(Option::is_none)) {
        Timer::after_millis(1).await;
    }
    drop(request);

    let got = critical_section::with(|cs| OUTCOMES.borrow(cs).get());
    let expected = [
        Some(Ok(3)),
        Some(Err(Error::DeadlineExceeded)),
        Some(Err(Error::Canceled)),
    ];
    let in_use = arena.stats().in_use;
    // SAFETY: a plain C function reading a counter.
    let presses = unsafe { demo_c_presses() };
    let ok = got == expected && in_use == baseline && presses == 1;
    println!(
        "demo: fetch {:?}, sensor {:?}, upload {:?}; C interrupt calls {presses}; slots in use {in_use} (baseline {baseline}): {}",
        got[0],
        got[1],
        got[2],
        if ok { "as expected" } else { "UNEXPECTED" }
    );
    semihosting::process::exit(if ok { 0 } else { 1 });
}

fn fail(what: &str) -> ! {
    println!("demo: failed: {what}");
    semihosting::process::exit(1)
}
