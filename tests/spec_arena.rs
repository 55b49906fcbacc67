//! SPEC A1-A6: the arena and its handles.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use common::{arena, clock, key, nz, Rng, P};
use stopwire::{Arena, ArenaView, Callback, Error, Handle, OwnedCtx, Stats};

static STATIC_ARENA: Arena<8> = Arena::new();
const fn make() -> Arena<4> {
    Arena::new()
}
static FROM_CONST_FN: Arena<4> = make();

#[test]
fn a1_the_arena_is_a_static_with_a_const_constructor_and_fixed_capacity() {
    let c = STATIC_ARENA.background().with_cancel().unwrap();
    assert_eq!(STATIC_ARENA.capacity(), 8);
    assert_eq!(FROM_CONST_FN.capacity(), 4);
    let v: &ArenaView = &FROM_CONST_FN;
    assert_eq!(v.stats().capacity, 4);
    c.cancel();
    // Fixed capacity: the ninth creation fails instead of growing.
    let held: Vec<_> = (0..7)
        .map(|_| STATIC_ARENA.background().with_cancel().unwrap())
        .collect();
    assert_eq!(
        STATIC_ARENA.background().with_cancel().err(),
        Some(Error::Full)
    );
    drop(held);
    // (That the core never touches the heap is tests/alloc.rs.)
}

fn no_call(_: usize) {
    panic!("A2: a stale handle must not reach this registration");
}

#[test]
fn a2_stale_and_forged_handles_are_rejected_and_touch_nothing() {
    let a = arena::<4>(clock(0));
    let old = a.with_value(Handle::BACKGROUND, 1, 100).unwrap();
    a.release(old).unwrap();
    // The slot is reused by an unrelated context with the same key and a different value.
    // Free slots are reused first in, first out: cycle until the old slot comes back.
    let mut new = a.with_value(Handle::BACKGROUND, 1, 200).unwrap();
    while a.slot_index(new) != a.slot_index(old) {
        a.release(new).unwrap();
        new = a.with_value(Handle::BACKGROUND, 1, 200).unwrap();
    }
    assert_eq!(a.slot_index(old), a.slot_index(new), "same slot");
    assert_ne!(old, new);
    let reg = a.after_func(new, Callback::new(no_call, 0)).unwrap();
    let stats = a.stats();
    assert!(a.is_done(old));
    assert_eq!(a.err(old), Err(Error::Stale));
    assert_eq!(a.cause(old), Err(Error::Stale));
    assert_eq!(a.deadline(old), Err(Error::Stale));
    assert_eq!(
        a.value(old, 1),
        Err(Error::Stale),
        "never the new context's value"
    );
    assert_eq!(a.with_cancel(old), Err(Error::Stale));
    assert_eq!(a.without_cancel(old), Err(Error::Stale));
    assert_eq!(
        a.after_func(old, Callback::new(no_call, 0)),
        Err(Error::Stale)
    );
    assert_eq!(a.cancel(old, 5), Err(Error::Stale));
    assert_eq!(a.release(old), Err(Error::Stale));
    assert!(!a.stop(old));
    assert_eq!(a.stats(), stats, "nothing changed");
    assert_eq!((a.err(new), a.value(new, 1)), (Ok(()), Ok(Some(200))));
    assert!(a.stop(reg));
    // Forged handles: wrong generation (low and high bits), out of range, reserved range.
    let raw = new.to_raw();
    for forged in [
        raw ^ (1 << 32),
        raw ^ (1 << 56),
        raw ^ (1 << 63),
        raw + 1,
        (raw & !0xFFFF_FFFF) | 5,
        (raw & !0xFFFF_FFFF) | 0xFFFF_FFFE,
        raw | 0xFFFF_FFFF,
        0xFFFF_FFFF,
        3u64 << 32 | 0xFFFF_FFFF,
        u64::MAX,
        1,
    ] {
        let h = Handle::from_raw(forged);
        if h.is_root() {
            continue;
        }
        assert!(a.is_done(h), "{forged:#x}");
        assert_eq!(a.err(h), Err(Error::Stale));
        assert_eq!(a.value(h, 1), Err(Error::Stale));
        assert_eq!(a.cause(h), Err(Error::Stale));
        assert_eq!(a.with_cancel(h), Err(Error::Stale));
        assert_eq!(a.cancel(h, 0), Err(Error::Stale));
        assert_eq!(a.release(h), Err(Error::Stale));
        assert!(!a.stop(h));
    }
    assert_eq!(a.stats(), Stats { in_use: 1, ..stats });
    assert_eq!(a.err(new), Ok(()));
    a.release(new).unwrap();
}

