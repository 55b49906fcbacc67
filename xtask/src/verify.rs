//! `cargo xtask verify`: every tier of verification in depth, one summary line per tier; and
//! `cargo xtask fuzz [--minutes N]`: the libFuzzer targets of `fuzz/`.
//!
//! | tier | what it runs | what it proves |
//! |---|---|---|
//! | `loom` | `tests/loom.rs` under `--cfg loom`, then with `--cfg stopwire_no_cas` too, `LOOM_MAX_PREEMPTIONS` = [`LOOM_PREEMPTIONS`]; prints the interleavings each model explored | every interleaving (up to that many preemptions) of the modelled races keeps the rules |
//! | `mutants` | each of [`MUTATIONS`] applied to a copy of the package under the target directory, then the loom models (`LOOM_MAX_PREEMPTIONS` = [`MUTANTS_PREEMPTIONS`]) | every mutation (a fence removed, an ordering weakened, a CAS made a plain store, ...) makes some model fail: the models can fail |
//! | `miri` | lib unit tests + `tests/miri.rs` under Miri, strict provenance, then tree borrows too | no undefined behaviour on the paths they take |
//! | `tsan` | `--lib --tests` under ThreadSanitizer (nightly, `-Zbuild-std`) | no data race in the threaded tests (stress, soak, ...) |
//! | `model` | `tests/model.rs` with [`MODEL_OPS`] operations | engine == reference model of docs/spec.md on random sequences |
//! | `fuzz` | every target of [`FUZZ_TARGETS`] (`model`, `capi`, `callbacks`, `grpc_timeout`), [`FUZZ_SMOKE_MINUTES`] minute each | the model check on fuzzer-chosen inputs, raw API and C API; callbacks that panic, stop or release during dispatch; the `grpc-timeout` codec never rounds to a later deadline |
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
/// `cargo xtask test` runs the models with 2; 4 explores about four times as many
/// interleavings (every model in about 3.5 s per configuration), and 3 is the least that finds
/// the torn cause read of K6 (a check reading the cause after a `Relaxed` re-validation).
pub(crate) const LOOM_PREEMPTIONS: &str = "4";
/// Preemption bound of the mutants tier: every mutation it lists is caught with this one.
const MUTANTS_PREEMPTIONS: &str = "2";
/// Operations of the model tier (`cargo xtask test` runs 10^5).
pub(crate) const MODEL_OPS: &str = "3000000";
/// Minutes per fuzz target in the verify tier.
pub(crate) const FUZZ_SMOKE_MINUTES: u64 = 1;
/// Duration of the soak tier.
pub(crate) const SOAK_SECS: &str = "60";
/// Arena capacity of the C API in the fuzz build: small, so that it fills up (SPEC A3).
const FUZZ_C_CAPACITY: &str = "40";
/// The targets of `fuzz/Cargo.toml`.
const FUZZ_TARGETS: [&str; 4] = ["model", "capi", "callbacks", "grpc_timeout"];

const TIERS: [&str; 7] = ["loom", "mutants", "miri", "tsan", "model", "fuzz", "soak"];

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

/// A configuration the loom models run in: the host's compare-and-swap paths, or the paths of
/// chips without it (`--cfg stopwire_no_cas`, issue 11).
#[derive(Clone, Copy, PartialEq, Eq)]
enum LoomCfg {
    Cas,
    NoCas,
}

impl LoomCfg {
    const BOTH: &'static [LoomCfg] = &[LoomCfg::Cas, LoomCfg::NoCas];

    fn name(self) -> &'static str {
        match self {
            LoomCfg::Cas => "cas",
            LoomCfg::NoCas => "no-cas",
        }
    }

    fn rustflags(self) -> &'static str {
        match self {
            LoomCfg::Cas => "--cfg loom",
            LoomCfg::NoCas => "--cfg loom --cfg stopwire_no_cas",
        }
    }
}

/// What one run of `tests/loom.rs` reported.
struct LoomRun {
    /// The test binary ran (false: the build failed).
    ran: bool,
    passed: u64,
    failed: Vec<String>,
    /// `(model, interleavings)`, from the `loom model <name>: <n> interleavings` lines.
    interleavings: Vec<(String, u64)>,
    /// The panic of each failed model: `(model, "file:line: message")`.
    panics: Vec<(String, String)>,
}

