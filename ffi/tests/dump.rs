//! `sw_dump`: the live-context report through a C callback (the engine's leak diagnostics, with
//! `std`). One test: the C API's arena is process-wide, and this binary has it to itself.
#![cfg(feature = "std")]

use core::ffi::c_void;

use stopwire::*; // this crate: the C API (its library is named `stopwire`)

/// What the callback saw of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    ctx: sw_ctx,
    kind: sw_live_kind,
    err: sw_status,
    parent_slot: u32,
    parent_held: bool,
    file: String,
    line: u32,
}

unsafe extern "C" fn collect(entry: *const sw_live, userdata: *mut c_void) {
    // SAFETY: `sw_dump` passes a valid entry for the call, and `userdata` is the `Vec` below.
    let (e, out) = unsafe { (&*entry, &mut *userdata.cast::<Vec<Seen>>()) };
    // SAFETY: `file` points at `file_len` bytes of static UTF-8 (a Rust source path).
    let file = unsafe { core::slice::from_raw_parts(e.file.cast::<u8>(), e.file_len as usize) };
    out.push(Seen {
        ctx: e.ctx,
        kind: e.kind,
        err: e.err,
        parent_slot: e.parent_slot,
        parent_held: e.parent_held,
        file: String::from_utf8(file.to_vec()).unwrap(),
        line: e.line,
    });
}

fn dump() -> (u32, Vec<Seen>) {
    let mut seen: Vec<Seen> = Vec::new();
    // SAFETY: `collect` matches `sw_dump_fn` and `userdata` is a live `Vec<Seen>`.
    let n = unsafe { sw_dump(Some(collect), (&mut seen as *mut Vec<Seen>).cast()) };
    (n, seen)
}

extern "C" fn noop(_: *mut c_void) {}

/// A context made in C and never released is reported, oldest first, with its kind, parent and
/// the line of the C API that created it; once everything is released the report is empty
/// (SPEC A6).
#[test]
fn a6_sw_dump_reports_what_is_still_held() {
    assert_eq!(dump().0, 0, "nothing held at start");
    let (mut job, mut tagged, mut reg) = (sw_ctx { raw: 0 }, sw_ctx { raw: 0 }, sw_ctx { raw: 0 });
    // SAFETY: valid out-pointers; `noop` ignores its data.
    unsafe {
        assert_eq!(sw_with_cancel(sw_background(), &mut job), sw_status::SW_OK);
        assert_eq!(sw_with_value(job, 1, 2, &mut tagged), sw_status::SW_OK);
        assert_eq!(
            sw_after_func(tagged, Some(noop), core::ptr::null_mut(), &mut reg),
            sw_status::SW_OK
        );
    }
    assert_eq!(sw_release(job), sw_status::SW_OK); // `tagged` is canceled, `job` kept for it
    let (n, seen) = dump();
    assert_eq!(n, 1, "{seen:#?}");
    let t = &seen[0];
    assert_eq!(
        (t.ctx, t.kind, t.err),
        (tagged, sw_live_kind::SW_LIVE_VALUE, sw_status::SW_CANCELED)
    );
    assert_eq!(
        Some(t.parent_slot as usize),
        arena().slot_index(engine::Handle::from_raw(job.raw))
    );
    assert!(!t.parent_held);
    assert!(t.file.ends_with("create.rs"), "{t:?}");
    assert!(t.line > 0);
    // Counting only: no callback.
    // SAFETY: a NULL callback is allowed.
    assert_eq!(unsafe { sw_dump(None, core::ptr::null_mut()) }, 1);

    // A pending registration is reported too, after the context it watches.
    let mut watched = sw_ctx { raw: 0 };
    // SAFETY: valid out-pointers.
    unsafe {
        assert_eq!(
            sw_with_timeout(sw_background(), 60_000_000, &mut watched),
            sw_status::SW_OK
        );
        assert_eq!(
            sw_after_func(watched, Some(noop), core::ptr::null_mut(), &mut reg),
            sw_status::SW_OK
        );
    }
    let (n, seen) = dump();
    assert_eq!(n, 3);
    let kinds: Vec<_> = seen.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            sw_live_kind::SW_LIVE_VALUE,
            sw_live_kind::SW_LIVE_DEADLINE,
            sw_live_kind::SW_LIVE_AFTER_FUNC
        ]
    );
    assert_eq!(seen[2].ctx, reg);
    assert!(seen[2].file.ends_with("cancel.rs"), "{:?}", seen[2]);
    assert_eq!(
        Some(seen[2].parent_slot as usize),
        arena().slot_index(engine::Handle::from_raw(watched.raw))
    );
    assert!(seen[2].parent_held);

    assert_eq!(sw_release(reg), sw_status::SW_OK); // a stop handle: stops the registration
    assert_eq!(sw_release(watched), sw_status::SW_OK);
    assert_eq!(sw_release(tagged), sw_status::SW_OK);
    assert_eq!(dump().0, 0, "everything released");

    creation_sites();
}