/// A2: stale detection holds for at least 2^24 reuses of one slot. A one-slot arena is cycled
/// 2^24 + 2 times; the first handle is checked against every later occupant of its slot. On
/// 64-bit hosts it goes on past 2^25 + 2 reuses, where the 25-bit generations of the previous
/// release aliased (issue 12.4): handles there carry about 60 generation bits for a 1-slot arena.
#[test]
fn a2_a_handle_stays_stale_through_2_pow_24_reuses_of_its_slot() {
    let a = arena::<1>(clock(0));
    let first = a.with_value(Handle::BACKGROUND, 1, 1).unwrap();
    a.release(first).unwrap();
    let first_slot = a.slot_index(first);
    let mut last = first;
    let reuses: u32 = if cfg!(target_pointer_width = "64") {
        (1 << 25) + 2
    } else {
        (1 << 24) + 2
    };
    for i in 0..reuses {
        let h = a.with_cancel(Handle::BACKGROUND).unwrap();
        assert_eq!(a.slot_index(h), first_slot);
        assert_ne!(h, first);
        // One atomic load per check: cheap enough to check at every reuse.
        if a.err(first) != Err(Error::Stale) || i > 0 && a.err(last) != Err(Error::Stale) {
            panic!("A2: stale handle accepted after {i} reuses");
        }
        a.release(h).unwrap();
        last = h;
    }
    // The slot is live under the newest generation: the old handles still cannot touch it.
    let now_live = a.with_value(Handle::BACKGROUND, 1, 2).unwrap();
    assert_eq!(a.value(first, 1), Err(Error::Stale));
    assert_eq!(a.cancel(first, 0), Err(Error::Stale));
    assert_eq!(a.release(first), Err(Error::Stale));
    assert_eq!(a.err(now_live), Ok(()));
    assert_eq!(a.value(now_live, 1), Ok(Some(2)));
}

#[test]
fn a3_a_full_arena_refuses_changes_nothing_and_recovers() {
    let clk = clock(0);
    let a = arena::<3>(clk);
    let p = a.background().with_deadline(100).unwrap();
    let x = p.with_cancel().unwrap();
    let y = p.with_value(key(1), 1).unwrap();
    let before = a.stats();
    assert_eq!(
        before,
        Stats {
            capacity: 3,
            in_use: 3,
            high_water: 3,
            full_count: 0
        }
    );
    let attempts: [Result<OwnedCtx<'_>, Error>; 6] = [
        a.background().with_cancel(),
        p.with_cancel(),
        p.with_deadline(50),
        p.with_timeout(5),
        p.with_value(key(2), 2),
        p.without_cancel(),
    ];
    assert!(attempts
        .iter()
        .all(|r| r.as_ref().err() == Some(&Error::Full)));
    assert_eq!(p.after_func(|_| {}, 0).err(), Some(Error::Full));
    let after = a.stats();
    assert_eq!(
        after,
        Stats {
            full_count: 7,
            ..before
        },
        "only full_count moved"
    );
    assert_eq!(
        a.next_deadline(),
        Some(100),
        "the deadline queue is untouched"
    );
    assert!(!p.is_done() && !x.is_done() && !y.is_done());
    drop(attempts);
    drop(x);
    let z = p.with_cancel().unwrap();
    assert!(!z.is_done());
    assert_eq!(a.stats().full_count, 7);
    clk.set(100);
    assert_eq!(a.expire(100), 1);
    assert!(z.is_done() && y.is_done());
}