/// Runs the loom models of the package whose manifest is `manifest` in configuration `cfg`, one
/// model at a time (so that each prints its own interleavings), with a target directory of its
/// own under `target`; with `waiting`, feature `async` too (the waiting layer's models).
fn loom_run(
    manifest: &std::path::Path,
    target: PathBuf,
    cfg: LoomCfg,
    waiting: bool,
    preemptions: &str,
) -> LoomRun {
    let manifest = manifest.to_string_lossy().into_owned();
    let mut args = vec![
        "test",
        "--manifest-path",
        &manifest,
        "-p",
        "stopwire",
        "--release",
    ];
    if waiting {
        args.extend(["--features", "async"]);
    }
    args.extend(["--test", "loom", "--", "--nocapture", "--test-threads=1"]);
    let mut c = cmd("cargo", &args);
    c.env("RUSTFLAGS", cfg.rustflags())
        .env("CARGO_TARGET_DIR", target)
        .env("LOOM_MAX_PREEMPTIONS", preemptions);
    let (_, lines) = run_lines(c);
    parse_loom(&lines)
}

/// Reads the output of a `tests/loom.rs` run (see [`LoomRun`]).
fn parse_loom(lines: &[String]) -> LoomRun {
    let (passed, failed_count) = test_counts(lines);
    let ran = lines.iter().any(|l| l.starts_with("test result:"));
    let interleavings = lines
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find("loom model ")? + 11..];
            let (name, n) = rest.split_once(": ")?;
            let n = n.strip_suffix(" interleavings")?.parse().ok()?;
            Some((name.to_string(), n))
        })
        .collect();
    // With --nocapture, libtest names the failures in its summary: "failures:" then one
    // indented name per line.
    let mut failed = Vec::new();
    if let Some(at) = lines.iter().rposition(|l| l == "failures:") {
        failed.extend(
            lines[at + 1..]
                .iter()
                .map_while(|l| l.strip_prefix("    "))
                .map(str::to_string),
        );
    }
    let mut panics = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix("thread '") else {
            continue;
        };
        let Some((name, tail)) = rest.split_once('\'') else {
            continue;
        };
        if !name.contains("loom_") || panics.iter().any(|(n, _)| n == name) {
            continue;
        }
        let at = tail
            .split_once("panicked at ")
            .map(|(_, w)| w.trim_end_matches(':'))
            .unwrap_or("");
        let msg = lines.get(i + 1).map(String::as_str).unwrap_or("");
        panics.push((name.to_string(), format!("{at}: {msg}")));
    }
    if failed.is_empty() && failed_count > 0 {
        failed.push(format!("{failed_count} unnamed"));
    }
    LoomRun {
        ran,
        passed,
        failed,
        interleavings,
        panics,
    }
}

/// The change to `src/` that lets the waiting layer's futures (`stopwire::Done`) build under
/// loom, so that `tests/loom.rs` models N4 and N5 through them (the blocking waits park std
/// threads, which loom cannot schedule; the embassy driver needs embassy-time). Until `src/` has
/// it, the `mutants` tier applies it to its copy, and the `loom` tier leaves those models out.
const WAITING_UNDER_LOOM: [(&str, &str, &str); 5] = [
    (
        "src/wait/mod.rs",
        "#[cfg(all(feature = \"async\", not(loom)))]\npub(crate) mod future;",
        "#[cfg(feature = \"async\")]\npub(crate) mod future;",
    ),
    (
        "src/lib.rs",
        "#[cfg(all(feature = \"async\", not(loom)))]\npub use wait::future::{Done, UntilDone};",
        "#[cfg(feature = \"async\")]\npub use wait::future::{Done, UntilDone};",
    ),
    (
        "src/wait/future.rs",
        "        #[cfg(feature = \"std\")]\n        self.ctx.arena().settle_seen(why);",
        "        #[cfg(all(feature = \"std\", not(loom)))]\n        self.ctx.arena().settle_seen(why);",
    ),
    (
        "src/wait/future.rs",
        "#[cfg(feature = \"embassy\")]\npub use embassy::EmbassyClock;",
        "#[cfg(all(feature = \"embassy\", not(loom)))]\npub use embassy::EmbassyClock;",
    ),
    (
        "src/wait/future.rs",
        "#[cfg(feature = \"embassy\")]\nmod embassy {",
        "#[cfg(all(feature = \"embassy\", not(loom)))]\nmod embassy {",
    ),
];

