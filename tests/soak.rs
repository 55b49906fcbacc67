//! The soak: two worker threads and a deadline driver thread do random operations on one arena,
//! sharing contexts across threads, then the test checks that no cancellation was lost and that
//! the slots in use came back to their starting value.
//!
//! What is checked, and where:
//! - C2, C10 (during the run): whenever a worker sees a parent done, every child it created under
//!   that parent (and still holds) is done too — whoever canceled the parent, on whichever thread,
//!   however the creation raced with it. Checked after every cancel and at random moments.
//! - D4 (during the run): a held context whose deadline is `<=` a clock reading taken before the
//!   check reports done.
//! - F1, F4 (at the end): every callback registered ran exactly once or was stopped by a `stop`
//!   that returned true, never both, never twice.
//! - A5, A6 (at the end): once every handle is released and every registration stopped, slots in
//!   use equal their starting value (0).
//!
//! By default it runs a fixed number of operations (quick, in `cargo test`); `cargo xtask verify`
//! sets `STOPWIRE_SOAK_SECS` to run for that many seconds instead.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use stopwire::{Arena, ArenaView, Callback, Clock, Error, Handle, ManualClock};

const CAPACITY: usize = 256;
const MAX_TOKENS: usize = 1 << 22;

static CLOCK: ManualClock = ManualClock::new(0);
/// How often each callback token ran.
static RUNS: [AtomicU8; MAX_TOKENS] = [const { AtomicU8::new(0) }; MAX_TOKENS];
static NEXT_TOKEN: AtomicUsize = AtomicUsize::new(1);
static OPS: AtomicU64 = AtomicU64::new(0);
static LOST: AtomicU64 = AtomicU64::new(0);

fn ran(token: usize) {
    RUNS[token].fetch_add(1, SeqCst);
}

/// A small deterministic generator (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A context a worker created and still holds.
#[derive(Clone, Copy)]
struct Held {
    h: Handle,
    parent: Handle,
    /// A detached parent is never done, and releasing it or a value layer cancels nothing
    /// (W1, V4).
    parent_detached: bool,
    detached: bool,
    /// A value layer: no cancellation of its own (V4).
    value: bool,
}

/// What a worker reports at the end.
#[derive(Default)]
struct Tally {
    registered: Vec<usize>,
    stopped: Vec<usize>,
}

enum Budget {
    Ops(u64),
    Until(Instant),
}

impl Budget {
    fn more(&self, done: u64) -> bool {
        match *self {
            Budget::Ops(n) => done < n,
            Budget::Until(t) => Instant::now() < t,
        }
    }
}

/// D4: a context past its deadline (by a clock reading taken before the check) is done.
fn check_deadline(arena: &ArenaView, c: &Held) {
    let now = CLOCK.now();
    if let Ok(Some(d)) = arena.deadline(c.h) {
        if d <= now && !arena.is_done(c.h) {
            LOST.fetch_add(1, SeqCst);
            eprintln!(
                "D4: {:?} past its deadline {d} (now {now}) but not done",
                c.h
            );
        }
    }
}

/// Whether `c`'s parent is done for good: done, or released (which cancels it, A4) unless it
/// was detached (W1).
fn parent_done(arena: &ArenaView, c: &Held) -> bool {
    match arena.err(c.parent) {
        Err(Error::Canceled | Error::DeadlineExceeded) => true,
        Err(Error::Stale) => !c.parent_detached && !c.parent.is_root(),
        _ => false,
    }
}

/// C2/C10: a child whose parent is done is done. Only meaningful when no cancellation that
/// reached the parent is still spreading (C2 promises it when the cancel call returns): after
/// this thread's own cancel, or once every thread has stopped.
fn check_child(arena: &ArenaView, c: &Held) {
    check_deadline(arena, c);
    if c.detached || c.parent.is_root() {
        return;
    }
    if parent_done(arena, c) && !arena.is_done(c.h) {
        LOST.fetch_add(1, SeqCst);
        eprintln!(
            "lost cancellation: parent {:?} done, child {:?} not",
            c.parent, c.h
        );
    }
}

