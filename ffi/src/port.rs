//! The critical section of firmware builds, for firmware whose own code is C.
//!
//! Without `std` the engine's arena lock is `critical_section::with` (src/lock.rs), and the
//! `critical-section` crate expects some crate of the final image to provide the implementation
//! (the Rust-ABI symbols `_critical_section_1_0_acquire` / `_release`). A Rust firmware names one
//! (`cortex-m` with `critical-section-single-core`, a HAL's multi-core one); a C firmware cannot
//! write Rust, so the library brings one when built with one of these features:
//!
//! | feature | lock | for |
//! |---|---|---|
//! | `critical-section-single-core` | PRIMASK: `cpsid i`, restored to its previous value on exit | single-core Cortex-M without an RTOS that needs interrupts for its own bookkeeping |
//! | `critical-section-port` | `sw_port_critical_enter()` / `sw_port_critical_exit(state)`, C functions the firmware defines | RTOSes, multi-core chips, chips with BASEPRI-based masking |
//! | neither | none: the image must provide one | firmware that contains Rust and picks its own |
//!
//! The two features are mutually exclusive, and neither goes with `std` (hosts lock with the
//! engine's spin lock and never call a critical section): both mistakes stop the build with a
//! message instead of giving two implementations or a dead one.
//!
//! ## The port contract
//!
//! `sw_port_critical_enter` must, before it returns, (1) mask every interrupt handler of the
//! calling core that may call the library, and (2) exclude every other core that may call the
//! library (a hardware spinlock on RP2040, an RTOS's SMP lock), so that no other code touches the
//! arena until the matching exit. It returns whatever its exit needs to restore the previous state
//! (for example the old PRIMASK or BASEPRI). Calls nest: an enter inside an enter must work and the
//! exits come in the reverse order, each with the value its enter returned. Both are called with a
//! bounded amount of work in between (SPEC T3) and must not call the library. An RTOS's
//! `taskENTER_CRITICAL` is not enough on an SMP kernel unless it also spins on a cross-core lock.

#[cfg(all(
    feature = "critical-section-single-core",
    feature = "critical-section-port"
))]
compile_error!(
    "stopwire-ffi: choose one critical section: `critical-section-single-core` (PRIMASK) or \
     `critical-section-port` (C functions sw_port_critical_enter/exit), not both"
);

#[cfg(all(
    feature = "std",
    any(
        feature = "critical-section-single-core",
        feature = "critical-section-port"
    )
))]
compile_error!(
    "stopwire-ffi: the critical-section features are for firmware builds: add \
     `--no-default-features` (with `std` the arena lock is a spin lock and needs no critical section)"
);

#[cfg(all(
    feature = "critical-section-single-core",
    not(all(target_arch = "arm", target_os = "none"))
))]
compile_error!(
    "stopwire-ffi: `critical-section-single-core` masks interrupts with PRIMASK, which exists only \
     on Cortex-M (thumbv6m, thumbv7m, thumbv7em, thumbv8m targets); elsewhere use \
     `critical-section-port`"
);

/// PRIMASK on one core (feature `critical-section-single-core`).
#[cfg(all(
    feature = "critical-section-single-core",
    target_arch = "arm",
    target_os = "none"
))]
mod single_core {
    use core::arch::asm;

    /// Masks every configurable interrupt of the one core while the section is held.
    struct Primask;

    critical_section::set_impl!(Primask);

    // SAFETY: on a single core, code that cannot be interrupted cannot be raced: `acquire` masks
    // interrupts before it returns and `release` unmasks them only if the matching `acquire` found
    // them unmasked, so nested sections keep them masked until the outermost one ends.
    unsafe impl critical_section::Impl for Primask {
        unsafe fn acquire() -> critical_section::RawRestoreState {
            let primask: u32;
            // SAFETY: reads PRIMASK and sets it; touches no memory. Not `nomem`: the asm is also
            // the compiler barrier that keeps the section's memory accesses after it.
            unsafe {
                asm!(
                    "mrs {}, PRIMASK",
                    "cpsid i",
                    out(reg) primask,
                    options(nostack, preserves_flags)
                );
            }
            // The old PRIMASK: bit 0 clear means interrupts were enabled.
            primask
        }

        unsafe fn release(primask: critical_section::RawRestoreState) {
            if primask & 1 == 0 {
                // SAFETY: unmasks interrupts that the matching `acquire` found unmasked; the
                // barrier (no `nomem`) keeps the section's memory accesses before it.
                unsafe { asm!("cpsie i", options(nostack, preserves_flags)) };
            }
        }
    }
}

/// The firmware's C functions (feature `critical-section-port`).
#[cfg(feature = "critical-section-port")]
mod port_layer {
    // The C side is declared in include/stopwire.h when `SW_PORT_CRITICAL_SECTION` is defined.
    unsafe extern "C" {
        /// Port layer (build feature `critical-section-port`; declared when
        /// `SW_PORT_CRITICAL_SECTION` is defined): the firmware defines this function. It must
        /// mask the calling core's interrupt handlers that call the library AND exclude every
        /// other core that calls it (for example an RP2040 hardware spinlock) until the matching
        /// `sw_port_critical_exit`, and return what that exit needs to restore the previous state
        /// (the old PRIMASK or BASEPRI). Calls nest; the work in between is bounded (SPEC T3). It
        /// must not call the library.
        pub(super) fn sw_port_critical_enter() -> u32;

        /// Port layer: ends the section that the matching `sw_port_critical_enter` began,
        /// restoring the state it returned (`state`). Exits come in the reverse order of the
        /// enters. It must not call the library.
        pub(super) fn sw_port_critical_exit(state: u32);
    }

    /// Calls the firmware's two functions.
    struct Port;

    critical_section::set_impl!(Port);

    // SAFETY: the firmware's port functions promise exactly the critical-section contract (the
    // module's documentation and the header state it): mutual exclusion against every interrupt
    // handler and core that may call the library, nesting, restore of the previous state.
    unsafe impl critical_section::Impl for Port {
        unsafe fn acquire() -> critical_section::RawRestoreState {
            // SAFETY: a C function with no arguments; its contract is the one above.
            unsafe { sw_port_critical_enter() }
        }

        unsafe fn release(state: critical_section::RawRestoreState) {
            // SAFETY: `state` is what the matching enter returned (critical-section's contract
            // for `release`).
            unsafe { sw_port_critical_exit(state) }
        }
    }
}
