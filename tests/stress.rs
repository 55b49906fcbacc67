//! Threaded stress for SPEC C10 and C11 (and C3 under contention): bounded iterations, a
//! deterministic PRNG for shapes and orders, no timing assertions. Every test ends by checking
//! that the arena's slots in use are back at their starting value (A6).

mod common;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Barrier;

use common::Rng;
use stopwire::{Arena, ArenaView, Callback, Error, Handle};

fn spin(rng: &mut Rng, max: usize) {
    for _ in 0..rng.below(max) {
        std::hint::spin_loop();
    }
}

/// The host default clock with `std`; without it (the no-CAS and critical-section builds of these
/// tests) a real-time function clock, since an arena without a clock refuses deadlines (D1).
#[cfg(feature = "std")]
const HOST_CLOCK: &dyn stopwire::Clock = &stopwire::StdClock;
#[cfg(not(feature = "std"))]
const HOST_CLOCK: &dyn stopwire::Clock = &stopwire::FnClock(host_micros);
#[cfg(not(feature = "std"))]
fn host_micros() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_micros() as u64
}

/// C10: children created (directly and under layers) while another thread cancels the parent
/// all end done: no cancellation is ever lost.
#[test]
fn c10_children_created_during_a_cancel_all_end_done() {
    static A: Arena<1024> = Arena::with_clock(HOST_CLOCK);
    let base = A.stats().in_use;
    for round in 0..300u64 {
        let parent = A.with_cancel(Handle::BACKGROUND).unwrap();
        let layer = A.with_value(parent, 1, 1).unwrap();
        let barrier = Barrier::new(2);
        let created = std::thread::scope(|s| {
            let creator = s.spawn(|| {
                let mut rng = Rng::new(round);
                let mut hs = vec![];
                barrier.wait();
                for i in 0..60 {
                    let under = if i % 2 == 0 { parent } else { layer };
                    let h = match rng.below(3) {
                        0 => A.with_cancel(under),
                        1 => A.with_deadline_cause(under, u64::MAX, 0),
                        _ => A.with_value(under, 2, i),
                    };
                    hs.push(h.unwrap());
                    if let Some(&last) = hs.last() {
                        if rng.below(4) == 0 {
                            hs.push(A.with_cancel(last).unwrap());
                        }
                    }
                }
                hs
            });
            s.spawn(|| {
                let mut rng = Rng::new(round ^ 0xABCD);
                barrier.wait();
                spin(&mut rng, 20_000);
                assert_eq!(A.cancel(parent, 7), Ok(true));
            });
            creator.join().unwrap()
        });
        for &h in &created {
            assert_eq!(
                A.err(h),
                Err(Error::Canceled),
                "round {round}: a cancellation was lost"
            );
            assert_eq!(A.cause(h).unwrap().map(|c| c.get()), Some(7));
        }
        for h in created.into_iter().chain([layer, parent]) {
            A.release(h).unwrap();
        }
        assert_eq!(A.stats().in_use, base);
    }
}

