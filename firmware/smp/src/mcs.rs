//! A multi-core critical section, as RP2040 and ESP32 firmware provide one: interrupts masked on
//! this hart, then a spin lock in RAM shared by both harts.
//!
//! # Design
//!
//! - `SPIN` is the lock word: 0 free, 1 taken. It is taken with one `amoswap.w.aq` (an atomic
//!   swap: the "read claims it" of RP2040's SIO spinlocks). On riscv32imac that is
//!   `AtomicU32::swap`; on riscv32imc, where Rust offers no atomic read-modify-write, the same
//!   instruction is written in assembly (QEMU's `rv32` core has the A extension; the engine,
//!   compiled for riscv32imc, still takes its paths without compare-and-swap, which is the
//!   point of that build). Release is a store of 0 with `Release` ordering.
//! - `OWNER` is the hart that holds the lock, plus one (0: none), written only by the holder.
//!   A nested `acquire` on the holding hart finds itself there and takes nothing: its token is
//!   `false` and its `release` does nothing. Only the holder can have written its own id, so
//!   reading it without the lock is sound.
//! - Interrupts are masked before spinning, so a hart's own interrupt handler can never spin on
//!   the lock its interrupted code holds (that would never end); the other hart's handler may
//!   spin, for as long as this hart's section lasts.
//! - `WAS_ENABLED[hart]`: whether the outermost section found `mstatus.MIE` set, written by the
//!   holder; its `release` restores it after freeing the lock.

#[cfg(target_has_atomic = "32")]
use core::sync::atomic::Ordering::Acquire;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed, Ordering::Release};

use critical_section::RawRestoreState;

static SPIN: AtomicU32 = AtomicU32::new(0);
static OWNER: AtomicU32 = AtomicU32::new(0);
static WAS_ENABLED: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// This hart's id (0 or 1).
#[inline(always)]
pub(crate) fn hart() -> u32 {
    let id: u32;
    // SAFETY: reads a machine-mode CSR; no memory access.
    unsafe { core::arch::asm!("csrr {0}, mhartid", out(reg) id, options(nomem, nostack)) };
    id
}

/// Sets the lock word to 1 and returns what it was.
#[inline(always)]
fn test_and_set() -> u32 {
    #[cfg(target_has_atomic = "32")]
    {
        SPIN.swap(1, Acquire)
    }
    #[cfg(not(target_has_atomic = "32"))]
    {
        let old: u32;
        // SAFETY: one atomic swap on `SPIN`, a 4-byte aligned static; every other access to it
        // is an aligned 32-bit load or store. `.aq` orders the section after the claim.
        unsafe {
            core::arch::asm!(
                ".option push",
                ".option arch, +a",
                "amoswap.w.aq {old}, {one}, ({addr})",
                ".option pop",
                old = out(reg) old,
                one = in(reg) 1u32,
                addr = in(reg) SPIN.as_ptr(),
                options(nostack)
            );
        }
        old
    }
}

struct MultiCore;
critical_section::set_impl!(MultiCore);

// SAFETY: mutual exclusion across harts comes from `SPIN` (taken with an atomic swap with
// acquire ordering, released with a release store); within a hart, from masking interrupts
// before taking it. A nested acquire returns `false` and its release leaves both untouched.
unsafe impl critical_section::Impl for MultiCore {
    unsafe fn acquire() -> RawRestoreState {
        let mstatus: u32;
        // SAFETY: clears mstatus.MIE (masks machine interrupts on this hart), returning the old
        // value.
        unsafe { core::arch::asm!("csrrci {0}, mstatus, 8", out(reg) mstatus, options(nostack)) };
        let me = hart() + 1;
        if OWNER.load(Relaxed) == me {
            return false;
        }
        while test_and_set() != 0 {
            while SPIN.load(Relaxed) != 0 {
                core::hint::spin_loop();
            }
        }
        OWNER.store(me, Relaxed);
        WAS_ENABLED[(me - 1) as usize].store(mstatus & 8 != 0, Relaxed);
        true
    }

    unsafe fn release(took: RawRestoreState) {
        if took {
            let enable = WAS_ENABLED[hart() as usize].load(Relaxed);
            OWNER.store(0, Relaxed);
            SPIN.store(0, Release);
            if enable {
                // SAFETY: sets mstatus.MIE again, which the matching acquire found set.
                unsafe { core::arch::asm!("csrsi mstatus, 8", options(nostack)) };
            }
        }
    }
}
