//! The live-context report for C: `sw_dump` calls back once per context still held, oldest
//! first, with where it was created (the engine's leak diagnostics, `engine::ArenaView::live`).
//!
//! Contexts created through the `sw_*_at` functions (which the header's macros call with
//! `SW_SITE`) record the C caller's `__FILE__` and `__LINE__` (column 0); those created through
//! the plain functions, or with a NULL site, record the line of this crate that created them.
//! The report needs the engine's `diagnostics` feature, which comes with
//! `std`: a library built without `std` reports nothing.

use core::ffi::{c_char, c_void};

use crate::status::sw_status;
use crate::sw_ctx;

/// What a context reported by `sw_dump` is.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum sw_live_kind {
    /// `sw_with_cancel`, or a `sw_with_deadline` / `sw_with_timeout` clamped by an earlier parent
    /// deadline.
    SW_LIVE_CANCEL = 0,
    /// `sw_with_deadline` / `sw_with_timeout` whose own deadline is the effective one.
    SW_LIVE_DEADLINE = 1,
    /// `sw_with_value`.
    SW_LIVE_VALUE = 2,
    /// `sw_without_cancel`.
    SW_LIVE_DETACHED = 3,
    /// A `sw_after_func` registration not yet run or stopped (its `ctx` is the stop handle).
    SW_LIVE_AFTER_FUNC = 4,
}

/// One context still held, as `sw_dump` reports it. Valid only during the callback.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sw_live {
    /// Its handle.
    pub ctx: sw_ctx,
    /// What it is.
    pub kind: sw_live_kind,
    /// `SW_OK` while not done, else `SW_CANCELED` or `SW_DEADLINE_EXCEEDED`.
    pub err: sw_status,
    /// The slot index of its parent; `UINT32_MAX` for a child of a root.
    pub parent_slot: u32,
    /// Whether the parent is still held (false: released, kept for its descendants, SPEC A5).
    pub parent_held: bool,
    /// The tick it was created at.
    pub born: u64,
    /// Ticks since then.
    pub age: u64,
    /// The source file that created it: the `file` of the `sw_site` given at creation (the C
    /// caller's `__FILE__`), else the Rust source file of this library. `file_len` bytes, not
    /// always NUL-terminated (print it with `"%.*s", (int)file_len, file`); NULL when unknown.
    /// Static storage.
    pub file: *const c_char,
    /// Length of `file` in bytes.
    pub file_len: u32,
    /// Line in `file` (0 when unknown).
    pub line: u32,
    /// Column in `file` (0 when unknown, and for a `sw_site`: C has no `__COLUMN__`).
    pub column: u32,
}

/// The callback of `sw_dump`: one context still held, and the `userdata` given to `sw_dump`. It
/// may call any `sw_*` function (no lock is held), and must not unwind.
pub type sw_dump_fn = Option<unsafe extern "C" fn(entry: *const sw_live, userdata: *mut c_void)>;

/// Reports every context (and pending `sw_after_func` registration) still held in the arena,
/// oldest first: `callback(entry, userdata)` once per context, if `callback` is not NULL. Returns
/// how many were reported (0: everything has been released). For shutdown paths, tests and debug
/// consoles: each step scans the arena under its lock (O(capacity)), so not ISR-safe and not for
/// hot paths. A library built without `std` has no creation sites to report and returns
/// `UINT32_MAX` without calling back.
///
/// # Safety
/// `callback`, if not NULL, must be safe to call with a valid `sw_live` pointer and `userdata`.
#[no_mangle]
pub unsafe extern "C" fn sw_dump(callback: sw_dump_fn, userdata: *mut c_void) -> u32 {
    #[cfg(feature = "std")]
    {
        crate::arena::guard(u32::MAX, || {
            let mut count = 0u32;
            for live in crate::arena::ARENA.live() {
                count = count.saturating_add(1);
                if let Some(f) = callback {
                    let entry = entry(&live);
                    // SAFETY: the caller's contract on `callback`; `entry` outlives the call.
                    unsafe { f(&entry, userdata) };
                }
            }
            count
        })
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = (callback, userdata);
        u32::MAX
    }
}

#[cfg(feature = "std")]
fn entry(live: &engine::Live) -> sw_live {
    use engine::{Error, LiveKind};
    let (file, file_len, line, column) = match live.site {
        Some(s) => (
            s.file_bytes().as_ptr().cast::<c_char>(),
            u32::try_from(s.file_bytes().len()).unwrap_or(u32::MAX),
            s.line(),
            s.column(),
        ),
        None => (core::ptr::null(), 0, 0, 0),
    };
    sw_live {
        ctx: live.handle.into(),
        kind: match live.kind {
            LiveKind::Deadline => sw_live_kind::SW_LIVE_DEADLINE,
            LiveKind::Value => sw_live_kind::SW_LIVE_VALUE,
            LiveKind::Detached => sw_live_kind::SW_LIVE_DETACHED,
            LiveKind::AfterFunc => sw_live_kind::SW_LIVE_AFTER_FUNC,
            _ => sw_live_kind::SW_LIVE_CANCEL,
        },
        err: match live.err {
            None => sw_status::SW_OK,
            Some(Error::DeadlineExceeded) => sw_status::SW_DEADLINE_EXCEEDED,
            Some(_) => sw_status::SW_CANCELED,
        },
        parent_slot: live.parent.unwrap_or(u32::MAX),
        parent_held: live.parent_held,
        born: live.born,
        age: live.age,
        file,
        file_len,
        line,
        column,
    }
}
