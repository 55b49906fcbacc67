//! Running commands, counting test results, installing what the tasks need (idempotently).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

/// The task's error: a message for the user.
pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// Test counts gathered from the output of the commands a task ran.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// A command run from the workspace root.
pub(crate) fn cmd(program: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args).current_dir(root());
    c
}

fn describe(c: &Command) -> String {
    let mut s = c.get_program().to_string_lossy().into_owned();
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Reads the counts a line reports: libtest's `test result: ok. 5 passed; 0 failed; ...` and the
/// plain `N passed, M failed` that the C and QEMU suites print.
fn scan(line: &str, counts: &Mutex<Counts>) {
    let number_before = |word: &str| -> Option<u64> {
        let at = line.find(word)?;
        line[..at].split_whitespace().last()?.parse().ok()
    };
    if line.starts_with("test result:") {
        let mut c = counts.lock().expect("counts lock");
        c.passed += number_before(" passed").unwrap_or(0);
        c.failed += number_before(" failed").unwrap_or(0);
    } else if let (Some(p), Some(f)) = (number_before(" passed,"), number_before(" failed")) {
        let mut c = counts.lock().expect("counts lock");
        c.passed += p;
        c.failed += f;
    }
}

fn pump(
    r: impl Read + Send + 'static,
    to_stderr: bool,
    counts: Arc<Mutex<Counts>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(std::result::Result::ok) {
            if to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
            scan(&line, &counts);
        }
    })
}

/// Runs `c`, streaming its output, and returns the test counts it printed. Fails on a non-zero
/// exit status.
pub(crate) fn run(mut c: Command) -> Result<Counts> {
    let what = describe(&c);
    println!("\n==> {what}");
    let counts = Arc::new(Mutex::new(Counts::default()));
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    let out = pump(child.stdout.take().expect("piped"), false, counts.clone());
    let err = pump(child.stderr.take().expect("piped"), true, counts.clone());
    let status = child.wait().map_err(|e| format!("`{what}`: {e}"))?;
    out.join().ok();
    err.join().ok();
    let counts = *counts.lock().expect("counts lock");
    if status.success() {
        Ok(counts)
    } else {
        Err(format!("`{what}` failed ({status})"))
    }
}

/// Runs `c` and returns its standard output; fails on a non-zero exit.
pub(crate) fn output(mut c: Command) -> Result<String> {
    let what = describe(&c);
    let o = c
        .output()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "`{what}` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// True when `program` can be started.
pub(crate) fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Adds the rustup targets that are missing.
pub(crate) fn ensure_targets(targets: &[&str]) -> Result {
    let installed = output(cmd("rustup", &["target", "list", "--installed"]))?;
    let missing: Vec<&str> = targets
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut args = vec!["target", "add"];
    args.extend(&missing);
    run(cmd("rustup", &args)).map(|_| ())
}

/// Installs the nightly toolchain with `components` if anything is missing.
pub(crate) fn ensure_nightly(components: &[&str]) -> Result {
    let listed = output(cmd(
        "rustup",
        &["+nightly", "component", "list", "--installed"],
    ))
    .unwrap_or_default();
    let missing: Vec<&str> = components
        .iter()
        .copied()
        .filter(|c| {
            !listed
                .lines()
                .any(|l| l.starts_with(&format!("{c}-")) || l.trim() == *c)
        })
        .collect();
    if !listed.is_empty() && missing.is_empty() {
        return Ok(());
    }
    if !listed.is_empty() {
        // The machine's nightly is there: add the components to it, never update the toolchain.
        let mut args = vec!["+nightly", "component", "add"];
        args.extend(&missing);
        return run(cmd("rustup", &args)).map(|_| ());
    }
    let joined = components.join(",");
    run(cmd(
        "rustup",
        &[
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "--component",
            &joined,
        ],
    ))
    .map(|_| ())
}

/// Installs the Debian packages that are missing (`apt-get update` once, then install).
pub(crate) fn ensure_debian(packages: &[&str]) -> Result {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut update = cmd("apt-get", &["update", "-qq"]);
    update.env("DEBIAN_FRONTEND", "noninteractive");
    run(update)?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    let mut install = cmd("apt-get", &args);
    install.env("DEBIAN_FRONTEND", "noninteractive");
    run(install).map(|_| ())
}
