//! `Group` (feature `std`): every unit gets a child context, the group waits for all of them, and
//! the first failure cancels the rest (Go's errgroup). Named after the SPEC rules the group relies
//! on: C2 (canceling a node cancels its subtree), K1/K3 (the first cause wins), A4/A6 (every slot
//! is released). Each test has its own arena.
#![cfg(feature = "std")]

use core::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use stopwire::{Arena, Ctx, Error, Handle};

/// A unit's own error, or the context's.
#[derive(Debug, PartialEq, Eq)]
enum Fail {
    Unit(u32),
    Ctx(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Ctx(e)
    }
}

/// Blocks until `ctx` is done, then reports why.
fn until_done(ctx: Ctx<'_>) -> Result<(), Fail> {
    while !ctx.is_done() {
        thread::yield_now();
    }
    ctx.err().map_err(Fail::Ctx)
}

#[test]
fn a6_group_waits_for_every_unit_and_releases_every_slot() {
    static ARENA: Arena<16> = Arena::new();
    let finished = AtomicUsize::new(0); // borrowed by the units: scoped threads
    let seen = Mutex::new(Vec::new());
    let r = ARENA.background().group(|g| {
        for _ in 0..5 {
            g.spawn(|ctx| {
                seen.lock().unwrap().push(ctx.handle());
                assert_eq!(ctx.err(), Ok(()));
                finished.fetch_add(1, Ordering::SeqCst);
                Ok::<(), Error>(())
            });
        }
        assert_eq!(g.units(), 5);
        "main done"
    });
    assert_eq!(r, Ok("main done"));
    assert_eq!(finished.load(Ordering::SeqCst), 5, "returned before a unit");
    let mut handles = seen.into_inner().unwrap();
    handles.sort();
    handles.dedup();
    assert_eq!(handles.len(), 5, "each unit has its own context");
    assert_eq!(ARENA.stats().in_use, 0);
    assert!(ARENA.check_released(Handle::BACKGROUND).is_ok());
}

#[test]
fn c2_first_failure_cancels_the_other_units_and_is_the_groups_error() {
    static ARENA: Arena<16> = Arena::new();
    let group_cause = Mutex::new(None);
    let r = ARENA.background().group(|g| {
        g.spawn(until_done);
        g.spawn(until_done);
        g.spawn(|_| Err(Fail::Unit(3)));
        g.spawn(until_done);
        // The failure cancels the group's context; record its cause once it does.
        let ctx = g.ctx();
        while !ctx.is_done() {
            thread::yield_now();
        }
        *group_cause.lock().unwrap() = Some(ctx.cause());
    });
    // The others saw Canceled and returned it, but the first error wins (K3).
    assert_eq!(r, Err(Fail::Unit(3)));
    assert_eq!(
        group_cause.into_inner().unwrap(),
        Some(Ok(NonZeroU32::new(3))),
        "the group's cause names the failing unit"
    );
    assert_eq!(ARENA.stats().in_use, 0);
}

#[test]
fn c2_canceling_the_parent_stops_every_unit() {
    static ARENA: Arena<16> = Arena::new();
    let parent = ARENA.background().with_cancel().unwrap();
    let stopped = AtomicUsize::new(0);
    let r = parent.group(|g| {
        for _ in 0..3 {
            g.spawn(|ctx| {
                while ctx.err().is_ok() {
                    thread::yield_now();
                }
                stopped.fetch_add(1, Ordering::SeqCst);
                Ok::<(), Error>(()) // stopping on cancel is not a failure for these units
            });
        }
        parent.cancel();
    });
    assert_eq!(r, Ok(()));
    assert_eq!(stopped.load(Ordering::SeqCst), 3);
    drop(parent);
    assert_eq!(ARENA.stats().in_use, 0);
}

#[test]
fn c7_group_under_a_done_parent_starts_units_already_canceled() {
    static ARENA: Arena<8> = Arena::new();
    let parent = ARENA.background().with_cancel().unwrap();
    parent.cancel();
    let r = parent.group(|g| {
        g.spawn(|ctx| ctx.err());
    });
    assert_eq!(r, Err(Error::Canceled));
}

#[test]
fn a3_full_arena_fails_the_group_without_running_the_unit() {
    static ARENA: Arena<1> = Arena::new();
    let ran = AtomicUsize::new(0);
    let r = ARENA.background().group(|g| {
        g.spawn(|_| {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<(), Error>(())
        });
        // The failed spawn canceled the group.
        g.ctx().err()
    });
    assert_eq!(r, Err(Error::Full));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(ARENA.stats().in_use, 0);
    // No slot at all: the group's own context cannot be created.
    let _held = ARENA.background().with_cancel().unwrap();
    let r = ARENA
        .background()
        .group(|_g: &stopwire::Group<'_, '_, '_, Error>| ());
    assert_eq!(r, Err(Error::Full));
}

#[test]
fn c2_panicking_unit_cancels_the_others_and_the_panic_propagates() {
    static ARENA: Arena<8> = Arena::new();
    let r = std::panic::catch_unwind(|| {
        ARENA.background().group(|g| {
            g.spawn(until_done);
            g.spawn(|_| -> Result<(), Fail> { panic!("unit failed hard") });
        })
    });
    assert!(r.is_err(), "the panic reaches the caller");
    assert_eq!(ARENA.stats().in_use, 0);
}

#[test]
fn v2_units_see_the_parents_values() {
    static ARENA: Arena<8> = Arena::new();
    const TRACE: NonZeroUsize = NonZeroUsize::new(1).unwrap();
    let req = ARENA.background().with_value(TRACE, 99).unwrap();
    let r = req.group(|g| {
        g.spawn(|ctx| match ctx.value(TRACE) {
            Ok(Some(99)) => Ok(()),
            other => panic!("value not inherited: {other:?}"),
        });
    });
    assert_eq!(r, Ok::<(), Error>(()));
}
