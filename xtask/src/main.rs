//! The project's task runner: `cargo xtask <task>` (a cargo alias in `.cargo/config.toml`).
//!
//! | task | what it does |
//! |---|---|
//! | `test` | every test the project has, after installing what it needs (the README's test command) |
//! | `check` | formatting, clippy and the cross builds only |
//! | `bench-report` | `docs/benchmarks.md`, `docs/benchmarks.svg` and the README table from criterion's results and the peers' |
//! | `bench-peers` | the Go and C++ peers of the benchmarks, measured into `target/stopwire-bench/peers.json` ([`mod@bench`]) |
//! | `qemu`, `firmware-demo`, `footprint` | microcontroller suites, demo and figures ([`embedded`]) |
//! | `latency`, `smp` | longest critical section per operation on the MCU targets; rule checks on two cores ([`realtime`]) |
//! | `header`, `install`, `c-test`, `c-bench` | the C API: header generation, installation, C/C++ suites, C timings ([`ctest`]) |
//! | `c-firmware` | the C-only firmware under QEMU on four Cortex-M cores; `test` also builds the embassy example firmware ([`cfirmware`]) |
//! | `package` | the rustdoc of the workspace with `-D warnings`, the docs.rs build, `cargo package` of both crates ([`package`]) |
//! | `verify`, `fuzz` | verification in depth: loom, Miri, ThreadSanitizer, model, fuzz, soak ([`verify`]) |

mod bench;
mod cfirmware;
mod ctest;
mod embedded;
mod package;
mod realtime;
mod tower;
mod util;
mod verify;

use std::process::ExitCode;

use util::{cmd, ensure_nightly, ensure_targets, run, Counts, Result};

