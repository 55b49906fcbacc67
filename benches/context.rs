//! stopwire against tokio-util's `CancellationToken`, workload by workload (`docs/benchmark-ids.md`).
//!
//! Every id of `docs/benchmark-ids.md` is measured here; the tokio-util twin of a workload runs in the same
//! binary under the group prefix `tokio_` and does the same work per iteration. Setup (building the
//! long-lived parents, the storage that holds a tree's handles, spawning tasks) is outside the timed
//! part; `black_box` hides the context from the optimizer wherever a check could be hoisted.
//!
//! The waiting rows of issue 10 are here too: `wake/1000` (futures on one executor) and
//! `wait/thread` (a parked thread woken by a cancel), each beside its peers in the same run. The
//! third waiting row, `deadline/fire`, is a latency of the host deadline driver rather than a
//! ratio: it has a binary of its own (`benches/deadline_fire.rs`).
//!
//! `cargo bench --features embassy --bench context` runs everything (`wake/1000` needs the `done()`
//! future of feature `async`, which `embassy` implies; without it that workload is skipped with a
//! notice);
//! `cargo xtask bench-report` turns criterion's results into `docs/benchmarks.md`, the chart and the
//! README table. Measurement times are set in [`config`]; criterion's command-line flags
//! (`--measurement-time`, a filter such as `check/`) still override them.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use stopwire::{Arena, OwnedCtx};
use tokio_util::sync::CancellationToken;

/// One hour in ticks of the default host clock (1 MHz): a deadline that never fires in a bench.
const HOUR: u64 = 3_600_000_000;

/// Arenas, one per workload family so that no workload sees another's slots or deadline queue.
static CHECK: Arena<64> = Arena::new();
static CREATE: Arena<16> = Arena::new();
static TREE: Arena<1024> = Arena::new();
static VALUE: Arena<32> = Arena::new();
static CONTENDED: Arena<16> = Arena::new();

