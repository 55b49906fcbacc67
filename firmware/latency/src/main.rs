//! The longest critical section (interrupts masked) of stopwire's operations, in instructions, on
//! QEMU with `-icount` (SPEC T3, issue 11): what `cargo xtask latency` runs and tabulates.
//!
//! Every operation below runs on an arena of 4096 slots and on one of 64, with the workload
//! scaled to it ([`SIZES`]). The firmware is its own critical-section provider ([`cs`]): each
//! section is timed from the moment interrupts are masked to the moment they are unmasked, and
//! the instrument's own cost (an empty section) is subtracted. It prints
//!
//! ```text
//! calibration target=<t> ...
//! latency target=<t> n=<N> case=<case> insns=<longest section>
//! detail target=<t> n=<N> case=<case> size=<nodes or deadlines> sections=<k> total_insns=<sum>
//! sections target=<t> n=<N> case=<case> longest_at=<index> first=<a,b,...> last=<z>
//! ```
//!
//! (`sections`: which section was the longest, counting from 0, and the lengths of the first few
//! and of the last, in instructions: where a step is long, and whether the first or last step of
//! an operation differs from the ones in between.)
//!
//! and exits 0 through semihosting, or 1 if a calibration or workload check failed.
#![no_std]
#![no_main]

mod cs;
mod workloads;

use semihosting::{print, println};
use stopwire::{Arena, ManualClock};

#[cfg(all(target_arch = "arm", not(target_has_atomic = "32")))]
const TARGET: &str = "thumbv6m-none-eabi";
#[cfg(all(target_arch = "arm", target_has_atomic = "32"))]
const TARGET: &str = "thumbv7m-none-eabi";
#[cfg(target_arch = "riscv32")]
const TARGET: &str = "riscv32imc-unknown-none-elf";

/// The one clock of both arenas: it only moves when a workload moves it.
static CLOCK: ManualClock = ManualClock::new(0);
static LARGE: Arena<4096> = Arena::with_clock(&CLOCK);
static SMALL: Arena<64> = Arena::with_clock(&CLOCK);

/// How big each workload is on an arena.
#[derive(Clone, Copy)]
pub(crate) struct Sizes {
    /// Nodes of the flat tree: one root and its children.
    pub(crate) flat: usize,
    /// Depth of the chain that is canceled.
    pub(crate) chain: usize,
    /// Depth of the chain of zombies that one release reclaims.
    pub(crate) zombies: usize,
    /// Deadlines pending (later than the inserted one, or expiring at once).
    pub(crate) deadlines: usize,
}

/// The workloads of issue 11 at N = 4096, and scaled to N = 64.
const SIZES: [(usize, Sizes); 2] = [
    (
        64,
        Sizes {
            flat: 63,
            chain: 63,
            zombies: 63,
            deadlines: 50,
        },
    ),
    (
        4096,
        Sizes {
            flat: 4096,
            chain: 512,
            zombies: 512,
            deadlines: 1000,
        },
    ),
];

/// Handles a workload keeps (the flat tree's children): as many as the largest arena has slots.
const HANDLES: usize = 4096;

/// Most instructions a one-section operation spends outside its section: the stepped engine's
/// `run` around the step and the instrument (deadline insert, whole operation less its one
/// section, by the `detail` lines: 227 on thumbv7m, 275 on thumbv6m, 228 to 328 on riscv32imc,
/// whose second counter ticks every 100 instructions).
const OUTSIDE_LOCK_MAX: u64 = 500;

/// A measured operation, in raw counter ticks.
pub(crate) struct Measured {
    /// Nodes or deadlines the workload had.
    pub(crate) size: usize,
    pub(crate) record: cs::Record,
    /// The whole operation, in instructions, by the second counter.
    pub(crate) outer: u64,
}

fn insns(ticks: u32) -> u64 {
    cs::ticks_to_insns(u64::from(ticks))
}

