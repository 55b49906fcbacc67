//! The instrument: this firmware's own critical-section implementation, which reads an
//! instruction-accurate counter when it masks interrupts and again just before it unmasks them,
//! and keeps the longest interval (and which section it was), the number of sections, their sum,
//! and the lengths of the first few one by one.
//!
//! Only the outermost section is recorded (a nested `acquire` finds interrupts already masked and
//! is covered by the interval of the one around it). The recording itself happens after the
//! second counter read, so it does not lengthen what it measures; what it does add — the
//! counter reads, the `critical_section::with` plumbing — is measured by an empty section
//! ([`overhead`]) and subtracted by the caller.
//!
//! # Counters (QEMU `-icount`, where virtual time is a fixed number of ns per instruction)
//!
//! - **Cortex-M** (`mps2-an385`): the CMSDK APB timer 0, a 32-bit down-counter at the 25 MHz
//!   system clock, which QEMU drives from virtual time. QEMU runs with `-icount shift=10`
//!   (1024 ns per instruction), so one instruction is 25.6 timer ticks and a tick count converts
//!   to instructions within one instruction ([`ticks_to_insns`]). A 24-bit SysTick would wrap
//!   after 655 k instructions at that rate, shorter than today's 4096-node cancel.
//! - **RISC-V** (`virt`): `minstret`, which QEMU derives from the instruction counter under
//!   `-icount` (`shift=0`: one count per instruction).
//!
//! A second counter times each whole operation from outside, as a cross-check of the first:
//! SysTick on its 1 MHz reference clock (Cortex-M), `mtime` at 10 MHz (RISC-V).
//!
//! `main` checks both conversions on loops of known length before it measures anything.

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Counter value when the current outermost section began.
static START: AtomicU32 = AtomicU32::new(0);
/// Longest outermost section since [`reset`], in counter ticks.
static LONGEST: AtomicU32 = AtomicU32::new(0);
/// Outermost sections since [`reset`].
static SECTIONS: AtomicU32 = AtomicU32::new(0);
/// Sum of their lengths, in counter ticks.
static TOTAL: AtomicU32 = AtomicU32::new(0);
/// Index (from 0, since [`reset`]) of the longest section: the first of equal ones.
static LONGEST_AT: AtomicU32 = AtomicU32::new(0);
/// Length of the latest section, in counter ticks.
static LAST: AtomicU32 = AtomicU32::new(0);

/// Sections whose lengths are kept one by one: the first [`LOGGED`] after [`reset`].
pub(crate) const LOGGED: usize = 8;
/// The lengths of the first [`LOGGED`] sections since [`reset`], in counter ticks.
static LOG: [AtomicU32; LOGGED] = [const { AtomicU32::new(0) }; LOGGED];

/// What the sections since the last [`reset`] amounted to, in counter ticks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub(crate) longest: u32,
    pub(crate) sections: u32,
    pub(crate) total: u32,
    /// Which section was the longest (0 is the first).
    pub(crate) longest_at: u32,
    /// The lengths of the first `min(sections, LOGGED)` sections.
    pub(crate) first: [u32; LOGGED],
    /// The length of the last section.
    pub(crate) last: u32,
}

/// Forgets every section recorded so far. Call it with no section open.
pub(crate) fn reset() {
    LONGEST.store(0, Relaxed);
    SECTIONS.store(0, Relaxed);
    TOTAL.store(0, Relaxed);
    LONGEST_AT.store(0, Relaxed);
    LAST.store(0, Relaxed);
    for l in &LOG {
        l.store(0, Relaxed);
    }
}

/// The sections recorded since [`reset`].
pub(crate) fn record() -> Record {
    Record {
        longest: LONGEST.load(Relaxed),
        sections: SECTIONS.load(Relaxed),
        total: TOTAL.load(Relaxed),
        longest_at: LONGEST_AT.load(Relaxed),
        first: core::array::from_fn(|k| LOG[k].load(Relaxed)),
        last: LAST.load(Relaxed),
    }
}

/// Called with interrupts masked, at the end of an outermost section of `ticks`. Plain loads and
/// stores suffice: one core, and nothing else runs while interrupts are masked.
#[inline(always)]
fn note(ticks: u32) {
    let k = SECTIONS.load(Relaxed);
    if ticks > LONGEST.load(Relaxed) {
        LONGEST.store(ticks, Relaxed);
        LONGEST_AT.store(k, Relaxed);
    }
    if let Some(l) = LOG.get(k as usize) {
        l.store(ticks, Relaxed);
    }
    LAST.store(ticks, Relaxed);
    SECTIONS.store(k + 1, Relaxed);
    TOTAL.store(TOTAL.load(Relaxed).wrapping_add(ticks), Relaxed);
}

