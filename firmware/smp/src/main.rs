//! Rule checks on two harts sharing one arena (SPEC T1, issue 11): QEMU `virt -smp 2`.
//!
//! Hart 0 runs the checks; hart 1 works on the same subtrees at the same time (creates, cancels,
//! releases, checks), and its machine-timer interrupt cancels and creates there too. The lock is
//! the multi-core critical section of [`mcs`]. Built for riscv32imac (the engine's
//! compare-and-swap paths) and for riscv32imc (its paths without compare-and-swap, with the lock
//! word still taken by an atomic swap, as on RP2040).
//!
//! Rounds are run by a small protocol: hart 0 publishes the round's contexts, opens the round
//! (`ROUND` odd), does its part, closes it (`ROUND` even, stored after its cancel returned) and
//! waits until hart 1 has checked and released what it made (`ACK`). Violations found on hart 1
//! or in its interrupt are counted and the first is kept; hart 0 reports them with its own.
//!
//! Prints `test <name> ... ok|FAILED`, then `qemu virt -smp 2 (<target>): N passed, M failed`,
//! and exits through semihosting with 0 when everything passed.
#![no_std]
#![no_main]

mod hart1;
mod mcs;
mod tests;

use core::cell::Cell;
use core::sync::atomic::{AtomicU32, Ordering::Acquire, Ordering::Release};

use critical_section::Mutex;
use semihosting::println;
use stopwire::{Arena, FnClock, Handle};

#[cfg(target_has_atomic = "32")]
const TARGET: &str = "riscv32imac-unknown-none-elf";
#[cfg(not(target_has_atomic = "32"))]
const TARGET: &str = "riscv32imc-unknown-none-elf";

/// The ACLINT of `virt`: software-interrupt pending bits, timer compare registers, the timer.
const MSIP: usize = 0x0200_0000;
const MTIMECMP: usize = 0x0200_4000;
const MTIME: usize = 0x0200_BFF8;

/// `mtime`, 10 MHz, read high-low-high so that the two halves belong together.
pub(crate) fn mtime() -> u64 {
    let hi = MTIME + 4;
    loop {
        // SAFETY: reads of the machine timer's two halves; no side effects.
        let (h1, lo, h2) = unsafe {
            (
                core::ptr::read_volatile(hi as *const u32),
                core::ptr::read_volatile(MTIME as *const u32),
                core::ptr::read_volatile(hi as *const u32),
            )
        };
        if h1 == h2 {
            return (u64::from(h1) << 32) | u64::from(lo);
        }
    }
}

/// Sets hart `hart`'s timer compare register (the high half first at all-ones, so that no
/// interrupt fires on a half-written value).
pub(crate) fn set_mtimecmp(hart: usize, at: u64) {
    let reg = MTIMECMP + 8 * hart;
    // SAFETY: the compare register of `hart`, written by that hart only.
    unsafe {
        core::ptr::write_volatile((reg + 4) as *mut u32, u32::MAX);
        core::ptr::write_volatile(reg as *mut u32, at as u32);
        core::ptr::write_volatile((reg + 4) as *mut u32, (at >> 32) as u32);
    }
}

/// The arena's clock: both harts read the same `mtime`, and it moves on its own (10 MHz of
/// virtual time, which follows the host's clock without `-icount`).
static CLOCK: FnClock = FnClock(mtime);
pub(crate) static ARENA: Arena<128> = Arena::with_clock(&CLOCK);

/// What hart 1 is to do while a round is open.
pub(crate) const MODE_HAMMER: u32 = 1;
pub(crate) const MODE_RACE: u32 = 2;
pub(crate) const MODE_WATCH: u32 = 3;
pub(crate) const MODE_STOP: u32 = 9;

pub(crate) static MODE: AtomicU32 = AtomicU32::new(0);
/// Written by hart 0: odd while a round is open, even once it is closed.
pub(crate) static ROUND: AtomicU32 = AtomicU32::new(0);
/// Written by hart 1: the last closed round it has finished with.
pub(crate) static ACK: AtomicU32 = AtomicU32::new(0);
/// Written by hart 1: operations done (so that hart 0 can wait until it is busy).
pub(crate) static OPS: AtomicU32 = AtomicU32::new(0);
/// Written by hart 1 in race mode: round * 4 + (1 if its cancel was first, 2 if not).
pub(crate) static RACE_RESULT: AtomicU32 = AtomicU32::new(0);
/// Written by hart 0 in race mode: the round whose cancels may start.
pub(crate) static GO: AtomicU32 = AtomicU32::new(0);

