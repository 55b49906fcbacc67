//! The `stopwire-tower` steps of `cargo xtask test` that `cargo test --workspace` does not
//! cover: the crate with its `axum` feature (lints and the extractor's test), and the
//! three-service example of the README, run to its end (it exits non-zero if any of the
//! events it waits for does not come). Its services are hand-written, so neither protoc nor a
//! build script is needed.

use crate::util::{cmd, run, Counts, Result};

/// Runs the steps; the counts of the tests run.
pub(crate) fn test() -> Result<Counts> {
    run(cmd(
        "cargo",
        &[
            "clippy",
            "-p",
            "stopwire-tower",
            "--all-targets",
            "--features",
            "axum",
            "--",
            "-D",
            "warnings",
        ],
    ))?;
    let counts = run(cmd(
        "cargo",
        &[
            "test",
            "-p",
            "stopwire-tower",
            "--features",
            "axum",
            "--test",
            "axum",
        ],
    ))?;
    run(cmd(
        "cargo",
        &["run", "-p", "stopwire-tower", "--example", "three_services"],
    ))?;
    Ok(counts)
}