#[test]
fn a4_release_cancels_and_makes_the_handle_stale_at_once() {
    let a = arena::<8>(clock(0));
    let p = a.with_cancel(Handle::BACKGROUND).unwrap();
    let child = a.with_cancel(p).unwrap();
    let in_use = a.stats().in_use;
    a.release(p).unwrap();
    assert_eq!(a.cancel(p, 0), Err(Error::Stale), "released at once");
    assert_eq!(a.err(p), Err(Error::Stale), "stale at once");
    assert_eq!(a.stats().in_use, in_use, "slot kept for the child (A5)");
    assert_eq!(a.err(child), Err(Error::Canceled), "release cancels");
    assert_eq!(a.cause(child), Ok(None));
    assert_eq!(
        a.release(p),
        Err(Error::Stale),
        "a second release is refused"
    );
    a.release(child).unwrap();
    assert_eq!(a.stats().in_use, 0);
    // Dropping an OwnedCtx is release.
    let q = a.background().with_cancel().unwrap();
    let below = q.with_cancel().unwrap();
    let qv = *q;
    drop(q);
    assert_eq!(qv.err(), Err(Error::Stale), "A4: stale at once");
    assert_eq!(a.cancel(qv.handle(), 0), Err(Error::Stale));
    assert_eq!(below.err(), Err(Error::Canceled));
    // Releasing an already done context keeps its Err and cause below.
    let r = a.background().with_cancel().unwrap();
    let rb = r.with_cancel().unwrap();
    r.cancel_with_cause(nz(P));
    drop(r);
    assert_eq!(rb.cause(), Ok(Some(nz(P))));
    // into_handle hands the duty to release to the caller.
    let raw = a.background().with_cancel().unwrap().into_handle();
    assert_eq!(a.err(raw), Ok(()));
    a.release(raw).unwrap();
    drop((below, rb));
    assert_eq!(a.stats().in_use, 0);
}

/// A5: whatever the order of releases in a tree, every slot comes back, and a released slot is
/// reclaimed as soon as no descendant needs it.
#[test]
fn a5_slots_are_reclaimed_once_no_descendant_needs_them() {
    let a = arena::<64>(clock(0));
    // Chain: release top-down; nothing freed until the leaf goes, then everything.
    let mut chain = vec![a.with_value(Handle::BACKGROUND, 1, 1).unwrap()];
    for i in 0..5 {
        let h = if i % 2 == 0 {
            a.with_cancel(*chain.last().unwrap())
        } else {
            a.without_cancel(*chain.last().unwrap())
        };
        chain.push(h.unwrap());
    }
    for h in &chain[..5] {
        a.release(*h).unwrap();
        assert_eq!(a.stats().in_use, 6);
    }
    assert_eq!(a.value(chain[5], 1), Ok(Some(1)));
    a.release(chain[5]).unwrap();
    assert_eq!(a.stats().in_use, 0);
    // A released middle node goes as soon as its last child goes, not later.
    let top = a.with_cancel(Handle::BACKGROUND).unwrap();
    let mid = a.with_cancel(top).unwrap();
    let l1 = a.with_cancel(mid).unwrap();
    let l2 = a.with_cancel(mid).unwrap();
    a.release(mid).unwrap();
    a.release(l1).unwrap();
    assert_eq!(a.stats().in_use, 3);
    a.release(l2).unwrap();
    assert_eq!(a.stats().in_use, 1, "mid reclaimed with its last child");
    a.release(top).unwrap();
    // Random trees, random release orders.
    for seed in 0..30 {
        let mut rng = Rng::new(seed);
        let mut hs = vec![];
        for i in 0..40 {
            let parent = if i == 0 || rng.below(5) == 0 {
                Handle::BACKGROUND
            } else {
                hs[rng.below(hs.len())]
            };
            let h = match rng.below(5) {
                0 => a.with_cancel(parent),
                1 => a.with_value(parent, 1 + rng.below(3), i),
                2 => a.with_deadline_cause(parent, 1_000 + rng.below(100) as u64, 0),
                3 => a.without_cancel(parent),
                _ => a.with_timeout_cause(parent, u64::MAX, 3),
            };
            hs.push(h.unwrap());
        }
        if rng.below(2) == 0 {
            a.cancel(hs[rng.below(hs.len())], 0).ok();
        }
        rng.shuffle(&mut hs);
        for h in hs {
            a.release(h).unwrap();
        }
        assert_eq!(a.stats().in_use, 0, "seed {seed}");
    }
}

static RUNS: AtomicUsize = AtomicUsize::new(0);
fn run(_: usize) {
    RUNS.fetch_add(1, SeqCst);
}