/// Targets the core must build for (SPEC T1, docs/embedded.md).
pub(crate) const MCU_TARGETS: [&str; 3] = [
    "thumbv6m-none-eabi",
    "thumbv7m-none-eabi",
    "riscv32imc-unknown-none-elf",
];

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  test    install what is needed, then run every test (formatting, clippy, unit, rule,
          stress, doc, no_std cross builds, Miri, loom)
  check   formatting, clippy and the no_std cross builds only
  bench-report  docs/benchmarks.md, docs/benchmarks.svg and the README table from the
          results of `cargo bench --bench context` and of bench-peers (--partial: allow
          missing workloads)
  bench-peers [--quick]  build and run the Go context and C++20 stop_token peers of the
          benchmarks (those whose toolchain is present) into target/stopwire-bench/peers.json
  qemu    the rule-test firmware on QEMU: microbit (thumbv6m), lm3s6965evb (thumbv7m),
          virt (riscv32imc)
  firmware-demo  the embassy firmware demo on lm3s6965evb (C cancels a task from an interrupt)
  footprint  node, flash and RAM bytes per context for the three MCU targets
  latency [--max INSNS]  longest critical section per operation, in instructions, on the
          three MCU targets under QEMU -icount (N = 64 and 4096); --max fails above INSNS
  smp     rule checks on two harts sharing one arena: QEMU virt -smp 2, riscv32imac and
          riscv32imc (the latter fails on today's engine: issue 11, item 1)
  header  regenerate include/stopwire.h with cbindgen 0.29.4
  install --prefix DIR  headers, libstopwire.a/.so, stopwire.pc and the CMake package into DIR
  c-test  the C API: header checks, C and C++ suites (plain, ASan/UBSan, valgrind), install
  c-bench  C-side timings of sw_is_done, sw_err and create+release
  c-firmware  the C-only firmware (CMake, arm-none-eabi-gcc, libstopwire.a) on QEMU for
          thumbv6m, thumbv7m, thumbv7em-hf and thumbv8m.main, both critical-section features
  package  rustdoc of the workspace (-D warnings), the docs.rs build, cargo package of both crates
  verify [TIER...]  verification in depth, one summary line per tier: loom (interleavings per
          model), mutants (each engine mutation caught by a loom model), miri (strict
          provenance, tree borrows), tsan, model (3*10^6 operations), fuzz (1 min per
          target), soak (60 s); names of tiers run only those
  fuzz [--minutes N]  the libFuzzer targets of fuzz/ (model, capi), N minutes each (default 1)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("check") => check().map(|_| Counts::default()),
        Some("bench-report") => bench::report(&args[1..]).map(|_| Counts::default()),
        Some("bench-peers") => bench::peers(&args[1..]).map(|_| Counts::default()),
        Some("qemu") => embedded::qemu_suite(),
        Some("firmware-demo") => embedded::firmware_demo(),
        Some("footprint") => embedded::footprint().map(|_| Counts::default()),
        Some("latency") => realtime::latency(&args[1..]).map(|_| Counts::default()),
        Some("smp") => realtime::smp(),
        Some("header") => ctest::header().map(|_| Counts::default()),
        Some("install") => ctest::install(&args[1..]).map(|_| Counts::default()),
        Some("c-test") => ctest::c_test(),
        Some("c-bench") => ctest::c_bench().map(|_| Counts::default()),
        Some("c-firmware") => cfirmware::c_firmware(),
        Some("package") => package::check().map(|_| Counts::default()),
        Some("verify") => verify::verify(&args[1..]),
        Some("fuzz") => verify::fuzz(&args[1..]).map(|_| Counts::default()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(c) => {
            // Only tasks that ran tests have counts to report.
            if c.passed + c.failed > 0 {
                println!("\nstopwire: {} passed, {} failed", c.passed, c.failed);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nxtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Formatting, lints and cross builds.
fn check() -> Result {
    ensure_targets(&MCU_TARGETS)?;
    run(cmd("cargo", &["fmt", "--all", "--", "--check"]))?;
    run(cmd(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    ))?;
    run(cmd(
        "cargo",
        &[
            "clippy",
            "-p",
            "stopwire",
            "--no-default-features",
            "--lib",
            "--",
            "-D",
            "warnings",
        ],
    ))?;
    for t in MCU_TARGETS {
        run(cmd(
            "cargo",
            &[
                "build",
                "-p",
                "stopwire",
                "--no-default-features",
                "--release",
                "--target",
                t,
            ],
        ))?;
        // The code paths without compare-and-swap exist only on these targets: lint them too.
        run(cmd(
            "cargo",
            &[
                "clippy",
                "-p",
                "stopwire",
                "--no-default-features",
                "--lib",
                "--target",
                t,
                "--",
                "-D",
                "warnings",
            ],
        ))?;
    }
    Ok(())
}

/// `cargo test -p stopwire` with `args`.
fn stopwire_test(args: &[&str]) -> Result<Counts> {
    run(cmd("cargo", &[&["test", "-p", "stopwire"], args].concat()))
}

/// Every test, in the order a failure is cheapest to find.
fn test() -> Result<Counts> {
    ensure_nightly(&["miri", "rust-src"])?;
    check()?;
    let mut counts = Counts::default();
    // Host tests with the default features (spin lock, std clock), then without `std` (the
    // critical-section lock of the microcontroller builds, on the host's std implementation).
    counts.add(run(cmd("cargo", &["test", "--workspace"]))?);
    counts.add(stopwire_test(&[
        "--no-default-features",
        "--tests",
        "--lib",
    ])?);
    // Leak diagnostics as firmware builds them (no `std`: the critical-section lock, no default
    // clock), then with `log` (full arena and leaks logged), the async group under
    // embassy-executor.
    counts.add(stopwire_test(&[
        "--no-default-features",
        "--features",
        "diagnostics",
        "--test",
        "diagnostics",
    ])?);
    counts.add(stopwire_test(&[
        "--features",
        "log,embassy",
        "--test",
        "diagnostics",
        "--test",
        "group",
    ])?);
    // Miri over the unit tests and the Miri-sized subset of the rule tests.
    let mut miri = cmd(
        "cargo",
        &[
            "+nightly", "miri", "test", "-p", "stopwire", "--lib", "--test", "miri",
        ],
    );
    miri.env("MIRIFLAGS", "-Zmiri-strict-provenance");
    counts.add(run(miri)?);
    // loom models of every race of the design, the waiting models included, on the code paths
    // of hosts and again on those of chips without compare-and-swap (RP2040-class: the marking
    // protocol of src/engine/walk.rs), compiled on the host (issue 11).
    for (flags, dir) in [
        ("--cfg loom", "target/loom"),
        ("--cfg loom --cfg stopwire_no_cas", "target/loom-no-cas"),
    ] {
        let mut loom = cmd(
            "cargo",
            &[
                "test",
                "-p",
                "stopwire",
                "--release",
                "--features",
                "async",
                "--test",
                "loom",
            ],
        );
        loom.env("RUSTFLAGS", flags)
            .env("CARGO_TARGET_DIR", util::root().join(dir))
            .env("LOOM_MAX_PREEMPTIONS", "3");
        counts.add(run(loom)?);
    }
    // The C and C++ API: header, suites under sanitizers and valgrind, install.
    counts.add(ctest::c_test()?);
    // The C-only firmware on QEMU and the embassy example firmware (build only).
    counts.add(cfirmware::test()?);
    // The async layer on the host, the QEMU suites, the firmware demo and the footprint.
    counts.add(embedded::test()?);
    // Two harts on one arena (riscv32imac), and the critical-section lengths (issue 11).
    counts.add(realtime::test()?);
    counts.add(tower::test()?);
    // Every benchmark routine once (criterion's test mode): the benches build and their
    // release-everything asserts hold; no timing is judged here.
    bench::smoke()?;
    package::check()?; // the rustdoc, the docs.rs build and `cargo package`: no tests counted
    if counts.failed > 0 {
        return Err(format!("{} tests failed", counts.failed));
    }
    Ok(counts)
}
