//! Shared by the firmware crates (`build = "../memory/build.rs"`): puts the `memory.x` of the
//! target's architecture where the linker scripts of cortex-m-rt / riscv-rt look for it.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    let memory = match arch.as_str() {
        "arm" => include_str!("cortex-m.x"),
        "riscv32" => include_str!("riscv.x"),
        other => panic!("no memory layout for architecture {other}"),
    };
    std::fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=../memory/cortex-m.x");
    println!("cargo:rerun-if-changed=../memory/riscv.x");
}