/// C10 / DESIGN Q9: the parent is released (and its slot may be reused) while children are being
/// created: each creation either fails as stale or yields a child that is done.
#[test]
fn c10_children_created_during_a_release_are_done_or_refused() {
    static A: Arena<512> = Arena::with_clock(HOST_CLOCK);
    let base = A.stats().in_use;
    for round in 0..300u64 {
        let parent = A.with_cancel(Handle::BACKGROUND).unwrap();
        let barrier = Barrier::new(3);
        let (created, refused) = std::thread::scope(|s| {
            let creator = s.spawn(|| {
                let mut hs = vec![];
                let mut refused = 0;
                barrier.wait();
                for _ in 0..80 {
                    match A.with_cancel(parent) {
                        Ok(h) => hs.push(h),
                        Err(Error::Stale) => refused += 1,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                (hs, refused)
            });
            // A third thread keeps taking and giving back slots, so the parent's slot is reused.
            s.spawn(|| {
                barrier.wait();
                for _ in 0..40 {
                    let h = A.with_cancel(Handle::BACKGROUND).unwrap();
                    assert_eq!(A.err(h), Ok(()), "round {round}: a newcomer was canceled");
                    A.release(h).unwrap();
                }
            });
            s.spawn(|| {
                let mut rng = Rng::new(round);
                barrier.wait();
                spin(&mut rng, 20_000);
                A.release(parent).unwrap();
            });
            creator.join().unwrap()
        });
        assert!(created.len() + refused == 80);
        for &h in &created {
            assert_eq!(A.err(h), Err(Error::Canceled), "round {round}");
        }
        for h in created {
            A.release(h).unwrap();
        }
        assert_eq!(A.stats().in_use, base);
    }
}

/// Builds a random ~100-node tree under `top` (every kind of layer) and returns it with each
/// node's parent index (`usize::MAX` for children of `top`).
fn tree(a: &ArenaView, top: Handle, n: usize, rng: &mut Rng) -> Vec<(Handle, usize)> {
    let mut nodes: Vec<(Handle, usize)> = vec![];
    for _ in 0..n {
        let p = if nodes.is_empty() || rng.below(8) == 0 {
            usize::MAX
        } else {
            rng.below(nodes.len())
        };
        let ph = if p == usize::MAX { top } else { nodes[p].0 };
        // A value layer cannot be canceled by hand (V4): it is done when its parent is, so
        // the top's children are never value layers (the top itself is not canceled).
        let pick = rng.below(4);
        let pick = if p == usize::MAX && pick == 1 {
            0
        } else {
            pick
        };
        let h = match pick {
            0 => a.with_cancel(ph),
            1 => a.with_value(ph, 1 + rng.below(3), 0),
            2 => a.with_deadline_cause(ph, u64::MAX - rng.below(10) as u64, 9),
            _ => a.with_timeout_cause(ph, u64::MAX, 0),
        };
        nodes.push((h.unwrap(), p));
    }
    nodes
}

/// C11 (and C3): every node of a ~100-node tree canceled at once from 4 threads, each in its own
/// random order. No deadlock; every node done; at most one caller per node told it was first,
/// and that caller's cause is the node's; a node nobody canceled first carries its parent's.
#[test]
fn c11_every_node_canceled_from_four_threads_in_random_order() {
    static A: Arena<256> = Arena::with_clock(HOST_CLOCK);
    let base = A.stats().in_use;
    for round in 0..150u64 {
        let mut rng = Rng::new(round);
        let top = A.with_cancel(Handle::BACKGROUND).unwrap();
        let nodes = tree(&A, top, 100, &mut rng);
        let firsts: Vec<AtomicU32> = (0..nodes.len()).map(|_| AtomicU32::new(0)).collect();
        let barrier = Barrier::new(4);
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let (nodes, firsts, barrier) = (&nodes, &firsts, &barrier);
                s.spawn(move || {
                    let mut rng = Rng::new(round * 10 + t as u64);
                    let mut order: Vec<usize> = (0..nodes.len()).collect();
                    rng.shuffle(&mut order);
                    barrier.wait();
                    for i in order {
                        if A.cancel(nodes[i].0, 100 + t) == Ok(true) {
                            firsts[i].fetch_add(1 << 8 | (100 + t), SeqCst);
                        }
                    }
                });
            }
        });
        for (i, &(h, p)) in nodes.iter().enumerate() {
            assert_eq!(A.err(h), Err(Error::Canceled));
            let cause = A.cause(h).unwrap().map_or(0, |c| c.get());
            let f = firsts[i].load(SeqCst);
            match f >> 8 {
                1 => assert_eq!(cause, f & 0xFF, "K1: the first caller's cause"),
                0 => {
                    let parent_cause = if p == usize::MAX {
                        panic!("round {round}: child {i} of the uncanceled top was not first-canceled by anyone")
                    } else {
                        A.cause(nodes[p].0).unwrap().map_or(0, |c| c.get())
                    };
                    assert_eq!(cause, parent_cause, "C6: reached by an ancestor's walk");
                }
                n => panic!("C3: {n} callers told they were first"),
            }
        }
        assert_eq!(A.err(top), Ok(()), "C8: the top was never canceled");
        let mut all: Vec<Handle> = nodes.iter().map(|n| n.0).collect();
        rng.shuffle(&mut all);
        for h in all.into_iter().chain([top]) {
            A.release(h).unwrap();
        }
        assert_eq!(A.stats().in_use, base);
    }
}