/// Counter ticks of an empty `critical_section::with`: the instrument's own cost, the smallest
/// of a few runs (they agree under `-icount`; the minimum guards against a first-run effect).
pub(crate) fn overhead() -> u32 {
    (0..4)
        .map(|_| {
            reset();
            critical_section::with(|_| ());
            record().longest
        })
        .min()
        .unwrap_or(0)
}

/// Runs `f` inside one critical section: what the calibration loops use.
pub(crate) fn in_section(f: impl FnOnce()) -> Record {
    reset();
    critical_section::with(|_| f());
    record()
}

#[cfg(target_arch = "arm")]
mod imp {
    use core::ptr::{read_volatile, write_volatile};

    use critical_section::RawRestoreState;

    /// CMSDK APB timer 0 of mps2-an385.
    const TIMER0: usize = 0x4000_0000;
    const CTRL: *mut u32 = TIMER0 as *mut u32;
    const VALUE: *mut u32 = (TIMER0 + 0x04) as *mut u32;
    const RELOAD: *mut u32 = (TIMER0 + 0x08) as *mut u32;

    /// Virtual nanoseconds per instruction: QEMU's `-icount shift=10`.
    pub(crate) const NS_PER_INSN: u64 = 1 << 10;
    /// Nanoseconds per timer tick: the 25 MHz system clock of mps2-an385.
    pub(crate) const NS_PER_TICK: u64 = 40;

    /// Starts the timer free-running from its top value.
    pub(crate) fn init() {
        // SAFETY: the three registers of CMSDK APB timer 0, which this firmware alone uses;
        // 32-bit accesses as the device expects.
        unsafe {
            write_volatile(CTRL, 0);
            write_volatile(RELOAD, u32::MAX);
            write_volatile(VALUE, u32::MAX);
            write_volatile(CTRL, 1);
        }
    }

    /// Ticks since the timer started (it counts down; wraps after 2^32 ticks, 168 M instructions).
    #[inline(always)]
    pub(crate) fn now() -> u32 {
        // SAFETY: a read of timer 0's VALUE register, which has no side effect.
        !unsafe { read_volatile(VALUE) }
    }

    /// Timer ticks per 1000 instructions.
    pub(crate) const TICKS_PER_KILO_INSN: u64 = 1000 * NS_PER_INSN / NS_PER_TICK;

    /// Instructions in `ticks`, to the nearest.
    pub(crate) fn ticks_to_insns(ticks: u64) -> u64 {
        (ticks * NS_PER_TICK + NS_PER_INSN / 2) / NS_PER_INSN
    }

    /// `2 * n` instructions: a count-down loop of two instructions per turn.
    #[inline(always)]
    pub(crate) fn spin(n: u32) {
        // SAFETY: register-only arithmetic and a local branch; touches no memory or stack.
        unsafe {
            core::arch::asm!(
                "2:",
                "subs {n}, #1",
                "bne 2b",
                n = inout(reg) n => _,
                options(nomem, nostack)
            );
        }
    }

    /// SysTick registers (the cross-check counter).
    const SYST_CSR: *mut u32 = 0xE000_E010 as *mut u32;
    const SYST_RVR: *mut u32 = 0xE000_E014 as *mut u32;
    const SYST_CVR: *mut u32 = 0xE000_E018 as *mut u32;

    /// Starts SysTick free-running on its reference clock (1 MHz on mps2-an385: 1000 ns per
    /// tick, 24 bits, so it wraps after 16.7 s of virtual time, 16 M instructions).
    pub(crate) fn second_init() {
        // SAFETY: SysTick's registers; this firmware uses SysTick for nothing else, and leaves
        // its interrupt disabled (TICKINT clear).
        unsafe {
            write_volatile(SYST_CSR, 0);
            write_volatile(SYST_RVR, 0x00FF_FFFF);
            write_volatile(SYST_CVR, 0);
            write_volatile(SYST_CSR, 1); // ENABLE, reference clock, no interrupt
        }
    }

    /// SysTick's count, counting up (24 bits).
    pub(crate) fn second_now() -> u32 {
        // SAFETY: a read of SysTick's current-value register, which has no side effect.
        0x00FF_FFFF - unsafe { read_volatile(SYST_CVR) }
    }

    /// One tick of [`second_now`], in instructions (rounded up).
    pub(crate) const SECOND_RESOLUTION_INSNS: u64 = 1;

    /// Instructions in an interval read from [`second_now`], to the nearest (±1 tick: ±1).
    pub(crate) fn second_insns(from: u32, to: u32) -> u64 {
        let ticks = u64::from(to.wrapping_sub(from) & 0x00FF_FFFF);
        (ticks * 1000 + NS_PER_INSN / 2) / NS_PER_INSN
    }

    struct Instrumented;
    critical_section::set_impl!(Instrumented);

