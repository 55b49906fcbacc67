//! Reads the build setting `STOPWIRE_CAPACITY` (slots in the C API's arena, default 1024) and
//! writes it where `src/arena.rs` includes it; on ELF targets, gives the shared library its SONAME.

use std::{env, fs, path::PathBuf};

const DEFAULT: u32 = 1024;
/// 16-bit slot indices on microcontrollers reserve 65535 as "no slot".
const MAX: u32 = 65534;

/// The SONAME of the shared library: programs linked against it load `libstopwire.so.0`, which
/// `cargo xtask install` links to `libstopwire.so.<version>`. It changes when the ABI breaks.
const SONAME: &str = "libstopwire.so.0";

/// Operating systems whose shared libraries are ELF files that take `-soname` from the GNU or
/// LLVM linker (not macOS, which names libraries by install name, nor Windows).
const ELF_OSES: [&str; 7] = [
    "linux",
    "android",
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "illumos",
];

fn main() {
    println!("cargo:rerun-if-env-changed=STOPWIRE_CAPACITY");
    println!("cargo:rerun-if-changed=build.rs");
    let capacity = match env::var("STOPWIRE_CAPACITY") {
        Ok(s) => match s.trim().parse::<u32>() {
            Ok(n) if (1..=MAX).contains(&n) => n,
            _ => panic!("STOPWIRE_CAPACITY must be a number from 1 to {MAX}, not {s:?}"),
        },
        Err(_) => DEFAULT,
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(
        out.join("capacity.rs"),
        format!("/// Slots in the C API's arena (build setting `STOPWIRE_CAPACITY`).\npub const CAPACITY: usize = {capacity};\n"),
    )
    .expect("write capacity.rs");

    // The target's OS, not the build machine's: cross builds for firmware have no shared library.
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if ELF_OSES.contains(&os.as_str()) {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");
    }
}