// C11, second half: reactions to a parent's cancellation cancel children while other threads
// cancel the same tree. Each node's callback cancels (and sometimes releases a spare child of)
// one of its children, found through a static table.
static CB_ARENA: Arena<512> = Arena::with_clock(HOST_CLOCK);
static CHILD_OF: [AtomicU64; 128] = [const { AtomicU64::new(0) }; 128];
static SPARE_OF: [AtomicU64; 128] = [const { AtomicU64::new(0) }; 128];
static REACTIONS: AtomicUsize = AtomicUsize::new(0);

fn react(i: usize) {
    let child = Handle::from_raw(CHILD_OF[i].load(SeqCst));
    if child != Handle::DEAD {
        let _ = CB_ARENA.cancel(child, 55);
    }
    // Release a spare child: tree mutation from inside a callback.
    let spare = SPARE_OF[i].swap(0, SeqCst);
    if spare != 0 {
        CB_ARENA.release(Handle::from_raw(spare)).unwrap();
    }
    // Create and drop a context: creation from inside a callback.
    let tmp = CB_ARENA.with_value(Handle::BACKGROUND, 1, i).unwrap();
    CB_ARENA.release(tmp).unwrap();
    REACTIONS.fetch_add(1, SeqCst);
}

#[test]
fn c11_callbacks_cancel_children_while_the_parent_cancel_spreads() {
    let a: &ArenaView = &CB_ARENA;
    let base = a.stats().in_use;
    for round in 0..100u64 {
        let mut rng = Rng::new(round + 500);
        let top = a.with_cancel(Handle::BACKGROUND).unwrap();
        let nodes = tree(a, top, 100, &mut rng);
        for slot in CHILD_OF.iter().chain(SPARE_OF.iter()) {
            slot.store(0, SeqCst);
        }
        for &(h, p) in &nodes {
            if p != usize::MAX {
                CHILD_OF[p].store(h.to_raw(), SeqCst);
            }
        }
        let mut regs = vec![];
        for (i, &(h, _)) in nodes.iter().enumerate() {
            let spare = a.with_cancel(h).unwrap();
            SPARE_OF[i].store(spare.to_raw(), SeqCst);
            regs.push(a.after_func(h, Callback::new(react, i)).unwrap());
        }
        let before = REACTIONS.load(SeqCst);
        let barrier = Barrier::new(4);
        std::thread::scope(|s| {
            // One thread cancels the top; two cancel nodes in random orders; one reads.
            s.spawn(|| {
                barrier.wait();
                a.cancel(top, 1).unwrap();
            });
            for t in 0..2u64 {
                let (nodes, barrier) = (&nodes, &barrier);
                s.spawn(move || {
                    let mut rng = Rng::new(round * 7 + t);
                    let mut order: Vec<usize> = (0..nodes.len()).collect();
                    rng.shuffle(&mut order);
                    barrier.wait();
                    for i in order.into_iter().take(30) {
                        let _ = a.cancel(nodes[i].0, 2 + t as u32);
                    }
                });
            }
            s.spawn(|| {
                barrier.wait();
                loop {
                    for &(h, _) in nodes.iter().step_by(7) {
                        let _ = a.err(h);
                        let _ = a.cause(h);
                        let _ = a.value(h, 1);
                    }
                    if a.err(top) != Ok(()) && nodes.iter().all(|n| a.is_done(n.0)) {
                        break;
                    }
                }
            });
        });
        assert_eq!(
            REACTIONS.load(SeqCst) - before,
            nodes.len(),
            "F1: each callback ran once"
        );
        for &(h, _) in &nodes {
            assert!(a.is_done(h));
        }
        for r in regs {
            assert!(!a.stop(r), "all ran");
        }
        for (h, _) in nodes {
            a.release(h).unwrap();
        }
        a.release(top).unwrap();
        assert_eq!(a.stats().in_use, base, "round {round}");
    }
}

