//! Microcontroller tasks: the async layer's host tests, the rule-test firmware under QEMU on three
//! cores, the embassy firmware demo, and the footprint figures (docs/benchmark-ids.md).
//!
//! | task | what it does |
//! |---|---|
//! | `qemu` | builds `firmware/qemu-tests` for thumbv6m, thumbv7m and riscv32imc and runs it on `microbit`, `lm3s6965evb` and `virt`; each prints `qemu <machine>: N passed, M failed` |
//! | `firmware-demo` | builds and runs `firmware/demo` (embassy on lm3s6965evb, C cancels a task from an interrupt) |
//! | `footprint` | prints `target=<t> node_bytes=<n> text_bytes=<n> ram_bytes_per_context=<n>` per MCU target |
//!
//! Firmware is a cargo workspace of its own (`firmware/`) with its own target directory
//! (`$CARGO_TARGET_DIR/firmware`, or `target/firmware`), so its builds never contend with the
//! host's. Everything it needs is installed first, idempotently (docs/embedded.md).

use std::path::PathBuf;
use std::process::Command;

use crate::util::{self, ensure_debian, ensure_targets, output, run, Counts, Result};
use crate::MCU_TARGETS;

/// Debian packages for the emulators and the C cross compiler.
const PACKAGES: [&str; 3] = ["qemu-system-arm", "qemu-system-misc", "gcc-arm-none-eabi"];

/// Upper bound for one QEMU run (a hang is a failure, not a stuck CI job). Each run takes well
/// under a second when it works.
const QEMU_LIMIT_SECS: &str = "120";

/// How to run a firmware for `target` (docs/embedded.md): the machine's name and the command.
fn machine(target: &str) -> (&'static str, Vec<&'static str>) {
    const SEMIHOSTING: [&str; 2] = ["-semihosting-config", "enable=on,target=native"];
    match target {
        "thumbv7m-none-eabi" => (
            "lm3s6965evb",
            [
                "qemu-system-arm",
                "-cpu",
                "cortex-m3",
                "-machine",
                "lm3s6965evb",
                "-nographic",
                // Instruction-count time: the SysTick test sees the same interleavings each run.
                "-icount",
                "shift=4",
            ]
            .into_iter()
            .chain(SEMIHOSTING)
            .collect(),
        ),
        "thumbv6m-none-eabi" => (
            "microbit",
            [
                "qemu-system-arm",
                "-cpu",
                "cortex-m0",
                "-machine",
                "microbit",
                "-nographic",
                "-icount",
                "shift=4",
            ]
            .into_iter()
            .chain(SEMIHOSTING)
            .collect(),
        ),
        "riscv32imc-unknown-none-elf" => (
            "virt",
            [
                "qemu-system-riscv32",
                "-machine",
                "virt",
                "-cpu",
                "rv32",
                "-bios",
                "none",
                "-nographic",
            ]
            .into_iter()
            .chain(SEMIHOSTING)
            .collect(),
        ),
        other => panic!("no QEMU machine for {other}"),
    }
}

fn firmware_dir() -> PathBuf {
    util::root().join("firmware")
}

fn firmware_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join("firmware"),
        None => util::root().join("target").join("firmware"),
    }
}

/// `cargo build` in the firmware workspace.
fn build(package: &str, target: &str, profile: &str) -> Result {
    let mut c = Command::new("cargo");
    c.args([
        "build",
        "--quiet",
        "--profile",
        profile,
        "-p",
        package,
        "--target",
        target,
    ])
    .current_dir(firmware_dir())
    .env("CARGO_TARGET_DIR", firmware_target_dir())
    // The link scripts come from firmware/.cargo/config.toml's target rustflags, which a
    // RUSTFLAGS variable would replace.
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS");
    run(c).map(|_| ())
}

fn binary(target: &str, profile: &str, name: &str) -> PathBuf {
    firmware_target_dir().join(target).join(profile).join(name)
}

/// The QEMU command that runs `elf` for `target`, under a time limit.
fn qemu(target: &str, elf: &std::path::Path) -> Command {
    let (_, args) = machine(target);
    let mut c = Command::new("timeout");
    c.arg(QEMU_LIMIT_SECS).args(args).arg("-kernel").arg(elf);
    c
}

fn ensure_tools(targets: &[&str]) -> Result {
    ensure_debian(&PACKAGES)?;
    ensure_targets(targets)
}