/// Whether the sources under `tree` still keep the futures out of loom builds.
fn waiting_needs_patch(tree: &std::path::Path) -> bool {
    let (file, find, _) = WAITING_UNDER_LOOM[0];
    std::fs::read_to_string(tree.join(file)).is_ok_and(|t| t.contains(find))
}

/// Interleavings per model, one column per [`LoomCfg::BOTH`] entry.
type Table = Vec<(String, Vec<Option<u64>>)>;

fn add_to_table(table: &mut Table, column: usize, runs: Vec<(String, u64)>) {
    for (model, n) in runs {
        let at = match table.iter().position(|(m, _)| *m == model) {
            Some(at) => at,
            None => {
                table.push((model, vec![None; LoomCfg::BOTH.len()]));
                table.len() - 1
            }
        };
        table[at].1[column] = Some(n);
    }
}

fn print_table(what: &str, preemptions: &str, table: &Table) {
    println!("\ninterleavings explored per model{what} (LOOM_MAX_PREEMPTIONS={preemptions}):");
    println!("  {:<70} {:>8} {:>8}", "model", "cas", "no-cas");
    for (model, counts) in table {
        let cell = |c: &Option<u64>| c.map_or("-".to_string(), |n| n.to_string());
        println!(
            "  {model:<70} {:>8} {:>8}",
            cell(&counts[0]),
            cell(&counts[1])
        );
    }
}

fn tier_loom() -> (bool, String) {
    let manifest = root().join("Cargo.toml");
    let waiting = !waiting_needs_patch(&root());
    if !waiting {
        println!(
            "note: the waiting models (N4, N5, N6) are left out: src/ keeps `Done` out of loom builds \
             (the mutants tier runs them on a copy with WAITING_UNDER_LOOM applied)"
        );
    }
    let mut ok = true;
    let mut figures = Vec::new();
    let mut table = Vec::new();
    for (k, &cfg) in LoomCfg::BOTH.iter().enumerate() {
        let r = loom_run(
            &manifest,
            target_dir(&format!("loom-{}", cfg.name())),
            cfg,
            waiting,
            LOOM_PREEMPTIONS,
        );
        ok &= r.ran && r.failed.is_empty();
        let total: u64 = r.interleavings.iter().map(|(_, n)| n).sum();
        figures.push(format!(
            "{}: {} models passed, {} failed, {total} interleavings",
            cfg.name(),
            r.passed,
            r.failed.len()
        ));
        add_to_table(&mut table, k, r.interleavings);
    }
    print_table("", LOOM_PREEMPTIONS, &table);
    (
        ok,
        format!(
            "{}; LOOM_MAX_PREEMPTIONS={LOOM_PREEMPTIONS}{}",
            figures.join("; "),
            if waiting {
                ""
            } else {
                "; waiting models (N4, N5, N6) not built"
            }
        ),
    )
}

/// A small change to the engine that breaks one of its race arguments: every one must make at
/// least one loom model fail (issue 12 item 3). `edits` are `(file, exact text, replacement)`;
/// each text must occur exactly once in the file, so a mutation that no longer applies after an
/// engine change is reported instead of silently testing nothing.
struct Mutation {
    id: &'static str,
    what: &'static str,
    edits: &'static [(&'static str, &'static str, &'static str)],
    /// The configurations whose code the edits touch.
    cfgs: &'static [LoomCfg],
    /// Why no model can catch it, for a mutation that changes nothing a rule can observe (an
    /// equivalent mutant): it is still run, and reported as surviving rather than failing the
    /// tier; a model that catches it after all is reported too.
    equivalent: Option<&'static str>,
}

