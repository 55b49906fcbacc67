//! The Rust side of the C boundary: the C functions called from Rust, the shared arena seen from
//! Rust (a context made in C, canceled from C, observed by a Rust task), and the panic guard.

use core::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

use engine::{Callback, Error, Handle};
use stopwire::*; // this crate: the C API (its library is named `stopwire`)

/// A context created through the C API is the same context for Rust code on [`arena`], and a
/// C cancel reaches the Rust view at once (SPEC C2, T1).
#[test]
fn c2_c_cancel_reaches_a_rust_view_of_the_same_context() {
    let mut job = sw_ctx { raw: 0 };
    // SAFETY: `job` is a valid out-pointer.
    let made = unsafe { sw_with_cancel(sw_background(), &mut job) };
    assert_eq!(made, sw_status::SW_OK);
    let view = arena().ctx(Handle::from(job));
    assert_eq!(view.err(), Ok(()));
    assert_eq!(sw_cancel_cause(job, 12), sw_status::SW_OK);
    assert_eq!(view.err(), Err(Error::Canceled));
    assert_eq!(view.cause().map(|c| c.map(|c| c.get())), Ok(Some(12)));
    assert_eq!(sw_release(job), sw_status::SW_OK);
    assert_eq!(view.err(), Err(Error::Stale));
}

/// Out-parameters are written only on success; NULL gives `SW_ERR_NULL_ARG` (docs/c-api.md).
#[test]
fn a2_out_parameters_written_only_on_success() {
    let mut out = sw_ctx { raw: 77 };
    // SAFETY: a valid out-pointer; a forged parent handle is refused.
    let s = unsafe {
        sw_with_cancel(
            sw_ctx {
                raw: 0x1234_5678_0000_0009,
            },
            &mut out,
        )
    };
    assert_eq!(s, sw_status::SW_ERR_STALE_HANDLE);
    assert_eq!(out.raw, 77);
    // SAFETY: NULL is allowed and refused.
    let s = unsafe { sw_with_cancel(sw_background(), core::ptr::null_mut()) };
    assert_eq!(s, sw_status::SW_ERR_NULL_ARG);
}

static RAN: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count(data: *mut c_void) {
    RAN.fetch_add(data as usize, Ordering::SeqCst);
}

/// `sw_after_func` on a done context runs at once and writes the zero stop handle (SPEC F2).
#[test]
fn f2_after_func_on_done_context_writes_the_zero_handle() {
    let mut job = sw_ctx { raw: 0 };
    let mut stop = sw_ctx { raw: 5 };
    // SAFETY: valid out-pointers; `count` may be called from any thread with this data.
    unsafe {
        assert_eq!(sw_with_cancel(sw_background(), &mut job), sw_status::SW_OK);
        assert_eq!(sw_cancel(job), sw_status::SW_OK);
        let before = RAN.load(Ordering::SeqCst);
        let s = sw_after_func(job, Some(count), 3 as *mut c_void, &mut stop);
        assert_eq!(s, sw_status::SW_OK);
        assert_eq!(RAN.load(Ordering::SeqCst), before + 3);
    }
    assert_eq!(stop.raw, 0);
    assert!(!sw_stop(stop));
    assert_eq!(sw_release(job), sw_status::SW_OK);
}

fn panics(_: usize) {
    panic!("a callback that panics (this message is expected in the test output)");
}

/// No panic crosses the boundary: a Rust callback registered on the C arena that panics while a C
/// caller cancels is stopped by the guard, and the caller gets `SW_ERR_INTERNAL`.
#[test]
fn no_panic_crosses_the_c_boundary() {
    let mut job = sw_ctx { raw: 0 };
    // SAFETY: a valid out-pointer.
    let made = unsafe { sw_with_cancel(sw_background(), &mut job) };
    assert_eq!(made, sw_status::SW_OK);
    arena()
        .after_func(job.into(), Callback::new(panics, 0))
        .expect("a free slot");
    assert_eq!(sw_cancel(job), sw_status::SW_ERR_INTERNAL);
    assert!(sw_is_done(job));
    assert_eq!(sw_release(job), sw_status::SW_OK);
}

/// The build setting reaches `sw_stats_get` (SPEC A6).
#[test]
fn a6_stats_report_the_build_capacity() {
    let mut s = sw_stats::default();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { sw_stats_get(&mut s) }, sw_status::SW_OK);
    assert_eq!(s.capacity as usize, CAPACITY);
    // SAFETY: NULL is allowed and refused.
    let refused = unsafe { sw_stats_get(core::ptr::null_mut()) };
    assert_eq!(refused, sw_status::SW_ERR_NULL_ARG);
}

/// The version string equals the crate version and the header's macros.
#[test]
fn version_equals_the_crate_version() {
    // SAFETY: sw_version returns a static NUL-terminated string.
    let v = unsafe { core::ffi::CStr::from_ptr(sw_version()) };
    assert_eq!(v.to_str(), Ok(env!("CARGO_PKG_VERSION")));
    let header = include_str!("../../include/stopwire.h");
    for (name, want) in [
        ("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let line = format!("#define SW_VERSION_{name} {want}");
        assert!(
            header.lines().any(|l| l == line),
            "{line} missing from stopwire.h"
        );
    }
}