/// A chain of `n` `with_cancel` contexts under background; the last is the leaf.
fn chain(arena: &'static Arena<64>, n: usize) -> Vec<OwnedCtx<'static>> {
    let mut v: Vec<OwnedCtx<'static>> = Vec::with_capacity(n);
    for _ in 0..n {
        let next = match v.last() {
            Some(p) => p.with_cancel(),
            None => arena.background().with_cancel(),
        };
        v.push(next.expect("bench arena large enough"));
    }
    v
}

/// A chain of `n` child tokens under a fresh root; the last is the leaf.
fn tokio_chain(n: usize) -> Vec<CancellationToken> {
    let mut v = vec![CancellationToken::new()];
    for _ in 0..n {
        let next = v.last().expect("non-empty").child_token();
        v.push(next);
    }
    v
}

fn check(c: &mut Criterion) {
    let mut g = c.benchmark_group("check");
    let d1 = chain(&CHECK, 1);
    let leaf = *d1[0];
    g.bench_function("depth1", |b| b.iter(|| black_box(leaf).is_done()));
    let d10 = chain(&CHECK, 10);
    let leaf = *d10[9];
    g.bench_function("depth10", |b| b.iter(|| black_box(leaf).is_done()));
    let dl = CHECK.background().with_timeout(HOUR).expect("slot");
    let view = *dl;
    g.bench_function("deadline", |b| b.iter(|| black_box(view).is_done()));
    g.finish();
    // Not a workload: the harness alone (criterion's loop, the `black_box` of the view), to read
    // the check rows against.
    let mut g = c.benchmark_group("floor");
    g.bench_function("black_box_ctx", |b| b.iter(|| black_box(leaf)));
    // What `create_cancel/timeout` pays beyond `create_cancel/cancel` before any deadline
    // bookkeeping: one reading of the default clock (`StdClock`, `Instant::now()`), and for
    // comparison the cheapest reading of the x86 time-stamp counter that is still ordered after
    // earlier loads (`lfence; rdtsc`: what a clock monotonic across threads would need at least).
    g.bench_function("clock_now", |b| b.iter(|| black_box(CREATE.now())));
    #[cfg(target_arch = "x86_64")]
    g.bench_function("lfence_rdtsc", |b| {
        b.iter(|| {
            // SAFETY: `lfence` and `rdtsc` have no memory effects; every x86_64 CPU has both.
            black_box(unsafe {
                core::arch::x86_64::_mm_lfence();
                core::arch::x86_64::_rdtsc()
            })
        })
    });
    g.finish();
    assert!(!leaf.is_done() && !view.is_done());
    drop((d1, d10, dl));

    let mut g = c.benchmark_group("tokio_check");
    // Depth 1: a child of a root token, as `with_cancel` of background.
    let t1 = tokio_chain(1);
    let leaf = &t1[1];
    g.bench_function("depth1", |b| b.iter(|| black_box(leaf).is_cancelled()));
    let t10 = tokio_chain(10);
    let leaf = &t10[10];
    g.bench_function("depth10", |b| b.iter(|| black_box(leaf).is_cancelled()));
    g.finish();
}

fn create_cancel(c: &mut Criterion) {
    let mut g = c.benchmark_group("create_cancel");
    let parent = CREATE.background().with_cancel().expect("slot");
    g.bench_function("cancel", |b| {
        b.iter(|| {
            let child = black_box(&parent).with_cancel().expect("slot");
            child.cancel();
            drop(black_box(child)); // release
        })
    });
    g.bench_function("timeout", |b| {
        b.iter(|| {
            let child = black_box(&parent).with_timeout(HOUR).expect("slot");
            child.cancel();
            drop(black_box(child));
        })
    });
    g.finish();
    assert_eq!(CREATE.stats().in_use, 1, "every child was released");
    drop(parent);

    let mut g = c.benchmark_group("tokio_create_cancel");
    let parent = CancellationToken::new();
    g.bench_function("cancel", |b| {
        b.iter(|| {
            let child = black_box(&parent).child_token();
            child.cancel();
            drop(black_box(child));
        })
    });
    g.finish();
}

/// Builds a root with `fanout` children of `fanout` children each, cancels the root and releases
/// everything. `hold` is reused storage (allocated outside the timed part).
fn tree_stopwire(fanout: usize, hold: &mut Vec<OwnedCtx<'static>>) {
    let root = TREE.background().with_cancel().expect("slot");
    for _ in 0..fanout {
        let child = root.with_cancel().expect("slot");
        for _ in 0..fanout {
            hold.push(child.with_cancel().expect("slot"));
        }
        hold.push(child);
    }
    root.cancel();
    black_box(&hold);
    drop(root);
    hold.clear(); // releases every node
}

fn tree_tokio(fanout: usize, hold: &mut Vec<CancellationToken>) {
    let root = CancellationToken::new();
    for _ in 0..fanout {
        let child = root.child_token();
        for _ in 0..fanout {
            hold.push(child.child_token());
        }
        hold.push(child);
    }
    root.cancel();
    black_box(&hold);
    drop(root);
    hold.clear();
}

fn tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("tree");
    let mut hold = Vec::with_capacity(1024);
    for (id, fanout) in [("111", 10), ("931", 30)] {
        g.bench_function(id, |b| b.iter(|| tree_stopwire(fanout, &mut hold)));
    }
    g.finish();
    assert_eq!(TREE.stats().in_use, 0, "every node was released");

    let mut g = c.benchmark_group("tokio_tree");
    let mut hold = Vec::with_capacity(1024);
    for (id, fanout) in [("111", 10), ("931", 30)] {
        g.bench_function(id, |b| b.iter(|| tree_tokio(fanout, &mut hold)));
    }
    g.finish();
}

fn value(c: &mut Criterion) {
    const KEY: NonZeroUsize = NonZeroUsize::new(1).expect("non-zero");
    let mut g = c.benchmark_group("value");
    // The key is set on the top layer; ten more value layers (other keys) sit below it, and the
    // lookup starts at the lowest: the key is 10 layers above the context asked.
    let mut layers: Vec<OwnedCtx<'static>> = vec![VALUE.background().with_value(KEY, 42).unwrap()];
    for k in 2..=11 {
        let key = NonZeroUsize::new(k).expect("non-zero");
        let next = layers.last().expect("non-empty").with_value(key, k);
        layers.push(next.expect("slot"));
    }
    let leaf = *layers[10];
    assert_eq!(leaf.value(KEY), Ok(Some(42)));
    g.bench_function("depth10", |b| {
        b.iter(|| black_box(leaf).value(black_box(KEY)))
    });
    g.finish();
}

