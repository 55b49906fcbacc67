//! Creation sites of C callers: `struct sw_site`, which the `sw_*_at` functions take and the
//! header's `SW_SITE` macro makes (a static `{__FILE__, __LINE__}` per call site), so that
//! `sw_dump` names the C line that created a context instead of this crate's.

use core::ffi::c_char;

use engine::{ArenaAt, ForeignSite};

use crate::arena::ARENA;

/// Where a C caller creates a context: a file name and a line, as `__FILE__` and `__LINE__` give
/// them. The `sw_*_at` functions keep a pointer to it for as long as the context is held, so it
/// must have **static storage duration** (a `static` object, or the `SW_SITE` macro of this
/// header), be left unchanged, and stay loaded (not in a shared object that is unloaded while a
/// context created with it is held); `file` must be NULL or a NUL-terminated string with static
/// storage (a string literal). A compound literal in a function has automatic storage: not
/// allowed. With a NULL `file`, the site is ignored.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sw_site {
    /// The source file, NUL-terminated, static (`__FILE__`).
    pub file: *const c_char,
    /// The line (`__LINE__`).
    pub line: u32,
}

// SAFETY: plain data; the library only reads it (and what `file` points to, by the contract of
// the `sw_*_at` functions), so a shared `sw_site` may be read from any thread.
unsafe impl Sync for sw_site {}

// The engine's `ForeignSite` is this struct (both `#[repr(C)]`, the same fields in the same
// order), which is what lets `foreign` borrow a C caller's `sw_site` as one.
const _: () = assert!(
    core::mem::size_of::<sw_site>() == core::mem::size_of::<ForeignSite>()
        && core::mem::align_of::<sw_site>() == core::mem::align_of::<ForeignSite>()
);

/// The engine's view of a C caller's site: `None` for NULL or a NULL `file`.
///
/// # Safety
/// `site` is NULL or points to a `sw_site` as its documentation asks (static storage, never
/// changed; `file` NULL or a static NUL-terminated string).
#[inline]
unsafe fn foreign(site: *const sw_site) -> Option<&'static ForeignSite> {
    // SAFETY: NULL or a valid, static `sw_site` (this function's contract).
    let s = unsafe { site.as_ref() }?;
    if s.file.is_null() {
        return None;
    }
    // SAFETY: `ForeignSite` has the layout of `sw_site` (checked above), and its invariant
    // (`file` non-null, NUL-terminated, static, never written) is what the caller promised, with
    // `file` checked non-null just above; the `sw_site` itself is static and never changed.
    Some(unsafe { &*site.cast::<ForeignSite>() })
}

/// The engine's creating functions recording `site`, or this crate's line when `site` says
/// nothing (NULL, or a NULL `file`): the line of the `sw_*_at` function that calls this.
///
/// # Safety
/// As [`foreign`].
#[track_caller]
#[inline(always)]
pub(crate) unsafe fn at(site: *const sw_site) -> ArenaAt<'static> {
    // SAFETY: forwarded contract.
    ARENA.at(unsafe { foreign(site) })
}
