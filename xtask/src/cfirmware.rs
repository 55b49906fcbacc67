//! Firmware that uses the library the way a firmware author would: `c-firmware` builds
//! `firmware/c-only` (a Cortex-M firmware whose only code is C, built by CMake with
//! arm-none-eabi-gcc against `libstopwire.a`) for four cores and both critical-section features,
//! runs each image under QEMU and prints its size; [`test()`] also builds the embassy example
//! firmware (`firmware/embassy-rp`, build only: no QEMU machine emulates an RP2040).
//!
//! | target | QEMU machine | core |
//! |---|---|---|
//! | thumbv6m-none-eabi | microbit | Cortex-M0 (no compare-and-swap) |
//! | thumbv7m-none-eabi | lm3s6965evb | Cortex-M3 |
//! | thumbv7em-none-eabihf | mps2-an386 | Cortex-M4F (hard-float ABI) |
//! | thumbv8m.main-none-eabi | mps2-an505 | Cortex-M33, started in the secure state |
//!
//! Each (target, feature) pair gets its own cargo target directory under
//! `$CARGO_TARGET_DIR/c-firmware` (or `target/c-firmware`): `target/<triple>/release/libstopwire.a`
//! is one path per target directory, and a build with other features that is already fresh would
//! not write it again.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, ensure_debian, ensure_targets, output, run, Counts, Result};

/// Debian packages: the cross compiler, the build system and the emulator.
const PACKAGES: [&str; 4] = ["gcc-arm-none-eabi", "cmake", "make", "qemu-system-arm"];

/// Slots of the library's arena in these firmware images: 16 KiB of RAM on the micro:bit.
const CAPACITY: &str = "32";

/// The critical-section features of stopwire-ffi (ffi/src/port.rs), as CMake's `STOPWIRE_PORT`.
const VARIANTS: [(&str, bool); 2] = [
    ("critical-section-single-core", false),
    ("critical-section-port", true),
];

/// Upper bound of one QEMU run (a hang is a failure); each takes well under a second.
const QEMU_LIMIT_SECS: &str = "60";

/// A core the C firmware runs on.
struct Board {
    target: &'static str,
    machine: &'static str,
    /// `-cpu` for machines that take one.
    cpu: Option<&'static str>,
    /// The MEMORY file of the linker script (firmware/c-only).
    memory: &'static str,
}

const BOARDS: [Board; 4] = [
    Board {
        target: "thumbv6m-none-eabi",
        machine: "microbit",
        cpu: Some("cortex-m0"),
        memory: "memory.ld",
    },
    Board {
        target: "thumbv7m-none-eabi",
        machine: "lm3s6965evb",
        cpu: Some("cortex-m3"),
        memory: "memory.ld",
    },
    Board {
        target: "thumbv7em-none-eabihf",
        machine: "mps2-an386",
        cpu: None,
        memory: "memory.ld",
    },
    Board {
        target: "thumbv8m.main-none-eabi",
        machine: "mps2-an505",
        cpu: None,
        memory: "memory-an505.ld",
    },
];

fn work_dir() -> PathBuf {
    let base = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => util::root().join(d),
        None => util::root().join("target"),
    };
    base.join("c-firmware")
}

