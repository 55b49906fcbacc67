//! What the three footprint firmwares share: the runtime, the critical-section provider, a
//! panic handler, and the entry macro. Only `with` calls stopwire.
#![no_std]

#[cfg(target_arch = "arm")]
pub use cortex_m_rt::entry;
#[cfg(target_arch = "riscv32")]
pub use riscv_rt::entry;

#[cfg(target_arch = "arm")]
use cortex_m as _;
#[cfg(target_arch = "riscv32")]
use riscv as _;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// A tick source for `with_timeout`: a counter the firmware's main loop moves.
pub static TICKS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Advances [`TICKS`]: the work both firmwares do besides (or instead of) using stopwire.
#[inline(never)]
pub fn tick() -> u64 {
    let t = TICKS
        .load(core::sync::atomic::Ordering::Relaxed)
        .wrapping_add(1);
    TICKS.store(t, core::sync::atomic::Ordering::Relaxed);
    u64::from(t)
}