/// A6: stats after a random sequence of every operation; releasing everything it created brings
/// in_use back to where it started, and high-water / full-count tell the truth.
#[test]
fn a6_stats_return_to_baseline_after_any_sequence() {
    let clk = clock(0);
    let a = arena::<48>(clk);
    let keep = a.background().with_cancel().unwrap();
    let baseline = a.stats().in_use;
    let mut max_seen = baseline;
    let mut fulls = 0;
    for seed in 0..40 {
        let mut rng = Rng::new(1_000 + seed);
        let mut ctxs: Vec<Handle> = vec![];
        let mut regs: Vec<Handle> = vec![];
        for _ in 0..300 {
            let pick = |rng: &mut Rng, v: &Vec<Handle>| {
                if v.is_empty() || rng.below(6) == 0 {
                    keep.handle()
                } else {
                    v[rng.below(v.len())]
                }
            };
            let r = match rng.below(12) {
                0 | 1 => a.with_cancel(pick(&mut rng, &ctxs)).map(|h| ctxs.push(h)),
                2 => a
                    .with_value(pick(&mut rng, &ctxs), 1 + rng.below(4), 0)
                    .map(|h| ctxs.push(h)),
                3 => {
                    let now = clk.now_for_test();
                    a.with_deadline_cause(pick(&mut rng, &ctxs), now + rng.below(50) as u64, 7)
                        .map(|h| ctxs.push(h))
                }
                4 => a
                    .without_cancel(pick(&mut rng, &ctxs))
                    .map(|h| ctxs.push(h)),
                5 => a
                    .after_func(pick(&mut rng, &ctxs), Callback::new(run, 0))
                    .map(|h| {
                        if h != Handle::DEAD {
                            regs.push(h)
                        }
                    }),
                6 if !ctxs.is_empty() => {
                    let _ = a.cancel(ctxs[rng.below(ctxs.len())], rng.below(3) as u32);
                    Ok(())
                }
                7 if !ctxs.is_empty() => {
                    let h = ctxs.swap_remove(rng.below(ctxs.len()));
                    a.release(h)
                }
                8 if !regs.is_empty() => {
                    let h = regs.swap_remove(rng.below(regs.len()));
                    a.stop(h);
                    Ok(())
                }
                9 => {
                    clk.advance(rng.below(20) as u64);
                    a.expire(clk.now_for_test());
                    Ok(())
                }
                _ => Ok(()),
            };
            match r {
                Err(Error::Full) => fulls += 1,
                r => r.unwrap(),
            }
            let s = a.stats();
            max_seen = max_seen.max(s.in_use);
            assert!(s.in_use <= s.capacity);
            assert_eq!(s.high_water, max_seen);
            assert_eq!(s.full_count, fulls);
        }
        for h in ctxs {
            a.release(h).unwrap();
        }
        for h in regs {
            a.stop(h);
        }
        assert_eq!(a.stats().in_use, baseline, "seed {seed}: a slot leaked");
    }
    assert!(fulls > 0, "the sequence reached a full arena");
    assert_eq!(a.stats().high_water, 48);
}

trait NowForTest {
    fn now_for_test(&self) -> u64;
}
impl NowForTest for stopwire::ManualClock {
    fn now_for_test(&self) -> u64 {
        stopwire::Clock::now(self)
    }
}

/// A2: free slots are reused first in, first out, so reuse spreads over every free slot (a stale
/// handle can alias only after 2^generation-bits x free-slots creations, issue 12.4).
#[test]
fn a2_free_slots_are_reused_first_in_first_out() {
    let a = arena::<4>(clock(0));
    let x = a.with_cancel(Handle::BACKGROUND).unwrap();
    let y = a.with_cancel(Handle::BACKGROUND).unwrap();
    a.release(x).unwrap();
    a.release(y).unwrap();
    let first = a.with_cancel(Handle::BACKGROUND).unwrap();
    let second = a.with_cancel(Handle::BACKGROUND).unwrap();
    assert_eq!(
        a.slot_index(first),
        a.slot_index(x),
        "the first freed is reused first"
    );
    assert_eq!(a.slot_index(second), a.slot_index(y));
    assert_eq!((a.err(x), a.err(y)), (Err(Error::Stale), Err(Error::Stale)));
    a.release(first).unwrap();
    a.release(second).unwrap();
}
