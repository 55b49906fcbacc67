//! The benchmark report and the peers measured beside stopwire.
//!
//! - `cargo xtask bench-peers` builds and runs the Go `context` and C++20 `std::stop_token` twins
//!   of the criterion workloads (`benches/peers/`), skipping a peer whose toolchain is missing, and
//!   writes their figures to `<target>/stopwire-bench/peers.json`.
//! - `cargo xtask bench-report` reads criterion's results (`cargo bench --bench context`, with the
//!   tokio-util twins in the same run), that file, and `deadline_fire.json` (written by the
//!   `deadline/fire` bench), and writes `docs/benchmarks.md`, the chart `docs/benchmarks.svg`, and
//!   the README table between `<!-- bench-report:start -->` and `<!-- bench-report:end -->`.
//!
//! Every number written comes from those files: criterion's `estimates.json` (the median of the
//! samples and its 95 % confidence interval), the peers' medians over repeated runs, the deadline
//! bench's median and 99th percentile. A figure that is absent is written "not measured"; a row
//! that has no twin in a peer is written "-". The ids are those of `docs/benchmark-ids.md`; the bars are
//! those of issue 13 (and, for the rows it keeps, issues 5 and 10).

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::{cmd, have, output, root, run, Result};

/// The command that produces the criterion results this report reads.
const BENCH_COMMAND: &str = "cargo bench --features embassy --bench context";
/// The command that produces `deadline_fire.json` (`benches/deadline_fire.rs`).
const DEADLINE_COMMAND: &str = "cargo bench --bench deadline_fire";
/// The command that produces `peers.json`.
const PEERS_COMMAND: &str = "cargo xtask bench-peers";

const README_START: &str = "<!-- bench-report:start -->";
const README_END: &str = "<!-- bench-report:end -->";

/// Results more than this far apart (seconds) are not one sitting: the report says so.
const SITTING_SECS: u64 = 6 * 3600;

// ---------------------------------------------------------------------------------------------
// Workloads, peers and bars
// ---------------------------------------------------------------------------------------------

/// A peer of stopwire in the report.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    /// tokio-util's `CancellationToken`, in the criterion binary (ids prefixed `tokio_`).
    Tokio,
    /// Go's `context` (`benches/peers/go`).
    Go,
    /// C++20 `std::stop_token` linked by `std::stop_callback` (`benches/peers/cpp`).
    Cxx,
}

impl Peer {
    /// The name used in `peers.json`.
    fn key(self) -> &'static str {
        match self {
            Peer::Tokio => "tokio",
            Peer::Go => "go",
            Peer::Cxx => "cxx",
        }
    }

    /// The column heading.
    fn title(self) -> &'static str {
        match self {
            Peer::Tokio => "tokio-util",
            Peer::Go => "Go `context`",
            Peer::Cxx => "C++20 `stop_token`",
        }
    }
}

/// One row of the main table: a workload of `docs/benchmark-ids.md`.
struct Workload {
    id: &'static str,
    what: &'static str,
    /// The criterion id of the tokio-util twin, when there is one.
    tokio: Option<&'static str>,
    /// Whether the Go program has a twin (same id).
    go: bool,
    /// Whether the C++ program has a twin (same id).
    cxx: bool,
}

const WORKLOADS: [Workload; 9] = [
    Workload {
        id: "check/depth1",
        what: "is-done check, `with_cancel` child of background",
        tokio: Some("tokio_check/depth1"),
        go: true,
        cxx: true,
    },
    Workload {
        id: "check/depth10",
        what: "is-done check, leaf of a 10-deep chain",
        tokio: Some("tokio_check/depth10"),
        go: true,
        cxx: false,
    },
    Workload {
        id: "check/deadline",
        what: "is-done check, `with_timeout(1 h)` child",
        tokio: None,
        go: true,
        cxx: false,
    },
    Workload {
        id: "create_cancel/cancel",
        what: "`with_cancel` under a long-lived parent, cancel, release",
        tokio: Some("tokio_create_cancel/cancel"),
        go: true,
        cxx: true,
    },
    Workload {
        id: "create_cancel/timeout",
        what: "`with_timeout(1 h)` under a long-lived parent, cancel, release",
        tokio: None,
        go: true,
        cxx: false,
    },
    Workload {
        id: "tree/111",
        what: "fresh root, 10 x 10 children, cancel the root, release all",
        tokio: Some("tokio_tree/111"),
        go: true,
        cxx: true,
    },
    Workload {
        id: "tree/931",
        what: "fresh root, 30 x 30 children, cancel the root, release all",
        tokio: Some("tokio_tree/931"),
        go: true,
        cxx: true,
    },
    Workload {
        id: "value/depth10",
        what: "look up a key set 10 value layers above",
        tokio: None,
        go: true,
        cxx: false,
    },
    Workload {
        id: "contended/create_cancel",
        what: "two threads doing `create_cancel/cancel` under one parent (per operation)",
        tokio: Some("tokio_contended/create_cancel"),
        go: true,
        cxx: true,
    },
];

/// `wake/1000` (`docs/benchmark-ids.md`) and its tokio-util twin.
const WAKE: (&str, &str) = ("wake/1000", "tokio_wake/1000");
/// `wait/thread` (issue 10): a thread blocked in stopwire's wait, woken by a cancel.
const WAIT: &str = "wait/thread";
/// The same wake-up of a thread by tokio-util: `cancelled()` under a `block_on`.
const WAIT_TOKIO: &str = "tokio_wait/thread";
/// The same wake-up with nothing but a `std::sync::Condvar` notify.
const WAIT_CONDVAR: &str = "condvar_wait/thread";
/// `grpc/propagate` (the tower bench) and the same call without stopwire.
const GRPC: (&str, &str) = ("grpc/propagate", "grpc/baseline");
/// The file the `deadline/fire` bench writes: `{"id":"deadline/fire","median_ns":..,"p99_ns":..,"samples":..}`.
const DEADLINE_FILE: &str = "deadline_fire.json";
/// The file `bench-peers` writes.
const PEERS_FILE: &str = "peers.json";

/// What a bar or a goal is judged on.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Measure {
    /// stopwire's median / tokio-util's median, at most the limit.
    RatioTokio,
    /// stopwire's median, at most the limit in nanoseconds.
    Ns,
    /// `deadline/fire`: the median lateness, at most the limit in nanoseconds.
    MedianNs,
    /// `deadline/fire`: the 99th percentile of the lateness, at most the limit in nanoseconds.
    P99Ns,
}

/// A bar (must hold) or a goal (where to aim) for one row.
struct Bar {
    id: &'static str,
    measure: Measure,
    limit: f64,
    /// Where it comes from.
    source: &'static str,
    /// A goal rather than a bar.
    goal: bool,
}

const fn bar(id: &'static str, measure: Measure, limit: f64, source: &'static str) -> Bar {
    Bar {
        id,
        measure,
        limit,
        source,
        goal: false,
    }
}

const fn goal(id: &'static str, measure: Measure, limit: f64, source: &'static str) -> Bar {
    Bar {
        id,
        measure,
        limit,
        source,
        goal: true,
    }
}

/// Issue 13's bars (ratios to tokio-util in the same run, and absolute limits on this kind of
/// machine) and its goals; the check bars of issue 5, which issue 13 keeps; `wake/1000` of issues
/// 5 and 10; the deadline driver's "within about a millisecond" of issue 10.
const BARS: [Bar; 23] = [
    bar("check/depth1", Measure::RatioTokio, 0.1, "issue 5, kept"),
    bar("check/depth1", Measure::Ns, 2.0, "issue 5, kept"),
    bar("check/depth10", Measure::RatioTokio, 0.1, "issue 5, kept"),
    bar("check/depth10", Measure::Ns, 2.0, "issue 5, kept"),
    bar("check/deadline", Measure::Ns, 5.0, "issue 13"),
    goal("check/deadline", Measure::Ns, 3.0, "issue 13"),
    bar("create_cancel/cancel", Measure::RatioTokio, 0.3, "issue 13"),
    goal(
        "create_cancel/cancel",
        Measure::RatioTokio,
        0.25,
        "issue 13",
    ),
    goal("create_cancel/cancel", Measure::Ns, 32.0, "issue 13"),
    bar("create_cancel/timeout", Measure::Ns, 50.0, "issue 13"),
    goal("create_cancel/timeout", Measure::Ns, 40.0, "issue 13"),
    bar("tree/111", Measure::RatioTokio, 0.25, "issue 13"),
    goal("tree/111", Measure::RatioTokio, 0.2, "issue 13"),
    bar("tree/931", Measure::RatioTokio, 0.25, "issue 13"),
    goal("tree/931", Measure::RatioTokio, 0.2, "issue 13"),
    bar("value/depth10", Measure::Ns, 10.0, "issue 13"),
    goal("value/depth10", Measure::Ns, 7.0, "issue 13"),
    bar(
        "contended/create_cancel",
        Measure::RatioTokio,
        0.5,
        "issue 13",
    ),
    goal(
        "contended/create_cancel",
        Measure::RatioTokio,
        0.4,
        "issue 13",
    ),
    bar("wake/1000", Measure::RatioTokio, 1.0, "issue 5"),
    goal("wake/1000", Measure::RatioTokio, 0.5, "issues 10, 13"),
    bar("deadline/fire", Measure::MedianNs, 1e6, "issue 10"),
    goal("deadline/fire", Measure::P99Ns, 1e6, "issue 10"),
];

// ---------------------------------------------------------------------------------------------
// Where the results live
// ---------------------------------------------------------------------------------------------

/// `$CARGO_TARGET_DIR` (made absolute), else the workspace's `target/`.
fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    if target.is_absolute() {
        target
    } else {
        root().join(target)
    }
}

