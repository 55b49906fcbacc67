//! Reads the build setting `STOPWIRE_CAPACITY` (slots in the C API's arena, default 1024) and
//! writes it where `src/arena.rs` includes it.

use std::{env, fs, path::PathBuf};

const DEFAULT: u32 = 1024;
/// 16-bit slot indices on microcontrollers reserve 65535 as "no slot".
const MAX: u32 = 65534;

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
}
