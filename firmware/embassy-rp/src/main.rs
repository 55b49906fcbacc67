//! A complete minimal embassy firmware with stopwire, for the RP2040 (Raspberry Pi Pico): `blink`
//! toggles the LED until its context is done, `report` owns the context, awaits it and takes the
//! reason, and `main` cancels it after three seconds.
//!
//! What a new firmware needs besides stopwire, all here: cortex-m-rt (the vector table and
//! `link.x`), a panic handler (`panic-halt`), `memory.x` (build.rs puts it on the linker path),
//! the link arguments (`-Tlink.x` in `.cargo/config.toml`, `-Tlink-rp.x` and `--nmagic` from
//! build.rs), a critical-section implementation and an embassy-time driver (both from
//! embassy-rp: features `critical-section-impl` and `time-driver`).
//!
//! Build: `cargo build --release -p stopwire-embassy-rp --target thumbv6m-none-eabi` in
//! `firmware/`; flash with `probe-rs run --chip RP2040` or convert to UF2 with `elf2uf2-rs`.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_rp::gpio::{Level, Output};
use embassy_time::Timer;
use panic_halt as _;
use stopwire::{Arena, Ctx, EmbassyClock, Error, OwnedCtx};

/// The arena: 8 slots, deadlines in embassy-time ticks (1 MHz with embassy-rp's driver).
static ARENA: Arena<8> = Arena::with_clock(&EmbassyClock);

/// Toggles the LED every 250 ms until `ctx` is done; `run_until_done` drops the loop then.
#[embassy_executor::task]
async fn blink(ctx: Ctx<'static>, mut led: Output<'static>) {
    let blinking = async {
        loop {
            led.toggle();
            Timer::after_millis(250).await;
        }
    };
    let _: Result<(), Error> = ctx.run_until_done(blinking).await;
    led.set_low();
}

/// Owns the job: waits until it is done, takes the reason (here `Error::Canceled`), and releases
/// the context when `job` is dropped at the end.
#[embassy_executor::task]
async fn report(job: OwnedCtx<'static>) {
    let why: Error = job.done().await;
    // A real firmware would log `why` (feature `defmt` gives it `defmt::Format`).
    let _ = why;
}

#[embassy_executor::task]
async fn deadlines() {
    match ARENA.embassy_driver().await {} // stopwire's deadline driver: one task per arena
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    let led = Output::new(p.PIN_25, Level::Low);

    let Ok(job) = ARENA.background().with_cancel() else {
        return; // the arena is full: cannot happen with 8 slots and one context
    };
    let handle = job.handle();
    spawner.spawn(deadlines().expect("one driver task"));
    spawner.spawn(blink(*job, led).expect("one blink task"));
    spawner.spawn(report(job).expect("one report task"));

    Timer::after_secs(3).await;
    // Any task or interrupt handler may cancel through the handle: `blink` stops at its next
    // await, `report` wakes with `Error::Canceled`.
    let _ = ARENA.cancel(handle, 0);
}
