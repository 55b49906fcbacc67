//! A harness for profilers (not a demonstration): repeats one benchmark workload of
//! `benches/context.rs` `N` times with nothing else around it, so that `valgrind --tool=callgrind`
//! or `perf stat` can attribute instructions and cycles per operation.
//!
//! ```sh
//! cargo build --release --example profile_ops
//! valgrind --tool=callgrind target/release/examples/profile_ops create_cancel 100000
//! perf stat -e instructions,cycles target/release/examples/profile_ops check 100000000
//! ```
//!
//! Workloads: `none` (the fixed start-up cost, to subtract), `check`, `check_deadline`,
//! `create_cancel`, `create_timeout`, `create_release`, `cancel_settled`, `tree111`, `tree931`, `value10`.

use std::hint::black_box;
use std::num::NonZeroUsize;

use stopwire::{Arena, OwnedCtx};

const HOUR: u64 = 3_600_000_000;
static ARENA: Arena<1024> = Arena::new();

fn tree(fanout: usize, hold: &mut Vec<OwnedCtx<'static>>) {
    let root = ARENA.background().with_cancel().expect("slot");
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
    hold.clear();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "none".into());
    let n: u64 = args
        .next()
        .map(|s| s.parse().expect("a count"))
        .unwrap_or(1_000_000);
    let parent = ARENA.background().with_cancel().expect("slot");
    let mut hold = Vec::with_capacity(1024);
    match what.as_str() {
        "none" => {}
        "check" => {
            let c = *parent;
            for _ in 0..n {
                black_box(black_box(c).is_done());
            }
        }
        "check_deadline" => {
            let t = parent.with_timeout(HOUR).expect("slot");
            let c = *t;
            for _ in 0..n {
                black_box(black_box(c).is_done());
            }
        }
        "create_cancel" => {
            for _ in 0..n {
                let child = black_box(&parent).with_cancel().expect("slot");
                child.cancel();
                drop(black_box(child));
            }
        }
        "create_timeout" => {
            for _ in 0..n {
                let child = black_box(&parent).with_timeout(HOUR).expect("slot");
                child.cancel();
                drop(black_box(child));
            }
        }
        "tree111" => (0..n).for_each(|_| tree(10, &mut hold)),
        "tree931" => (0..n).for_each(|_| tree(30, &mut hold)),
        "value10" => {
            let key = NonZeroUsize::new(1).expect("non-zero");
            let mut layers = vec![parent.with_value(key, 42).expect("slot")];
            for k in 2..=11 {
                let next = layers
                    .last()
                    .expect("non-empty")
                    .with_value(NonZeroUsize::new(k).expect("non-zero"), k);
                layers.push(next.expect("slot"));
            }
            let leaf = *layers[10];
            for _ in 0..n {
                let _ = black_box(black_box(leaf).value(black_box(key)));
            }
        }
        "create_release" => {
            for _ in 0..n {
                drop(black_box(black_box(&parent).with_cancel().expect("slot")));
            }
        }
        "cancel_settled" => {
            let child = parent.with_cancel().expect("slot");
            child.cancel();
            for _ in 0..n {
                black_box(black_box(&child).cancel());
            }
        }
        other => {
            eprintln!("unknown workload {other}");
            std::process::exit(2);
        }
    }
    eprintln!("{what} x {n}: in use {}", ARENA.stats().in_use);
}