/// The async layer on the host (feature `embassy`): mock-driver time, tokio, embassy-executor.
pub(crate) fn host_async() -> Result<Counts> {
    run(util::cmd(
        "cargo",
        &[
            "clippy",
            "-p",
            "stopwire",
            "--features",
            "embassy,defmt",
            "--lib",
            "--test",
            "embassy_async",
            "--",
            "-D",
            "warnings",
        ],
    ))?;
    run(util::cmd(
        "cargo",
        &[
            "clippy",
            "-p",
            "stopwire",
            "--no-default-features",
            "--features",
            "embassy,defmt",
            "--lib",
            "--target",
            "thumbv6m-none-eabi",
            "--",
            "-D",
            "warnings",
        ],
    ))?;
    run(util::cmd(
        "cargo",
        &[
            "test",
            "-p",
            "stopwire",
            "--features",
            "embassy",
            "--test",
            "embassy_async",
        ],
    ))
}

/// `cargo xtask qemu`: the rule-test firmware on three emulated cores.
pub(crate) fn qemu_suite() -> Result<Counts> {
    ensure_tools(&MCU_TARGETS)?;
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for target in MCU_TARGETS {
        build("stopwire-qemu-tests", target, "release")?;
        let elf = binary(target, "release", "stopwire-qemu-tests");
        let (name, _) = machine(target);
        match run(qemu(target, &elf)) {
            Ok(c) if c.passed > 0 => counts.add(c),
            Ok(_) => failures.push(format!("{name}: no test result printed")),
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                counts.failed += 1;
            }
        }
    }
    if failures.is_empty() {
        Ok(counts)
    } else {
        Err(failures.join("; "))
    }
}

/// `cargo xtask firmware-demo`: the embassy demo on lm3s6965evb; passes when it exits 0.
pub(crate) fn firmware_demo() -> Result<Counts> {
    const TARGET: &str = "thumbv7m-none-eabi";
    ensure_tools(&[TARGET])?;
    build("stopwire-embassy-demo", TARGET, "release")?;
    run(qemu(
        TARGET,
        &binary(TARGET, "release", "stopwire-embassy-demo"),
    ))?;
    println!("firmware-demo: 1 passed, 0 failed");
    Ok(Counts {
        passed: 1,
        failed: 0,
    })
}

/// `cargo xtask footprint`: one line per MCU target (docs/benchmark-ids.md).
pub(crate) fn footprint() -> Result {
    ensure_tools(&MCU_TARGETS)?;
    let mut lines = Vec::new();
    for target in MCU_TARGETS {
        build("stopwire-footprint", target, "footprint")?;
        let text = |name: &str| -> Result<u64> {
            let path = binary(target, "footprint", name);
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            section_size(&bytes, ".text").ok_or_else(|| format!("{}: no .text", path.display()))
        };
        let text_bytes = text("with")?.saturating_sub(text("without")?);
        let sizes = output(qemu(target, &binary(target, "footprint", "sizes")))?;
        let field = |key: &str| -> Result<u64> {
            sizes
                .split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
                .ok_or_else(|| format!("{target}: the sizes firmware printed no {key}: {sizes:?}"))
        };
        lines.push(format!(
            "target={target} node_bytes={} text_bytes={text_bytes} ram_bytes_per_context={}",
            field("node_bytes")?,
            field("ram_bytes_per_context")?
        ));
    }
    println!();
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

/// Everything above that `cargo xtask test` runs.
pub(crate) fn test() -> Result<Counts> {
    let mut counts = host_async()?;
    counts.add(qemu_suite()?);
    counts.add(firmware_demo()?);
    footprint()?;
    Ok(counts)
}

/// The size of the section `name` of a 32-bit little-endian ELF file (the three MCU targets').
fn section_size(elf: &[u8], name: &str) -> Option<u64> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    // ELFCLASS32, little-endian.
    if elf.get(..6)? != b"\x7fELF\x01\x01" {
        return None;
    }
    let shoff = u32_at(0x20)? as usize;
    let shentsize = usize::from(u16_at(0x2E)?);
    let shnum = usize::from(u16_at(0x30)?);
    let shstrndx = usize::from(u16_at(0x32)?);
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u32_at(header(shstrndx) + 16)? as usize;
    (0..shnum).find_map(|i| {
        let h = header(i);
        let name_at = strtab + u32_at(h)? as usize;
        let end = name_at + elf.get(name_at..)?.iter().position(|&b| b == 0)?;
        if &elf[name_at..end] != name.as_bytes() {
            return None;
        }
        u32_at(h + 20).map(u64::from)
    })
}