/// Where criterion keeps its results, in the order they are searched: criterion's own rule
/// (`$CRITERION_HOME`, else `<target>/criterion`), then the workspace's `target/criterion`, then
/// `tower/target/criterion` (the tower crate's benches, if it is a workspace of its own). Only
/// directories that exist are returned.
fn criterion_dirs() -> Vec<PathBuf> {
    let first = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("criterion"));
    let mut v = vec![first];
    for p in [
        root().join("target/criterion"),
        root().join("tower/target/criterion"),
    ] {
        if !v.contains(&p) {
            v.push(p);
        }
    }
    v.retain(|p| p.is_dir());
    v
}

/// Where `bench-peers` writes and the deadline bench is expected to write:
/// `$STOPWIRE_BENCH_DIR`, else `<target>/stopwire-bench`.
fn results_dir() -> PathBuf {
    std::env::var_os("STOPWIRE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("stopwire-bench"))
}

/// The first existing `name` in [`results_dir`] or the workspace's `target/stopwire-bench`.
fn find_result_file(name: &str) -> Option<PathBuf> {
    [results_dir(), root().join("target/stopwire-bench")]
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

// ---------------------------------------------------------------------------------------------
// Reading criterion
// ---------------------------------------------------------------------------------------------

/// Criterion's median of one benchmark, in nanoseconds, with its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Median {
    ns: f64,
    lo: f64,
    hi: f64,
    /// When criterion wrote it (seconds since the epoch).
    written: u64,
}

/// When `path` was last written (seconds since the epoch; 0 if unknown).
fn mtime(path: &Path) -> u64 {
    fs::metadata(path)
        .and_then(|md| md.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Reads the median of `id` from the first of `dirs` that has criterion's `estimates.json` for it
/// (the object `"median":{"confidence_interval":{..,"lower_bound":x,"upper_bound":y},"point_estimate":z,..}`).
fn read_median(dirs: &[PathBuf], id: &str) -> Result<Option<Median>> {
    let Some(file) = dirs
        .iter()
        .map(|d| d.join(id).join("new").join("estimates.json"))
        .find(|f| f.is_file())
    else {
        return Ok(None);
    };
    let text = fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let bad = |why: &str| format!("{}: {why}", file.display());
    let v = json::parse(&text).map_err(|e| bad(&e))?;
    let m = v.get("median").ok_or_else(|| bad("no median"))?;
    let ci = m
        .get("confidence_interval")
        .ok_or_else(|| bad("no confidence interval"))?;
    let num = |o: &json::Value, k: &str| o.num(k).ok_or_else(|| bad(&format!("no {k}")));
    Ok(Some(Median {
        ns: num(m, "point_estimate")?,
        lo: num(ci, "lower_bound")?,
        hi: num(ci, "upper_bound")?,
        written: mtime(&file),
    }))
}

// ---------------------------------------------------------------------------------------------
// The peers' file
// ---------------------------------------------------------------------------------------------

/// One peer figure from `peers.json`.
#[derive(Clone, Debug, PartialEq)]
struct PeerFigure {
    id: String,
    peer: String,
    /// Median over the runs, nanoseconds per operation.
    ns: f64,
    /// Fastest and slowest run.
    min: f64,
    max: f64,
    runs: u64,
    /// Heap allocations per operation.
    allocs: Option<f64>,
}

/// A peer's toolchain and whether it ran.
#[derive(Clone, Debug, PartialEq)]
struct PeerRun {
    peer: String,
    /// `go version` or the first line of `g++ --version`.
    tool: String,
    /// The build and run commands, or why the peer was skipped.
    command: String,
    skipped: Option<String>,
}

/// The contents of `peers.json`.
#[derive(Clone, Debug, PartialEq)]
struct PeersFile {
    date: u64,
    machine: String,
    /// How busy the machine was before and during the run (load average, CPU shares).
    quietness: String,
    quick: bool,
    runs: Vec<PeerRun>,
    figures: Vec<PeerFigure>,
}

impl PeersFile {
    fn figure(&self, peer: Peer, id: &str) -> Option<&PeerFigure> {
        self.figures
            .iter()
            .find(|f| f.peer == peer.key() && f.id == id)
    }

    fn run(&self, peer: Peer) -> Option<&PeerRun> {
        self.runs.iter().find(|r| r.peer == peer.key())
    }

    fn to_json(&self) -> String {
        let q = json::quote;
        let mut s = String::from("{\n");
        let _ = writeln!(s, "  \"schema\": 1,");
        let _ = writeln!(s, "  \"date_unix\": {},", self.date);
        let _ = writeln!(s, "  \"date\": {},", q(&utc(self.date)));
        let _ = writeln!(s, "  \"machine\": {},", q(&self.machine));
        let _ = writeln!(s, "  \"quietness\": {},", q(&self.quietness));
        let _ = writeln!(s, "  \"quick\": {},", self.quick);
        s.push_str("  \"peers\": [\n");
        for (k, r) in self.runs.iter().enumerate() {
            let skipped = r.skipped.as_deref().map_or("null".to_string(), q);
            let _ = write!(
                s,
                "    {{\"peer\": {}, \"tool\": {}, \"command\": {}, \"skipped\": {skipped}}}",
                q(&r.peer),
                q(&r.tool),
                q(&r.command)
            );
            s.push_str(if k + 1 < self.runs.len() { ",\n" } else { "\n" });
        }
        s.push_str("  ],\n  \"results\": [\n");
        for (k, f) in self.figures.iter().enumerate() {
            let allocs = f.allocs.map_or("null".to_string(), |a| a.to_string());
            let _ = write!(
                s,
                "    {{\"id\": {}, \"peer\": {}, \"ns_per_op\": {}, \"min_ns\": {}, \"max_ns\": {}, \"runs\": {}, \"allocs_per_op\": {allocs}}}",
                q(&f.id),
                q(&f.peer),
                f.ns,
                f.min,
                f.max,
                f.runs
            );
            s.push_str(if k + 1 < self.figures.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        s.push_str("  ]\n}\n");
        s
    }

    fn from_json(text: &str) -> std::result::Result<PeersFile, String> {
        let v = json::parse(text)?;
        let need_str = |o: &json::Value, k: &str| {
            o.str(k)
                .map(str::to_string)
                .ok_or_else(|| format!("missing \"{k}\""))
        };
        let need_num =
            |o: &json::Value, k: &str| o.num(k).ok_or_else(|| format!("missing \"{k}\""));
        let mut runs = Vec::new();
        for r in v.arr("peers") {
            runs.push(PeerRun {
                peer: need_str(r, "peer")?,
                tool: need_str(r, "tool")?,
                command: need_str(r, "command")?,
                skipped: r.str("skipped").map(str::to_string),
            });
        }
        let mut figures = Vec::new();
        for f in v.arr("results") {
            figures.push(PeerFigure {
                id: need_str(f, "id")?,
                peer: need_str(f, "peer")?,
                ns: need_num(f, "ns_per_op")?,
                min: need_num(f, "min_ns")?,
                max: need_num(f, "max_ns")?,
                runs: need_num(f, "runs")? as u64,
                allocs: f.num("allocs_per_op"),
            });
        }
        Ok(PeersFile {
            date: need_num(&v, "date_unix")? as u64,
            machine: need_str(&v, "machine")?,
            quietness: v.str("quietness").unwrap_or("").to_string(),
            quick: v.get("quick") == Some(&json::Value::Bool(true)),
            runs,
            figures,
        })
    }
}

/// `deadline_fire.json`: how late after its deadline a callback ran with the host driver.
#[derive(Clone, Debug, PartialEq)]
struct DeadlineFire {
    median_ns: f64,
    p99_ns: f64,
    samples: u64,
    written: u64,
    /// The same figures per pattern (`"sequential"`, `"overlapping"`) and the extremes, when the
    /// file has them: `(pattern, median, p99, max, samples)`.
    patterns: Vec<(String, f64, f64, f64, u64)>,
    /// The load average before and after the run, when the file has it.
    load: Option<(String, String)>,
}

fn read_deadline_fire() -> Result<Option<DeadlineFire>> {
    let Some(path) = find_result_file(DEADLINE_FILE) else {
        return Ok(None);
    };
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_deadline_fire(&text, mtime(&path))
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The contents of `deadline_fire.json`, written at `written` (seconds since the epoch).
fn parse_deadline_fire(text: &str, written: u64) -> std::result::Result<DeadlineFire, String> {
    let v = json::parse(text)?;
    let num = |k: &str| v.num(k).ok_or_else(|| format!("missing \"{k}\""));
    if v.str("id") != Some("deadline/fire") {
        return Err("its \"id\" is not \"deadline/fire\"".to_string());
    }
    let mut patterns = Vec::new();
    for name in ["sequential", "overlapping"] {
        let Some(p) = v.get(name) else { continue };
        if let (Some(m), Some(p99), Some(max), Some(n)) = (
            p.num("median_ns"),
            p.num("p99_ns"),
            p.num("max_ns"),
            p.num("samples"),
        ) {
            patterns.push((name.to_string(), m, p99, max, n as u64));
        }
    }
    let load = v
        .str("load_before")
        .zip(v.str("load_after"))
        .map(|(a, b)| (a.to_string(), b.to_string()));
    Ok(DeadlineFire {
        median_ns: num("median_ns")?,
        p99_ns: num("p99_ns")?,
        samples: num("samples")? as u64,
        written,
        patterns,
        load,
    })
}

// ---------------------------------------------------------------------------------------------
// `cargo xtask bench-peers`
// ---------------------------------------------------------------------------------------------

/// Runs `c` with its standard error shown as it comes, and returns its standard output.
fn run_capturing(mut c: Command) -> Result<String> {
    let what = format!("{c:?}");
    println!("\n==> {what}");
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let mut out = String::new();
    for line in BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .map_while(std::result::Result::ok)
    {
        out.push_str(&line);
        out.push('\n');
    }
    let status = child.wait().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(out)
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// Reads the one-object-per-line output of a peer program (`{"id":..,"ns":..,"min_ns":..,
/// "max_ns":..,"runs":..,"allocs":..}`).
fn parse_peer_output(peer: Peer, out: &str) -> Result<Vec<PeerFigure>> {
    let mut v = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        let o = json::parse(line).map_err(|e| format!("{} output `{line}`: {e}", peer.key()))?;
        let num = |k: &str| {
            o.num(k)
                .ok_or_else(|| format!("{} output `{line}`: no \"{k}\"", peer.key()))
        };
        v.push(PeerFigure {
            id: o
                .str("id")
                .ok_or_else(|| format!("{} output `{line}`: no \"id\"", peer.key()))?
                .to_string(),
            peer: peer.key().to_string(),
            ns: num("ns")?,
            min: num("min_ns")?,
            max: num("max_ns")?,
            runs: num("runs")? as u64,
            allocs: o.num("allocs"),
        });
    }
    if v.is_empty() {
        return Err(format!("the {} peer printed no results", peer.key()));
    }
    Ok(v)
}

/// The first line of `program`'s version output, if it starts.
fn tool_version(program: &str, arg: &str) -> Option<String> {
    let out = Command::new(program).arg(arg).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().next().map(|l| l.trim().to_string())
}

/// Builds and runs the Go peer; skipped when `go` is not installed.
fn go_peer(build: &Path, quick: bool) -> Result<(PeerRun, Vec<PeerFigure>)> {
    let src = root().join("benches/peers/go");
    let Some(tool) = have("go").then(|| tool_version("go", "version")).flatten() else {
        return Ok((
            PeerRun {
                peer: "go".into(),
                tool: String::new(),
                command: String::new(),
                skipped: Some("`go` is not on PATH (Debian: apt-get install golang-go)".into()),
            },
            Vec::new(),
        ));
    };
    let exe = build.join("peers-go");
    let mut b = Command::new("go");
    b.args(["build", "-trimpath", "-o"])
        .arg(&exe)
        .arg(".")
        .current_dir(&src)
        // The program has no dependencies: nothing is fetched, and the build cache stays in
        // the target directory.
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", build.join("go-cache"));
    run(b)?;
    let args: &[&str] = if quick {
        &["-runs", "1", "-benchtime", "20ms"]
    } else {
        &["-runs", "11", "-benchtime", "300ms"]
    };
    let mut r = Command::new(&exe);
    r.args(args);
    let figures = parse_peer_output(Peer::Go, &run_capturing(r)?)?;
    Ok((
        PeerRun {
            peer: "go".into(),
            tool,
            command: format!(
                "go build -trimpath (benches/peers/go), then peers-go {}",
                args.join(" ")
            ),
            skipped: None,
        },
        figures,
    ))
}

/// The g++ flags of the C++ peer. `-Wno-maybe-uninitialized`: libstdc++ 12's `stop_source()`
/// passes `*this` to a constructor that ignores it, which GCC 12 flags at -O2.
const CXX_FLAGS: [&str; 7] = [
    "-std=c++20",
    "-O2",
    "-pthread",
    "-Wall",
    "-Wextra",
    "-Wno-maybe-uninitialized",
    "-Werror",
];

/// Builds and runs the C++ peer; skipped when `g++` is not installed.
fn cxx_peer(build: &Path, quick: bool) -> Result<(PeerRun, Vec<PeerFigure>)> {
    let Some(tool) = have("g++")
        .then(|| tool_version("g++", "--version"))
        .flatten()
    else {
        return Ok((
            PeerRun {
                peer: "cxx".into(),
                tool: String::new(),
                command: String::new(),
                skipped: Some("`g++` is not on PATH (Debian: apt-get install g++)".into()),
            },
            Vec::new(),
        ));
    };
    let exe = build.join("peers-cpp");
    let mut b = Command::new("g++");
    b.args(CXX_FLAGS)
        .arg("-o")
        .arg(&exe)
        .arg(root().join("benches/peers/cpp/peers.cpp"));
    run(b)?;
    let args: &[&str] = if quick {
        &["--runs", "1", "--ms", "20"]
    } else {
        &["--runs", "11", "--ms", "300"]
    };
    let mut r = Command::new(&exe);
    r.args(args);
    let figures = parse_peer_output(Peer::Cxx, &run_capturing(r)?)?;
    Ok((
        PeerRun {
            peer: "cxx".into(),
            tool,
            command: format!(
                "g++ {} benches/peers/cpp/peers.cpp, then peers-cpp {}",
                CXX_FLAGS.join(" "),
                args.join(" ")
            ),
            skipped: None,
        },
        figures,
    ))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The first three fields of `/proc/loadavg`, or an empty string.
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The busy and total jiffies of all CPUs from the first line of `/proc/stat`.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPU time of this process's waited-for children (`cutime` + `cstime` of `/proc/self/stat`), in
/// the same clock ticks as `/proc/stat`.
fn children_jiffies() -> Option<u64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces): state is
    // field 3, cutime and cstime are fields 16 and 17.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(13)?.parse::<u64>().ok()? + f.get(14)?.parse::<u64>().ok()?)
}

/// The share of all CPUs that were busy over `secs` seconds (what else the machine is doing
/// before the peers run), in percent.
fn cpu_busy(secs: u64) -> Option<f64> {
    let (b0, t0) = cpu_jiffies()?;
    std::thread::sleep(std::time::Duration::from_secs(secs));
    let (b1, t1) = cpu_jiffies()?;
    (t1 > t0).then(|| 100.0 * (b1 - b0) as f64 / (t1 - t0) as f64)
}

/// The task `bench-peers`. `--quick` (one short run per workload, to see that the programs build
/// and run) writes `peers-quick.json` instead, which the report does not read.
pub(crate) fn peers(args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(a) = args.iter().find(|a| *a != "--quick") {
        return Err(format!(
            "bench-peers: unknown argument `{a}` (only --quick)"
        ));
    }
    let dir = results_dir();
    let build = dir.join("peers-build");
    fs::create_dir_all(&build).map_err(|e| format!("{}: {e}", build.display()))?;
    let busy = cpu_busy(3);
    let load = match busy {
        Some(b) => format!(
            "load average {}; CPUs {b:.0} % busy over the 3 s before",
            loadavg()
        ),
        None => format!("load average {}", loadavg()),
    };
    println!("before the peers run: {load}");
    if busy.is_some_and(|b| b > 10.0) {
        println!(
            "warning: the machine is not quiet ({:.0} % busy): the figures will be noisy",
            busy.unwrap_or(0.0)
        );
    }
    let date = now();
    let mut file = PeersFile {
        date,
        machine: machine(),
        quietness: load,
        quick,
        runs: Vec::new(),
        figures: Vec::new(),
    };
    let start = cpu_jiffies().zip(children_jiffies());
    let measured = [go_peer(&build, quick)?, cxx_peer(&build, quick)?];
    // What the rest of the machine did meanwhile: all busy time less the peers' own.
    if let (Some(((b0, t0), c0)), Some(((b1, t1), c1))) =
        (start, cpu_jiffies().zip(children_jiffies()))
    {
        if t1 > t0 {
            let others = (b1 - b0).saturating_sub(c1 - c0) as f64 / (t1 - t0) as f64 * 100.0;
            file.quietness = format!(
                "{}; other processes used {others:.0} % of the CPUs during the run",
                file.quietness
            );
            if others > 5.0 {
                println!(
                    "warning: other processes used {others:.0} % of the CPUs during the run: rerun when the machine is quiet"
                );
            }
        }
    }
    for (run, figures) in measured {
        if let Some(why) = &run.skipped {
            println!("skipped the {} peer: {why}", run.peer);
        }
        file.runs.push(run);
        file.figures.extend(figures);
    }
    let path = dir.join(if quick {
        "peers-quick.json"
    } else {
        PEERS_FILE
    });
    fs::write(&path, file.to_json()).map_err(|e| format!("{}: {e}", path.display()))?;
    println!(
        "\n| id | peer | median ns/op | runs (min - max) | allocs/op |\n|---|---|---|---|---|"
    );
    for f in &file.figures {
        println!(
            "| {} | {} | {:.2} | {} ({:.2} - {:.2}) | {} |",
            f.id,
            f.peer,
            f.ns,
            f.runs,
            f.min,
            f.max,
            f.allocs.map_or("-".to_string(), |a| format!("{a:.2}"))
        );
    }
    println!("\nwrote {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

/// `2026-11-25 18:30 UTC` from seconds since the epoch (civil-from-days, proleptic Gregorian).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// A duration in nanoseconds, with a unit a reader takes in at a glance.
fn human(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns >= 10.0 {
        format!("{ns:.1} ns")
    } else {
        format!("{ns:.2} ns")
    }
}

/// A limit in nanoseconds as written in the issues: `2 ns`, `1 ms`.
fn limit_text(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{} µs", ns / 1_000.0)
    } else {
        format!("{ns} ns")
    }
}

fn ratio_text(r: f64) -> String {
    if r < 0.1 {
        format!("{r:.3}")
    } else {
        format!("{r:.2}")
    }
}

/// Allocations per operation: whole numbers when they are (within rounding), else one decimal.
fn allocs_text(a: f64) -> String {
    let word = if (a - 1.0).abs() < 0.05 {
        "alloc"
    } else {
        "allocs"
    };
    if (a - a.round()).abs() < 0.05 || a >= 100.0 {
        format!("{:.0} {word}", a.round())
    } else {
        format!("{a:.1} {word}")
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

/// `AMD EPYC, 2 cores (2 logical CPUs), Linux 6.1, rustc 1.95.0`: the CPU model, its cores, the
/// kernel and the compiler.
fn machine() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|m| m.trim().to_string())
    };
    let cpu = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let logical = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cores = match field("cpu cores") {
        Some(c) => format!("{c} cores ({logical} logical CPUs)"),
        None => format!("{logical} logical CPUs"),
    };
    let kernel = output(cmd("uname", &["-sr"])).unwrap_or_default();
    let rustc = output(cmd("rustc", &["-V"])).unwrap_or_default();
    format!("{cpu}, {cores}, {}, {}", kernel.trim(), rustc.trim())
}

/// The version of `name` in the workspace's `Cargo.lock`.
fn locked_version(name: &str) -> Option<String> {
    let lock = fs::read_to_string(root().join("Cargo.lock")).ok()?;
    let pat = format!("name = \"{name}\"\nversion = \"");
    let at = lock.find(&pat)? + pat.len();
    let end = lock[at..].find('"')? + at;
    Some(lock[at..end].to_string())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

/// What `create_cancel/timeout` costs at least: `create_cancel/cancel` plus one reading of the
/// default clock, beside the cheapest ordered reading of the time-stamp counter.
fn timeout_floor(d: &Data) -> Option<String> {
    let cancel = WORKLOADS
        .iter()
        .position(|w| w.id == "create_cancel/cancel")
        .and_then(|k| d.main[k].0)?;
    let clock = d.clock.0?;
    let mut line = format!(
        "Floor of `create_cancel/timeout` before any deadline bookkeeping: \
         `create_cancel/cancel` {} + one reading of the default clock (`floor/clock_now`, \
         `StdClock`, `Instant::now()`) {} = {}.",
        human(cancel.ns),
        human(clock.ns),
        human(cancel.ns + clock.ns)
    );
    if let Some(tsc) = d.clock.1 {
        let _ = write!(
            line,
            " The cheapest reading of the time-stamp counter still ordered after earlier loads \
             (`floor/lfence_rdtsc`, the least a clock monotonic across threads needs) is {}: \
             {} with it.",
            human(tsc.ns),
            human(cancel.ns + tsc.ns)
        );
    }
    Some(line)
}

/// Everything the report shows, read from the result files.
struct Data {
    /// stopwire, tokio-util for each workload of [`WORKLOADS`].
    main: Vec<(Option<Median>, Option<Median>)>,
    wake: (Option<Median>, Option<Median>),
    /// stopwire, tokio-util, condvar.
    wait: (Option<Median>, Option<Median>, Option<Median>),
    grpc: (Option<Median>, Option<Median>),
    deadline: Option<DeadlineFire>,
    floor: Option<Median>,
    /// `floor/clock_now`, `floor/lfence_rdtsc`.
    clock: (Option<Median>, Option<Median>),
    peers: Option<PeersFile>,
    /// Where criterion's results were read, and where `peers.json` was.
    criterion_dirs: Vec<PathBuf>,
    peers_path: Option<PathBuf>,
    machine: String,
    commit: String,
    tokio_version: String,
    criterion_version: String,
}

/// The cell of a peer figure: `"101.5 ns, 2 allocs (0.62)"` (headline) or with the runs' range
/// (full); `"-"` when the peer has no twin, `"not measured"` when it has one but no figure.
enum Cell {
    NoTwin,
    NotMeasured(String),
    Criterion(Median),
    Peer(PeerFigure),
}

impl Cell {
    fn ns(&self) -> Option<f64> {
        match self {
            Cell::Criterion(m) => Some(m.ns),
            Cell::Peer(f) => Some(f.ns),
            _ => None,
        }
    }

    fn text(&self, ours: Option<f64>, full: bool) -> String {
        let ratio = match (ours, self.ns()) {
            (Some(o), Some(p)) if p > 0.0 => format!(" (**{}**)", ratio_text(o / p)),
            _ => String::new(),
        };
        match self {
            Cell::NoTwin => "-".to_string(),
            Cell::NotMeasured(why) if full && !why.is_empty() => format!("not measured ({why})"),
            Cell::NotMeasured(_) => "not measured".to_string(),
            Cell::Criterion(m) if full => {
                format!("{} [{} - {}]{ratio}", human(m.ns), human(m.lo), human(m.hi))
            }
            Cell::Criterion(m) => format!("{}{ratio}", human(m.ns)),
            Cell::Peer(f) => {
                // The compact cell leaves out "0 allocs"; the full one says it.
                let allocs = match f.allocs {
                    Some(a) if full || a >= 0.05 => format!(", {}", allocs_text(a)),
                    _ => String::new(),
                };
                if full && f.runs > 1 {
                    format!(
                        "{} [{} - {}]{allocs}{ratio}",
                        human(f.ns),
                        human(f.min),
                        human(f.max)
                    )
                } else {
                    format!("{}{allocs}{ratio}", human(f.ns))
                }
            }
        }
    }
}

fn ours_text(m: Option<Median>, full: bool) -> String {
    match m {
        None => "not measured".to_string(),
        Some(m) if full => format!("{} [{} - {}]", human(m.ns), human(m.lo), human(m.hi)),
        Some(m) => human(m.ns),
    }
}

impl Data {
    fn tokio_cell(w: &Workload, m: Option<Median>) -> Cell {
        match (w.tokio, m) {
            (None, _) => Cell::NoTwin,
            (Some(_), Some(m)) => Cell::Criterion(m),
            (Some(_), None) => Cell::NotMeasured(String::new()),
        }
    }

    /// The Go or C++ figure of `id`, if that program has a twin of it.
    fn peer_cell(&self, peer: Peer, id: &str, twin: bool) -> Cell {
        if !twin {
            return Cell::NoTwin;
        }
        let Some(file) = &self.peers else {
            return Cell::NotMeasured(format!("no {PEERS_FILE}: run `{PEERS_COMMAND}`"));
        };
        if let Some(f) = file.figure(peer, id) {
            return Cell::Peer(f.clone());
        }
        match file.run(peer).and_then(|r| r.skipped.clone()) {
            Some(why) => Cell::NotMeasured(format!("skipped: {why}")),
            None => Cell::NotMeasured(String::new()),
        }
    }

    /// The figure a bar of `id` is judged on, if measured.
    fn measured(&self, id: &str, measure: Measure) -> Option<f64> {
        if id == "deadline/fire" {
            let d = self.deadline.as_ref()?;
            return match measure {
                Measure::MedianNs => Some(d.median_ns),
                Measure::P99Ns => Some(d.p99_ns),
                _ => None,
            };
        }
        let (ours, tokio) = if id == WAKE.0 {
            self.wake
        } else if id == WAIT {
            (self.wait.0, self.wait.1)
        } else {
            let k = WORKLOADS.iter().position(|w| w.id == id)?;
            self.main[k]
        };
        match measure {
            Measure::Ns => ours.map(|m| m.ns),
            Measure::RatioTokio => Some(ours?.ns / tokio?.ns),
            Measure::MedianNs | Measure::P99Ns => None,
        }
    }

    /// The bars of `id` with their verdicts: `"ratio ≤ 0.3: missed"`; goals left out.
    fn bar_text(&self, id: &str) -> String {
        let parts: Vec<String> = BARS
            .iter()
            .filter(|b| b.id == id && !b.goal)
            .map(|b| {
                let verdict = match self.measured(id, b.measure) {
                    Some(x) => mark(x <= b.limit),
                    None => "not measured",
                };
                format!("{}: {verdict}", bar_condition(b))
            })
            .collect();
        if parts.is_empty() {
            "-".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Dates of the criterion results used: the oldest and the newest.
    fn criterion_span(&self) -> Option<(u64, u64)> {
        let all: Vec<u64> = self
            .main
            .iter()
            .flat_map(|(a, b)| [*a, *b])
            .chain([self.wake.0, self.wake.1, self.wait.0, self.wait.1])
            .chain([self.wait.2, self.grpc.0, self.grpc.1])
            .flatten()
            .map(|m| m.written)
            .chain(self.deadline.as_ref().map(|d| d.written))
            .collect();
        Some((*all.iter().min()?, *all.iter().max()?))
    }
}

/// `ratio ≤ 0.3`, `≤ 50 ns`, `median ≤ 1 ms`.
fn bar_condition(b: &Bar) -> String {
    match b.measure {
        Measure::RatioTokio => format!("ratio ≤ {}", b.limit),
        Measure::Ns => format!("≤ {}", limit_text(b.limit)),
        Measure::MedianNs => format!("median ≤ {}", limit_text(b.limit)),
        Measure::P99Ns => format!("p99 ≤ {}", limit_text(b.limit)),
    }
}

fn read_data(dirs: &[PathBuf]) -> Result<Data> {
    let med = |id: &str| read_median(dirs, id);
    let mut main = Vec::new();
    for w in &WORKLOADS {
        let t = match w.tokio {
            Some(t) => med(t)?,
            None => None,
        };
        main.push((med(w.id)?, t));
    }
    let peers_path = find_result_file(PEERS_FILE);
    let peers = match &peers_path {
        Some(p) => {
            let text = fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(PeersFile::from_json(&text).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    let commit = output(cmd("git", &["describe", "--always", "--dirty"])).unwrap_or_default();
    Ok(Data {
        main,
        wake: (med(WAKE.0)?, med(WAKE.1)?),
        wait: (med(WAIT)?, med(WAIT_TOKIO)?, med(WAIT_CONDVAR)?),
        grpc: (med(GRPC.0)?, med(GRPC.1)?),
        deadline: read_deadline_fire()?,
        floor: med("floor/black_box_ctx")?,
        clock: (med("floor/clock_now")?, med("floor/lfence_rdtsc")?),
        peers,
        criterion_dirs: dirs.to_vec(),
        peers_path,
        machine: machine(),
        commit: commit.trim().to_string(),
        tokio_version: locked_version("tokio-util").unwrap_or_else(|| "?".into()),
        criterion_version: locked_version("criterion").unwrap_or_else(|| "?".into()),
    })
}

/// The main table: every workload of [`WORKLOADS`], stopwire beside the three peers.
fn main_table(d: &Data, full: bool) -> String {
    let mut s = String::new();
    let peers = [Peer::Tokio, Peer::Go, Peer::Cxx];
    if full {
        s.push_str("| workload | what one iteration does | stopwire median [95 % CI]");
    } else {
        s.push_str("| workload | stopwire");
    }
    for p in peers {
        let _ = write!(s, " | {}", p.title());
    }
    s.push_str(" | bar |\n|---|");
    if full {
        s.push_str("---|");
    }
    s.push_str("---|---|---|---|---|\n");
    for (w, (ours, tokio)) in WORKLOADS.iter().zip(&d.main) {
        let o = ours.map(|m| m.ns);
        let _ = write!(s, "| `{}` |", w.id);
        if full {
            let _ = write!(s, " {} |", w.what);
        }
        let _ = write!(s, " {} |", ours_text(*ours, full));
        let cells = [
            Data::tokio_cell(w, *tokio),
            d.peer_cell(Peer::Go, w.id, w.go),
            d.peer_cell(Peer::Cxx, w.id, w.cxx),
        ];
        for c in &cells {
            let _ = write!(s, " {} |", c.text(o, full));
        }
        let _ = writeln!(s, " {} |", d.bar_text(w.id));
    }
    s
}

/// The waiting rows: `wait/thread`, `wake/1000`, `deadline/fire`.
fn waiting_table(d: &Data, full: bool) -> String {
    let mut s = String::from(
        "| waiting | stopwire | tokio-util | std `Condvar` | bar |\n|---|---|---|---|---|\n",
    );
    let cell = |m: Option<Median>| match m {
        Some(m) => Cell::Criterion(m),
        None => Cell::NotMeasured(String::new()),
    };
    let (ours, tokio, condvar) = d.wait;
    let o = ours.map(|m| m.ns);
    let _ = writeln!(
        s,
        "| `{WAIT}` | {} | {} | {} | {} |",
        ours_text(ours, full),
        cell(tokio).text(o, full),
        cell(condvar).text(o, full),
        d.bar_text(WAIT)
    );
    let (ours, tokio) = d.wake;
    let _ = writeln!(
        s,
        "| `{}` | {} | {} | - | {} |",
        WAKE.0,
        ours_text(ours, full),
        cell(tokio).text(ours.map(|m| m.ns), full),
        d.bar_text(WAKE.0)
    );
    let fire = match &d.deadline {
        Some(f) if full => format!(
            "median {} late, p99 {} ({} samples)",
            human(f.median_ns),
            human(f.p99_ns),
            f.samples
        ),
        Some(f) => format!("median {}, p99 {}", human(f.median_ns), human(f.p99_ns)),
        None => "not measured".to_string(),
    };
    let _ = writeln!(
        s,
        "| `deadline/fire` | {fire} | - | - | {} |",
        d.bar_text("deadline/fire")
    );
    s
}

/// The gRPC line: the call with stopwire's propagation against the same call without it.
fn grpc_line(d: &Data) -> String {
    match d.grpc {
        (Some(p), Some(b)) => format!(
            "`{}`: {} per call; `{}` (the same call without stopwire): {}; stopwire adds {} ({:+.1} %).",
            GRPC.0,
            human(p.ns),
            GRPC.1,
            human(b.ns),
            human(p.ns - b.ns),
            (p.ns / b.ns - 1.0) * 100.0
        ),
        (p, b) => format!(
            "`{}`: {}; `{}`: {}.",
            GRPC.0,
            ours_text(p, false),
            GRPC.1,
            ours_text(b, false)
        ),
    }
}

/// Every bar and goal with the figure it is judged on and the verdict.
fn bars_table(d: &Data) -> String {
    let mut s =
        String::from("| row | bar or goal | from | measured | verdict |\n|---|---|---|---|---|\n");
    let mut all: Vec<&Bar> = BARS.iter().collect();
    all.sort_by_key(|b| b.goal);
    for b in all {
        let measured = d.measured(b.id, b.measure);
        let figure = match (measured, b.measure) {
            (None, _) => "not measured".to_string(),
            (Some(x), Measure::RatioTokio) => ratio_text(x),
            (Some(x), _) => human(x),
        };
        let verdict = measured.map_or("not measured", |x| mark(x <= b.limit));
        let _ = writeln!(
            s,
            "| `{}` | {} {} | {} | {figure} | {verdict} |",
            b.id,
            if b.goal { "goal" } else { "bar" },
            bar_condition(b),
            b.source
        );
    }
    s
}

/// The peers' description, versions and date, for the header of the report.
fn peers_lines(d: &Data) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "- **tokio-util** {} `CancellationToken`: in the same criterion binary and run, ids prefixed `tokio_`",
        d.tokio_version
    );
    match &d.peers {
        None => {
            let _ = writeln!(
                s,
                "- **Go and C++**: not measured (no `{PEERS_FILE}`; `{PEERS_COMMAND}` writes it)"
            );
        }
        Some(p) => {
            for (peer, what) in [
                (Peer::Go, "`context` (programs in `benches/peers/go`, `testing.Benchmark`, allocations counted by the Go runtime)"),
                (Peer::Cxx, "`std::stop_token`, a child being a `stop_source` linked to its parent by a `stop_callback` (`benches/peers/cpp`; allocations counted by a replacement `operator new`)"),
            ] {
                let name = if peer == Peer::Go { "Go" } else { "C++20" };
                match p.run(peer) {
                    Some(r) if r.skipped.is_none() => {
                        let _ = writeln!(
                            s,
                            "- **{name}** {what}: `{}`; `{}`; median of the runs' ns per operation, [fastest - slowest run]",
                            r.tool, r.command
                        );
                    }
                    Some(r) => {
                        let _ = writeln!(
                            s,
                            "- **{name}**: not measured ({})",
                            r.skipped.as_deref().unwrap_or("")
                        );
                    }
                    None => {
                        let _ = writeln!(s, "- **{name}**: not in `{PEERS_FILE}`");
                    }
                }
            }
            let _ = writeln!(
                s,
                "- **Peers measured** {} by `{PEERS_COMMAND}`{} ({}){}",
                utc(p.date),
                if p.quick {
                    " --quick (indicative only)"
                } else {
                    ""
                },
                if p.quietness.is_empty() {
                    "?"
                } else {
                    &p.quietness
                },
                if p.machine == d.machine {
                    String::new()
                } else {
                    format!("; on another machine: {}", p.machine)
                }
            );
        }
    }
    s
}

/// Warnings about results that are not of one sitting.
fn sitting_warning(d: &Data) -> Option<String> {
    let (lo, hi) = d.criterion_span()?;
    let mut w = Vec::new();
    if hi - lo > SITTING_SECS {
        w.push(format!(
            "criterion's results span {} to {}",
            utc(lo),
            utc(hi)
        ));
    }
    if let Some(p) = &d.peers {
        if p.date.abs_diff(hi) > SITTING_SECS && p.date.abs_diff(lo) > SITTING_SECS {
            w.push(format!(
                "the peers were measured {} but criterion {} to {}",
                utc(p.date),
                utc(lo),
                utc(hi)
            ));
        }
    }
    (!w.is_empty()).then(|| format!("**Not one sitting**: {}.", w.join("; ")))
}

/// The ids that have no figure in this report (the Go/C++ cells are listed in the table).
fn missing(d: &Data) -> Vec<&'static str> {
    let mut v = Vec::new();
    for (w, (o, t)) in WORKLOADS.iter().zip(&d.main) {
        if o.is_none() {
            v.push(w.id);
        }
        if let (Some(id), None) = (w.tokio, t) {
            v.push(id);
        }
    }
    for (id, m) in [
        (WAKE.0, d.wake.0),
        (WAKE.1, d.wake.1),
        (WAIT, d.wait.0),
        (WAIT_TOKIO, d.wait.1),
        (WAIT_CONDVAR, d.wait.2),
        (GRPC.0, d.grpc.0),
        (GRPC.1, d.grpc.1),
    ] {
        if m.is_none() {
            v.push(id);
        }
    }
    if d.deadline.is_none() {
        v.push("deadline/fire");
    }
    v
}

/// The ids of `docs/benchmark-ids.md` (and their tokio-util twins) that a full report requires.
fn required_missing(d: &Data) -> Vec<&'static str> {
    let optional = [
        WAIT,
        WAIT_TOKIO,
        WAIT_CONDVAR,
        GRPC.0,
        GRPC.1,
        "deadline/fire",
    ];
    missing(d)
        .into_iter()
        .filter(|id| !optional.contains(id))
        .collect()
}

fn commands(d: &Data) -> String {
    format!(
        "`{PEERS_COMMAND}`, then `{BENCH_COMMAND}` (criterion {}; 1 s warm-up, 2 s measurement, 50 \
         samples per workload; `wake/1000`: 0.5 s, 1 s, 10 samples; the `wait/thread` rows: 0.5 s, \
         1.5 s, 50 samples) and `{DEADLINE_COMMAND}`, then `cargo xtask bench-report`",
        d.criterion_version
    )
}

/// The patterns of `deadline/fire` and the load during its run, for the full report.
fn deadline_lines(f: &DeadlineFire) -> String {
    let mut s = String::new();
    for (name, median, p99, max, n) in &f.patterns {
        let _ = writeln!(
            s,
            "- {name}: median {} late, p99 {}, slowest {} ({n} samples)",
            human(*median),
            human(*p99),
            human(*max)
        );
    }
    if let Some((before, after)) = &f.load {
        let _ = writeln!(
            s,
            "- load average (1, 5, 15 min) {before} before the run, {after} after"
        );
    }
    s
}

fn markdown(d: &Data, date: &str) -> String {
    let mut md = String::new();
    md.push_str("# Benchmarks: stopwire beside tokio-util, Go and C++\n\n");
    md.push_str(
        "Generated by `cargo xtask bench-report` from criterion's results and the peers' file; do \
         not edit by hand.\n\n",
    );
    let _ = writeln!(md, "- **Machine**: {}", d.machine);
    let _ = writeln!(md, "- **Date of the run**: {date}");
    if !d.commit.is_empty() {
        let _ = writeln!(
            md,
            "- **Source tree when this report was made** (make it right after the run): `{}`",
            d.commit
        );
    }
    let _ = writeln!(md, "- **Commands**: {}", commands(d));
    md.push_str(&peers_lines(d));
    md.push_str(
        "- **Cells**: the median time per iteration, with criterion's 95 % confidence interval \
         (stopwire, tokio-util) or the fastest and slowest of the repeated runs (Go, C++), then the \
         heap allocations per operation where the peer counts them; in bold the **ratio** stopwire \
         median / peer median (lower is better). `-`: the peer has no such operation; \"not \
         measured\": it has, but this run has no figure. Machines like this one are shared and \
         noisy: ratios within one sitting are the figures to trust, absolute times are indicative.\n",
    );
    if let Some(w) = sitting_warning(d) {
        let _ = writeln!(md, "\n{w}");
    }
    md.push('\n');
    md.push_str(&main_table(d, true));
    if let Some(f) = d.floor {
        let _ = writeln!(
            md,
            "\nHarness floor (`floor/black_box_ctx`: criterion's loop and the `black_box` of the \
             view, no check): {} per iteration; the stopwire check rows include it.",
            human(f.ns)
        );
    }
    if let Some(line) = timeout_floor(d) {
        let _ = writeln!(md, "\n{line}");
    }
    md.push_str("\n## Waiting\n\n");
    md.push_str(&waiting_table(d, true));
    let _ = writeln!(
        md,
        "\n`{WAIT}`: a thread blocked in a wait, woken by a cancel from another thread; the peers \
         are tokio-util's `cancelled()` under a `block_on` (`{WAIT_TOKIO}`) and a bare \
         `std::sync::Condvar` notify (`{WAIT_CONDVAR}`). `deadline/fire`: how late after its \
         deadline an `after_func` callback runs with the host deadline driver (from \
         `{DEADLINE_FILE}`, written by `{DEADLINE_COMMAND}`), a latency rather than a ratio: \
         timeouts of 1 to 5 ms on a `static` arena on `StdClock`, half of them one at a time, half \
         in overlapping batches; the lateness is the callback's reading of the clock minus the \
         deadline."
    );
    if let Some(f) = &d.deadline {
        let lines = deadline_lines(f);
        if !lines.is_empty() {
            md.push('\n');
            md.push_str(&lines);
        }
    }
    md.push_str("\n## gRPC\n\n");
    md.push_str(&grpc_line(d));
    md.push_str("\n\n## Bars and goals\n\n");
    md.push_str(
        "Bars must hold in the committed report; goals are where to aim. Ratios are to tokio-util \
         in the same run; absolute limits are for this kind of machine.\n\n",
    );
    md.push_str(&bars_table(d));
    md.push_str("\n![ratios](benchmarks.svg)\n\n");
    md.push_str(
        "## How the peers do each workload\n\n\
         - Go: `Err()` is the check (it takes the context's mutex); a child is `WithCancel` or \
         `WithTimeout` of the parent, canceled by its `CancelFunc`, which also unlinks it from the \
         parent (the rest of a release is the garbage collector's, whose cost the runs include); \
         in the trees every `CancelFunc` is called after the root's, as `defer cancel()` would; \
         value keys are one integer type with ten distinct values, as stopwire's; contended runs \
         two goroutines on `GOMAXPROCS=2` with `RunParallel`.\n\
         - C++: `stop_requested()` is the check (one load, at any depth: there is no chain to \
         walk, so only depth 1 is measured); a child is a `stop_source` (one heap allocation for \
         its shared state) and a `stop_callback` on the parent's token that requests stop on it; \
         release destroys the callback (unregistering it) and the source. `std::stop_token` has \
         no deadlines and no values.\n\
         - tokio-util has no deadlines and no values either.\n\n",
    );
    md.push_str(
        "How each stopwire workload is built (setup outside the timed part, `black_box` on the \
         context) is written at the top of `benches/context.rs`; the peers' at the top of their \
         programs. Where stopwire's time goes: [benchmarks-profile.md](benchmarks-profile.md).\n",
    );
    let missing = missing(d);
    if !missing.is_empty() {
        let _ = writeln!(
            md,
            "\n**Not measured in this run**: {}.",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    md
}

fn headline(d: &Data, date: &str) -> String {
    let mut s = main_table(d, false);
    s.push('\n');
    s.push_str(&waiting_table(d, false));
    if d.grpc.0.is_some() {
        let _ = writeln!(s, "\n{}", grpc_line(d));
    }
    let _ = writeln!(
        s,
        "\n<sub>Peer cells: median (**stopwire ÷ peer**). {date}; {}; {} (see docs/benchmarks.md).</sub>",
        d.machine,
        commands(d)
    );
    if let Some(w) = sitting_warning(d) {
        let _ = writeln!(s, "\n<sub>{w}</sub>");
    }
    s
}

/// One workload in the chart: its id, stopwire's ratio to each peer (tokio-util, Go, C++), and
/// the bar on the ratio to tokio-util.
type Group<'a> = (&'a str, [Option<f64>; 3], Option<f64>);

/// A horizontal bar chart of stopwire's ratio to each peer on a log scale, one group of bars per
/// workload, the row's tokio-util bar as a dashed tick and parity as a dark line: written by hand,
/// so the report needs no plotting crate.
fn svg(d: &Data, date: &str) -> String {
    const COLORS: [(Peer, &str); 3] = [
        (Peer::Tokio, "#1565c0"),
        (Peer::Go, "#00897b"),
        (Peer::Cxx, "#ef6c00"),
    ];
    let mut groups: Vec<Group<'_>> = Vec::new();
    let limit = |id: &str| {
        BARS.iter()
            .find(|b| b.id == id && !b.goal && b.measure == Measure::RatioTokio)
            .map(|b| b.limit)
    };
    for (w, (ours, tokio)) in WORKLOADS.iter().zip(&d.main) {
        let Some(o) = ours else { continue };
        let r = |c: Cell| c.ns().map(|p| o.ns / p);
        let ratios = [
            tokio.map(|t| o.ns / t.ns),
            r(d.peer_cell(Peer::Go, w.id, w.go)),
            r(d.peer_cell(Peer::Cxx, w.id, w.cxx)),
        ];
        if ratios.iter().any(Option::is_some) {
            groups.push((w.id, ratios, limit(w.id)));
        }
    }
    for (id, (o, t)) in [(WAIT, (d.wait.0, d.wait.1)), (WAKE.0, d.wake)] {
        if let (Some(o), Some(t)) = (o, t) {
            groups.push((id, [Some(o.ns / t.ns), None, None], limit(id)));
        }
    }
    let mut lo = 0.1f64;
    let mut hi = 1.0f64;
    for (_, ratios, t) in &groups {
        for x in ratios.iter().flatten() {
            lo = lo.min(x / 1.5);
            hi = hi.max(*x * 1.2);
        }
        if let Some(t) = t {
            lo = lo.min(t / 1.5);
        }
    }
    let lo_dec = lo.log10().floor() as i32;
    let hi_dec = (hi.log10().ceil() as i32).max(lo_dec + 1);
    let (left, right, top, bar_h, gap) = (200.0, 50.0, 90.0, 9.0, 10.0);
    let group_h = |g: &[Option<f64>; 3]| g.iter().filter(|x| x.is_some()).count() as f64 * bar_h;
    let plot_h: f64 = groups.iter().map(|g| group_h(&g.1) + gap).sum();
    let plot_w = 520.0;
    let width = left + plot_w + right;
    let height = top + plot_h + 60.0;
    let x_of =
        |v: f64| left + (v.log10() - f64::from(lo_dec)) / f64::from(hi_dec - lo_dec) * plot_w;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{}" y="22" font-size="16" text-anchor="middle">stopwire time / peer time (log scale; lower is better)</text>
<text x="{}" y="38" font-size="11" text-anchor="middle" fill="#555555">{}</text>
<text x="{}" y="52" font-size="11" text-anchor="middle" fill="#555555">{}</text>"##,
        width / 2.0,
        width / 2.0,
        xml_escape(date),
        width / 2.0,
        xml_escape(&d.machine)
    );
    // Legend.
    for (k, (p, color)) in COLORS.iter().enumerate() {
        let x = left + 170.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="62" width="12" height="12" fill="{color}"/><text x="{}" y="72" font-size="12">{}</text>"#,
            x + 16.0,
            xml_escape(&p.title().replace('`', ""))
        );
    }
    let bottom = top + plot_h;
    for dec in lo_dec..=hi_dec {
        for m in [1.0, 2.0, 5.0] {
            if dec == hi_dec && m > 1.0 {
                continue;
            }
            let v = m * 10f64.powi(dec);
            let x = x_of(v);
            let (stroke, w) = if m == 1.0 {
                ("#999999", 1.0)
            } else {
                ("#dddddd", 0.8)
            };
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="{stroke}" stroke-width="{w}"/>"#
            );
            let label = if v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            };
            let _ = writeln!(
                s,
                r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#555555">{label}</text>"##,
                bottom + 16.0
            );
        }
    }
    let one = x_of(1.0);
    let _ = writeln!(
        s,
        r##"<line x1="{one:.1}" y1="{}" x2="{one:.1}" y2="{}" stroke="#333333" stroke-width="1.5"/>"##,
        top - 4.0,
        bottom + 4.0
    );
    let base = x_of(10f64.powi(lo_dec));
    let mut y = top + gap / 2.0;
    for (id, ratios, t) in &groups {
        let h = group_h(ratios);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + h / 2.0 + 4.0,
            xml_escape(id)
        );
        let mut by = y;
        for (x, (_, color)) in ratios.iter().zip(COLORS) {
            let Some(x) = x else { continue };
            let end = x_of(*x);
            let _ = writeln!(
                s,
                r#"<rect x="{base:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
                (end - base).max(1.0),
                bar_h - 1.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#,
                end + 3.0,
                by + bar_h - 1.5,
                ratio_text(*x)
            );
            by += bar_h;
        }
        if let Some(t) = t {
            let tx = x_of(*t);
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#000000" stroke-width="2" stroke-dasharray="3,2"/>"##,
                y - 2.0,
                y + h + 2.0
            );
        }
        y += h + gap;
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{:.1}" font-size="11" text-anchor="middle" fill="#555555">bars: ratio of medians; dashed ticks: bars on the ratio to tokio-util; dark line: parity</text>"##,
        width / 2.0,
        bottom + 40.0
    );
    s.push_str("</svg>\n");
    s
}

/// Replaces the README's table between the markers (which must exist).
fn update_readme(headline: &str) -> Result {
    let path = root().join("README.md");
    let readme = fs::read_to_string(&path).map_err(|e| format!("README.md: {e}"))?;
    let block = format!("{README_START}\n{headline}{README_END}");
    let new = match (readme.find(README_START), readme.find(README_END)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{block}{}", &readme[..a], &readme[b + README_END.len()..])
        }
        _ => {
            return Err(format!(
                "README.md has no `{README_START}` ... `{README_END}` markers for the table"
            ))
        }
    };
    if new != readme {
        fs::write(&path, new).map_err(|e| format!("README.md: {e}"))?;
    }
    Ok(())
}

/// Runs every benchmark routine once, without timing (criterion's `--test` mode; the deadline
/// bench takes a few samples and writes nothing), for `cargo xtask test`.
pub(crate) fn smoke() -> Result {
    for command in [BENCH_COMMAND, DEADLINE_COMMAND] {
        let mut args: Vec<&str> = command.split_whitespace().skip(1).collect();
        args.extend(["--", "--test"]);
        run(cmd("cargo", &args))?;
    }
    Ok(())
}

/// The task `bench-report`. `--partial` writes the report even if workloads of `docs/benchmark-ids.md`
/// or the peers' file have no results yet (they are written "not measured"). `--out DIR` writes
/// `benchmarks.md`, `benchmarks.svg` and `readme-table.md` into `DIR` instead of `docs/` and the
/// README (a preview that changes no tracked file).
pub(crate) fn report(args: &[String]) -> Result {
    let mut partial = false;
    let mut out: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--partial" => partial = true,
            "--out" => {
                let dir = it.next().ok_or("bench-report: --out needs a directory")?;
                out = Some(PathBuf::from(dir));
            }
            _ => {
                return Err(format!(
                    "bench-report: unknown argument `{a}` (--partial, --out DIR)"
                ))
            }
        }
    }
    let dirs = criterion_dirs();
    let d = read_data(&dirs)?;
    let required = required_missing(&d);
    if !partial {
        if !required.is_empty() {
            return Err(format!(
                "no criterion results in {} for: {} (run `{BENCH_COMMAND}` first, or pass --partial)",
                if dirs.is_empty() {
                    "any criterion directory".to_string()
                } else {
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                required.join(", ")
            ));
        }
        if d.peers.is_none() {
            return Err(format!(
                "no {PEERS_FILE} in {} (run `{PEERS_COMMAND}` first, or pass --partial)",
                results_dir().display()
            ));
        }
    }
    let date = match d.criterion_span() {
        Some((lo, hi)) if utc(lo) == utc(hi) => utc(hi),
        Some((lo, hi)) => format!("{} to {}", utc(lo), utc(hi)),
        None => format!("{} (no criterion results)", utc(now())),
    };

    let md = markdown(&d, &date);
    let chart = svg(&d, &date);
    let table = headline(&d, &date);
    let wrote = match &out {
        Some(dir) => {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for (name, text) in [
                ("benchmarks.md", &md),
                ("benchmarks.svg", &chart),
                ("readme-table.md", &table),
            ] {
                let p = dir.join(name);
                fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
            }
            format!(
                "wrote benchmarks.md, benchmarks.svg and readme-table.md in {}",
                dir.display()
            )
        }
        None => {
            let docs = root().join("docs");
            fs::create_dir_all(&docs).map_err(|e| format!("docs/: {e}"))?;
            fs::write(docs.join("benchmarks.md"), &md)
                .map_err(|e| format!("docs/benchmarks.md: {e}"))?;
            fs::write(docs.join("benchmarks.svg"), &chart)
                .map_err(|e| format!("docs/benchmarks.svg: {e}"))?;
            update_readme(&table)?;
            "wrote docs/benchmarks.md, docs/benchmarks.svg and the README table".to_string()
        }
    };

    println!("{}", main_table(&d, false));
    println!("{}", waiting_table(&d, false));
    println!("{}", bars_table(&d));
    println!(
        "criterion results read from: {}",
        d.criterion_dirs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    match &d.peers_path {
        Some(p) => println!("peers read from: {}", p.display()),
        None => println!("no {PEERS_FILE}: the Go and C++ cells say \"not measured\""),
    }
    if let Some(w) = sitting_warning(&d) {
        println!("{w}");
    }
    let missing = missing(&d);
    if !missing.is_empty() {
        println!("not measured: {}", missing.join(", "));
    }
    println!("{wrote}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A small JSON reader and string quoting (xtask has no dependencies)
// ---------------------------------------------------------------------------------------------

mod json {
    /// A parsed JSON value; objects keep their keys in order.
    #[derive(Debug, Clone, PartialEq)]
    pub(super) enum Value {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Value>),
        Obj(Vec<(String, Value)>),
    }

    impl Value {
        /// The member `k` of an object.
        pub(super) fn get(&self, k: &str) -> Option<&Value> {
            match self {
                Value::Obj(m) => m.iter().find(|(n, _)| n == k).map(|(_, v)| v),
                _ => None,
            }
        }

        pub(super) fn num(&self, k: &str) -> Option<f64> {
            match self.get(k)? {
                Value::Num(x) => Some(*x),
                _ => None,
            }
        }

        pub(super) fn str(&self, k: &str) -> Option<&str> {
            match self.get(k)? {
                Value::Str(s) => Some(s),
                _ => None,
            }
        }

        /// The array member `k`, or nothing.
        pub(super) fn arr(&self, k: &str) -> &[Value] {
            match self.get(k) {
                Some(Value::Arr(a)) => a,
                _ => &[],
            }
        }
    }

    /// Parses one JSON document (RFC 8259; nesting is bounded by the input's size).
    pub(super) fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            src: text,
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(v)
    }

    /// A JSON string literal for `s`.
    pub(super) fn quote(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    struct Parser<'a> {
        s: &'a [u8],
        src: &'a str,
        i: usize,
    }

    /// Deeper documents are refused rather than risking the stack.
    const MAX_DEPTH: usize = 64;

    impl Parser<'_> {
        fn err(&self, what: &str) -> String {
            format!("JSON: {what} at byte {}", self.i)
        }

        fn ws(&mut self) {
            while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }

        fn eat(&mut self, b: u8) -> bool {
            self.ws();
            if self.s.get(self.i) == Some(&b) {
                self.i += 1;
                true
            } else {
                false
            }
        }

        fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
            if self.s[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                Ok(v)
            } else {
                Err(self.err("unknown literal"))
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value, String> {
            if depth > MAX_DEPTH {
                return Err(self.err("nesting too deep"));
            }
            self.ws();
            match self.s.get(self.i) {
                None => Err(self.err("unexpected end")),
                Some(b'{') => {
                    self.i += 1;
                    let mut members = Vec::new();
                    if self.eat(b'}') {
                        return Ok(Value::Obj(members));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        if !self.eat(b':') {
                            return Err(self.err("expected ':'"));
                        }
                        members.push((k, self.value(depth + 1)?));
                        if self.eat(b',') {
                            continue;
                        }
                        if self.eat(b'}') {
                            return Ok(Value::Obj(members));
                        }
                        return Err(self.err("expected ',' or '}'"));
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    if self.eat(b']') {
                        return Ok(Value::Arr(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b',') {
                            continue;
                        }
                        if self.eat(b']') {
                            return Ok(Value::Arr(items));
                        }
                        return Err(self.err("expected ',' or ']'"));
                    }
                }
                Some(b'"') => self.string().map(Value::Str),
                Some(b't') => self.literal("true", Value::Bool(true)),
                Some(b'f') => self.literal("false", Value::Bool(false)),
                Some(b'n') => self.literal("null", Value::Null),
                Some(_) => self.number(),
            }
        }

        fn number(&mut self) -> Result<Value, String> {
            let start = self.i;
            while self.i < self.s.len()
                && matches!(
                    self.s[self.i],
                    b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                )
            {
                self.i += 1;
            }
            self.src[start..self.i]
                .parse()
                .map(Value::Num)
                .map_err(|_| self.err("bad number"))
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let h = self
                .src
                .get(self.i..self.i + 4)
                .ok_or_else(|| self.err("short \\u escape"))?;
            let v = u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))?;
            self.i += 4;
            Ok(v)
        }

        fn string(&mut self) -> Result<String, String> {
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a string"));
            }
            self.i += 1;
            let mut out = String::new();
            loop {
                let start = self.i;
                while self.i < self.s.len() && !matches!(self.s[self.i], b'"' | b'\\') {
                    self.i += 1;
                }
                // Both stops are ASCII, so the slice is whole UTF-8.
                out.push_str(&self.src[start..self.i]);
                match self.s.get(self.i) {
                    None => return Err(self.err("unterminated string")),
                    Some(b'"') => {
                        self.i += 1;
                        return Ok(out);
                    }
                    Some(_) => {
                        self.i += 1;
                        let e = *self.s.get(self.i).ok_or_else(|| self.err("bad escape"))?;
                        self.i += 1;
                        match e {
                            b'"' => out.push('"'),
                            b'\\' => out.push('\\'),
                            b'/' => out.push('/'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'n' => out.push('\n'),
                            b'r' => out.push('\r'),
                            b't' => out.push('\t'),
                            b'u' => {
                                let mut c = self.hex4()?;
                                if (0xd800..0xdc00).contains(&c)
                                    && self.s[self.i..].starts_with(b"\\u")
                                {
                                    self.i += 2;
                                    let low = self.hex4()?;
                                    c = 0x10000
                                        + ((c - 0xd800) << 10)
                                        + (low.wrapping_sub(0xdc00) & 0x3ff);
                                }
                                out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                            }
                            _ => return Err(self.err("bad escape")),
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_631_400), "2026-11-25 18:30 UTC");
    }

    #[test]
    fn json_reads_criterion_estimates() {
        let j = r#"{"mean":{"point_estimate":9.0},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.25,"upper_bound":1.5e0},"point_estimate":1.37,"standard_error":0.06}}"#;
        let v = json::parse(j).unwrap();
        let m = v.get("median").unwrap();
        assert_eq!(m.num("point_estimate"), Some(1.37));
        let ci = m.get("confidence_interval").unwrap();
        assert_eq!(ci.num("lower_bound"), Some(1.25));
        assert_eq!(ci.num("upper_bound"), Some(1.5));
    }

    #[test]
    fn json_strings_round_trip_and_errors_are_refused() {
        let s = "g++ \"12\"\\ \n\tµ";
        assert_eq!(
            json::parse(&json::quote(s)).unwrap(),
            json::Value::Str(s.to_string())
        );
        assert_eq!(
            json::parse(r#""\u00b5\ud83d\ude00""#).unwrap(),
            json::Value::Str("µ😀".to_string())
        );
        for bad in ["{", "{\"a\" 1}", "[1,]", "\"open", "1 2", "nul"] {
            assert!(json::parse(bad).is_err(), "{bad} parsed");
        }
    }

    fn figure(id: &str, peer: Peer, ns: f64, allocs: Option<f64>) -> PeerFigure {
        PeerFigure {
            id: id.into(),
            peer: peer.key().into(),
            ns,
            min: ns * 0.9,
            max: ns * 1.1,
            runs: 11,
            allocs,
        }
    }

    fn sample_peers() -> PeersFile {
        PeersFile {
            date: 1_795_631_400,
            machine: "cpu \"x\"".into(),
            quietness: "load average 0.1 0.2 0.3".into(),
            quick: false,
            runs: vec![
                PeerRun {
                    peer: "go".into(),
                    tool: "go version go1.19.8".into(),
                    command: "go build".into(),
                    skipped: None,
                },
                PeerRun {
                    peer: "cxx".into(),
                    tool: String::new(),
                    command: String::new(),
                    skipped: Some("`g++` is not on PATH".into()),
                },
            ],
            figures: vec![
                figure("create_cancel/cancel", Peer::Go, 100.0, Some(2.0)),
                figure("check/depth1", Peer::Go, 10.0, Some(0.0)),
            ],
        }
    }

    #[test]
    fn peers_file_round_trips() {
        let p = sample_peers();
        assert_eq!(PeersFile::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn peer_output_lines_are_read() {
        let out = "noise\n{\"id\":\"tree/111\",\"ns\":8430.8,\"min_ns\":7351.7,\"max_ns\":8632.2,\"runs\":3,\"allocs\":111.0}\n";
        let v = parse_peer_output(Peer::Cxx, out).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].id, "tree/111");
        assert_eq!(v[0].peer, "cxx");
        assert_eq!(v[0].allocs, Some(111.0));
        assert!(parse_peer_output(Peer::Go, "no results\n").is_err());
        assert!(parse_peer_output(Peer::Go, "{\"id\":\"x\"}\n").is_err());
    }

    fn median(ns: f64) -> Median {
        Median {
            ns,
            lo: ns * 0.99,
            hi: ns * 1.01,
            written: 1_795_631_400,
        }
    }

    /// stopwire at 30 ns and tokio-util at 120 ns for create_cancel/cancel; nothing else but
    /// the Go figures of `sample_peers`.
    fn sample_data() -> Data {
        let mut main = vec![(None, None); WORKLOADS.len()];
        let k = WORKLOADS
            .iter()
            .position(|w| w.id == "create_cancel/cancel")
            .unwrap();
        main[k] = (Some(median(30.0)), Some(median(120.0)));
        Data {
            main,
            wake: (None, None),
            wait: (None, None, None),
            grpc: (None, None),
            deadline: Some(DeadlineFire {
                median_ns: 80_000.0,
                p99_ns: 1_500_000.0,
                samples: 200,
                written: 1_795_631_400,
                patterns: vec![("sequential".into(), 70_000.0, 900_000.0, 2e6, 100)],
                load: Some(("0.10 0.20 0.30".into(), "0.40 0.30 0.30".into())),
            }),
            floor: None,
            clock: (None, None),
            peers: Some(sample_peers()),
            criterion_dirs: Vec::new(),
            peers_path: None,
            machine: "cpu \"x\"".into(),
            commit: String::new(),
            tokio_version: "0.7.20".into(),
            criterion_version: "0.8.2".into(),
        }
    }

    #[test]
    fn bars_are_judged_on_the_right_figure() {
        let d = sample_data();
        assert_eq!(
            d.measured("create_cancel/cancel", Measure::RatioTokio),
            Some(0.25)
        );
        assert_eq!(d.measured("create_cancel/cancel", Measure::Ns), Some(30.0));
        assert_eq!(d.measured("tree/111", Measure::RatioTokio), None);
        assert_eq!(d.bar_text("create_cancel/cancel"), "ratio ≤ 0.3: met");
        assert_eq!(d.bar_text("tree/111"), "ratio ≤ 0.25: not measured");
        // deadline/fire: the median bar holds, the p99 goal does not.
        assert_eq!(d.bar_text("deadline/fire"), "median ≤ 1 ms: met");
        let t = bars_table(&d);
        assert!(t.contains("| `deadline/fire` | goal p99 ≤ 1 ms | issue 10 | 1.50 ms | missed |"));
        assert!(t.contains("| `create_cancel/cancel` | goal ≤ 32 ns | issue 13 | 30.0 ns | met |"));
    }

    #[test]
    fn tables_say_not_measured_and_never_invent() {
        let d = sample_data();
        let t = main_table(&d, false);
        let row = |id: &str| {
            t.lines()
                .find(|l| l.starts_with(&format!("| `{id}` |")))
                .unwrap()
                .to_string()
        };
        // Measured: ratios to tokio-util (0.25) and Go (0.30); the C++ peer was skipped.
        assert_eq!(
            row("create_cancel/cancel"),
            "| `create_cancel/cancel` | 30.0 ns | 120.0 ns (**0.25**) | 100.0 ns, 2 allocs (**0.30**) | not measured | ratio ≤ 0.3: met |"
        );
        // No stopwire figure: no ratio; a peer without the operation is "-".
        assert_eq!(
            row("check/deadline"),
            "| `check/deadline` | not measured | - | not measured | - | ≤ 5 ns: not measured |"
        );
        let full = main_table(&d, true);
        assert!(full.contains("not measured (skipped: `g++` is not on PATH)"));
        let w = waiting_table(&d, false);
        assert!(w.contains("| `wait/thread` | not measured | not measured | not measured | - |"));
        assert!(w.contains("| `deadline/fire` | median 80.00 µs, p99 1.50 ms | - | - |"));
        let m = missing(&d);
        assert!(m.contains(&"wait/thread") && m.contains(&"grpc/propagate"));
        assert!(!m.contains(&"deadline/fire"));
        // The new ids are optional; the ids of docs/benchmark-ids.md are not.
        let r = required_missing(&d);
        assert!(r.contains(&"tree/111") && r.contains(&"wake/1000"));
        assert!(!r.contains(&"wait/thread") && !r.contains(&"grpc/baseline"));
    }

    #[test]
    fn deadline_file_is_read_with_its_patterns() {
        // As benches/deadline_fire.rs writes it (fields abridged).
        let j = r#"{"id": "deadline/fire", "median_ns": 61234, "p99_ns": 180000, "samples": 2000, "left_out": 0, "max_ns": 400000, "load_before": "0.31 0.40 0.52", "load_after": "0.45 0.42 0.52", "sequential": {"median_ns": 60000, "p99_ns": 150000, "samples": 1000, "max_ns": 300000}, "overlapping": {"median_ns": 63000, "p99_ns": 190000, "samples": 1000, "max_ns": 400000}}"#;
        let f = parse_deadline_fire(j, 7).unwrap();
        assert_eq!(
            (f.median_ns, f.p99_ns, f.samples, f.written),
            (61234.0, 180000.0, 2000, 7)
        );
        assert_eq!(f.patterns.len(), 2);
        assert_eq!(
            f.patterns[1],
            ("overlapping".into(), 63000.0, 190000.0, 400000.0, 1000)
        );
        let lines = deadline_lines(&f);
        assert!(lines.contains(
            "- sequential: median 60.00 µs late, p99 150.00 µs, slowest 300.00 µs (1000 samples)"
        ));
        assert!(lines.contains("0.31 0.40 0.52 before the run, 0.45 0.42 0.52 after"));
        // The minimal file of older runs is still read; another id is refused.
        let f = parse_deadline_fire(
            r#"{"id":"deadline/fire","median_ns":1,"p99_ns":2,"samples":3}"#,
            0,
        )
        .unwrap();
        assert!(f.patterns.is_empty() && f.load.is_none());
        assert!(parse_deadline_fire(
            r#"{"id":"wake/1000","median_ns":1,"p99_ns":2,"samples":3}"#,
            0
        )
        .is_err());
    }

    #[test]
    fn results_of_different_sittings_are_flagged() {
        let mut d = sample_data();
        assert!(sitting_warning(&d).is_none());
        d.peers.as_mut().unwrap().date += 2 * SITTING_SECS;
        assert!(sitting_warning(&d)
            .unwrap()
            .contains("the peers were measured"));
    }

    #[test]
    fn numbers_are_written_as_read() {
        assert_eq!(human(0.834), "0.83 ns");
        assert_eq!(human(126.84), "126.8 ns");
        assert_eq!(human(13_200.0), "13.20 µs");
        assert_eq!(allocs_text(2.000004), "2 allocs");
        assert_eq!(allocs_text(1.0), "1 alloc");
        assert_eq!(allocs_text(266.2), "266 allocs");
        assert_eq!(allocs_text(0.5), "0.5 allocs");
        assert_eq!(limit_text(1e6), "1 ms");
        assert_eq!(limit_text(2.0), "2 ns");
        assert_eq!(ratio_text(0.0834), "0.083");
    }

    #[test]
    fn svg_draws_a_bar_per_measured_ratio() {
        let d = sample_data();
        let s = svg(&d, "stamp");
        // create_cancel/cancel: tokio and Go bars (the C++ peer was skipped); its tick at 0.3.
        assert_eq!(s.matches("<rect x=").count() - 3, 2, "{s}");
        assert!(s.contains(">0.25<") && s.contains(">0.30<"));
        assert!(s.contains("stroke-dasharray"));
    }
}
