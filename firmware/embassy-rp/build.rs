//! Puts `memory.x` where cortex-m-rt's `link.x` finds it, and adds the RP2040's own link
//! arguments: `link-rp.x` (from embassy-rp: the boot loader section) and `--nmagic` (sections
//! need not be page-aligned in flash). `-Tlink.x` itself comes from `.cargo/config.toml`
//! (this repository: firmware/.cargo/config.toml).

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink-rp.x");
}