/// A site given to an `_at` function, as C's `SW_SITE` makes one (static storage).
static DRIVER: sw_site = sw_site {
    file: c"firmware/driver.c".as_ptr(),
    line: 4242,
};
static NO_FILE: sw_site = sw_site {
    file: core::ptr::null(),
    line: 9,
};

/// The `_at` functions record the caller's `sw_site`, and `sw_dump` reports it (the Rust side of
/// ffi/tests/c/dump.c's creation-site test): its file and line, column 0, next to contexts of the
/// same arena created with a Rust site (the plain functions, a NULL site, a NULL file) — the
/// engine's tagged site word decodes both kinds (SPEC A6: the leak report names the creator).
fn creation_sites() {
    let mut made = [sw_ctx { raw: 0 }; 5];
    // SAFETY: valid out-pointers; the sites are statics; `noop` ignores its data.
    unsafe {
        assert_eq!(
            sw_with_cancel_at(sw_background(), &DRIVER, &mut made[0]),
            sw_status::SW_OK
        );
        assert_eq!(sw_with_cancel(made[0], &mut made[1]), sw_status::SW_OK);
        assert_eq!(
            sw_with_timeout_cause_at(made[0], 60_000_000, 3, core::ptr::null(), &mut made[2]),
            sw_status::SW_OK
        );
        assert_eq!(
            sw_without_cancel_at(made[0], &NO_FILE, &mut made[3]),
            sw_status::SW_OK
        );
        assert_eq!(
            sw_after_func_at(
                made[0],
                Some(noop),
                core::ptr::null_mut(),
                &DRIVER,
                &mut made[4]
            ),
            sw_status::SW_OK
        );
    }
    let mut sites: Vec<(sw_ctx, String, u32, u32)> = Vec::new();
    unsafe extern "C" fn site(entry: *const sw_live, userdata: *mut c_void) {
        // SAFETY: as in `collect`.
        let (e, out) = unsafe {
            (
                &*entry,
                &mut *userdata.cast::<Vec<(sw_ctx, String, u32, u32)>>(),
            )
        };
        // SAFETY: `file` points at `file_len` bytes of static storage.
        let file = unsafe { core::slice::from_raw_parts(e.file.cast::<u8>(), e.file_len as usize) };
        out.push((
            e.ctx,
            String::from_utf8(file.to_vec()).unwrap(),
            e.line,
            e.column,
        ));
    }
    // SAFETY: `site` matches `sw_dump_fn` and `userdata` is the live `Vec` above.
    let n = unsafe { sw_dump(Some(site), (&mut sites as *mut Vec<_>).cast()) };
    assert_eq!(n, 5, "{sites:#?}");
    let of = |c: sw_ctx| sites.iter().find(|s| s.0 == c).unwrap().clone();
    assert_eq!(of(made[0]), (made[0], "firmware/driver.c".into(), 4242, 0));
    assert_eq!(of(made[4]), (made[4], "firmware/driver.c".into(), 4242, 0));
    for c in &made[1..4] {
        let (_, file, line, column) = of(*c);
        assert!(file.ends_with("create.rs"), "{file}");
        assert!(line > 0 && column > 0);
    }
    // The engine's view of the same entries.
    let foreign: Vec<_> = arena()
        .live()
        .filter_map(|l| match l.site {
            Some(engine::CreationSite::Foreign(s)) => Some(s.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        foreign,
        ["firmware/driver.c:4242", "firmware/driver.c:4242"]
    );

    assert_eq!(sw_release(made[0]), sw_status::SW_OK);
    for c in &made[1..4] {
        assert_eq!(sw_release(*c), sw_status::SW_OK);
    }
    assert_eq!(dump().0, 0, "everything released");
}
