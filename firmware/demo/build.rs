//! Puts `memory.x` on the linker path and compiles the demo's C part with `arm-none-eabi-gcc`
//! (the `cc` crate picks it for thumbv7m-none-eabi) against the committed C API header.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("memory.x"), include_str!("../memory/cortex-m.x")).expect("memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=../memory/cortex-m.x");
    println!("cargo:rerun-if-changed=c/button.c");
    println!("cargo:rerun-if-changed=../../include/stopwire.h");
    cc::Build::new()
        .file("c/button.c")
        .include("../../include")
        .flag("-std=c11")
        // Only the compiler's own headers (stdint.h, stdbool.h): no C library needed.
        .flag("-ffreestanding")
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .compile("demo_c");
}
