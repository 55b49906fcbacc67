//! Leak diagnostics (feature `diagnostics`): creation sites and ticks, the live report, the leak
//! check. Named after SPEC A6 ("no slot ever leaks"): these are the tools that find the leak when
//! a program breaks it. Each test has its own arena, so tests may run in parallel.
#![cfg(feature = "diagnostics")]

use core::num::NonZeroUsize;

use stopwire::{
    Arena, Callback, CreationSite, ForeignSite, Handle, LiveKind, ManualClock, LEAKS_KEPT,
};

const KEY: NonZeroUsize = NonZeroUsize::new(7).unwrap();

/// The clock of the arenas below that create deadlines: without `std` the default clock is
/// `NoClock`, which refuses them (SPEC D1), and these tests run in that build too.
static TICKS: ManualClock = ManualClock::new(0);

#[test]
fn a6_forgotten_context_is_reported_at_its_line() {
    static ARENA: Arena<8> = Arena::with_clock(&TICKS);
    let job = ARENA.background().with_cancel().unwrap();
    let line = line!() + 1;
    let forgotten = job.with_timeout(60_000_000).unwrap();
    let raw = forgotten.handle();
    core::mem::forget(forgotten); // the bug: nobody releases it

    let report = ARENA.report().to_string();
    assert!(
        report.contains(&format!("tests/diagnostics.rs:{line}:")),
        "report does not name the line:\n{report}"
    );
    assert!(report.contains("2 of 8 slots in use"), "{report}");

    // The check under `job` finds exactly the forgotten one, with its site.
    let leaks = job.check_released().unwrap_err();
    assert_eq!(leaks.count(), 1);
    let leak = leaks.iter().next().unwrap();
    assert_eq!(leak.handle, raw);
    assert_eq!(leak.kind, LiveKind::Deadline);
    let site = leak.site.unwrap();
    assert!(site.file().ends_with("diagnostics.rs"), "{site}");
    assert_eq!(site.line(), line);
    assert!(leaks
        .to_string()
        .contains(&format!("diagnostics.rs:{line}:")));

    ARENA.release(raw).unwrap();
    assert!(job.check_released().is_ok());
    drop(job);
    assert!(ARENA.check_released(Handle::BACKGROUND).is_ok());
    assert_eq!(ARENA.stats().in_use, 0);
}

#[test]
fn a6_into_handle_without_release_is_reported_at_its_line() {
    static ARENA: Arena<4> = Arena::new();
    let line = line!() + 1;
    let raw = ARENA.background().with_cancel().unwrap().into_handle();
    let leaks = ARENA.check_released(Handle::BACKGROUND).unwrap_err();
    assert_eq!(leaks.count(), 1);
    assert_eq!(leaks.iter().next().unwrap().site.unwrap().line(), line);
    ARENA.release(raw).unwrap();
    assert!(ARENA.check_released(Handle::TODO).is_ok());
}

#[test]
fn a6_live_lists_held_contexts_oldest_first_with_kind_parent_and_age() {
    static CLOCK: ManualClock = ManualClock::new(10);
    static ARENA: Arena<8> = Arena::with_clock(&CLOCK);
    let a = ARENA.background().with_cancel().unwrap();
    CLOCK.set(20);
    let b = a.with_value(KEY, 1).unwrap();
    CLOCK.set(30);
    let c = ARENA.background().with_deadline(1_000).unwrap();
    CLOCK.set(35);
    let d = b.without_cancel().unwrap();
    CLOCK.set(100);

    let live: Vec<_> = ARENA.live().collect();
    let handles: Vec<_> = live.iter().map(|l| l.handle).collect();
    assert_eq!(
        handles,
        [a.handle(), b.handle(), c.handle(), d.handle()],
        "oldest first"
    );
    let kinds: Vec<_> = live.iter().map(|l| l.kind).collect();
    assert_eq!(
        kinds,
        [
            LiveKind::Cancel,
            LiveKind::Value,
            LiveKind::Deadline,
            LiveKind::Detached
        ]
    );
    // A virtual clock is read at each creation (a real-time host clock is not: the arena's latest
    // reading stands in for it, see src/engine/tree.rs `record`).
    let borns: Vec<_> = live.iter().map(|l| (l.born, l.age)).collect();
    assert_eq!(borns, [(10, 90), (20, 80), (30, 70), (35, 65)]);
    assert_eq!(live[0].parent, None);
    assert_eq!(live[1].parent, Some(slot_of(a.handle())));
    assert!(live[1].parent_held);
    assert_eq!(live[3].parent, Some(slot_of(b.handle())));
    assert!(live.iter().all(|l| l.err.is_none()));

    // Releasing `a` cancels `b` (A4) but `b` is still held; `a` is kept for it but not listed.
    drop(a);
    let live: Vec<_> = ARENA.live().collect();
    assert_eq!(live.len(), 3);
    assert_eq!(live[0].handle, b.handle());
    assert!(!live[0].parent_held);
    assert_eq!(live[0].err, Some(stopwire::Error::Canceled));
    // Past its deadline, `c` reports it even before any check has looked.
    CLOCK.set(1_000);
    let c_live = ARENA.live().find(|l| l.handle == c.handle()).unwrap();
    assert_eq!(c_live.err, Some(stopwire::Error::DeadlineExceeded));
    drop((b, c, d));
    assert_eq!(ARENA.live().count(), 0);
    assert!(ARENA.report().to_string().contains("no context held"));
}