/// Checks the counter against loops of known length; returns the overhead (in ticks) to subtract.
fn calibrate() -> Result<u32, &'static str> {
    let overhead = cs::overhead();
    let short = cs::in_section(|| spin(1_000)).longest;
    let long = cs::in_section(|| spin(100_000)).longest;
    let net = |t: u32| insns(t.saturating_sub(overhead));
    // The two loops differ by 2 * 99 000 instructions; the ticks between them give the counter's
    // rate, which must be the one the conversion assumes (Cortex-M: 25.6 ticks per instruction at
    // -icount shift=10; RISC-V: 1). The instruction difference may be off by the few
    // instructions the compiler schedules differently around the two calls.
    let rate_milli = u64::from(long - short) * 1000 / 198_000;
    let expected_milli = cs::TICKS_PER_KILO_INSN;
    let difference = net(long) - net(short);
    println!(
        "calibration target={TARGET} ticks_per_1000_insns={rate_milli} expected={expected_milli} \
         empty_section_insns={} (subtracted) loop_2000_insns={} loop_200000_insns={} \
         difference={difference} expected=198000",
        insns(overhead),
        net(short),
        net(long),
    );
    if rate_milli.abs_diff(expected_milli) > 1 {
        return Err("the counter does not follow the instruction count (is QEMU run with the right -icount shift?)");
    }
    if difference.abs_diff(198_000) > 4 || net(short).abs_diff(2_000) > 16 {
        return Err("a loop of known length does not read as its length");
    }
    Ok(overhead)
}

/// `2 * n` instructions plus a call and a return: a function of its own, so that the compiler
/// cannot move other work into the measured section.
#[inline(never)]
fn spin(n: u32) {
    cs::spin(n);
}

fn run() -> Result<(), &'static str> {
    cs::init();
    cs::second_init();
    let overhead = calibrate()?;
    let mut handles = [stopwire::Handle::DEAD; HANDLES];
    for (n, sizes) in SIZES {
        let arena: &stopwire::ArenaView = if n == 64 { &SMALL } else { &LARGE };
        for &(case, f) in workloads::CASES {
            let m = f(arena, &CLOCK, sizes, &mut handles)?;
            let r = m.record;
            println!(
                "latency target={TARGET} n={n} case={case} insns={}",
                insns(r.longest.saturating_sub(overhead))
            );
            println!(
                "detail target={TARGET} n={n} case={case} size={} sections={} total_insns={} \
                 whole_operation_insns={}",
                m.size,
                r.sections,
                insns(r.total.saturating_sub(overhead.saturating_mul(r.sections))),
                m.outer
            );
            print!(
                "sections target={TARGET} n={n} case={case} longest_at={} first=",
                r.longest_at
            );
            let logged = (r.sections as usize).min(cs::LOGGED);
            for (k, &t) in r.first[..logged].iter().enumerate() {
                let sep = if k == 0 { "" } else { "," };
                print!("{sep}{}", insns(t.saturating_sub(overhead)));
            }
            println!(" last={}", insns(r.last.saturating_sub(overhead)));
            // Cross-check: an operation that took one section lasted, by the second counter,
            // as long as the section plus the little it does outside the lock (the call, the
            // callbacks it found none of, the instrument).
            let longest = insns(r.longest.saturating_sub(overhead));
            let slack = cs::SECOND_RESOLUTION_INSNS + 1;
            if r.sections == 1
                && (m.outer + slack < longest || m.outer > longest + OUTSIDE_LOCK_MAX + slack)
            {
                return Err("the two counters disagree about an operation's length");
            }
            if arena.stats().in_use != 0 {
                return Err("a workload left slots in use");
            }
        }
        arena.audit().map_err(|e| e.what)?;
    }
    Ok(())
}

fn main_body() -> ! {
    match run() {
        Ok(()) => semihosting::process::exit(0),
        Err(why) => {
            println!("latency target={TARGET}: FAILED: {why}");
            semihosting::process::exit(1)
        }
    }
}

/// A panic is a failed run: print it and exit 101.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("panicked: {info}");
    semihosting::process::exit(101)
}

#[cfg(target_arch = "arm")]
#[cortex_m_rt::entry]
fn main() -> ! {
    main_body()
}

#[cfg(target_arch = "riscv32")]
#[riscv_rt::entry]
fn main() -> ! {
    main_body()
}