fn worker(
    arena: &ArenaView,
    shared: &Mutex<Vec<(Handle, bool)>>,
    seed: u64,
    budget: &Budget,
    quiet: &Barrier,
) -> Tally {
    let mut rng = Rng(seed);
    let mut held: Vec<Held> = Vec::new();
    let mut regs: Vec<(Handle, usize)> = Vec::new();
    let mut tally = Tally::default();
    let mut n = 0u64;
    while budget.more(n) {
        n += 1;
        let pick_shared = |rng: &mut Rng| {
            let s = shared.lock().unwrap();
            (!s.is_empty()).then(|| s[rng.below(s.len())])
        };
        match rng.below(20) {
            // Hold at most about 100 contexts per thread, so that the arena is not always full.
            0..=6 if held.len() < 100 => {
                let (parent, parent_detached) = match rng.below(4) {
                    0 => (Handle::BACKGROUND, false),
                    1 => pick_shared(&mut rng).unwrap_or((Handle::BACKGROUND, false)),
                    _ if !held.is_empty() => {
                        let p = held[rng.below(held.len())];
                        (p.h, p.detached || p.value)
                    }
                    _ => (Handle::BACKGROUND, false),
                };
                let kind = rng.below(10);
                let was_done = parent_done(
                    arena,
                    &Held {
                        h: Handle::DEAD,
                        parent,
                        parent_detached,
                        detached: false,
                        value: false,
                    },
                );
                let made = match kind {
                    0..=3 => arena.with_cancel(parent),
                    4..=6 => arena.with_timeout_cause(parent, rng.next() % 64, rng.below(3) as u32),
                    7 | 8 => arena.with_value(parent, 1 + rng.below(4), rng.below(100)),
                    _ => arena.without_cancel(parent),
                };
                if let Ok(h) = made {
                    let c = Held {
                        h,
                        parent,
                        parent_detached,
                        detached: kind == 9,
                        value: matches!(kind, 7 | 8),
                    };
                    // C7: a parent done before the call makes the child born done.
                    if was_done && !c.detached && !arena.is_done(h) {
                        LOST.fetch_add(1, SeqCst);
                        eprintln!("C7: {h:?} created under done {parent:?} but not done");
                    }
                    check_deadline(arena, &c);
                    held.push(c);
                }
            }
            7 | 8 => {
                let target = if rng.below(2) == 0 {
                    pick_shared(&mut rng).map(|(h, _)| h)
                } else {
                    (!held.is_empty()).then(|| held[rng.below(held.len())].h)
                };
                if let Some(t) = target {
                    // Only a cancel that walked `t`'s subtree (not one refused for a detached
                    // context or a stale handle) says anything about what is below `t`.
                    if arena.cancel(t, rng.below(3) as u32).is_err() {
                        continue;
                    }
                    // C2: when cancel returns, everything I hold below `t` is done (held is in
                    // creation order, so parents come before their children).
                    let mut below = vec![t];
                    for c in &held {
                        if below.contains(&c.parent) && !c.detached {
                            below.push(c.h);
                            check_child(arena, c);
                        }
                    }
                }
            }
            9..=11 if !held.is_empty() => {
                // Release more eagerly when holding much, so that the arena rarely stays full.
                let i = if held.len() > 64 {
                    0
                } else {
                    rng.below(held.len())
                };
                let c = held.remove(i);
                shared.lock().unwrap().retain(|&(x, _)| x != c.h);
                check_deadline(arena, &c);
                arena.release(c.h).unwrap();
            }
            12 if !held.is_empty() => {
                let c = held[rng.below(held.len())];
                let mut s = shared.lock().unwrap();
                if s.len() < 32 && !s.iter().any(|&(x, _)| x == c.h) {
                    s.push((c.h, c.detached || c.value));
                }
            }
            13 | 14 => {
                let target = match rng.below(3) {
                    0 => pick_shared(&mut rng).map(|(h, _)| h),
                    1 => Some(Handle::BACKGROUND),
                    _ => (!held.is_empty()).then(|| held[rng.below(held.len())].h),
                };
                let token = NEXT_TOKEN.fetch_add(1, SeqCst);
                if let (Some(t), true) = (target, token < MAX_TOKENS) {
                    // Full or Stale: nothing registered.
                    if let Ok(stop) = arena.after_func(t, Callback::new(ran, token)) {
                        tally.registered.push(token);
                        if stop != Handle::DEAD {
                            regs.push((stop, token));
                        }
                    }
                }
            }
            15 | 16 if !regs.is_empty() => {
                let (stop, token) = regs.swap_remove(rng.below(regs.len()));
                if arena.stop(stop) {
                    tally.stopped.push(token);
                }
            }
            _ => {
                if !held.is_empty() {
                    let c = &held[rng.below(held.len())];
                    check_deadline(arena, c);
                    let _ = arena.value(c.h, 1);
                }
            }
        }
    }
    OPS.fetch_add(n, SeqCst);
    // Every thread stops, the driver too; then nothing is spreading any more and every child
    // of a done parent must be done (C10).
    quiet.wait();
    quiet.wait();
    for c in &held {
        check_child(arena, c);
    }
    // No thread releases (which cancels) before every thread has checked.
    quiet.wait();
    // Hand everything back (newest first) and stop every registration still pending.
    {
        let mut s = shared.lock().unwrap();
        s.retain(|&(x, _)| !held.iter().any(|c| c.h == x));
    }
    for c in held.iter().rev() {
        arena.release(c.h).unwrap();
    }
    for (stop, token) in regs {
        if arena.stop(stop) {
            tally.stopped.push(token);
        }
    }
    tally
}

