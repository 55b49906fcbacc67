//! `cargo xtask verify`: every tier of verification in depth, one summary line per tier; and
//! `cargo xtask fuzz [--minutes N]`: the libFuzzer targets of `fuzz/`.
//!
//! | tier | what it runs | what it proves |
//! |---|---|---|
//! | `loom` | `tests/loom.rs` under `--cfg loom`, `LOOM_MAX_PREEMPTIONS` = [`LOOM_PREEMPTIONS`] | every interleaving (up to that many preemptions) of the modelled races keeps the rules |
//! | `miri` | lib unit tests + `tests/miri.rs` under Miri, strict provenance, then tree borrows too | no undefined behaviour on the paths they take |
//! | `tsan` | `--lib --tests` under ThreadSanitizer (nightly, `-Zbuild-std`) | no data race in the threaded tests (stress, soak, ...) |
//! | `model` | `tests/model.rs` with [`MODEL_OPS`] operations | engine == reference model of SPEC.md on random sequences |
//! | `fuzz` | both fuzz targets, [`FUZZ_SMOKE_MINUTES`] minute each | the same check on fuzzer-chosen inputs, raw API and C API |
//! | `soak` | `tests/soak.rs` for [`SOAK_SECS`] seconds | no lost cancellation, no leaked slot with two threads and the deadline driver |
//!
//! `cargo xtask verify loom model` runs only the tiers named.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use crate::util::{cmd, ensure_nightly, have, root, run, Counts, Result};

/// Preemption bound of the loom tier (loom's own default is unbounded, too slow to finish).
pub(crate) const LOOM_PREEMPTIONS: &str = "2";
/// Operations of the model tier (`cargo xtask test` runs 10^5).
pub(crate) const MODEL_OPS: &str = "3000000";
/// Minutes per fuzz target in the verify tier.
pub(crate) const FUZZ_SMOKE_MINUTES: u64 = 1;
/// Duration of the soak tier.
pub(crate) const SOAK_SECS: &str = "60";
/// Arena capacity of the C API in the fuzz build: small, so that it fills up (SPEC A3).
const FUZZ_C_CAPACITY: &str = "40";
/// The targets of `fuzz/Cargo.toml`.
const FUZZ_TARGETS: [&str; 2] = ["model", "capi"];

const TIERS: [&str; 6] = ["loom", "miri", "tsan", "model", "fuzz", "soak"];

/// What one tier did.
struct Outcome {
    tier: &'static str,
    ok: bool,
    secs: f64,
    figures: String,
}

/// Runs `c`, streaming its output, and returns every line it printed (stdout and stderr).
fn run_lines(mut c: Command) -> (bool, Vec<String>) {
    let what = format!("{c:?}");
    println!("\n==> {what}");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut child = match c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cannot start {what}: {e}");
            return (false, Vec::new());
        }
    };
    let pump = |r: Box<dyn Read + Send>, err: bool, lines: Arc<Mutex<Vec<String>>>| {
        thread::spawn(move || {
            for line in BufReader::new(r).lines().map_while(std::result::Result::ok) {
                if err {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
                lines.lock().expect("lines").push(line);
            }
        })
    };
    let out = pump(
        Box::new(child.stdout.take().expect("piped")),
        false,
        lines.clone(),
    );
    let err = pump(
        Box::new(child.stderr.take().expect("piped")),
        true,
        lines.clone(),
    );
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    out.join().ok();
    err.join().ok();
    let lines = std::mem::take(&mut *lines.lock().expect("lines"));
    (ok, lines)
}

/// Sums libtest's `test result:` lines: (passed, failed).
fn test_counts(lines: &[String]) -> (u64, u64) {
    let mut passed = 0;
    let mut failed = 0;
    for l in lines.iter().filter(|l| l.starts_with("test result:")) {
        let num = |word: &str| -> u64 {
            l.find(word)
                .and_then(|at| l[..at].split_whitespace().last()?.parse().ok())
                .unwrap_or(0)
        };
        passed += num(" passed");
        failed += num(" failed");
    }
    (passed, failed)
}

/// The last line that starts with `prefix`, without it.
fn last_with<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix(prefix))
}

