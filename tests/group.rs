//! `Group` (feature `std`): every unit gets a child context, the group waits for all of them, and
//! the first failure cancels the rest (Go's errgroup). Named after the SPEC rules the group relies
//! on: C2 (canceling a node cancels its subtree), K1/K3 (the first cause wins), A4/A6 (every slot
//! is released). Each test has its own arena.
#![cfg(feature = "std")]

use core::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use stopwire::{Arena, Ctx, Error};

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
    #[cfg(feature = "diagnostics")]
    assert!(ARENA.check_released(stopwire::Handle::BACKGROUND).is_ok());
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

/// `TaskGroup`: the async variant, here on tokio's multi-threaded runtime (any executor works:
/// it needs only wakers).
mod tasks {
    use core::num::NonZeroU32;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use stopwire::{Arena, Error, Member, TaskGroup};

    /// A task that waits until its context is done, then reports the cause it saw.
    async fn until_done(me: Member) -> Result<Option<NonZeroU32>, Error> {
        while !me.ctx().is_done() {
            tokio::task::yield_now().await;
        }
        me.ctx().cause()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn k3_task_group_first_failure_cancels_the_others_and_is_the_result() {
        static ARENA: Arena<16> = Arena::new();
        static TASKS: TaskGroup = TaskGroup::new();
        TASKS.start(ARENA.background()).unwrap();
        let waiting: Vec<_> = (0..3)
            .map(|_| tokio::spawn(until_done(TASKS.member().unwrap())))
            .collect();
        let failing = TASKS.member().unwrap();
        assert_eq!(TASKS.running(), 4);
        tokio::spawn(async move {
            failing.fail(NonZeroU32::new(7).unwrap());
            failing.fail(NonZeroU32::new(8).unwrap()); // later failures change nothing (K3)
        });
        assert_eq!(TASKS.wait().await, Err(NonZeroU32::new(7).unwrap()));
        for t in waiting {
            // Every other task was canceled with the group's cause: the first failure's code.
            assert_eq!(t.await.unwrap(), Ok(NonZeroU32::new(7)));
        }
        assert_eq!(
            ARENA.stats().in_use,
            0,
            "every member and the group released"
        );
        assert!(TASKS.ctx().is_none(), "the run has ended");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a6_task_group_waits_for_every_member() {
        static ARENA: Arena<16> = Arena::new();
        static TASKS: TaskGroup = TaskGroup::new();
        static DONE: AtomicUsize = AtomicUsize::new(0);
        TASKS.start(ARENA.background()).unwrap();
        for i in 0..4u64 {
            let me = TASKS.member().unwrap();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(5 * i)).await;
                assert_eq!(me.ctx().err(), Ok(()));
                DONE.fetch_add(1, Ordering::SeqCst);
                drop(me);
            });
        }
        assert_eq!(TASKS.wait().await, Ok(()));
        assert_eq!(
            DONE.load(Ordering::SeqCst),
            4,
            "wait returned before a member"
        );
        assert_eq!(ARENA.stats().in_use, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn c2_canceling_the_parent_cancels_every_member() {
        static ARENA: Arena<16> = Arena::new();
        static TASKS: TaskGroup = TaskGroup::new();
        let parent = ARENA.background().with_cancel().unwrap();
        TASKS.start(*parent).unwrap();
        let tasks: Vec<_> = (0..3)
            .map(|_| tokio::spawn(until_done(TASKS.member().unwrap())))
            .collect();
        parent.cancel();
        assert_eq!(
            TASKS.wait().await,
            Ok(()),
            "a cancel from above is no failure"
        );
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(None));
        }
        drop(parent);
        assert_eq!(ARENA.stats().in_use, 0);
    }

    #[tokio::test]
    async fn r1_idle_task_group_has_no_members_and_runs_again() {
        static ARENA: Arena<8> = Arena::new();
        static TASKS: TaskGroup = TaskGroup::new();
        assert_eq!(TASKS.member().unwrap_err(), Error::Stale, "not started");
        assert_eq!(TASKS.wait().await, Ok(()), "nothing to wait for");
        assert!(!TASKS.cancel());
        let first = TASKS.start(ARENA.background()).unwrap();
        assert_eq!(
            TASKS.start(ARENA.background()).unwrap(),
            first,
            "already running"
        );
        assert!(TASKS.cancel());
        assert_eq!(TASKS.wait().await, Ok(()));
        assert_eq!(
            first.err(),
            Err(Error::Stale),
            "released at the end of the run"
        );
        // A second run starts clean.
        let second = TASKS.start(ARENA.background()).unwrap();
        assert_eq!(second.err(), Ok(()));
        let me = TASKS.member().unwrap();
        me.fail(NonZeroU32::new(1).unwrap());
        drop(me);
        assert_eq!(TASKS.wait().await, Err(NonZeroU32::new(1).unwrap()));
        assert_eq!(ARENA.stats().in_use, 0);
    }

    #[tokio::test]
    async fn a3_task_group_member_in_a_full_arena_is_refused() {
        static ARENA: Arena<1> = Arena::new();
        static TASKS: TaskGroup = TaskGroup::new();
        TASKS.start(ARENA.background()).unwrap();
        assert_eq!(TASKS.member().unwrap_err(), Error::Full);
        assert_eq!(TASKS.running(), 0);
        assert_eq!(TASKS.wait().await, Ok(()));
        assert_eq!(ARENA.stats().in_use, 0);
    }
}

/// `TaskGroup` with real embassy tasks (embassy-executor's std platform): the members await
/// their context with `done_in`, a supervisor task awaits the group.
#[cfg(feature = "embassy")]
mod embassy_tasks {
    use core::num::NonZeroU32;
    use std::sync::Mutex;

    use stopwire::{Arena, EmbassyClock, Error, Member, TaskGroup};

    static ARENA: Arena<16> = Arena::with_clock(&EmbassyClock);
    static TASKS: TaskGroup = TaskGroup::new();
    static SEEN: Mutex<Vec<(u32, Error)>> = Mutex::new(Vec::new());
    static OUTCOME: Mutex<Option<Result<(), NonZeroU32>>> = Mutex::new(None);

    #[embassy_executor::task(pool_size = 3)]
    async fn fetch(id: u32, me: Member) {
        if id == 2 {
            me.fail(NonZeroU32::new(503).unwrap());
            return;
        }
        let why = me.ctx().done().await;
        SEEN.lock().unwrap().push((id, why));
    }

    #[embassy_executor::task]
    async fn supervisor() {
        let r = TASKS.wait().await;
        *OUTCOME.lock().unwrap() = Some(r);
    }

    #[test]
    fn k3_embassy_tasks_in_a_group_are_canceled_by_the_first_failure() {
        TASKS.start(ARENA.background()).unwrap();
        let executor = Box::leak(Box::new(embassy_executor::Executor::new()));
        executor.run_until(
            |spawner| {
                for id in 0..3 {
                    spawner.spawn(fetch(id, TASKS.member().unwrap()).unwrap());
                }
                spawner.spawn(supervisor().unwrap());
            },
            || OUTCOME.lock().unwrap().is_some(),
        );
        assert_eq!(
            OUTCOME.lock().unwrap().take(),
            Some(Err(NonZeroU32::new(503).unwrap()))
        );
        let mut seen = SEEN.lock().unwrap().clone();
        seen.sort_by_key(|(id, _)| *id);
        assert_eq!(seen, [(0, Error::Canceled), (1, Error::Canceled)]);
        assert_eq!(ARENA.stats().in_use, 0);
    }
}