fn soak(budget: Budget) {
    let arena: Arc<Arena<CAPACITY>> = Arc::new(Arena::with_clock(&CLOCK));
    let baseline = arena.stats().in_use;
    let shared = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let budget = Arc::new(budget);
    let driver = {
        let (arena, stop) = (arena.clone(), stop.clone());
        thread::spawn(move || {
            let mut handled = 0u64;
            while !stop.load(SeqCst) {
                CLOCK.advance(1);
                handled += u64::from(arena.expire(CLOCK.now()));
                thread::yield_now();
            }
            handled
        })
    };
    // The workers and this thread: the first wait ends the operations, this thread then stops
    // the driver, the second wait starts the final checks, the third ends them (releases cancel,
    // so none may start while another thread still checks).
    let quiet = Arc::new(Barrier::new(3));
    let workers: Vec<_> = (0..2u64)
        .map(|w| {
            let (arena, shared, budget) = (arena.clone(), shared.clone(), budget.clone());
            let quiet = quiet.clone();
            let seed = 0x9E37_79B9_7F4A_7C15 ^ (w + 1);
            thread::spawn(move || worker(&arena, &shared, seed, &budget, &quiet))
        })
        .collect();
    quiet.wait();
    stop.store(true, SeqCst);
    let expired = driver.join().unwrap();
    quiet.wait();
    quiet.wait();
    let tallies: Vec<Tally> = workers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(LOST.load(SeqCst), 0, "C2/C10: cancellations were lost");
    // F1/F4: each registration ran exactly once or was stopped, never both, never twice.
    let mut registered = 0;
    let mut stopped = 0;
    let mut ran_count = 0;
    for t in &tallies {
        for &tok in &t.stopped {
            assert_eq!(RUNS[tok].load(SeqCst), 0, "F4: token {tok} stopped but ran");
        }
        let stopped_set: HashSet<usize> = t.stopped.iter().copied().collect();
        for &tok in &t.registered {
            let runs = RUNS[tok].load(SeqCst);
            let was_stopped = stopped_set.contains(&tok);
            assert!(runs <= 1, "F1: token {tok} ran {runs} times");
            assert!(
                runs == 1 || was_stopped,
                "F1: token {tok} neither ran nor was stopped"
            );
            ran_count += u64::from(runs);
        }
        registered += t.registered.len();
        stopped += t.stopped.len();
    }
    // A6: every slot came back.
    assert_eq!(arena.stats().in_use, baseline, "A6: slots leaked");
    println!(
        "soak: {} operations on 2 threads, {expired} deadlines expired by the driver, \
         {registered} callbacks registered ({ran_count} ran, {stopped} stopped), \
         high water {} of {CAPACITY}, {} creations refused (Full), 0 lost cancellations, \
         slots back to {baseline}",
        OPS.load(SeqCst),
        arena.stats().high_water,
        arena.stats().full_count,
    );
}

/// C2, C10, D4, F1, F4, A6 under two threads and a deadline driver (see the module docs).
#[test]
fn soak_c10_a6_no_lost_cancellation_no_leaked_slot() {
    let budget = match std::env::var("STOPWIRE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(secs) => Budget::Until(Instant::now() + Duration::from_secs(secs)),
        None => Budget::Ops(20_000),
    };
    soak(budget);
}