fn source_dir() -> PathBuf {
    util::root().join("firmware/c-only")
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Builds `libstopwire.a` for `target` with `feature` (and no `std`); returns its path.
fn build_library(target: &str, feature: &str) -> Result<PathBuf> {
    let dir = work_dir().join(format!("lib-{feature}"));
    let mut c = util::cmd(
        "cargo",
        &[
            "build",
            "--quiet",
            "-p",
            "stopwire-ffi",
            "--release",
            "--no-default-features",
            "--features",
            feature,
            "--target",
            target,
        ],
    );
    c.env("CARGO_TARGET_DIR", &dir)
        .env("STOPWIRE_CAPACITY", CAPACITY)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    run(c)?;
    Ok(dir.join(target).join("release/libstopwire.a"))
}

/// Configures and builds firmware/c-only with CMake; returns the build directory.
fn build_firmware(board: &Board, feature: &str, port: bool, library: &Path) -> Result<PathBuf> {
    let build = work_dir().join(format!("{}-{feature}", board.target));
    let src = source_dir();
    let name = format!("c-firmware {} {feature}", board.target);
    let mut configure = Command::new("cmake");
    configure
        .arg("-S")
        .arg(&src)
        .arg("-B")
        .arg(&build)
        .arg(format!(
            "-DCMAKE_TOOLCHAIN_FILE={}",
            path_str(&src.join("arm-none-eabi.cmake"))
        ))
        .arg(format!("-DSW_RUST_TARGET={}", board.target))
        .arg(format!("-DSTOPWIRE_LIBRARY={}", path_str(library)))
        .arg(format!("-DSTOPWIRE_CAPACITY={CAPACITY}"))
        .arg(format!(
            "-DSTOPWIRE_PORT={}",
            if port { "ON" } else { "OFF" }
        ))
        .arg(format!(
            "-DSW_MEMORY_LAYOUT={}",
            path_str(&src.join(board.memory))
        ))
        .arg(format!("-DSW_FIRMWARE_NAME={name}"))
        .arg("-DCMAKE_BUILD_TYPE=")
        .arg("--log-level=WARNING");
    run(configure)?;
    let mut make = Command::new("cmake");
    make.arg("--build").arg(&build);
    run(make)?;
    Ok(build)
}

/// Runs `elf` on the board's QEMU machine with semihosting, under a time limit.
fn qemu(board: &Board, elf: &Path) -> Command {
    let mut c = Command::new("timeout");
    c.args([
        QEMU_LIMIT_SECS,
        "qemu-system-arm",
        "-machine",
        board.machine,
    ]);
    if let Some(cpu) = board.cpu {
        c.args(["-cpu", cpu]);
    }
    c.args([
        "-nographic",
        "-semihosting-config",
        "enable=on,target=native",
        // Instruction-count time: the same interleavings of interrupts and thread mode each run.
        "-icount",
        "shift=4",
        "-kernel",
    ])
    .arg(elf);
    c
}

/// Bytes of flash the library's objects take in the linked image: the sizes of the input sections
/// from `libstopwire.a` that GNU ld placed in `.text` (code and read-only data), `.ARM.exidx` and
/// `.data` (whose initial values are stored in flash), read from the link map.
fn library_flash_bytes(map: &str) -> Option<u64> {
    let placed = &map[map.find("Linker script and memory map")?..];
    let mut output_section = "";
    let mut total = 0u64;
    let mut lines = placed.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with('.') {
            output_section = line.split_whitespace().next().unwrap_or("");
        }
        let mut fields: Vec<&str> = line.split_whitespace().collect();
        // A long input-section name stands alone; its address, size and file follow on the
        // next line.
        if fields.len() == 1 && line.starts_with(' ') && !line.starts_with("  ") {
            if let Some(next) = lines.peek() {
                if next.trim_start().starts_with("0x") {
                    fields.extend(next.split_whitespace());
                    lines.next();
                }
            }
        }
        if fields.len() < 4 || !fields[1].starts_with("0x") || !fields[3].contains("libstopwire.a(")
        {
            continue;
        }
        if !matches!(output_section, ".text" | ".ARM.exidx" | ".data") {
            continue;
        }
        total += u64::from_str_radix(fields[2].trim_start_matches("0x"), 16).ok()?;
    }
    Some(total)
}

