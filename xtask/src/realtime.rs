//! Real-time and multi-core (issue 11): how long the engine masks interrupts, and whether its
//! rules hold on two cores.
//!
//! | task | what it does |
//! |---|---|
//! | `latency [--max INSNS]` | builds `firmware/latency` for the three MCU targets, runs it under QEMU `-icount`, and prints the longest critical section of each operation in instructions: the firmware's calibration lines, a table per target (N = 64 and N = 4096 side by side), one table for the README, and the firmware's lines per case (`latency ... insns=<longest>`; `detail`: sections, their sum, the whole operation; `sections`: which was the longest, the first few and the last); with `--max`, fails when a figure is above `INSNS` |
//! | `smp` | builds `firmware/smp` for riscv32imac (the engine's compare-and-swap paths) and riscv32imc (its paths without) and runs each on QEMU `virt -smp 2`: rule checks on hart 0 while hart 1 and its timer interrupt work in the same subtrees; each prints `qemu virt -smp 2 (<target>): N passed, M failed` |
//!
//! `cargo xtask test` runs both two-hart suites and the latency table held to 1000 instructions
//! a section ([`test()`]).
//!
//! Machines and counters of `latency`:
//!
//! | target | machine | counter |
//! |---|---|---|
//! | thumbv6m, thumbv7m | `mps2-an385` (a Cortex-M3 core: thumbv6m code runs on it instruction for instruction, and the micro:bit's 16 KiB cannot hold a 4096-slot arena), `-icount shift=10` | CMSDK APB timer 0 at 25 MHz: 25.6 ticks per instruction |
//! | riscv32imc | `virt`, `-icount shift=0` | `minstret` |
//!
//! The method (the firmware is its own critical-section provider and reads the counter at both
//! ends of every section) is described in `firmware/latency/src/cs.rs`; the two-hart protocol in
//! `firmware/smp/src/main.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::util::{self, ensure_debian, ensure_targets, output, run, Counts, Result};
use crate::MCU_TARGETS;

const PACKAGE: &str = "stopwire-latency";

/// The two builds of `firmware/smp`: with compare-and-swap, and without (RP2040's situation).
const SMP_TARGETS: [&str; 2] = [
    "riscv32imac-unknown-none-elf",
    "riscv32imc-unknown-none-elf",
];

/// The cases in table order, with what they are at N = 64 and at N = 4096 (firmware's `SIZES`).
const CASES: [(&str, &str); 7] = [
    ("cancel_flat", "cancel of a flat tree (63 / 4096 nodes)"),
    (
        "cancel_deadlines",
        "cancel of a flat tree of deadline owners (63 / 4096 nodes)",
    ),
    ("cancel_chain", "cancel of a chain (63 / 512 deep)"),
    (
        "release_cascade",
        "release cascade up a chain of zombies (63 / 512)",
    ),
    (
        "deadline_insert",
        "deadline insert, later ones pending (50 / 1000)",
    ),
    (
        "deadline_scan",
        "deadline insert that scans a lane, later ones in it (50 / 1000)",
    ),
    ("expire", "`expire` of passed deadlines (50 / 1000)"),
];

const SIZES: [u32; 2] = [64, 4096];

/// The machine, and the QEMU arguments before `-kernel`, for `target`.
fn machine(target: &str) -> (&'static str, Vec<&'static str>) {
    const SEMIHOSTING: [&str; 3] = [
        "-nographic",
        "-semihosting-config",
        "enable=on,target=native",
    ];
    let (name, args): (&str, &[&str]) = match target {
        "thumbv6m-none-eabi" | "thumbv7m-none-eabi" => (
            "mps2-an385",
            &[
                "qemu-system-arm",
                "-machine",
                "mps2-an385",
                // 1024 ns of virtual time per instruction: the firmware's conversion assumes it,
                // and its calibration fails the run if QEMU is run otherwise.
                "-icount",
                "shift=10",
            ],
        ),
        "riscv32imc-unknown-none-elf" => (
            "virt",
            &[
                "qemu-system-riscv32",
                "-machine",
                "virt",
                "-cpu",
                "rv32",
                "-bios",
                "none",
                "-icount",
                "shift=0",
            ],
        ),
        other => panic!("no QEMU machine for {other}"),
    };
    (name, args.iter().copied().chain(SEMIHOSTING).collect())
}

