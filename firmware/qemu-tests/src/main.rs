//! The core's rule tests that need no threads (SPEC R, C, D, V, K, W, F, A and T5), as one
//! `no_std` firmware run under QEMU on three cores: Cortex-M0 (`microbit`, thumbv6m, no
//! compare-and-swap: every update goes through the critical section), Cortex-M3 (`lm3s6965evb`,
//! thumbv7m) and RV32IMC (`virt`). On the Cortex-M machines an interrupt handler also cancels
//! contexts while thread mode creates, checks and releases them (SPEC T1, C10).
//!
//! It prints one line per test, then `qemu <machine>: N passed, M failed`, and exits through
//! semihosting with 0 when everything passed, 1 otherwise.
#![no_std]
#![no_main]

mod rules;

#[cfg(target_arch = "arm")]
mod irq;

#[cfg(target_arch = "arm")]
use cortex_m as _; // the critical-section provider (single core: interrupts masked)
#[cfg(target_arch = "riscv32")]
use riscv as _; // the critical-section provider (single hart)

use semihosting::println;

/// One test: its name (SPEC rule id first) and its body.
pub(crate) type Test = (&'static str, fn() -> Result<(), &'static str>);

/// Fails the test with the line and the expression when `cond` is false.
#[macro_export]
macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err(concat!("line ", line!(), ": ", stringify!($cond)));
        }
    };
}

/// Fails the test, printing both values, when they differ.
#[macro_export]
macro_rules! check_eq {
    ($a:expr, $b:expr) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            semihosting::println!("    left:  {:?}\n    right: {:?}", a, b);
            return Err(concat!(
                "line ",
                line!(),
                ": ",
                stringify!($a),
                " == ",
                stringify!($b)
            ));
        }
    }};
}

#[cfg(all(target_arch = "arm", target_has_atomic = "32"))]
const MACHINE: &str = "lm3s6965evb";
#[cfg(all(target_arch = "arm", not(target_has_atomic = "32")))]
const MACHINE: &str = "microbit";
#[cfg(target_arch = "riscv32")]
const MACHINE: &str = "virt";

fn run_all() -> ! {
    let mut passed = 0u32;
    let mut failed = 0u32;
    let mut run = |name: &str, f: fn() -> Result<(), &'static str>| match f() {
        Ok(()) => {
            println!("test {name} ... ok");
            passed += 1;
        }
        Err(why) => {
            println!("test {name} ... FAILED: {why}");
            failed += 1;
        }
    };
    for &(name, f) in rules::TESTS {
        run(name, f);
    }
    #[cfg(target_arch = "arm")]
    for &(name, f) in irq::TESTS {
        run(name, f);
    }
    println!("qemu {MACHINE}: {passed} passed, {failed} failed");
    semihosting::process::exit(if failed == 0 { 0 } else { 1 })
}

/// A panic is a failed run: print it and exit 101, as a host test binary would.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panicked: {info}");
    semihosting::process::exit(101)
}

#[cfg(target_arch = "arm")]
#[cortex_m_rt::entry]
fn main() -> ! {
    run_all()
}

#[cfg(target_arch = "riscv32")]
#[riscv_rt::entry]
fn main() -> ! {
    run_all()
}