/// The features that must not build: the error each gives.
fn check_feature_errors() -> Result<Counts> {
    let cases: [(&[&str], &str, &str); 2] = [
        (
            &[
                "--no-default-features",
                "--features",
                "critical-section-single-core,critical-section-port",
                "--target",
                "thumbv7m-none-eabi",
            ],
            "thumbv7m-none-eabi",
            "choose one critical section",
        ),
        (
            &["--features", "critical-section-port"],
            "host",
            "the critical-section features are for firmware builds",
        ),
    ];
    let mut counts = Counts::default();
    for (args, on, want) in cases {
        let mut c = util::cmd("cargo", &["check", "--quiet", "-p", "stopwire-ffi"]);
        c.args(args)
            .env("CARGO_TARGET_DIR", work_dir().join("lib-errors"));
        let o = c
            .output()
            .map_err(|e| format!("cannot start cargo check: {e}"))?;
        let stderr = String::from_utf8_lossy(&o.stderr);
        let ok = !o.status.success() && stderr.contains(want);
        println!(
            "feature check {} on {on}: {}",
            args.join(" "),
            if ok {
                "refused as documented"
            } else {
                "FAILED"
            }
        );
        if ok {
            counts.passed += 1;
        } else {
            eprintln!("{stderr}");
            counts.failed += 1;
        }
    }
    Ok(counts)
}

/// `cargo xtask c-firmware`: the C-only firmware on four emulated cores, both features.
pub(crate) fn c_firmware() -> Result<Counts> {
    ensure_debian(&PACKAGES)?;
    let targets: Vec<&str> = BOARDS.iter().map(|b| b.target).collect();
    ensure_targets(&targets)?;
    let mut counts = check_feature_errors()?;
    let mut failures = Vec::new();
    let mut sizes = Vec::new();
    for board in &BOARDS {
        for (feature, port) in VARIANTS {
            let library = build_library(board.target, feature)?;
            let build = build_firmware(board, feature, port, &library)?;
            let elf = build.join("c-firmware.elf");
            match run(qemu(board, &elf)) {
                Ok(c) if c.passed > 0 => counts.add(c),
                Ok(_) => failures.push(format!("{} {feature}: no result line", board.machine)),
                Err(e) => {
                    failures.push(format!("{} {feature}: {e}", board.machine));
                    counts.failed += 1;
                }
            }
            let size = output({
                let mut c = Command::new("arm-none-eabi-size");
                c.arg(&elf);
                c
            })?;
            let map_path = build.join("c-firmware.map");
            let map = fs::read_to_string(&map_path)
                .map_err(|e| format!("read {}: {e}", map_path.display()))?;
            let library_bytes = library_flash_bytes(&map)
                .ok_or_else(|| format!("{}: no memory map", map_path.display()))?;
            // arm-none-eabi-size: "text data bss dec hex filename".
            let f: Vec<&str> = size
                .lines()
                .nth(1)
                .unwrap_or("")
                .split_whitespace()
                .collect();
            sizes.push(format!(
                "target={} feature={feature} machine={} text={} data={} bss={} stopwire_flash={library_bytes}",
                board.target,
                board.machine,
                f.first().unwrap_or(&"?"),
                f.get(1).unwrap_or(&"?"),
                f.get(2).unwrap_or(&"?"),
            ));
        }
    }
    println!("\nC firmware images (arm-none-eabi-size; stopwire_flash: bytes of flash from libstopwire.a, from the link map; capacity {CAPACITY}):");
    for s in &sizes {
        println!("{s}");
    }
    if failures.is_empty() {
        Ok(counts)
    } else {
        Err(failures.join("; "))
    }
}

/// `firmware/embassy-rp`, the embassy example firmware: built as its README section says, not run.
fn embassy_example() -> Result {
    const TARGET: &str = "thumbv6m-none-eabi";
    ensure_targets(&[TARGET])?;
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => util::root().join(d).join("firmware"),
        None => util::root().join("target/firmware"),
    };
    let mut c = Command::new("cargo");
    c.args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "stopwire-embassy-rp",
        "--target",
        TARGET,
    ])
    .current_dir(util::root().join("firmware"))
    .env("CARGO_TARGET_DIR", &target_dir)
    // The link arguments come from firmware/.cargo/config.toml and the example's build script,
    // which a RUSTFLAGS variable would replace.
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS");
    run(c)?;
    let elf = target_dir.join(TARGET).join("release/stopwire-embassy-rp");
    let mut size = Command::new("arm-none-eabi-size");
    size.arg(&elf);
    println!("{}", output(size)?.trim_end());
    Ok(())
}