#[test]
fn a6_leak_check_counts_only_the_subtree() {
    static ARENA: Arena<16> = Arena::new();
    let outside = ARENA.background().with_cancel().unwrap();
    let job = ARENA.background().with_cancel().unwrap();
    let step = job.with_cancel().unwrap();
    let deep = step.with_value(KEY, 2).unwrap();
    let leaks = job.check_released().unwrap_err();
    let under: Vec<_> = leaks.iter().map(|l| l.handle).collect();
    assert_eq!(under, [step.handle(), deep.handle()]);
    assert!(deep.check_released().is_ok(), "nothing under the leaf");
    // A descendant still held after its ancestors were released is still found under the root.
    let deep_raw = deep.into_handle();
    drop(step);
    let leaks = job.check_released().unwrap_err();
    assert_eq!(leaks.count(), 1);
    assert_eq!(leaks.iter().next().unwrap().handle, deep_raw);
    ARENA.release(deep_raw).unwrap();
    assert!(job.check_released().is_ok());
    // The whole arena still holds `outside` and `job`.
    assert_eq!(
        ARENA
            .check_released(Handle::BACKGROUND)
            .unwrap_err()
            .count(),
        2
    );
    drop((outside, job));
}

#[test]
fn a6_leak_check_with_a_stale_root_checks_the_whole_arena() {
    static ARENA: Arena<4> = Arena::new();
    let job = ARENA.background().with_cancel().unwrap();
    let child = job.with_cancel().unwrap().into_handle();
    let stale = job.handle();
    drop(job);
    // The root went away first: the check does not hide the child.
    let leaks = ARENA.check_released(stale).unwrap_err();
    assert_eq!(leaks.count(), 1);
    assert_eq!(leaks.iter().next().unwrap().handle, child);
    ARENA.release(child).unwrap();
    assert!(ARENA.check_released(stale).is_ok());
}

#[test]
fn f1_forgotten_registration_is_reported_as_after_func() {
    static ARENA: Arena<4> = Arena::new();
    fn noop(_: usize) {}
    let job = ARENA.background().with_cancel().unwrap();
    let line = line!() + 1;
    let reg = job.after_func(noop, 0).unwrap().forget();
    let leaks = job.check_released().unwrap_err();
    let leak = leaks.iter().next().unwrap();
    assert_eq!(leak.kind, LiveKind::AfterFunc);
    assert_eq!(leak.handle, reg);
    assert_eq!(leak.site.unwrap().line(), line);
    job.cancel(); // runs and frees the registration
    assert!(job.check_released().is_ok());
}

#[test]
fn a6_leaks_beyond_the_kept_ones_are_counted() {
    static ARENA: Arena<32> = Arena::new();
    let job = ARENA.background().with_cancel().unwrap();
    let n = LEAKS_KEPT + 3;
    let raws: Vec<_> = (0..n)
        .map(|_| job.with_cancel().unwrap().into_handle())
        .collect();
    let leaks = job.check_released().unwrap_err();
    assert_eq!(leaks.count(), n);
    assert_eq!(leaks.iter().count(), LEAKS_KEPT);
    assert!(leaks.to_string().contains("and 3 more"));
    for h in raws {
        ARENA.release(h).unwrap();
    }
    assert!(job.check_released().is_ok());
}

#[test]
fn a6_raw_engine_creations_record_their_caller() {
    static ARENA: Arena<4> = Arena::new();
    let line = line!() + 1;
    let h = ARENA.with_value(Handle::BACKGROUND, 3, 4).unwrap();
    let live = ARENA.live().next().unwrap();
    assert_eq!((live.handle, live.site.unwrap().line()), (h, line));
    ARENA.release(h).unwrap();
}

