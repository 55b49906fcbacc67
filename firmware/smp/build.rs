//! The memory layout: the shared `virt` one, plus the two symbols riscv-rt reads to give each
//! hart a stack of its own. For riscv32imac, which `firmware/.cargo/config.toml` has no section
//! for, it also passes the link scripts (riscv32imc gets them from that file).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let memory = format!(
        "{}\n/* Two harts, 64 KiB of stack each (riscv-rt). */\n_max_hart_id = 1;\n_hart_stack_size = 64K;\n",
        include_str!("../memory/riscv.x")
    );
    std::fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    if target == "riscv32imac-unknown-none-elf" {
        println!("cargo:rustc-link-arg-bins=-Tmemory.x");
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }
    println!("cargo:rerun-if-changed=../memory/riscv.x");
}