/// What `cargo xtask test` runs of this module.
pub(crate) fn test() -> Result<Counts> {
    let counts = c_firmware()?;
    embassy_example()?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::library_flash_bytes;
    use crate::util;

    /// The code of a Rust, TOML or linker-script text without its comments and blank lines.
    fn code_lines(text: &str) -> Vec<String> {
        let mut in_block = false;
        let mut lines = Vec::new();
        for line in text.lines() {
            let mut l = line.trim();
            if in_block {
                match l.find("*/") {
                    Some(end) => {
                        in_block = false;
                        l = l[end + 2..].trim();
                    }
                    None => continue,
                }
            }
            if let Some(start) = l.find("/*") {
                in_block = !l[start..].contains("*/");
                l = l[..start].trim();
            }
            for marker in ["//", "# "] {
                if let Some(at) = l.find(marker) {
                    l = l[..at].trim();
                }
            }
            if !l.is_empty() && l != "#" {
                lines.push(l.to_string());
            }
        }
        lines
    }

    /// The fenced blocks of the README section "On microcontrollers with embassy".
    fn readme_embassy_blocks() -> Vec<String> {
        let readme = std::fs::read_to_string(util::root().join("README.md")).expect("README.md");
        let start = readme
            .find("## On microcontrollers with embassy")
            .expect("the embassy section");
        let section = &readme[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
        section
            .split("```")
            .skip(1)
            .step_by(2)
            .map(|b| b.split_once('\n').map_or("", |(_, body)| body).to_string())
            .collect()
    }

    /// The README's step-by-step firmware is firmware/embassy-rp, which `cargo xtask test` builds:
    /// the same code in main.rs, build.rs and memory.x (comments aside), and the same
    /// dependencies except the path of stopwire.
    #[test]
    fn the_readme_embassy_firmware_is_the_example_that_is_built() {
        let example = util::root().join("firmware/embassy-rp");
        let read = |p: &str| std::fs::read_to_string(example.join(p)).expect(p);
        let blocks = readme_embassy_blocks();
        let find = |needle: &str| {
            blocks
                .iter()
                .find(|b| b.contains(needle))
                .unwrap_or_else(|| panic!("README: no block with {needle:?}"))
                .clone()
        };
        assert_eq!(
            code_lines(&find("async fn main")),
            code_lines(&read("src/main.rs")),
            "README main.rs vs firmware/embassy-rp/src/main.rs"
        );
        assert_eq!(
            code_lines(&find("rustc-link-arg-bins")),
            code_lines(&read("build.rs")),
            "README build.rs vs firmware/embassy-rp/build.rs"
        );
        assert_eq!(
            code_lines(&find("BOOT2")),
            code_lines(&read("memory.x")),
            "README memory.x vs firmware/embassy-rp/memory.x"
        );
        let manifest = code_lines(&read("Cargo.toml"));
        let readme_manifest = find("[dependencies]");
        let deps = readme_manifest
            .split("[dependencies]")
            .nth(1)
            .and_then(|d| d.split("\n[").next())
            .unwrap_or("");
        for dep in code_lines(deps) {
            if dep.starts_with("stopwire ") {
                continue;
            }
            assert!(
                manifest.contains(&dep),
                "README dependency `{dep}` is not in firmware/embassy-rp/Cargo.toml"
            );
        }
    }

    #[test]
    fn map_sizes_count_only_the_library_in_flash_sections() {
        let map = "\
Discarded input sections
 .text.unused   0x00000000       0x40 /x/libstopwire.a(a.o)
Linker script and memory map
.text           0x00000000     0x1000
 .text.main     0x00000010       0x20 CMakeFiles/main.c.obj
 .text.sw_with_cancel
                0x00000030       0x44 /x/libstopwire.a(b.o)
 .rodata        0x00000080       0x10 /x/libstopwire.a(b.o)
.data           0x20000000       0x8 load address 0x00001000
 .data          0x20000000       0x8 /x/libstopwire.a(b.o)
.bss            0x20000008       0x100
 .bss           0x20000008       0x100 /x/libstopwire.a(b.o)
";
        assert_eq!(library_flash_bytes(map), Some(0x44 + 0x10 + 0x8));
    }
}