fn firmware_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join("firmware"),
        None => util::root().join("target").join("firmware"),
    }
}

/// Builds `package` for `target` (release profile: opt-level "s", LTO, as shipped firmware).
fn build(package: &str, target: &str) -> Result<PathBuf> {
    let mut c = Command::new("cargo");
    c.args([
        "build",
        "--quiet",
        "--release",
        "-p",
        package,
        "--target",
        target,
    ])
    .current_dir(util::root().join("firmware"))
    .env("CARGO_TARGET_DIR", firmware_target_dir())
    // The link scripts come from firmware/.cargo/config.toml's target rustflags (and the smp
    // crate's build script), which a RUSTFLAGS variable would replace.
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS");
    run(c)?;
    Ok(firmware_target_dir()
        .join(target)
        .join("release")
        .join(package))
}

/// `key=value` fields of a line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// What one target's run printed.
struct Run {
    machine: &'static str,
    calibration: String,
    /// (n, case) -> instructions of the longest section.
    insns: BTreeMap<(u32, String), u64>,
    /// (n, case) -> sections the operation took.
    sections: BTreeMap<(u32, String), u64>,
    lines: Vec<String>,
}

fn measure(target: &str) -> Result<Run> {
    let elf = build(PACKAGE, target)?;
    let (machine, args) = machine(target);
    let mut c = Command::new("timeout");
    c.arg("120").args(&args).arg("-kernel").arg(&elf);
    let out = output(c).map_err(|e| format!("{target} on {machine}: {e}"))?;
    let mut r = Run {
        machine,
        calibration: String::new(),
        insns: BTreeMap::new(),
        sections: BTreeMap::new(),
        lines: Vec::new(),
    };
    for line in out.lines() {
        let key = || -> Option<(u32, String)> {
            Some((
                field(line, "n")?.parse().ok()?,
                field(line, "case")?.to_owned(),
            ))
        };
        if line.starts_with("calibration ") {
            r.calibration = line.to_owned();
        } else if line.starts_with("latency ") {
            let k = key().ok_or_else(|| format!("{target}: unreadable line {line:?}"))?;
            let n = field(line, "insns").and_then(|v| v.parse().ok());
            r.insns
                .insert(k, n.ok_or_else(|| format!("{target}: {line:?}"))?);
            r.lines.push(line.to_owned());
        } else if line.starts_with("detail ") {
            if let (Some(k), Some(s)) = (key(), field(line, "sections")) {
                r.sections.insert(k, s.parse().unwrap_or(0));
            }
            r.lines.push(line.to_owned());
        } else if line.starts_with("sections ") {
            r.lines.push(line.to_owned());
        }
    }
    for (case, _) in CASES {
        for n in SIZES {
            if !r.insns.contains_key(&(n, case.to_owned())) {
                return Err(format!("{target}: no figure for {case} at N = {n}:\n{out}"));
            }
        }
    }
    Ok(r)
}

fn cell(r: &Run, n: u32, case: &str) -> String {
    let k = (n, case.to_owned());
    let insns = r.insns[&k];
    match r.sections.get(&k) {
        Some(&s) if s > 1 => format!("{insns} ({s} sections)"),
        _ => insns.to_string(),
    }
}