fn tier_loom() -> (bool, String) {
    let mut c = cmd(
        "cargo",
        &[
            "test",
            "-p",
            "stopwire",
            "--release",
            "--test",
            "loom",
            "--",
            "--nocapture",
        ],
    );
    c.env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", target_dir("loom"))
        .env("LOOM_MAX_PREEMPTIONS", LOOM_PREEMPTIONS)
        .env("LOOM_LOG", "loom::model=info");
    let (ok, lines) = run_lines(c);
    let (passed, failed) = test_counts(&lines);
    // loom logs `Completed in N iterations` once per model.
    let iterations: u64 = lines
        .iter()
        .filter_map(|l| {
            let at = l.find("Completed in ")?;
            l[at + 13..].split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    (
        ok && failed == 0,
        format!(
            "{passed} models passed, {failed} failed, {iterations} interleavings explored, LOOM_MAX_PREEMPTIONS={LOOM_PREEMPTIONS}"
        ),
    )
}

fn tier_miri() -> (bool, String) {
    let mut all_ok = true;
    let mut parts = Vec::new();
    for (name, flags) in [
        ("strict provenance", "-Zmiri-strict-provenance"),
        (
            "tree borrows",
            "-Zmiri-strict-provenance -Zmiri-tree-borrows",
        ),
    ] {
        let mut c = cmd(
            "cargo",
            &[
                "+nightly", "miri", "test", "-p", "stopwire", "--lib", "--test", "miri",
            ],
        );
        c.env("MIRIFLAGS", flags);
        let (ok, lines) = run_lines(c);
        let (passed, failed) = test_counts(&lines);
        all_ok &= ok && failed == 0;
        parts.push(format!("{name}: {passed} passed, {failed} failed"));
    }
    (all_ok, parts.join("; "))
}

fn tier_tsan() -> (bool, String) {
    // The flags go to the target's rustflags (not RUSTFLAGS): build scripts stay uninstrumented,
    // and the tests that run a nested `cargo build` (tests/examples.rs) do not inherit them.
    let mut c = cmd(
        "cargo",
        &[
            "+nightly",
            "test",
            "-Zbuild-std",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--config",
            "target.x86_64-unknown-linux-gnu.rustflags=[\"-Zsanitizer=thread\"]",
            "-p",
            "stopwire",
            "--no-fail-fast",
            "--lib",
            "--tests",
        ],
    );
    c.env("CARGO_TARGET_DIR", target_dir("tsan"))
        .env("TSAN_OPTIONS", "halt_on_error=1 second_deadlock_stack=1");
    let (ok, lines) = run_lines(c);
    let (passed, failed) = test_counts(&lines);
    let races = lines
        .iter()
        .filter(|l| l.contains("WARNING: ThreadSanitizer"))
        .count();
    (
        ok && failed == 0 && races == 0,
        format!("{passed} tests passed, {failed} failed, {races} ThreadSanitizer reports"),
    )
}

/// Runs one integration test of the core in release mode with `var=value` set; true when it
/// passed, with its output lines.
fn release_test(test: &str, var: &str, value: &str) -> (bool, Vec<String>) {
    let mut c = cmd(
        "cargo",
        &[
            "test",
            "-p",
            "stopwire",
            "--release",
            "--test",
            test,
            "--",
            "--nocapture",
        ],
    );
    c.env(var, value);
    let (ok, lines) = run_lines(c);
    let (_, failed) = test_counts(&lines);
    (ok && failed == 0, lines)
}

fn tier_model() -> (bool, String) {
    let (ok, lines) = release_test("model", "STOPWIRE_MODEL_OPS", MODEL_OPS);
    let figures = last_with(&lines, "model: ").unwrap_or("no figures printed");
    let coverage = last_with(&lines, "model coverage: ").unwrap_or("");
    (ok, format!("{figures}; {coverage}"))
}

fn tier_soak() -> (bool, String) {
    let (ok, lines) = release_test("soak", "STOPWIRE_SOAK_SECS", SOAK_SECS);
    let figures = last_with(&lines, "soak: ").unwrap_or("no figures printed");
    (ok, format!("{SOAK_SECS} s: {figures}"))
}

/// A target directory of its own under the workspace's (or `CARGO_TARGET_DIR`), so that tiers
/// with other flags do not rebuild each other's artifacts.
fn target_dir(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join(name)
}

/// Installs cargo-fuzz when it is missing (it needs nightly, which `ensure_nightly` provides).
fn ensure_cargo_fuzz() -> Result {
    ensure_nightly(&["rust-src"])?;
    if have("cargo-fuzz") {
        return Ok(());
    }
    run(cmd("cargo", &["install", "cargo-fuzz", "--locked"])).map(|_| ())
}

/// Seeds an empty corpus with a few long deterministic inputs, so that runs start with long
/// operation sequences instead of growing them byte by byte.
fn seed_corpus(dir: &std::path::Path) -> Result {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let empty = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .next()
        .is_none();
    if !empty {
        return Ok(());
    }
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in 0..16u64 {
        let len = 64 + 128 * i as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        std::fs::write(dir.join(format!("seed-{i:02}")), bytes)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Runs every fuzz target for `minutes` each; `(ok, one figure line per target)`.
fn fuzz_targets(minutes: u64) -> (bool, Vec<String>) {
    if let Err(e) = ensure_cargo_fuzz() {
        return (false, vec![format!("cannot install cargo-fuzz: {e}")]);
    }
    let mut all_ok = true;
    let mut figures = Vec::new();
    for t in FUZZ_TARGETS {
        let corpus = root().join("fuzz/corpus").join(t);
        if let Err(e) = seed_corpus(&corpus) {
            all_ok = false;
            figures.push(format!("{t}: {e}"));
            continue;
        }
        let secs = (minutes * 60).to_string();
        let mut c = cmd(
            "cargo",
            &[
                "+nightly",
                "fuzz",
                "run",
                t,
                &corpus.to_string_lossy(),
                "--",
                &format!("-max_total_time={secs}"),
                "-max_len=1024",
                "-len_control=0",
                "-print_final_stats=1",
            ],
        );
        c.env("STOPWIRE_CAPACITY", FUZZ_C_CAPACITY);
        let start = Instant::now();
        let (ok, lines) = run_lines(c);
        let runs = last_with(&lines, "stat::number_of_executed_units:")
            .map(str::trim)
            .unwrap_or("?");
        let ops = last_with(&lines, &format!("{t}-fuzz: ")).unwrap_or("no figures printed");
        all_ok &= ok;
        figures.push(format!(
            "{t}: {} in {:.0} s ({runs} executions; last progress line: {ops})",
            if ok { "no finding" } else { "FAILED" },
            start.elapsed().as_secs_f64()
        ));
    }
    (all_ok, figures)
}

/// `cargo xtask fuzz [--minutes N]`.
pub(crate) fn fuzz(args: &[String]) -> Result {
    let mut minutes = FUZZ_SMOKE_MINUTES;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--minutes" => {
                minutes = it
                    .next()
                    .and_then(|m| m.parse().ok())
                    .ok_or("--minutes needs a whole number")?;
            }
            other => return Err(format!("fuzz: unknown argument {other:?}")),
        }
    }
    let (ok, figures) = fuzz_targets(minutes);
    println!("\nfuzz summary ({minutes} min per target):");
    for f in &figures {
        println!("  {f}");
    }
    if ok {
        Ok(())
    } else {
        Err("a fuzz target failed (its input is in fuzz/artifacts/)".into())
    }
}

/// `cargo xtask verify [tier...]`: the counts are tiers passed and failed.
pub(crate) fn verify(args: &[String]) -> Result<Counts> {
    for a in args {
        if !TIERS.contains(&a.as_str()) {
            return Err(format!(
                "verify: unknown tier {a:?} (tiers: {})",
                TIERS.join(", ")
            ));
        }
    }
    let wanted = |t: &str| args.is_empty() || args.iter().any(|a| a == t);
    if wanted("miri") || wanted("tsan") {
        ensure_nightly(&["miri", "rust-src"])?;
    }
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for tier in TIERS {
        if !wanted(tier) {
            continue;
        }
        println!("\n######## verify tier: {tier} ########");
        let t = Instant::now();
        let (ok, figures) = match tier {
            "loom" => tier_loom(),
            "miri" => tier_miri(),
            "tsan" => tier_tsan(),
            "model" => tier_model(),
            "fuzz" => {
                let (ok, f) = fuzz_targets(FUZZ_SMOKE_MINUTES);
                (ok, f.join("; "))
            }
            _ => tier_soak(),
        };
        outcomes.push(Outcome {
            tier,
            ok,
            secs: t.elapsed().as_secs_f64(),
            figures,
        });
    }
    println!(
        "\nverify summary ({:.0} s in all):",
        started.elapsed().as_secs_f64()
    );
    for o in &outcomes {
        println!(
            "  {:<6} {:<4} {:>6.0} s  {}",
            o.tier,
            if o.ok { "ok" } else { "FAIL" },
            o.secs,
            o.figures
        );
    }
    let failed: Vec<&str> = outcomes.iter().filter(|o| !o.ok).map(|o| o.tier).collect();
    if failed.is_empty() {
        Ok(Counts {
            passed: outcomes.len() as u64,
            failed: 0,
        })
    } else {
        Err(format!("verify: tiers failed: {}", failed.join(", ")))
    }
}