/// Two threads, `ops` operations in all, started together; the wall time from the common start
/// to the last finish.
fn two_threads(ops: u64, op: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(2);
    let op = &op;
    let barrier = &barrier;
    let spans: Vec<(Instant, Instant)> = thread::scope(|s| {
        let shares = [ops / 2, ops - ops / 2];
        let workers: Vec<_> = shares
            .into_iter()
            .map(|n| {
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..n {
                        op();
                    }
                    (start, Instant::now())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("bench thread"))
            .collect()
    });
    let start = spans.iter().map(|s| s.0).min().expect("two");
    let end = spans.iter().map(|s| s.1).max().expect("two");
    end - start
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("contended");
    let parent = CONTENDED.background().with_cancel().expect("slot");
    let p = *parent;
    g.bench_function("create_cancel", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let child = black_box(p).with_cancel().expect("slot");
                child.cancel();
                drop(black_box(child));
            })
        })
    });
    g.finish();
    assert_eq!(CONTENDED.stats().in_use, 1);
    drop(parent);

    let mut g = c.benchmark_group("tokio_contended");
    let parent = CancellationToken::new();
    g.bench_function("create_cancel", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, || {
                let child = black_box(&parent).child_token();
                child.cancel();
                drop(black_box(child));
            })
        })
    });
    g.finish();
}

/// `wake/1000`: 1000 tasks of a tokio current-thread runtime each await `done()` (a `Done` future
/// with its waiter node inside the future, no registry) on their own child of one root; once
/// every task has polled its future once (registered), the clock starts, the root is canceled, and
/// the clock stops when the last task has run after its wakeup. The tokio-util twin awaits
/// `cancelled()` on child tokens, on the same runtime and harness.
#[cfg(feature = "async")]
mod wake {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use criterion::{Criterion, SamplingMode};
    use stopwire::{Arena, OwnedCtx};
    use tokio::sync::Notify;
    use tokio_util::sync::CancellationToken;

    const TASKS: usize = 1000;

    /// The root and its 1000 children (the waiter nodes live in the futures, not in slots).
    static WAKE: Arena<2048> = Arena::new();

    /// Counts tasks that have polled their future once, and tasks that have completed.
    #[derive(Default)]
    struct Progress {
        armed: AtomicUsize,
        woken: AtomicUsize,
        all_woken: Notify,
    }

    /// Awaits `fut`, counting its first poll in `armed` and its completion in `woken`.
    async fn observe<F: Future>(fut: F, p: Arc<Progress>) {
        let mut fut = pin!(fut);
        let mut first = true;
        std::future::poll_fn(|cx| {
            let r = fut.as_mut().poll(cx);
            if first {
                first = false;
                p.armed.fetch_add(1, SeqCst);
            }
            r.map(|_| ())
        })
        .await;
        if p.woken.fetch_add(1, SeqCst) + 1 == TASKS {
            p.all_woken.notify_one();
        }
    }

    /// Yields to the runtime until every task has registered.
    async fn until_armed(p: &Progress) {
        while p.armed.load(SeqCst) < TASKS {
            tokio::task::yield_now().await;
        }
    }

    async fn stopwire_once() -> Duration {
        let p = Arc::new(Progress::default());
        let root = WAKE.background().with_cancel().expect("slot");
        let children: Vec<OwnedCtx<'static>> = (0..TASKS)
            .map(|_| root.with_cancel().expect("slot"))
            .collect();
        let tasks: Vec<_> = children
            .iter()
            .map(|c| tokio::spawn(observe(c.done(), p.clone())))
            .collect();
        until_armed(&p).await;
        let start = Instant::now();
        root.cancel();
        p.all_woken.notified().await;
        let elapsed = start.elapsed();
        for t in tasks {
            t.await.expect("task");
        }
        drop(children);
        drop(root);
        elapsed
    }

    async fn tokio_once() -> Duration {
        let p = Arc::new(Progress::default());
        let root = CancellationToken::new();
        let children: Vec<CancellationToken> = (0..TASKS).map(|_| root.child_token()).collect();
        let tasks: Vec<_> = children
            .iter()
            .map(|c| {
                let c = c.clone();
                let p = p.clone();
                tokio::spawn(async move { observe(c.cancelled(), p).await })
            })
            .collect();
        until_armed(&p).await;
        let start = Instant::now();
        root.cancel();
        p.all_woken.notified().await;
        let elapsed = start.elapsed();
        for t in tasks {
            t.await.expect("task");
        }
        elapsed
    }

    pub(crate) fn wake(c: &mut Criterion) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        for (group, stopwire) in [("wake", true), ("tokio_wake", false)] {
            let mut g = c.benchmark_group(group);
            // Each iteration also spawns and registers 1000 tasks outside the timed part: few,
            // equal samples keep the run short.
            g.sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(1));
            g.bench_function("1000", |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            if stopwire {
                                rt.block_on(stopwire_once())
                            } else {
                                rt.block_on(tokio_once())
                            }
                        })
                        .sum()
                })
            });
            g.finish();
        }
        assert_eq!(WAKE.stats().in_use, 0, "every slot came back");
    }
}

