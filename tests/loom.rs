//! loom models of the races of the design (run with `RUSTFLAGS="--cfg loom"`; see
//! `cargo xtask test`). Each model names the SPEC rule it guards.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use stopwire::{Arena, Error, ManualClock};

fn arena<const N: usize>() -> Arc<Arena<N>> {
    let clock: &'static ManualClock = Box::leak(Box::new(ManualClock::new(0)));
    Arc::new(Arena::with_clock(clock))
}

/// C10: a child created while another thread cancels the parent always ends done.
#[test]
fn loom_c10_create_child_vs_cancel_parent() {
    loom::model(|| {
        let a = arena::<4>();
        let parent = a.with_cancel(stopwire::Handle::BACKGROUND).unwrap();
        let a2 = a.clone();
        let t = thread::spawn(move || {
            a2.cancel(parent, 0).unwrap();
        });
        let child = a.with_cancel(parent).unwrap();
        t.join().unwrap();
        assert_eq!(a.err(child), Err(Error::Canceled));
        a.release(child).unwrap();
        a.release(parent).unwrap();
        assert_eq!(a.stats().in_use, 0);
    });
}
