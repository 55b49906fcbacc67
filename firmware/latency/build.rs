//! Puts the memory layout where the linker scripts of cortex-m-rt / riscv-rt look for it.
//!
//! The Cortex-M builds run on `mps2-an385` (4 MiB of code RAM at 0, 4 MiB of data RAM at
//! 0x2000_0000): a 4096-slot arena is 128 KiB, more than the 16 KiB layout the other firmware
//! shares (`../memory/cortex-m.x`, sized for the micro:bit). RISC-V uses the shared `virt` layout.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    let memory = match arch.as_str() {
        "arm" => include_str!("mps2-an385.x"),
        "riscv32" => include_str!("../memory/riscv.x"),
        other => panic!("no memory layout for architecture {other}"),
    };
    std::fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=mps2-an385.x");
    println!("cargo:rerun-if-changed=../memory/riscv.x");
}