/// Without the `async` feature (which `embassy` implies) there is no `done()` future to measure.
#[cfg(not(feature = "async"))]
mod wake {
    pub(crate) fn wake(_: &mut criterion::Criterion) {
        eprintln!(
            "wake/1000 skipped: it needs the `done()` future; run `cargo bench --features embassy`"
        );
    }
}

/// `wait/thread`: one thread blocked in a wait is woken by a cancel from the bench thread; the
/// time from just before the cancel to the moment the woken thread has returned from its wait.
///
/// The waiting thread lives across iterations. Per iteration, outside the timed part, the bench
/// thread hands it a fresh thing to wait on (a new `with_cancel` child of background, a child
/// token of a long-lived root, a cleared flag), the waiter says it is about to wait, and the bench
/// thread then watches the waiter's scheduler state in `/proc` until the kernel reports it asleep
/// (`S`), so every sample is a real wake-up of a parked thread and never the fast path of a wait
/// that finds the context done. Only then does the clock start and the cancel (or notify) run; the
/// waiter reads the clock as soon as its wait returns and sends the reading back. Both readings
/// are `Instant`s (the same monotonic clock in every thread).
///
/// The peers do the same under the same harness: `condvar_wait/thread` is a `Mutex<bool>` and a
/// `Condvar` (set the flag, `notify_one`), `tokio_wait/thread` is tokio-util's
/// `CancellationToken::cancelled()` under `block_on` of a current-thread tokio runtime owned by
/// the waiting thread. On Linux the two threads are pinned to different CPUs, so that every
/// sample is a wake-up across CPUs ([`wait::pin_to_cpu`]'s note).
mod wait {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread;
    use std::time::{Duration, Instant};

    use criterion::Criterion;
    use stopwire::{Arena, Ctx, Error};
    use tokio_util::sync::CancellationToken;

    /// One child at a time, plus room to spare.
    static WAIT: Arena<8> = Arena::new();

    /// The flag and condition variable of the `Condvar` peer.
    #[derive(Default)]
    struct Flag {
        set: Mutex<bool>,
        cv: Condvar,
    }

    /// What the waiting thread waits on in one iteration.
    enum Job {
        Stopwire(Ctx<'static>),
        Tokio(CancellationToken),
        Condvar(Arc<Flag>),
    }

    /// The waiting thread and the channels of the per-iteration handshake.
    struct Waiter {
        jobs: SyncSender<Option<Job>>,
        woke: Receiver<Instant>,
        /// Set by the waiter right before it enters the wait of the current job.
        about_to_wait: Arc<AtomicBool>,
        /// `/proc/self/task/<tid>/stat` of the waiting thread, when `/proc` exists.
        stat: Option<String>,
        thread: Option<thread::JoinHandle<()>>,
    }

    impl Waiter {
        fn start() -> Waiter {
            let (jobs, job_rx) = sync_channel::<Option<Job>>(0);
            let (woke_tx, woke) = sync_channel::<Instant>(1);
            let (tid_tx, tid_rx) = sync_channel::<Option<String>>(1);
            let about_to_wait = Arc::new(AtomicBool::new(false));
            let flag = about_to_wait.clone();
            let thread = thread::Builder::new()
                .name("bench-waiter".into())
                .spawn(move || {
                    pin_to_cpu(1);
                    // `/proc/thread-self` links to `<pid>/task/<tid>`.
                    let me = std::fs::read_link("/proc/thread-self")
                        .ok()
                        .map(|p| format!("/proc/{}/stat", p.display()));
                    tid_tx.send(me).expect("bench thread");
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .expect("runtime");
                    while let Ok(Some(job)) = job_rx.recv() {
                        flag.store(true, SeqCst);
                        match job {
                            Job::Stopwire(ctx) => assert_eq!(ctx.wait(), Error::Canceled),
                            Job::Tokio(token) => rt.block_on(token.cancelled()),
                            Job::Condvar(f) => {
                                let mut set = f.set.lock().expect("flag");
                                while !*set {
                                    set = f.cv.wait(set).expect("flag");
                                }
                            }
                        }
                        let end = Instant::now();
                        flag.store(false, SeqCst);
                        woke_tx.send(end).expect("bench thread");
                    }
                })
                .expect("spawn the waiting thread");
            let stat = tid_rx.recv().expect("waiting thread");
            Waiter {
                jobs,
                woke,
                about_to_wait,
                stat,
                thread: Some(thread),
            }
        }