const MUTATIONS: &[Mutation] = &[
    Mutation {
        id: "a",
        what: "no release fence at the start of a locked step (run.rs ArenaView::begin_step)",
        edits: &[(
            "src/engine/run.rs",
            "        // so.\n        fence(Release);\n",
            "        // so.\n",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: Some(
            "alloc (tree.rs) stores the new generation, then issues a release fence, before it \
             writes any field of the newcomer; every other field a lock-free read uses (the \
             cause, once settled) is written before a Release store of the state the read must \
             see first; (a+) removes both fences",
        ),
    },
    Mutation {
        id: "a+",
        what: "no release fence in a step, nor after a new generation is stored (tree.rs alloc)",
        edits: &[
            (
                "src/engine/run.rs",
                "        // so.\n        fence(Release);\n",
                "        // so.\n",
            ),
            (
                "src/engine/tree.rs",
                "        fence(Release);\n        let in_use",
                "        let in_use",
            ),
        ],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "b",
        what: "the state load of ArenaView::err (query.rs) Relaxed instead of Acquire",
        edits: &[(
            "src/engine/query.rs",
            "    pub fn err(&self, h: Handle) -> Result<(), Error> {\n        let (i, g) = self.header.packing.decode(h);\n        if let Some(slot) = self.slots.get(i) {\n            let s = slot.state.load(Acquire);",
            "    pub fn err(&self, h: Handle) -> Result<(), Error> {\n        let (i, g) = self.header.packing.decode(h);\n        if let Some(slot) = self.slots.get(i) {\n            let s = slot.state.load(Relaxed);",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: Some(
            "the fast path answers only `Ok(())` (not done) and reads nothing after the load; \
             every other answer goes through ArenaView::load, whose own Acquire load reads the \
             same or a newer state ((b+) weakens that one)",
        ),
    },
    Mutation {
        id: "b+",
        what: "the state load of every other check (query.rs ArenaView::load) Relaxed instead of Acquire",
        edits: &[(
            "src/engine/query.rs",
            "        if let Some(slot) = self.slots.get(i) {\n            let s = slot.state.load(Acquire);\n            if gen_of(s) == g {",
            "        if let Some(slot) = self.slots.get(i) {\n            let s = slot.state.load(Relaxed);\n            if gen_of(s) == g {",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "c",
        what: "the \"deadline seen\" CAS of record_seen (query.rs) a plain store",
        edits: &[(
            "src/engine/query.rs",
            "            match slot\n                .state\n                .compare_exchange_weak(cur, cur | ERR_TRANSIENT, Acquire, Acquire)\n            {",
            "            match {\n                slot.state.store(cur | ERR_TRANSIENT, Relaxed);\n                Ok::<State, State>(cur)\n            } {",
        )],
        cfgs: &[LoomCfg::Cas],
        equivalent: None,
    },
    Mutation {
        id: "d",
        what: "no-CAS mark_deadline_node (walk.rs): no \"marking\" store, the step's cached clock",
        edits: &[
            (
                "src/engine/walk.rs",
                "        slot.state.store(with_err(s, ERR_TRANSIENT), Relaxed);\n",
                "",
            ),
            (
                "src/engine/walk.rs",
                "        let t = self.arena.header.clock.now();",
                "        let t = self.now();",
            ),
        ],
        cfgs: &[LoomCfg::NoCas],
        equivalent: None,
    },
    Mutation {
        id: "e",
        what: "store_err (walk.rs) a plain store instead of the CAS loop",
        edits: &[(
            "src/engine/walk.rs",
            "            let mut cur = s;\n            loop {\n                match slot\n                    .state\n                    .compare_exchange(cur, with_err(cur, e), Release, Relaxed)\n                {\n                    Ok(_) => return,\n                    Err(actual) => cur = actual,\n                }\n            }",
            "            slot.state.store(with_err(s, e), Release);\n            return;",
        )],
        cfgs: &[LoomCfg::Cas],
        equivalent: None,
    },
    Mutation {
        id: "f",
        what: "an earlier deadline does not take the driver's waker out (deadline.rs queued)",
        edits: &[(
            "src/engine/deadline.rs",
            "                self.work.set_driver(w);",
            "                drop(w);",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "g",
        what: "a paused walk does not pin its cursor (walk.rs resume_walk)",
        edits: &[(
            "src/engine/walk.rs",
            "                    self.slot(w.cur).add_ref(); // I3: the cursor survives the pause\n                    w.pinned = true;",
            "                    w.pinned = false;",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "i",
        what: "a waiter checks the context before the locked step that links it (waiter.rs wait_poll)",
        edits: &[(
            "src/engine/waiter.rs",
            "        self.run(None, |t| {\n            let reason = t.arena.err(h).err();",
            "        let early = self.err(h).err();\n        self.run(None, |t| {\n            let reason = early;",
        )],
        cfgs: &[LoomCfg::Cas],
        equivalent: None,
    },
    Mutation {
        id: "j",
        what: "a walk leaves the waiters of the nodes it marks linked (walk.rs resume_walk)",
        edits: &[(
            "src/engine/walk.rs",
            "                if let Some(t) = list.pop() {",
            "                if let Some(t) = list.pop().filter(|_| false) {",
        )],
        cfgs: &[LoomCfg::Cas],
        equivalent: None,
    },
    Mutation {
        id: "k",
        what: "a release that cancels nothing (value layer, detached) leaves its waiters linked (walk.rs start_walk)",
        edits: &[(
            "src/engine/walk.rs",
            "            drain: true,\n            descend,",
            "            drain: descend,\n            descend,",
        )],
        cfgs: &[LoomCfg::Cas],
        equivalent: None,
    },
    Mutation {
        id: "h",
        what: "no acquire fence before a check re-validates the state (query.rs revalidate)",
        edits: &[(
            "src/engine/query.rs",
            "    fn revalidate(slot: &Slot, g: u64) -> Result<State, Error> {\n        fence(Acquire);\n",
            "    fn revalidate(slot: &Slot, g: u64) -> Result<State, Error> {\n",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "l",
        what: "a walk marks a leaf that has waiters without taking them out (walk.rs resume_walk)",
        edits: &[(
            "src/engine/walk.rs",
            "            if c.first_child() == NONE && c.waiters.load(Relaxed).is_null() {",
            "            if c.first_child() == NONE {",
        )],
        cfgs: &[LoomCfg::Cas],
        equivalent: None,
    },
    Mutation {
        id: "m",
        what: "a cancel without a walk leaves the canceled node's waiters linked (walk.rs cancel_node)",
        edits: &[(
            "src/engine/walk.rs",
            "        if self.slot(r).first_child() == NONE && self.slot(r).waiters.load(Relaxed).is_null() {",
            "        if self.slot(r).first_child() == NONE {",
        )],
        cfgs: &[LoomCfg::Cas],
        equivalent: None,
    },
    Mutation {
        id: "n",
        what: "a paused deadline insertion resumes at its cursor even if it was settled meanwhile (deadline.rs resume_insert)",
        edits: &[(
            "src/engine/deadline.rs",
            "            if !self.is_queued(ins.cursor) {",
            "            if ins.cursor == NONE {",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "o",
        what: "a paused deadline insertion queues its new owner even if it was settled meanwhile (deadline.rs resume_insert)",
        edits: &[(
            "src/engine/deadline.rs",
            "        if is_settled(node_state) {",
            "        if false {",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "p",
        what: "a paused deadline insertion does not pin its cursor (deadline.rs lane_insert, resume_insert)",
        edits: &[
            (
                "src/engine/deadline.rs",
                "            self.slot(tail).add_ref();\n            self.work.put_insert(Insert {",
                "            self.work.put_insert(Insert {",
            ),
            (
                "src/engine/deadline.rs",
                "            self.release_ref(ins.cursor);\n            self.release_ref(ins.node);\n",
                "            self.release_ref(ins.node);\n",
            ),
            (
                "src/engine/deadline.rs",
                "                self.release_ref(ins.cursor);\n                let (_, tail) = self.lane(ins.lane);",
                "                let (_, tail) = self.lane(ins.lane);",
            ),
            (
                "src/engine/deadline.rs",
                "                self.slot(tail).add_ref();\n                ins.cursor = tail;",
                "                ins.cursor = tail;",
            ),
            (
                "src/engine/deadline.rs",
                "                self.release_ref(next);\n",
                "",
            ),
            (
                "src/engine/deadline.rs",
                "            self.slot(prev).add_ref();\n            self.release_ref(ins.cursor);\n",
                "",
            ),
        ],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "q",
        what: "a paused deadline insertion does not pin its new owner (deadline.rs lane_insert, resume_insert, inserted)",
        edits: &[
            (
                "src/engine/deadline.rs",
                "            self.slot(i).add_ref();\n            let (_, tail) = self.lane(0);",
                "            let (_, tail) = self.lane(0);",
            ),
            (
                "src/engine/deadline.rs",
                "            self.release_ref(ins.node);\n            return;",
                "            return;",
            ),
            (
                "src/engine/deadline.rs",
                "        self.queued(i);\n        self.release_ref(i);",
                "        self.queued(i);",
            ),
        ],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "r",
        what: "a paused deadline insertion starting over links before the tail even when the tail is earlier (deadline.rs resume_insert)",
        edits: &[(
            "src/engine/deadline.rs",
            "                if tail == NONE || self.dl(tail) <= d {",
            "                if tail == NONE {",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "s",
        what: "a walk marks every node with a deadline with plain stores, as if no check wrote it (walk.rs mark_deadline ignores CLOCKED)",
        edits: &[(
            "src/engine/walk.rs",
            "        if s & CLOCKED == 0 {\n            // No check compares this deadline",
            "        if true {\n            // No check compares this deadline",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
    Mutation {
        id: "t",
        what: "no context is CLOCKED: checks never compare a deadline with the clock (tree.rs create)",
        edits: &[(
            "src/engine/tree.rs",
            "                Some(_) if CLOCKED == HAS_DL || self.arena.checks_read_clock() => HAS_DL | CLOCKED,",
            "                Some(_) if false => HAS_DL | CLOCKED,",
        )],
        cfgs: LoomCfg::BOTH,
        equivalent: None,
    },
];

/// What the package needs to build its loom test (copied into the mutation tree).
const PACKAGE_PARTS: [&str; 8] = [
    "Cargo.toml",
    "Cargo.lock",
    "src",
    "tests",
    "benches",
    "examples",
    "docs",
    "README.md",
];

/// Copies the package into `tree` (a workspace of its own: the others members are left out).
fn copy_package(tree: &std::path::Path) -> Result {
    if tree.exists() {
        std::fs::remove_dir_all(tree).map_err(|e| format!("{}: {e}", tree.display()))?;
    }
    std::fs::create_dir_all(tree).map_err(|e| format!("{}: {e}", tree.display()))?;
    for part in PACKAGE_PARTS {
        let from = root().join(part);
        if !from.exists() {
            continue;
        }
        run(cmd(
            "cp",
            &["-R", &from.to_string_lossy(), &tree.to_string_lossy()],
        ))?;
    }
    let manifest = tree.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| format!("{e}"))?;
    let members = "members = [\"ffi\", \"xtask\", \"tower\"]";
    if !text.contains(members) {
        return Err(format!(
            "Cargo.toml: `{members}` not found (update PACKAGE_PARTS and copy_package)"
        ));
    }
    std::fs::write(&manifest, text.replace(members, "members = []"))
        .map_err(|e| format!("{}: {e}", manifest.display()))?;
    if waiting_needs_patch(tree) {
        println!("the copy gets WAITING_UNDER_LOOM (src/ keeps the futures out of loom builds)");
        edit(tree, "waiting under loom", &WAITING_UNDER_LOOM)?;
    }
    Ok(())
}

/// Applies `edits` (`(file, exact text, replacement)`, each text found exactly once) under `tree`.
fn edit(tree: &std::path::Path, what: &str, edits: &[(&str, &str, &str)]) -> Result {
    for (file, find, replace) in edits {
        let path = tree.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        let n = text.matches(find).count();
        if n != 1 {
            return Err(format!("{what}: its text occurs {n} times in {file}"));
        }
        std::fs::write(&path, text.replacen(find, replace, 1))
            .map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(())
}

/// Applies `m` to the pristine sources in `tree` (`pristine`: path and original text of every
/// file a mutation edits). Errors name an edit whose text is not found exactly once.
fn apply(tree: &std::path::Path, m: &Mutation, pristine: &[(String, String)]) -> Result {
    for (file, text) in pristine {
        std::fs::write(tree.join(file), text).map_err(|e| format!("{file}: {e}"))?;
    }
    edit(tree, &format!("mutation ({})", m.id), m.edits)
}

/// The `mutants` tier: each mutation of [`MUTATIONS`] applied to a copy of the package in the
/// target directory (never to `src/` itself), the loom models run on it in the configurations it
/// touches; one line per mutation naming the models that caught it. A mutation no model catches
/// fails the tier, unless it is marked equivalent (with the argument) in [`MUTATIONS`].
fn tier_mutants() -> (bool, String) {
    match mutants() {
        Ok(r) => r,
        Err(e) => (false, e),
    }
}

fn mutants() -> Result<(bool, String)> {
    let base = target_dir("mutants");
    let tree = base.join("tree");
    copy_package(&tree)?;
    let manifest = tree.join("Cargo.toml");
    let mut files: Vec<&str> = MUTATIONS
        .iter()
        .flat_map(|m| m.edits.iter().map(|e| e.0))
        .collect();
    files.sort_unstable();
    files.dedup();
    let pristine: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(tree.join(f))
                .map(|t| (f.to_string(), t))
                .map_err(|e| format!("{f}: {e}"))
        })
        .collect::<Result<_>>()?;
    // The unmutated copy first: every model must pass there, or a failure says nothing.
    let mut table = Vec::new();
    for (k, &cfg) in LoomCfg::BOTH.iter().enumerate() {
        let r = loom_run(
            &manifest,
            base.join(cfg.name()),
            cfg,
            true,
            MUTANTS_PREEMPTIONS,
        );
        if !r.ran || !r.failed.is_empty() {
            return Err(format!(
                "the unmutated copy fails in {} ({:?}): fix that first",
                cfg.name(),
                r.failed
            ));
        }
        add_to_table(&mut table, k, r.interleavings);
    }
    print_table(
        " on the unmutated copy (waiting models included)",
        MUTANTS_PREEMPTIONS,
        &table,
    );
    let mut lines = Vec::new();
    let mut uncaught = Vec::new();
    let mut survivors = Vec::new();
    for m in MUTATIONS {
        apply(&tree, m, &pristine)?;
        let mut caught = Vec::new();
        let mut notes = Vec::new();
        for &cfg in m.cfgs {
            let r = loom_run(
                &manifest,
                base.join(cfg.name()),
                cfg,
                true,
                MUTANTS_PREEMPTIONS,
            );
            if !r.ran {
                notes.push(format!("does not build in {}", cfg.name()));
                continue;
            }
            for f in &r.failed {
                let why = r
                    .panics
                    .iter()
                    .find(|(n, _)| n == f)
                    .map(|(_, w)| w.as_str())
                    .unwrap_or("");
                caught.push(format!("{f} [{}] ({why})", cfg.name()));
            }
        }
        let cfgs: Vec<&str> = m.cfgs.iter().map(|c| c.name()).collect();
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        let line = if caught.is_empty() {
            match m.equivalent {
                Some(why) if notes.is_empty() => {
                    survivors.push(m.id);
                    format!(
                        "({}) {}: survives in {} (equivalent: {why})",
                        m.id,
                        m.what,
                        cfgs.join(", ")
                    )
                }
                _ => {
                    uncaught.push(m.id);
                    format!(
                        "({}) {}: NOT CAUGHT in {}{notes}",
                        m.id,
                        m.what,
                        cfgs.join(", ")
                    )
                }
            }
        } else {
            format!("({}) {}: caught by {}", m.id, m.what, caught.join(", "))
        };
        println!("mutation {line}");
        lines.push(line);
    }
    // Leave the copy unmutated.
    for (file, text) in &pristine {
        std::fs::write(tree.join(file), text).map_err(|e| format!("{file}: {e}"))?;
    }
    println!("\nmutation check (loom models, LOOM_MAX_PREEMPTIONS={MUTANTS_PREEMPTIONS}):");
    for l in &lines {
        println!("  {l}");
    }
    Ok((
        uncaught.is_empty(),
        format!(
            "{} mutations, {} caught{}{}",
            MUTATIONS.len(),
            MUTATIONS.len() - uncaught.len() - survivors.len(),
            if survivors.is_empty() {
                String::new()
            } else {
                format!(", equivalent (survive): {}", survivors.join(" "))
            },
            if uncaught.is_empty() {
                String::new()
            } else {
                format!(", NOT CAUGHT: {}", uncaught.join(" "))
            }
        ),
    ))
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
            "mutants" => tier_mutants(),
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