/// C3 under contention: many threads, many contexts, one "first" per context.
#[test]
fn c3_exactly_one_first_per_context_under_contention() {
    static A: Arena<128> = Arena::with_clock(HOST_CLOCK);
    for round in 0..100u64 {
        let hs: Vec<Handle> = (0..64)
            .map(|_| A.with_cancel(Handle::BACKGROUND).unwrap())
            .collect();
        let firsts: Vec<AtomicUsize> = (0..hs.len()).map(|_| AtomicUsize::new(0)).collect();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (hs, firsts) = (&hs, &firsts);
                s.spawn(move || {
                    let mut rng = Rng::new(round * 4 + t);
                    let mut order: Vec<usize> = (0..hs.len()).collect();
                    rng.shuffle(&mut order);
                    for i in order {
                        if A.cancel(hs[i], 0) == Ok(true) {
                            firsts[i].fetch_add(1, SeqCst);
                        }
                    }
                });
            }
        });
        assert!(firsts.iter().all(|f| f.load(SeqCst) == 1));
        for h in hs {
            A.release(h).unwrap();
        }
        assert_eq!(A.stats().in_use, 0);
    }
}

/// C4, K6 and D4 under real threads: while one thread moves a manual clock through a tree of
/// deadlines, one cancels random nodes, one runs the deadline driver, and two check every node,
/// the first (Err, cause) any checker sees for a node is the one it keeps for ever.
#[test]
fn c4_k6_err_and_cause_never_change_under_clock_cancel_and_driver() {
    static CLOCK: stopwire::ManualClock = stopwire::ManualClock::new(0);
    static A: Arena<256> = Arena::with_clock(&CLOCK);
    let base = A.stats().in_use;
    for round in 0..20u64 {
        let start = stopwire::Clock::now(&CLOCK);
        let mut rng = Rng::new(round + 9_000);
        let mut nodes: Vec<Handle> = vec![];
        for i in 0..120 {
            let parent = if nodes.is_empty() || rng.below(5) == 0 {
                Handle::BACKGROUND
            } else {
                nodes[rng.below(nodes.len())]
            };
            let at = start + 1 + rng.below(60) as u64;
            let h = match rng.below(4) {
                0 => A.with_deadline_cause(parent, at, 1 + i as u32),
                1 => A.with_cancel(parent),
                2 => A.with_value(parent, 1, i),
                _ => A.with_deadline_cause(parent, at, 0),
            };
            nodes.push(h.unwrap());
        }
        let seen: Vec<AtomicU64> = (0..nodes.len()).map(|_| AtomicU64::new(0)).collect();
        // Encodes (Err, cause) as one word: 1 = Canceled, 2 = DeadlineExceeded, cause above.
        let encode = |h: Handle| -> Option<u64> {
            let e = match A.err(h) {
                Ok(()) => return None,
                Err(Error::Canceled) => 1,
                Err(Error::DeadlineExceeded) => 2,
                Err(e) => panic!("{e:?}"),
            };
            let c = A.cause(h).expect("K6: done, so the cause is known");
            Some(e | (c.map_or(0, |c| c.get()) as u64) << 8)
        };
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..70 {
                    CLOCK.advance(1);
                    std::thread::yield_now();
                }
            });
            s.spawn(|| {
                let mut rng = Rng::new(round);
                for _ in 0..30 {
                    let _ = A.cancel(nodes[rng.below(nodes.len())], 500);
                    std::thread::yield_now();
                }
            });
            s.spawn(|| {
                for _ in 0..50 {
                    A.expire(stopwire::Clock::now(&CLOCK));
                    std::thread::yield_now();
                }
            });
            for _ in 0..2 {
                let (nodes, seen, stop) = (&nodes, &seen, &stop);
                s.spawn(move || {
                    while !stop.load(SeqCst) {
                        for (i, &h) in nodes.iter().enumerate() {
                            if let Some(now) = encode(h) {
                                let was = seen[i].compare_exchange(0, now, SeqCst, SeqCst);
                                if let Err(first) = was {
                                    assert_eq!(first, now, "round {round}, node {i}: C4/K6");
                                }
                            }
                        }
                    }
                });
            }
            // Stop the checkers once the clock is past every deadline.
            while stopwire::Clock::now(&CLOCK) < start + 70 {
                std::thread::yield_now();
            }
            stop.store(true, SeqCst);
        });
        A.expire(u64::MAX);
        for (i, &h) in nodes.iter().enumerate() {
            let end = encode(h).unwrap_or(0); // 0: no deadline above it and never canceled
            let first = seen[i].load(SeqCst);
            assert!(
                first == 0 || first == end,
                "round {round}, node {i}: {first:#x} then {end:#x}"
            );
        }
        for h in nodes {
            A.release(h).unwrap();
        }
        assert_eq!(A.stats().in_use, base);
    }
}