/// Contexts hart 0 shares for the round: hart 1 works under them, its interrupt cancels
/// `isr_target` and creates under `targets[0]`.
#[derive(Clone, Copy)]
pub(crate) struct Shared {
    pub(crate) targets: [Handle; 8],
    pub(crate) len: usize,
    pub(crate) isr_target: Handle,
}

impl Shared {
    pub(crate) const NONE: Shared = Shared {
        targets: [Handle::DEAD; 8],
        len: 0,
        isr_target: Handle::DEAD,
    };
}

pub(crate) static SHARED: Mutex<Cell<Shared>> = Mutex::new(Cell::new(Shared::NONE));

/// Violations seen on any hart: how many, and the first.
static BAD: Mutex<Cell<(u32, Option<&'static str>)>> = Mutex::new(Cell::new((0, None)));

/// Records a broken rule (any hart, any context).
pub(crate) fn violation(what: &'static str) {
    critical_section::with(|cs| {
        let c = BAD.borrow(cs);
        let (n, first) = c.get();
        c.set((n + 1, first.or(Some(what))));
    });
}

/// Takes the violations recorded since the last call.
pub(crate) fn take_violations() -> (u32, Option<&'static str>) {
    critical_section::with(|cs| BAD.borrow(cs).replace((0, None)))
}

pub(crate) fn publish(s: Shared) {
    critical_section::with(|cs| SHARED.borrow(cs).set(s));
}

pub(crate) fn shared() -> Shared {
    critical_section::with(|cs| SHARED.borrow(cs).get())
}

/// Opens round `r` (hart 0).
pub(crate) fn open(r: u32) {
    ROUND.store(2 * r + 1, Release);
}

/// Closes round `r` and waits until hart 1 has finished with it (hart 0).
pub(crate) fn close(r: u32) -> Result<(), &'static str> {
    ROUND.store(2 * r + 2, Release);
    wait_for(|| ACK.load(Acquire) == 2 * r + 2).ok_or_else(|| {
        println!(
            "    round {r}: ROUND={} ACK={} OPS={}",
            ROUND.load(Acquire),
            ACK.load(Acquire),
            OPS.load(Acquire)
        );
        "hart 1 did not finish a round"
    })
}

/// Spins until `f` holds, for at most about a second of virtual time.
pub(crate) fn wait_for(f: impl Fn() -> bool) -> Option<()> {
    let until = mtime() + 10_000_000;
    while !f() {
        if mtime() > until {
            return None;
        }
        core::hint::spin_loop();
    }
    Some(())
}

fn hart0() -> ! {
    // Wake hart 1 (its `_mp_hook` waits for this software interrupt).
    // SAFETY: hart 1's MSIP bit of the ACLINT.
    unsafe { core::ptr::write_volatile((MSIP + 4) as *mut u32, 1) };
    let mut passed = 0u32;
    let mut failed = 0u32;
    for &(name, f) in tests::TESTS {
        let r = f();
        let (n, first) = take_violations();
        match (r, first) {
            (Ok(()), None) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            (Ok(()), Some(why)) => {
                println!("test {name} ... FAILED: {n} violations, first: {why}");
                failed += 1;
            }
            (Err(why), _) => {
                println!("test {name} ... FAILED: {why} ({n} violations, first: {first:?})");
                failed += 1;
            }
        }
    }
    println!("qemu virt -smp 2 ({TARGET}): {passed} passed, {failed} failed");
    semihosting::process::exit(if failed == 0 { 0 } else { 1 })
}

/// Hart 0 initialises RAM and runs `main`; hart 1 sleeps until hart 0 raises its software
/// interrupt (riscv-rt calls this on every hart before RAM is initialised: no statics here).
#[export_name = "_mp_hook"]
pub extern "Rust" fn mp_hook(hartid: usize) -> bool {
    if hartid == 0 {
        return true;
    }
    let msip = (MSIP + 4 * hartid) as *mut u32;
    // SAFETY: this hart's MSIP bit (zero from reset: hart 0 may have set it already, so it is
    // not cleared before waiting); `mie.MSIE` only makes `wfi` wake on it (mstatus.MIE is
    // clear, so no trap is taken).
    unsafe {
        riscv::register::mie::set_msoft();
        while !riscv::register::mip::read().msoft() {
            riscv::asm::wfi();
        }
        riscv::register::mie::clear_msoft();
        core::ptr::write_volatile(msip, 0);
    }
    false
}

/// A panic on either hart is a failed run.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panicked on hart {}: {info}", mcs::hart());
    semihosting::process::exit(101)
}

#[riscv_rt::entry]
fn main(hartid: usize) -> ! {
    if hartid == 0 {
        hart0()
    } else {
        hart1::run()
    }
}
