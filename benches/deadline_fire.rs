//! `deadline/fire`: how late after its deadline an `after_func` callback runs when nothing but the
//! host deadline driver makes the deadline fire (issue 10: "within about a millisecond").
//!
//! The arena is a `static` on the default `StdClock`, so its driver thread starts by itself at
//! the first deadline; the program never calls `expire`. Each sample is one `with_timeout` child
//! of background with a pseudo-random timeout of 1 to 5 ms and one `after_func` on it. The
//! callback, which runs in the driver thread, reads the monotonic clock at once; its lateness is
//! that reading minus the deadline, both on `StdClock`'s time line (`StdClock::instant_of(0)` is
//! its epoch and a tick is a microsecond, so the deadline tick `d` is `d * 1000` ns after it; the
//! callback's reading keeps nanoseconds rather than rounding down to a tick).
//!
//! Two patterns, half of the samples each:
//! - sequential: one pending deadline at a time (the driver sleeps until it, alone);
//! - overlapping: batches of contexts created back to back with random timeouts, so deadlines
//!   earlier than the one the driver sleeps for keep arriving (it must be woken early) and several
//!   fall due in one expiry.
//!
//! A few samples first start the driver thread and are not counted. A sample whose deadline had
//! already passed when its callback was registered (the callback then runs at once, in the bench
//! thread: the bench was descheduled, not the driver late) is left out and counted. Nothing here
//! judges the timing; `cargo xtask bench-report` writes the figures into the report.
//!
//! On Linux, a thread that sleeps with a timeout is woken up to its timer slack late (50 µs by
//! default); the driver thread inherits the slack of the thread that starts it, here the main
//! thread (`/proc/self/timerslack_ns`, the main thread's id being the process's). The file records that slack. `STOPWIRE_BENCH_TIMERSLACK_NS=<ns>` sets it
//! before the driver starts, an experiment to see how much of the lateness is the kernel's.
//!
//! `cargo bench --bench deadline_fire` writes `deadline_fire.json` (median, 99th percentile and
//! more, in nanoseconds) to `$STOPWIRE_BENCH_DIR`, else `$CARGO_TARGET_DIR/stopwire-bench`, else
//! `target/stopwire-bench`. With `--test` (`cargo bench --bench deadline_fire -- --test`, as
//! `cargo xtask test` runs it) or without `--bench`, it takes a few samples and writes nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::OnceLock;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use stopwire::{Arena, StdClock};

/// Samples of each pattern in a full run.
const PER_PATTERN: usize = 1000;
/// Contexts created back to back in one overlapping batch.
const BATCH: usize = 50;
/// Samples that start the driver and are not counted.
const WARM_UP: usize = 20;
/// Shortest and longest timeout, in ticks (microseconds) of `StdClock`.
const MIN_TICKS: u64 = 1_000;
const MAX_TICKS: u64 = 5_000;
/// Not a timing judgement: a run whose callbacks have not all run this long after their deadline
/// has a driver that does not run at all, and stops with that message instead of hanging.
const HANG: Duration = Duration::from_secs(60);

/// One context and one callback registration per sample of a batch, and room to spare.
static FIRE: Arena<{ 4 * BATCH }> = Arena::new();

/// When each callback of the current batch ran: nanoseconds on `StdClock`'s time line, 0 if not
/// yet.
static FIRED: [AtomicU64; BATCH] = [const { AtomicU64::new(0) }; BATCH];
/// Callbacks of the current batch that have run, and how many the batch has.
static RAN: AtomicUsize = AtomicUsize::new(0);
static EXPECTED: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The bench thread: unparked by the last callback of a batch.
static BENCH: OnceLock<Thread> = OnceLock::new();