    // SAFETY: single core; interrupts are masked from `acquire` until the matching `release`
    // of the outermost section, and a nested `acquire` (interrupts already masked) returns 0 so
    // that its `release` leaves them masked.
    unsafe impl critical_section::Impl for Instrumented {
        unsafe fn acquire() -> RawRestoreState {
            let was_active = cortex_m::register::primask::read().is_active();
            cortex_m::interrupt::disable();
            if was_active {
                super::START.store(now(), super::Relaxed);
            }
            u32::from(was_active)
        }

        unsafe fn release(token: RawRestoreState) {
            if token != 0 {
                let end = now();
                super::note(end.wrapping_sub(super::START.load(super::Relaxed)));
                // SAFETY: this is the outermost section's release, and interrupts were
                // enabled when it began.
                unsafe { cortex_m::interrupt::enable() };
            }
        }
    }
}

#[cfg(target_arch = "riscv32")]
mod imp {
    use critical_section::RawRestoreState;

    /// `minstret` counts from reset; thread code starts with `mstatus.MIE` clear, which would
    /// make every section look nested. Sets it, with every source in `mie` still disabled, so no
    /// interrupt can arrive.
    pub(crate) fn init() {
        // SAFETY: sets mstatus.MIE; `mie` is zero after reset and this firmware enables no
        // interrupt source.
        unsafe { core::arch::asm!("csrsi mstatus, 8", options(nostack)) };
    }

    /// Instructions retired, low 32 bits (wraps after 4.29 G instructions).
    #[inline(always)]
    pub(crate) fn now() -> u32 {
        let n: u32;
        // SAFETY: reads a machine-mode counter CSR; no memory access.
        unsafe { core::arch::asm!("csrr {0}, minstret", out(reg) n, options(nomem, nostack)) };
        n
    }

    /// Counts per 1000 instructions.
    pub(crate) const TICKS_PER_KILO_INSN: u64 = 1000;

    /// `minstret` counts instructions.
    pub(crate) fn ticks_to_insns(ticks: u64) -> u64 {
        ticks
    }

    /// `2 * n` instructions: a count-down loop of two instructions per turn.
    #[inline(always)]
    pub(crate) fn spin(n: u32) {
        // SAFETY: register-only arithmetic and a local branch; touches no memory or stack.
        unsafe {
            core::arch::asm!(
                "2:",
                "addi {n}, {n}, -1",
                "bnez {n}, 2b",
                n = inout(reg) n => _,
                options(nomem, nostack)
            );
        }
    }

    /// `mtime` of the ACLINT (the cross-check counter): 10 MHz, so one tick is 100 instructions
    /// at `-icount shift=0`.
    const MTIME: *const u32 = 0x0200_BFF8 as *const u32;

    /// Nothing to start: `mtime` runs from reset.
    pub(crate) fn second_init() {}

    /// `mtime`, low 32 bits.
    pub(crate) fn second_now() -> u32 {
        // SAFETY: a read of the machine timer's counter, which has no side effect.
        unsafe { core::ptr::read_volatile(MTIME) }
    }

    /// One tick of [`second_now`], in instructions.
    pub(crate) const SECOND_RESOLUTION_INSNS: u64 = 100;

    /// Instructions in an interval read from [`second_now`] (±100: one tick).
    pub(crate) fn second_insns(from: u32, to: u32) -> u64 {
        u64::from(to.wrapping_sub(from)) * 100
    }

    /// `mstatus.MIE`.
    const MIE: u32 = 1 << 3;

    struct Instrumented;
    critical_section::set_impl!(Instrumented);

    // SAFETY: single hart; `csrrci` clears MIE and returns its previous value in one
    // instruction, and only the section that found it set sets it again.
    unsafe impl critical_section::Impl for Instrumented {
        unsafe fn acquire() -> RawRestoreState {
            let mstatus: u32;
            // SAFETY: clears mstatus.MIE (masks machine interrupts on this hart).
            unsafe {
                core::arch::asm!("csrrci {0}, mstatus, 8", out(reg) mstatus, options(nostack))
            };
            let was_enabled = mstatus & MIE != 0;
            if was_enabled {
                super::START.store(now(), super::Relaxed);
            }
            was_enabled
        }

        unsafe fn release(was_enabled: RawRestoreState) {
            if was_enabled {
                let end = now();
                super::note(end.wrapping_sub(super::START.load(super::Relaxed)));
                // SAFETY: sets mstatus.MIE again, which the matching acquire found set.
                unsafe { core::arch::asm!("csrsi mstatus, 8", options(nostack)) };
            }
        }
    }
}

pub(crate) use imp::{
    init, second_init, second_insns, second_now, spin, ticks_to_insns, SECOND_RESOLUTION_INSNS,
    TICKS_PER_KILO_INSN,
};