/// A foreign caller's site (the C API's `sw_*_at`, `engine::site`'s tagged word): reported with
/// its file and line, column 0, beside Rust sites in the same arena, in `live`, the report and the
/// leak check; `at(None)` records the caller of `at` (SPEC A6: a leak names its creator).
#[test]
fn a6_foreign_sites_are_reported_beside_rust_ones() {
    static ARENA: Arena<8> = Arena::with_clock(&TICKS);
    static DRIVER: ForeignSite = ForeignSite::new(c"firmware/driver.c", 4242);
    static NO_LINE: ForeignSite = ForeignSite::new(c"unknown.c", 0);
    let job = ARENA.background().with_cancel().unwrap();
    let rust_line = line!() - 1;
    let c = ARENA.at(Some(&DRIVER)).with_cancel(job.handle()).unwrap();
    let none_line = line!() + 1;
    let t = ARENA.at(None).with_timeout_cause(c, 60_000_000, 2).unwrap();
    let v = ARENA.at(Some(&NO_LINE)).with_value(c, 1, 2).unwrap();
    let d = ARENA.at(Some(&DRIVER)).without_cancel(v).unwrap();
    let at = ARENA
        .at(Some(&DRIVER))
        .with_deadline_cause(t, u64::MAX, 0)
        .unwrap();
    let stop = ARENA
        .at(Some(&DRIVER))
        .after_func(at, Callback::new(|_| {}, 0))
        .unwrap();

    let live: Vec<_> = ARENA.live().collect();
    let site_of = |h: Handle| live.iter().find(|l| l.handle == h).unwrap().site.unwrap();
    let rust = site_of(job.handle());
    assert!(matches!(rust, CreationSite::Rust(_)));
    assert_eq!(
        (rust.line(), rust.location().unwrap().line()),
        (rust_line, rust_line)
    );
    assert!(rust.file().ends_with("diagnostics.rs") && rust.column() > 0);
    for h in [c, d, at, stop] {
        let s = site_of(h);
        let CreationSite::Foreign(f) = s else {
            panic!("{h:?}: {s:?}")
        };
        assert!(core::ptr::eq(f, &DRIVER));
        assert_eq!(
            (s.file(), s.line(), s.column()),
            ("firmware/driver.c", 4242, 0)
        );
        assert_eq!(s.file_bytes(), b"firmware/driver.c");
        assert!(s.location().is_none());
        assert_eq!(s.to_string(), "firmware/driver.c:4242");
    }
    assert_eq!(site_of(v).to_string(), "unknown.c:0");
    let none = site_of(t);
    assert!(matches!(none, CreationSite::Rust(_)));
    assert_eq!(none.line(), none_line);

    let report = ARENA.report().to_string();
    assert!(
        report.contains("created at firmware/driver.c:4242\n"),
        "{report}"
    );
    assert!(
        report.contains(&format!("diagnostics.rs:{rust_line}:")),
        "{report}"
    );
    let leaks = job.check_released().unwrap_err();
    assert_eq!(leaks.count(), 6);
    assert_eq!(
        leaks.iter().next().unwrap().site.unwrap().to_string(),
        "firmware/driver.c:4242"
    );

    // Released: a reused slot reports its new creator, never the old one's site.
    for h in [stop, d, at, v, t, c] {
        ARENA.release(h).unwrap();
    }
    let line = line!() + 1;
    let again = job.with_cancel().unwrap();
    let site = ARENA.live().last().unwrap().site.unwrap();
    assert!(matches!(site, CreationSite::Rust(_)) && site.line() == line);
    drop(again);
    assert!(job.check_released().is_ok());
}

/// A foreign file name that is not UTF-8: `file` says so, `file_bytes` has the bytes, `Display`
/// replaces the bad bytes.
#[test]
fn a6_foreign_site_file_names_need_not_be_utf8() {
    static ARENA: Arena<2> = Arena::new();
    static LATIN1: ForeignSite = ForeignSite::new(c"caf\xe9.c", 3);
    let h = ARENA
        .at(Some(&LATIN1))
        .with_cancel(Handle::BACKGROUND)
        .unwrap();
    let site = ARENA.live().next().unwrap().site.unwrap();
    assert_eq!(site.file(), "(file name not UTF-8)");
    assert_eq!(site.file_bytes(), b"caf\xe9.c");
    assert_eq!(site.to_string(), "caf\u{fffd}.c:3");
    assert_eq!(
        format!("{LATIN1:?}"),
        r#"ForeignSite { file: "caf\xe9.c", line: 3 }"#
    );
    ARENA.release(h).unwrap();
}

#[cfg(feature = "log")]
mod logged {
    use std::sync::Mutex;

    use stopwire::{Arena, Error, Handle};

    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    struct Capture;
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            LINES.lock().unwrap().push(record.args().to_string());
        }
        fn flush(&self) {}
    }
    static CAPTURE: Capture = Capture;

    #[test]
    fn a3_full_and_leaks_are_logged_with_their_sites() {
        let _ = log::set_logger(&CAPTURE);
        log::set_max_level(log::LevelFilter::Trace);
        static ARENA: Arena<1> = Arena::new();
        let held = ARENA.background().with_cancel().unwrap();
        let line = line!() + 1;
        assert_eq!(ARENA.background().with_cancel().unwrap_err(), Error::Full);
        let leak_line = line!() - 3;
        assert!(ARENA.check_released(Handle::BACKGROUND).is_err());
        let lines = LINES.lock().unwrap().clone();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("arena full") && l.contains(&format!("diagnostics.rs:{line}:"))),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("leak") && l.contains(&format!("diagnostics.rs:{leak_line}:"))),
            "{lines:?}"
        );
        drop(held);
    }
}

/// The slot index of a handle (the low half minus one, see `Handle`'s layout).
/// Handles pack the slot index by capacity: any 8-slot arena decodes those of another.
static ARENA_FOR_SLOTS: Arena<8> = Arena::new();

fn slot_of(h: Handle) -> u32 {
    ARENA_FOR_SLOTS.slot_index(h).unwrap() as u32
}
