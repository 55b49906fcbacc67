//! A Miri-sized subset of the rule tests: small arenas, every kind of node, every path through
//! the unsafe code (callback calls) and the lock-free reads. `cargo xtask test` runs it under
//! Miri with `-Zmiri-strict-provenance`; it also runs as an ordinary test.

use core::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicUsize, Ordering};

use stopwire::{Arena, Callback, Error, Handle, ManualClock};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn key(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

#[test]
fn miri_c2_c5_cancel_reaches_every_descendant_and_slots_return() {
    static CLOCK: ManualClock = ManualClock::new(0);
    let arena: Arena<16> = Arena::with_clock(&CLOCK);
    let root = arena.background().with_cancel().unwrap();
    let a = root.with_cancel().unwrap();
    let b = a.with_value(key(1), 10).unwrap();
    let c = b.with_deadline(1_000).unwrap();
    let d = root.with_cancel().unwrap();
    assert!(!c.is_done());
    assert!(root.cancel());
    for x in [&root, &a, &b, &c, &d] {
        assert_eq!(x.err(), Err(Error::Canceled));
    }
    assert_eq!(c.value(key(1)), Ok(Some(10)));
    drop((root, a, b, c, d));
    assert_eq!(arena.stats().in_use, 0);
}

/// C2 and T3 with a walk longer than one locked step (32 units on 64-bit hosts): the walk
/// pauses with its cursor pinned inside the subtree of `x`, and the paused piece is kept in the
/// operation's `Work` between steps (the `MaybeUninit` of `run.rs`), which Miri then checks.
#[test]
fn miri_c2_t3_walk_paused_between_steps_reaches_every_node() {
    static CLOCK: ManualClock = ManualClock::new(0);
    let arena: Arena<48> = Arena::with_clock(&CLOCK);
    let root = arena.background().with_cancel().unwrap();
    let x = root.with_cancel().unwrap();
    let leaves: Vec<_> = (0..40).map(|_| x.with_cancel().unwrap()).collect();
    assert!(root.cancel());
    for c in leaves.iter().chain([&root, &x]) {
        assert_eq!(c.err(), Err(Error::Canceled));
    }
    drop(leaves);
    drop((x, root));
    assert_eq!(arena.stats().in_use, 0);
}

/// Owners of lane 0 after the position the scanning insertion below looks for: the scan moves
/// past all but one of them, one unit each, after the unit of choosing a lane; so with 32 units a
/// step on 64-bit hosts it pauses once (31 + 16 units), more often on 32-bit ones (3 a step).
const SCAN_PAST: u64 = 48;

/// D5, T3, T5 and I3 with a deadline insertion longer than one locked step: every lane spans the
/// new deadline (its head is earlier, its tail later), so the creation scans lane 0 backwards
/// from its tail past [`SCAN_PAST`] owners, with the scan's cursor pinned on a queued owner and
/// the paused `Insert` kept in the operation's `Work` between steps (the `MaybeUninit` of
/// `run.rs`), which Miri then checks. The lanes end in deadline order: `next_deadline` and
/// `expire` walk every owner in order, one per deadline, the new one at its place.
///
/// The cursor settled between two steps of the insertion (the resume from the tail) is not
/// covered here: no user code runs between the steps of a creation in one thread (it dispatches
/// no callback, wakes no waiter, and takes the driver's waker only once the owner is queued, all
/// run after its last step; the clock is read in the first step only, under the lock). Only
/// another thread or an interrupt handler can settle it then: the loom models
/// `loom_*_paused_insert_vs_*` do.
#[test]
fn miri_d5_t3_t5_i3_insert_scanning_in_paused_steps_keeps_the_lanes_in_order() {
    static CLOCK: ManualClock = ManualClock::new(0);
    let arena: Arena<{ SCAN_PAST as usize + 8 }> = Arena::with_clock(&CLOCK);
    let bg = arena.background();
    let new_at = 150;
    // Lane 0: 100, then 200.. 200 + SCAN_PAST - 1 (ascending: each one goes to its tail).
    let mut owners = vec![(100, bg.with_deadline(100).unwrap())];
    owners.extend((200..200 + SCAN_PAST).map(|d| (d, bg.with_deadline(d).unwrap())));
    // Lanes 1 to 3: heads 50, 40, 30 (each earlier than every tail so far: into an empty lane),
    // then tails 160, 159, 158 (each to the lane with the latest tail not after it).
    for d in [50, 40, 30, 160, 159, 158] {
        owners.push((d, bg.with_deadline(d).unwrap()));
    }
    assert_eq!(arena.next_deadline(), Some(30));
    // No lane's tail is at or before 150, none is empty, none has a head after it: the scan,
    // past the SCAN_PAST owners of lane 0 from 200 on, to the place right after 100.
    let new = bg.with_deadline(new_at).unwrap();
    assert_eq!(new.deadline(), Ok(Some(new_at)));
    assert!(!new.is_done());
    // The lanes' structure too (I5: each in deadline order, exactly the pending owners); O(N²),
    // most of this test's time under Miri, so in the ordinary run only.
    if !cfg!(miri) {
        assert_eq!(arena.audit(), Ok(()));
    }
    owners.push((new_at, new));
    owners.sort_by_key(|&(d, _)| d);
    // One owner per deadline, in deadline order. An insertion at a wrong place in lane 0 shows
    // here: after 200 (the scan stopped late, or the pause queued it where it was), and
    // `next_deadline` says 158 where 150 is due; not queued at all (the pause lost it), the
    // same; before 100 (stopped early, or linked before a cursor not later than it), and
    // `next_deadline` says 150 where 100 is due. A node linked twice or lost otherwise shows as
    // a count other than 1 or an owner done out of turn. (That `expire(d)` handled the owner of
    // `d` and no other follows from its count of 1, that owner done and the next one not.)
    for (k, (d, o)) in owners.iter().enumerate() {
        assert_eq!(arena.next_deadline(), Some(*d), "T5: the earliest is {d}");
        assert_eq!(arena.expire(*d), 1, "T5: exactly the owner of {d} is due");
        assert_eq!(o.err(), Err(Error::DeadlineExceeded), "{d} expired");
        if let Some((next, o)) = owners.get(k + 1) {
            assert!(!o.is_done(), "{next} expired with {d}");
        }
    }
    assert!(owners.iter().all(|(_, o)| o.is_done()));
    assert_eq!(arena.next_deadline(), None);
    assert_eq!(arena.expire(u64::MAX), 0);
    drop(owners);
    assert_eq!(arena.stats().in_use, 0);
}

#[test]
fn miri_a5_released_ancestors_serve_values_until_the_leaf_goes() {
    let arena: Arena<8> = Arena::new();
    let v = arena.background().with_value(key(7), 70).unwrap();
    let leaf = v.with_cancel().unwrap();
    let leaf_view = *leaf;
    drop(v);
    assert_eq!(arena.stats().in_use, 2);
    assert_eq!(leaf_view.value(key(7)), Ok(Some(70)));
    // V4: a value layer has no cancellation of its own, so releasing it cancels nothing below.
    assert_eq!(leaf_view.err(), Ok(()));
    drop(leaf);
    assert_eq!(arena.stats().in_use, 0);
    assert_eq!(leaf_view.err(), Err(Error::Stale));
}

static CALLS: AtomicUsize = AtomicUsize::new(0);
fn count(n: usize) {
    CALLS.fetch_add(n, Ordering::SeqCst);
}

#[test]
fn miri_f1_f4_callbacks_run_once_or_are_stopped() {
    let arena: Arena<8> = Arena::new();
    let ctx = arena.background().with_cancel().unwrap();
    let runs = ctx.after_func(count, 1).unwrap();
    let stopped = ctx.after_func(count, 100).unwrap();
    assert!(stopped.stop());
    assert!(!stopped.stop());
    let before = CALLS.load(Ordering::SeqCst);
    ctx.cancel();
    assert_eq!(CALLS.load(Ordering::SeqCst) - before, 1);
    assert!(!runs.stop());
    // F2: already done, runs at once, needs no slot.
    let now = ctx.after_func(count, 10).unwrap();
    assert_eq!(CALLS.load(Ordering::SeqCst) - before, 11);
    assert!(!now.stop());
    drop((runs, stopped, now, ctx));
    assert_eq!(arena.stats().in_use, 0);
}

extern "C" fn c_callback(data: *mut core::ffi::c_void) {
    // SAFETY: the test passes a pointer to a live AtomicUsize.
    let counter = unsafe { &*(data as *const AtomicUsize) };
    counter.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn miri_f3_c_callback_gets_its_userdata_back() {
    let arena: Arena<4> = Arena::new();
    let counter = AtomicUsize::new(0);
    let ctx = arena.background().with_cancel().unwrap();
    // SAFETY: `counter` outlives the registration; c_callback only reads through the pointer.
    let cb = unsafe { Callback::from_c(c_callback, &counter as *const _ as *mut _) };
    let stop = arena.after_func(ctx.handle(), cb).unwrap();
    ctx.cancel();
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    assert!(!arena.stop(stop));
}

#[test]
fn miri_d4_t5_deadline_expires_by_check_and_by_driver() {
    static CLOCK: ManualClock = ManualClock::new(0);
    let arena: Arena<8> = Arena::with_clock(&CLOCK);
    let early = arena.background().with_deadline_cause(10, nz(5)).unwrap();
    let child = early.with_cancel().unwrap();
    let late = arena.background().with_deadline(20).unwrap();
    CLOCK.set(10);
    assert_eq!(child.err(), Err(Error::DeadlineExceeded));
    assert_eq!(child.cause(), Ok(Some(nz(5))));
    assert_eq!(arena.expire(10), 1);
    assert_eq!(early.cause(), Ok(Some(nz(5))));
    assert!(!late.is_done());
    assert_eq!(arena.expire(100), 1);
    assert_eq!(late.err(), Err(Error::DeadlineExceeded));
    assert_eq!(arena.expire(100), 0);
}

#[test]
fn miri_a2_forged_and_stale_handles_touch_nothing() {
    let arena: Arena<4> = Arena::new();
    let live = arena.background().with_cancel().unwrap();
    let raw = live.handle().to_raw();
    for forged in [
        0u64,
        1,
        raw ^ (1 << 32),
        raw + 1,
        u64::MAX,
        raw | 0xFFFF_FFFF,
    ] {
        let h = Handle::from_raw(forged);
        if h == live.handle() || h.is_root() {
            continue;
        }
        assert!(arena.is_done(h));
        assert_eq!(arena.cancel(h, 0), Err(Error::Stale));
        assert_eq!(arena.release(h), Err(Error::Stale));
        assert!(!arena.stop(h));
    }
    assert!(!live.is_done());
    assert_eq!(arena.cancel(Handle::BACKGROUND, 0), Err(Error::Root));
    assert_eq!(arena.release(Handle::TODO), Err(Error::Root));
}

#[test]
fn miri_a3_full_arena_refuses_and_recovers() {
    let arena: Arena<2> = Arena::new();
    let a = arena.background().with_cancel().unwrap();
    let b = arena.background().with_cancel().unwrap();
    assert_eq!(arena.background().with_cancel().err(), Some(Error::Full));
    assert_eq!(arena.stats().full_count, 1);
    drop(a);
    let c = arena.background().with_cancel().unwrap();
    assert!(!b.is_done() && !c.is_done());
}

#[test]
fn miri_f2_f3_c_callback_runs_at_registration_and_from_the_driver() {
    static CLOCK: ManualClock = ManualClock::new(0);
    let arena: Arena<4> = Arena::with_clock(&CLOCK);
    let counter = AtomicUsize::new(0);
    let done = arena.background().with_cancel().unwrap();
    done.cancel();
    // SAFETY: `counter` outlives both registrations; c_callback only touches the atomic.
    let cb = unsafe { Callback::from_c(c_callback, &counter as *const _ as *mut _) };
    assert_eq!(arena.after_func(done.handle(), cb), Ok(Handle::DEAD));
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    let d = arena.background().with_deadline(5).unwrap();
    let reg = arena.after_func(d.handle(), cb).unwrap();
    assert_eq!(arena.expire(5), 1);
    assert_eq!(counter.load(Ordering::SeqCst), 2);
    assert!(!arena.stop(reg));
    // A stopped C registration never runs.
    let e = arena.background().with_cancel().unwrap();
    let reg = arena.after_func(e.handle(), cb).unwrap();
    assert!(arena.stop(reg));
    e.cancel();
    assert_eq!(counter.load(Ordering::SeqCst), 2);
    drop((done, d, e));
    assert_eq!(arena.stats().in_use, 0);
}

#[test]
fn miri_f7_k7_roots_detached_and_causes() {
    static CLOCK: ManualClock = ManualClock::new(100);
    let arena: Arena<8> = Arena::with_clock(&CLOCK);
    let reg = arena.background().after_func(count, 1_000).unwrap();
    let parent = arena.background().with_cancel().unwrap();
    let w = parent.without_cancel().unwrap();
    let wreg = w.after_func(count, 1_000).unwrap();
    let t = parent.with_timeout_cause(0, nz(103)).unwrap();
    let f = parent.with_timeout_cause(u64::MAX, nz(103)).unwrap();
    parent.cancel_with_cause(nz(104));
    assert_eq!(
        (t.err(), t.cause()),
        (Err(Error::DeadlineExceeded), Ok(Some(nz(103))))
    );
    assert_eq!(
        (f.err(), f.cause()),
        (Err(Error::Canceled), Ok(Some(nz(104))))
    );
    assert_eq!((w.err(), w.cause()), (Ok(()), Err(Error::NotDone)));
    assert!(reg.stop() && wreg.stop());
    // A cause found through the deadline owner by a check (no walk yet).
    let owner = arena.background().with_deadline_cause(150, nz(7)).unwrap();
    let below = owner.with_value(key(1), 1).unwrap();
    CLOCK.set(150);
    assert_eq!(below.cause(), Ok(Some(nz(7))));
    assert!(!owner.cancel_with_cause(nz(8)));
    assert_eq!(below.cause(), Ok(Some(nz(7))));
}

#[test]
fn miri_a2_stale_value_lookup_after_reuse() {
    let arena: Arena<1> = Arena::new();
    let old = arena.with_value(Handle::BACKGROUND, 1, 10).unwrap();
    arena.release(old).unwrap();
    let new = arena.with_value(Handle::BACKGROUND, 1, 20).unwrap();
    assert_eq!(arena.value(old, 1), Err(Error::Stale));
    assert_eq!(arena.cause(old), Err(Error::Stale));
    assert_eq!(arena.deadline(old), Err(Error::Stale));
    assert_eq!(arena.value(new, 1), Ok(Some(20)));
    arena.release(new).unwrap();
}

/// C10 and A2 with real threads, small enough for Miri's scheduler and weak-memory emulation.
#[test]
fn miri_c10_threads_create_check_and_cancel() {
    let arena: Arena<16> = Arena::new();
    let values = arena.background().with_value(key(1), 5).unwrap();
    let parent = values.with_cancel().unwrap();
    let ph = parent.handle();
    let a = &arena;
    let kids = std::thread::scope(|s| {
        let creator = s.spawn(move || {
            let mut hs = vec![];
            for _ in 0..4 {
                match a.with_cancel(ph) {
                    Ok(h) => hs.push(h),
                    Err(e) => assert_eq!(e, Error::Stale),
                }
            }
            hs
        });
        s.spawn(move || {
            for _ in 0..4 {
                match a.value(ph, 1) {
                    Ok(v) => assert_eq!(v, Some(5)),
                    Err(e) => assert_eq!(e, Error::Stale),
                }
            }
        });
        s.spawn(move || a.release(ph).unwrap());
        creator.join().unwrap()
    });
    core::mem::forget(parent);
    for h in kids {
        assert_eq!(arena.err(h), Err(Error::Canceled));
        assert_eq!(arena.value(h, 1), Ok(Some(5)));
        arena.release(h).unwrap();
    }
    drop(values);
    assert_eq!(arena.stats().in_use, 0);
}

/// The tagged site word (engine::site): a Rust `Location` and a foreign site stored in the same
/// arena decode back to what was given, with the tag set and cleared under strict provenance.
#[cfg(feature = "diagnostics")]
#[test]
fn miri_a6_rust_and_foreign_sites_decode() {
    use stopwire::{CreationSite, ForeignSite};
    static ARENA: Arena<4> = Arena::new();
    static SITE: ForeignSite = ForeignSite::new(c"main.c", 12);
    let line = line!() + 1;
    let rust = ARENA.with_cancel(Handle::BACKGROUND).unwrap();
    let foreign = ARENA.at(Some(&SITE)).with_value(rust, 1, 2).unwrap();
    let stop = ARENA
        .at(Some(&SITE))
        .after_func(foreign, Callback::new(|_| {}, 0))
        .unwrap();
    let sites: Vec<_> = ARENA.live().map(|l| l.site.unwrap()).collect();
    assert!(matches!(sites[0], CreationSite::Rust(l) if l.line() == line));
    for s in &sites[1..] {
        assert!(matches!(s, CreationSite::Foreign(f) if core::ptr::eq(*f, &SITE)));
        assert_eq!((s.file(), s.line(), s.column()), ("main.c", 12, 0));
    }
    assert_eq!(sites.len(), 3);
    ARENA.release(stop).unwrap();
    ARENA.release(foreign).unwrap();
    ARENA.release(rust).unwrap();
}
