//! A real-time thread beside a normal one on the same CPU (issue 11, SPEC T3): does the arena lock
//! starve it? Both threads are pinned to CPU 0. The normal thread builds and cancels trees of 931
//! contexts without pause; the `SCHED_FIFO` thread creates, cancels and releases one context,
//! sleeping 100 µs between operations (a control loop). With a lock that only spins and yields, the
//! real-time thread spinning on a lock held by the preempted normal thread never lets it run; the
//! arena's lock sleeps after a short spin, so the holder finishes its (bounded) step.
//!
//! The same two threads then run against a `std::sync::Mutex` doing the same work shape, for
//! comparison. Prints operations done and the worst latency of one operation, for each.
//!
//! ```text
//! cargo run --release --example rt_lock     # needs root (or CAP_SYS_NICE) for SCHED_FIFO
//! ```
//!
//! No figure is judged: this is a report for the README and the closing note, not a test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stopwire::{Arena, OwnedCtx};

static ARENA: Arena<4096> = Arena::new();
const RUN: Duration = Duration::from_secs(3);

fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it; the call only
    // reads the set and affects the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Makes the calling thread `SCHED_FIFO` at priority 10; false if not allowed.
fn make_realtime() -> bool {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: plain system call on the calling thread with a valid parameter.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

/// The normal thread's work on the arena: a tree of 931, canceled, released.
fn tree_work() {
    let root = ARENA.background().with_cancel().unwrap();
    let mut hold: Vec<OwnedCtx<'static>> = Vec::with_capacity(931);
    for _ in 0..30 {
        let c = root.with_cancel().unwrap();
        for _ in 0..30 {
            hold.push(c.with_cancel().unwrap());
        }
        hold.push(c);
    }
    root.cancel();
}

/// Runs the two threads: `background` in a loop on a normal thread, `op` every 100 µs on a
/// `SCHED_FIFO` thread; returns (operations, worst latency) of the real-time thread.
fn duel(background: fn(), op: fn()) -> Option<(u64, Duration)> {
    let stop = AtomicBool::new(false);
    let mut result = None;
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_to_cpu0();
            while !stop.load(Ordering::Relaxed) {
                background();
            }
        });
        let rt = s.spawn(|| {
            pin_to_cpu0();
            if !make_realtime() {
                return None;
            }
            let end = Instant::now() + RUN;
            let (mut n, mut worst) = (0u64, Duration::ZERO);
            while Instant::now() < end {
                let t = Instant::now();
                op();
                worst = worst.max(t.elapsed());
                n += 1;
                std::thread::sleep(Duration::from_micros(100));
            }
            Some((n, worst))
        });
        result = rt.join().unwrap();
        stop.store(true, Ordering::Relaxed);
    });
    result
}

static MUTEX: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// The normal thread's work on a mutex: the same shape, 931 locked pushes then a locked clear.
fn mutex_tree_work() {
    for i in 0..931 {
        MUTEX.lock().unwrap().push(i);
    }
    MUTEX.lock().unwrap().clear();
}

fn main() {
    let arena = duel(tree_work, || {
        let c = ARENA.background().with_cancel().unwrap();
        c.cancel();
    });
    let mutex = duel(mutex_tree_work, || {
        MUTEX.lock().unwrap().push(0);
    });
    match (arena, mutex) {
        (Some((an, aw)), Some((mn, mw))) => {
            println!(
                "SCHED_FIFO thread beside a normal thread on one CPU, {} s each:",
                RUN.as_secs()
            );
            println!("  stopwire arena lock: {an} operations, worst {aw:?}");
            println!("  std::sync::Mutex:    {mn} operations, worst {mw:?}");
        }
        _ => println!("SCHED_FIFO is not permitted here (needs root or CAP_SYS_NICE)"),
    }
}