/// `cargo xtask latency [--max INSNS]`.
pub(crate) fn latency(args: &[String]) -> Result {
    let max: Option<u64> = match args {
        [] => None,
        [flag, v] if flag == "--max" => Some(v.parse().map_err(|_| format!("--max {v}?"))?),
        _ => return Err("usage: cargo xtask latency [--max INSNS]".into()),
    };
    ensure_debian(&["qemu-system-arm", "qemu-system-misc"])?;
    ensure_targets(&MCU_TARGETS)?;
    let runs = MCU_TARGETS
        .iter()
        .map(|t| measure(t).map(|r| (*t, r)))
        .collect::<Result<Vec<_>>>()?;

    println!("\nLongest critical section, instructions (interrupts masked; QEMU -icount)");
    for (target, r) in &runs {
        println!("\n{target} on {}\n{}", r.machine, r.calibration);
        println!("| case | N = 64 | N = 4096 |\n|---|---|---|");
        for (case, what) in CASES {
            println!(
                "| {what} | {} | {} |",
                cell(r, 64, case),
                cell(r, 4096, case)
            );
        }
    }

    println!("\nREADME table:\n");
    let mut head = String::from("| case |");
    let mut rule = String::from("|---|");
    for (target, _) in &runs {
        let short = target.split('-').next().unwrap_or(target);
        head.push_str(&format!(" {short} N=64 | {short} N=4096 |"));
        rule.push_str("---|---|");
    }
    println!("{head}\n{rule}");
    for (case, what) in CASES {
        let mut row = format!("| {what} |");
        for (_, r) in &runs {
            row.push_str(&format!(
                " {} | {} |",
                cell(r, 64, case),
                cell(r, 4096, case)
            ));
        }
        println!("{row}");
    }

    println!();
    let mut over = Vec::new();
    for (target, r) in &runs {
        for l in &r.lines {
            println!("{l}");
        }
        if let Some(max) = max {
            over.extend(
                r.insns
                    .iter()
                    .filter(|(_, &v)| v > max)
                    .map(|((n, case), v)| format!("{target} n={n} {case}: {v}")),
            );
        }
    }
    match max {
        Some(max) if !over.is_empty() => Err(format!(
            "{} figures above {max} instructions: {}",
            over.len(),
            over.join("; ")
        )),
        _ => Ok(()),
    }
}

/// Runs `firmware/smp` built for `target` on two harts; its pass/fail line is counted.
fn smp_suite(target: &str) -> Result<Counts> {
    let elf = build("stopwire-smp", target)?;
    let mut c = Command::new("timeout");
    // A hang is a failure. A run takes 1 to 3 s on an idle 2-core machine (virtual time follows
    // the host's clock here: the race test needs a clock that moves during a cancel walk).
    c.args([
        "300",
        "qemu-system-riscv32",
        "-machine",
        "virt",
        "-cpu",
        "rv32",
    ])
    .args(["-smp", "2", "-bios", "none", "-nographic"])
    .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
    .arg(&elf);
    let counts = run(c)?;
    if counts.passed + counts.failed == 0 {
        return Err(format!("smp {target}: no test result printed"));
    }
    Ok(counts)
}

/// `cargo xtask smp`: both builds; fails if either fails.
///
/// Before the stepped engine (9a4abd7) the riscv32imc build failed `c4_k3_k6_...` in every run:
/// a check that found the deadline passed reported `DeadlineExceeded` without recording it on
/// targets without compare-and-swap, and a cancel walk on the other hart then recorded
/// `Canceled` (issue 11, item 1). The marking protocol of `src/engine/walk.rs` fixed it.
pub(crate) fn smp() -> Result<Counts> {
    ensure_debian(&["qemu-system-misc"])?;
    ensure_targets(&SMP_TARGETS)?;
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for target in SMP_TARGETS {
        match smp_suite(target) {
            Ok(c) => counts.add(c),
            Err(e) => {
                failures.push(e);
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

/// The bound of issue 11 on every critical section, in instructions, that `cargo xtask test`
/// holds the latency table to.
pub(crate) const MAX_SECTION_INSNS: u64 = 1000;

/// What `cargo xtask test` runs: the two-hart suite in both builds (with and without
/// compare-and-swap), and the latency table with every figure held to [`MAX_SECTION_INSNS`].
pub(crate) fn test() -> Result<Counts> {
    let counts = smp()?;
    latency(&["--max".to_owned(), MAX_SECTION_INSNS.to_string()])?;
    Ok(counts)
}