        /// Hands `job` over and returns once the waiting thread sleeps in its wait.
        fn arm(&self, job: Job) {
            self.jobs.send(Some(job)).expect("waiting thread");
            while !self.about_to_wait.load(SeqCst) {
                std::hint::spin_loop();
            }
            match &self.stat {
                Some(path) => {
                    while !asleep(path) {
                        thread::yield_now();
                    }
                }
                // Without `/proc`: give the thread ample time to block.
                None => thread::sleep(Duration::from_micros(500)),
            }
        }

        /// The time from `start` until the waiting thread returned from its wait.
        fn returned_since(&self, start: Instant) -> Duration {
            self.woke.recv().expect("waiting thread") - start
        }
    }

    impl Drop for Waiter {
        fn drop(&mut self) {
            let _ = self.jobs.send(None);
            if let Some(t) = self.thread.take() {
                t.join().expect("waiting thread");
            }
        }
    }

    /// Whether the thread of `/proc/.../stat` is asleep (state `S`, an interruptible wait: a
    /// futex). The state is the first field after the parenthesised command name.
    fn asleep(path: &str) -> bool {
        let Ok(stat) = std::fs::read_to_string(path) else {
            return true;
        };
        stat.rfind(')')
            .and_then(|k| stat[k + 1..].split_whitespace().next())
            .is_some_and(|state| state == "S")
    }

    fn once(w: &Waiter, kind: &str, root: &CancellationToken) -> Duration {
        match kind {
            "stopwire" => {
                let child = WAIT.background().with_cancel().expect("slot");
                w.arm(Job::Stopwire(*child));
                let start = Instant::now();
                child.cancel();
                let d = w.returned_since(start);
                drop(child);
                d
            }
            "tokio" => {
                let child = root.child_token();
                w.arm(Job::Tokio(child.clone()));
                let start = Instant::now();
                child.cancel();
                w.returned_since(start)
            }
            _ => {
                let f = Arc::new(Flag::default());
                w.arm(Job::Condvar(f.clone()));
                let start = Instant::now();
                *f.set.lock().expect("flag") = true;
                f.cv.notify_one();
                w.returned_since(start)
            }
        }
    }

    /// Pins the calling thread to CPU `cpu` (Linux), so that every wake-up crosses from the bench
    /// thread's CPU to the waiter's: left to the scheduler, the waiter sometimes shares the bench
    /// thread's CPU and runs when that thread blocks, and the samples mix two kinds of wake-up.
    /// Does nothing where it fails (one CPU, another system).
    fn pin_to_cpu(cpu: usize) {
        #[cfg(target_os = "linux")]
        {
            extern "C" {
                fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32;
            }
            let mut mask = [0u64; 16];
            if cpu < 64 * mask.len() && thread::available_parallelism().is_ok_and(|n| n.get() > cpu)
            {
                mask[cpu / 64] = 1 << (cpu % 64);
                // SAFETY: `mask` is a `cpu_set_t`-sized (1024-bit) set that outlives the call; pid
                // 0 is the calling thread; the call only reads the mask.
                let _ =
                    unsafe { sched_setaffinity(0, core::mem::size_of_val(&mask), mask.as_ptr()) };
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = cpu;
    }

    pub(crate) fn wait(c: &mut Criterion) {
        // The bench thread on CPU 0, the waiter on CPU 1 (set in its thread); the bench thread's
        // own affinity is restored afterwards by ending the process, so this group runs last.
        pin_to_cpu(0);
        let w = Waiter::start();
        let root = CancellationToken::new();
        for (group, kind) in [
            ("wait", "stopwire"),
            ("condvar_wait", "condvar"),
            ("tokio_wait", "tokio"),
        ] {
            let mut g = c.benchmark_group(group);
            // The handshake outside the timed part costs more than the wake-up itself: shorter
            // phases keep the wall time of the three groups near a minute.
            g.warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_millis(1500));
            g.bench_function("thread", |b| {
                b.iter_custom(|iters| (0..iters).map(|_| once(&w, kind, &root)).sum())
            });
            g.finish();
        }
        drop(w);
        assert_eq!(WAIT.stats().in_use, 0, "every child was released");
    }
}

/// Short runs: the whole suite stays within a few minutes on a shared two-core machine.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = check, create_cancel, tree, value, contended, wake::wake, wait::wait
}
criterion_main!(benches);