/// Nanoseconds since `StdClock`'s epoch.
fn now_ns() -> u64 {
    let d = Instant::now().saturating_duration_since(StdClock::instant_of(0));
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The callback of sample `k` of the batch: the clock first, then the bookkeeping.
fn on_fire(k: usize) {
    FIRED[k].store(now_ns(), SeqCst);
    if RAN.fetch_add(1, SeqCst) + 1 == EXPECTED.load(SeqCst) {
        if let Some(t) = BENCH.get() {
            t.unpark();
        }
    }
}

/// A small xorshift generator: the same timeouts in every run.
struct Rng(u64);

impl Rng {
    fn ticks(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        MIN_TICKS + self.0 % (MAX_TICKS - MIN_TICKS + 1)
    }
}

/// Lateness of the samples of one batch, in nanoseconds (negative would be early), and how many
/// were left out because their deadline passed before their callback was registered.
fn batch(n: usize, rng: &mut Rng) -> (Vec<i64>, usize) {
    for f in &FIRED[..n] {
        f.store(0, SeqCst);
    }
    RAN.store(0, SeqCst);
    EXPECTED.store(n, SeqCst);
    let mut live = Vec::with_capacity(n);
    let mut late_registration = vec![false; n];
    for (k, late) in late_registration.iter_mut().enumerate() {
        let ctx = FIRE
            .background()
            .with_timeout(rng.ticks())
            .expect("arena sized for a batch");
        let deadline = ctx.deadline().expect("live").expect("has a deadline");
        let reg = ctx.after_func(on_fire, k).expect("arena sized for a batch");
        // Ran at once, in this thread: the deadline had passed before the registration.
        *late = FIRED[k].load(SeqCst) != 0;
        live.push((ctx, reg, deadline));
    }
    let start = Instant::now();
    while RAN.load(SeqCst) < n {
        let waited = start.elapsed();
        assert!(
            waited < HANG,
            "{} of {n} callbacks still had not run {HANG:?} after the batch was created: the \
             deadline driver is not running",
            n - RAN.load(SeqCst)
        );
        thread::park_timeout(HANG - waited);
    }
    EXPECTED.store(usize::MAX, SeqCst);
    let mut late_ns = Vec::with_capacity(n);
    let mut left_out = 0;
    for (k, (ctx, reg, deadline)) in live.into_iter().enumerate() {
        let fired = FIRED[k].load(SeqCst);
        if late_registration[k] {
            left_out += 1;
        } else {
            late_ns.push(fired as i64 - (deadline * 1_000) as i64);
        }
        assert!(!reg.stop(), "the callback has run");
        drop(ctx);
    }
    (late_ns, left_out)
}

/// Order statistics of one set of samples, nanoseconds.
struct Summary {
    samples: usize,
    left_out: usize,
    min: i64,
    median: f64,
    p90: i64,
    p99: i64,
    max: i64,
    mean: f64,
}

/// The nearest-rank percentile `p` (0 < p <= 100) of sorted `v`.
fn percentile(v: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn summarize(mut v: Vec<i64>, left_out: usize) -> Summary {
    assert!(!v.is_empty(), "no samples");
    v.sort_unstable();
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0
    };
    Summary {
        samples: n,
        left_out,
        min: v[0],
        median,
        p90: percentile(&v, 90.0),
        p99: percentile(&v, 99.0),
        max: v[n - 1],
        mean: v.iter().map(|&x| x as f64).sum::<f64>() / n as f64,
    }
}

fn json_fields(s: &Summary) -> String {
    format!(
        "\"median_ns\": {:.0}, \"p99_ns\": {}, \"samples\": {}, \"left_out\": {}, \"min_ns\": {}, \
         \"p90_ns\": {}, \"max_ns\": {}, \"mean_ns\": {:.0}",
        s.median, s.p99, s.samples, s.left_out, s.min, s.p90, s.max, s.mean
    )
}

fn print(what: &str, s: &Summary) {
    let us = |ns: f64| ns / 1_000.0;
    println!(
        "deadline/fire {what:<11} {:>5} samples ({} left out): median {:.1} µs, p90 {:.1} µs, \
         p99 {:.1} µs, min {:.1} µs, max {:.1} µs, mean {:.1} µs",
        s.samples,
        s.left_out,
        us(s.median),
        us(s.p90 as f64),
        us(s.p99 as f64),
        us(s.min as f64),
        us(s.max as f64),
        us(s.mean),
    );
}

/// Where `bench-report` looks for the file (`xtask/src/bench.rs`, `results_dir`).
fn results_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STOPWIRE_BENCH_DIR") {
        return PathBuf::from(d);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |t| root.join(t));
    target.join("stopwire-bench")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    // `cargo bench` passes `--bench` (after the arguments given after `--`); `--test`, or no
    // `--bench` at all, asks for a short check.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let per_pattern = if full { PER_PATTERN } else { BATCH / 5 };
    BENCH.set(thread::current()).expect("set once");
    // An experiment, not the default: the timer slack of this thread (the main thread, whose
    // `/proc/self` entry is its own), which the driver thread inherits when this thread starts
    // it, to show how much of the lateness is the kernel's.
    if let Some(ns) = std::env::var_os("STOPWIRE_BENCH_TIMERSLACK_NS") {
        std::fs::write("/proc/self/timerslack_ns", ns.as_encoded_bytes())
            .expect("set the timer slack (STOPWIRE_BENCH_TIMERSLACK_NS)");
    }
    let slack = std::fs::read_to_string("/proc/self/timerslack_ns")
        .map_or_else(|_| "null".to_string(), |s| s.trim().to_string());
    println!("timer slack of the thread that starts the driver: {slack} ns");
    let load_before = loadavg();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // Starts the driver thread (the first deadline does) and lets it settle.
    for _ in 0..WARM_UP {
        batch(1, &mut rng);
    }
    let started = Instant::now();
    let mut seq = (Vec::with_capacity(per_pattern), 0);
    for _ in 0..per_pattern {
        let (v, out) = batch(1, &mut rng);
        seq.0.extend(v);
        seq.1 += out;
    }
    let mut over = (Vec::with_capacity(per_pattern), 0);
    for _ in 0..per_pattern.div_ceil(BATCH) {
        let (v, out) = batch(BATCH.min(per_pattern), &mut rng);
        over.0.extend(v);
        over.1 += out;
    }
    let elapsed = started.elapsed();
    let load_after = loadavg();
    assert_eq!(FIRE.stats().in_use, 0, "every slot came back");

    let all: Vec<i64> = seq.0.iter().chain(&over.0).copied().collect();
    let all = summarize(all, seq.1 + over.1);
    let seq = summarize(seq.0, seq.1);
    let over = summarize(over.0, over.1);
    print("sequential", &seq);
    print("overlapping", &over);
    print("all", &all);
    println!(
        "measured in {:.1} s; load average {load_before} before, {load_after} after",
        elapsed.as_secs_f64()
    );
    if !full {
        println!("(a short check: run `cargo bench --bench deadline_fire` to write the figures)");
        return;
    }
    let json = format!(
        "{{\"id\": \"deadline/fire\", {}, \"timeouts_us\": [{MIN_TICKS}, {MAX_TICKS}], \
         \"batch\": {BATCH}, \"timerslack_ns\": {slack}, \"load_before\": \"{load_before}\", \"load_after\": \"{load_after}\", \
         \"sequential\": {{{}}}, \"overlapping\": {{{}}}}}\n",
        json_fields(&all),
        json_fields(&seq),
        json_fields(&over)
    );
    let dir = results_dir();
    std::fs::create_dir_all(&dir).expect("results directory");
    let path = dir.join("deadline_fire.json");
    std::fs::write(&path, json).expect("write deadline_fire.json");
    println!("wrote {}", path.display());
}
