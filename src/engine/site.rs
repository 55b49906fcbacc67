//! The creation site of a slot, as the engine carries it: an opaque value that the faces make
//! (`#[track_caller]`, or a [`ForeignSite`] given by a foreign caller) and diagnostics read.
//! Zero-sized without feature `diagnostics`.
//!
//! ## Encoding (feature `diagnostics`)
//!
//! A site is one word, stored as it is in the slot's `site` field (no second field, so a slot
//! does not grow): a tagged pointer.
//!
//! - null: no site recorded (a slot never created with one);
//! - low bit clear: a `&'static Location<'static>` (a Rust caller, `#[track_caller]`);
//! - low bit set: a `&'static ForeignSite` with the bit set (a C caller, `sw_*_at`).
//!
//! S1. Both pointee types have an alignment of at least 2 (checked at compile time below), so
//!     the low bit of a real pointer is always clear and the tag cannot collide with an address.
//! S2. The field is written only by `Tree::record`, with the word of a [`Site`], under the lock
//!     and before the slot's state is published; [`Site::decode`] reads it back. Both pointees
//!     are `'static` and immutable, so a decoded site stays valid after the slot is reused.
//!
//! The tag is set and cleared with `map_addr`, keeping the pointer's provenance (Miri's
//! strict-provenance checks accept the round trip).

use core::ffi::{c_char, CStr};
#[cfg(feature = "diagnostics")]
use core::panic::Location;

use crate::engine::arena::ArenaView;
use crate::engine::callback::Callback;
use crate::engine::handle::Handle;
use crate::engine::tree::{Registered, Spec};
use crate::error::Error;

/// The tag bit of a foreign site in the stored word (S1).
#[cfg(feature = "diagnostics")]
const FOREIGN: usize = 1;

// S1: the tag bit is free in every pointer a site stores.
#[cfg(feature = "diagnostics")]
const _: () = assert!(
    core::mem::align_of::<Location<'static>>() > FOREIGN
        && core::mem::align_of::<ForeignSite>() > FOREIGN
);

/// A creation site given by a caller that has no `#[track_caller]`: a file name and a line, as C's
/// `__FILE__` and `__LINE__` give them. The C API's `struct sw_site` has this layout
/// (`#[repr(C)]`: `const char *file; uint32_t line;`), which is part of the API.
///
/// Creating functions that take one ([`ArenaView::at`]) keep a reference to it in the context's
/// slot, which is why they ask for `&'static`: diagnostics read it back for as long as the
/// context is held ([`crate::Live::site`]).
///
/// ```
/// use stopwire::ForeignSite;
/// static SITE: ForeignSite = ForeignSite::new(c"driver.c", 42);
/// assert_eq!((SITE.file(), SITE.line()), (c"driver.c", 42));
/// ```
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ForeignSite {
    /// Invariant: non-null, NUL-terminated, static and never written.
    file: *const c_char,
    line: u32,
}

// SAFETY: a `ForeignSite` is read-only (private fields, no interior mutability) and its `file`
// points to immutable static data (the field's invariant), so sharing or sending it between
// threads shares only immutable data.
unsafe impl Sync for ForeignSite {}
// SAFETY: as for `Sync`: nothing in it is owned or mutable.
unsafe impl Send for ForeignSite {}

impl ForeignSite {
    /// A site in `file` at `line` (0: unknown).
    pub const fn new(file: &'static CStr, line: u32) -> Self {
        ForeignSite {
            file: file.as_ptr(),
            line,
        }
    }

    /// The file name, as the caller gave it (C: `__FILE__`).
    pub fn file(&self) -> &'static CStr {
        // SAFETY: the field's invariant: non-null, NUL-terminated, static, never written.
        unsafe { CStr::from_ptr(self.file) }
    }

    /// The line (0: unknown).
    pub const fn line(&self) -> u32 {
        self.line
    }
}

impl core::fmt::Debug for ForeignSite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ForeignSite")
            .field("file", &self.file())
            .field("line", &self.line)
            .finish()
    }
}

impl core::fmt::Display for ForeignSite {
    /// `file:line`, the file name's bytes that are not UTF-8 shown as U+FFFD.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for chunk in self.file().to_bytes().utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        write!(f, ":{}", self.line)
    }
}

/// Where a context or registration was created, as diagnostics report it ([`crate::Live::site`]):
/// a Rust source location, or a site given by a foreign (C) caller.
#[cfg(feature = "diagnostics")]
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum CreationSite {
    /// Created from Rust: the caller's line (`#[track_caller]`).
    Rust(&'static Location<'static>),
    /// Created with a [`ForeignSite`]: from C, the caller's `__FILE__` and `__LINE__` (the C
    /// API's `sw_*_at` functions and the header's macros).
    Foreign(&'static ForeignSite),
}

#[cfg(feature = "diagnostics")]
impl CreationSite {
    /// The file name. A foreign file name that is not UTF-8 reads `"(file name not UTF-8)"`
    /// ([`CreationSite::file_bytes`] has its bytes).
    pub fn file(&self) -> &'static str {
        match self {
            CreationSite::Rust(l) => l.file(),
            CreationSite::Foreign(s) => s.file().to_str().unwrap_or("(file name not UTF-8)"),
        }
    }

    /// The file name's bytes (without a NUL).
    pub fn file_bytes(&self) -> &'static [u8] {
        match self {
            CreationSite::Rust(l) => l.file().as_bytes(),
            CreationSite::Foreign(s) => s.file().to_bytes(),
        }
    }

    /// The line (1-based; 0 when a foreign caller gave none).
    pub fn line(&self) -> u32 {
        match self {
            CreationSite::Rust(l) => l.line(),
            CreationSite::Foreign(s) => s.line(),
        }
    }

    /// The column (1-based) of a Rust site; 0 for a foreign one (C has no `__COLUMN__`).
    pub fn column(&self) -> u32 {
        match self {
            CreationSite::Rust(l) => l.column(),
            CreationSite::Foreign(_) => 0,
        }
    }

    /// The Rust source location, for a Rust site.
    pub fn location(&self) -> Option<&'static Location<'static>> {
        match self {
            CreationSite::Rust(l) => Some(l),
            CreationSite::Foreign(_) => None,
        }
    }
}

#[cfg(feature = "diagnostics")]
impl core::fmt::Display for CreationSite {
    /// A Rust site as `Location` prints it (`file:line:column`), a foreign one as `file:line`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CreationSite::Rust(l) => write!(f, "{l}"),
            CreationSite::Foreign(s) => write!(f, "{s}"),
        }
    }
}

// A site is the one word the slot stores: a second kind made the word tagged, not wider.
#[cfg(feature = "diagnostics")]
const _: () = assert!(core::mem::size_of::<Site>() == core::mem::size_of::<*mut ()>());

/// Where a context or registration was created: the word stored in a slot (module docs).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Site {
    #[cfg(feature = "diagnostics")]
    word: *const (),
}

impl Site {
    /// The caller of the `#[track_caller]` chain this is called from.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn caller() -> Site {
        Site {
            #[cfg(feature = "diagnostics")]
            word: core::ptr::from_ref(Location::caller()).cast(),
        }
    }

    /// A foreign caller's site, tagged (S1).
    #[inline(always)]
    pub(crate) fn foreign(site: &'static ForeignSite) -> Site {
        #[cfg(not(feature = "diagnostics"))]
        let _ = site;
        Site {
            #[cfg(feature = "diagnostics")]
            word: core::ptr::from_ref(site)
                .cast::<()>()
                .map_addr(|a| a | FOREIGN),
        }
    }

    /// The pointer stored in a slot's `site` field.
    #[cfg(feature = "diagnostics")]
    #[inline]
    pub(crate) fn as_ptr(self) -> *mut () {
        self.word.cast_mut()
    }

    /// What a slot's `site` field says.
    ///
    /// # Safety
    /// `word` is null or the [`Site::as_ptr`] of a `Site` (S2).
    #[cfg(feature = "diagnostics")]
    pub(crate) unsafe fn decode(word: *const ()) -> Option<CreationSite> {
        if word.is_null() {
            return None;
        }
        if word.addr() & FOREIGN == 0 {
            // SAFETY: untagged and non-null: a `&'static Location<'static>` (S2, `Site::caller`).
            Some(CreationSite::Rust(unsafe {
                &*word.cast::<Location<'static>>()
            }))
        } else {
            let p = word.map_addr(|a| a & !FOREIGN).cast::<ForeignSite>();
            // SAFETY: tagged: a `&'static ForeignSite` with the tag bit set (S1, S2,
            // `Site::foreign`); clearing the bit gives the reference's pointer back.
            Some(CreationSite::Foreign(unsafe { &*p }))
        }
    }

    /// This site as diagnostics report it (always `Some`: both constructors store a reference).
    #[cfg(feature = "diagnostics")]
    pub(crate) fn get(self) -> Option<CreationSite> {
        // SAFETY: the word of a `Site` (S2).
        unsafe { Site::decode(self.word) }
    }
}

impl core::fmt::Display for Site {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        #[cfg(feature = "diagnostics")]
        return match self.get() {
            Some(s) => write!(f, "{s}"),
            None => f.write_str("(unknown)"),
        };
        #[cfg(not(feature = "diagnostics"))]
        f.write_str("(site unknown: feature `diagnostics` is off)")
    }
}

/// The raw-handle creating functions of [`ArenaView`], recording a given creation site instead
/// of the caller's line: from [`ArenaView::at`]. For bindings of other languages (the C API's
/// `sw_*_at` functions use it); Rust code has `#[track_caller]` and needs none of it.
#[derive(Clone, Copy, Debug)]
pub struct ArenaAt<'a> {
    arena: &'a ArenaView,
    site: Site,
}

impl ArenaView {
    /// The creating functions, recording `site` as the creation site of what they create (for
    /// [`crate::ArenaView::live`], feature `diagnostics`; without it the site is not kept).
    /// `None` records the caller of `at`, as the methods of `ArenaView` record theirs.
    ///
    /// ```
    /// # #[cfg(feature = "diagnostics")] {
    /// use stopwire::{Arena, CreationSite, ForeignSite, Handle};
    /// static ARENA: Arena<4> = Arena::new();
    /// static SITE: ForeignSite = ForeignSite::new(c"worker.c", 17);
    /// let h = ARENA.at(Some(&SITE)).with_cancel(Handle::BACKGROUND).unwrap();
    /// let site = ARENA.live().next().unwrap().site.unwrap();
    /// assert!(matches!(site, CreationSite::Foreign(_)));
    /// assert_eq!(site.to_string(), "worker.c:17");
    /// # ARENA.release(h).unwrap();
    /// # }
    /// ```
    #[track_caller]
    #[inline]
    pub fn at(&self, site: Option<&'static ForeignSite>) -> ArenaAt<'_> {
        ArenaAt {
            arena: self,
            site: match site {
                Some(s) => Site::foreign(s),
                None => Site::caller(),
            },
        }
    }
}

impl ArenaAt<'_> {
    /// As [`ArenaView::with_cancel`].
    #[inline]
    pub fn with_cancel(self, parent: Handle) -> Result<Handle, Error> {
        self.arena.create(parent, Spec::Cancel, None, self.site)
    }

    /// As [`ArenaView::with_deadline_cause`].
    #[inline]
    pub fn with_deadline_cause(self, parent: Handle, at: u64, cause: u32) -> Result<Handle, Error> {
        let spec = Spec::Deadline { at, cause };
        self.arena.create(parent, spec, None, self.site)
    }

    /// As [`ArenaView::with_timeout_cause`].
    #[inline]
    pub fn with_timeout_cause(
        self,
        parent: Handle,
        ticks: u64,
        cause: u32,
    ) -> Result<Handle, Error> {
        let now = self.arena.now();
        let spec = Spec::Deadline {
            at: now.saturating_add(ticks),
            cause,
        };
        self.arena.create(parent, spec, Some(now), self.site)
    }

    /// As [`ArenaView::with_value`].
    #[inline]
    pub fn with_value(self, parent: Handle, key: usize, value: usize) -> Result<Handle, Error> {
        self.arena
            .create(parent, Spec::Value { key, value }, None, self.site)
    }

    /// As [`ArenaView::without_cancel`].
    #[inline]
    pub fn without_cancel(self, parent: Handle) -> Result<Handle, Error> {
        self.arena.create(parent, Spec::Detached, None, self.site)
    }

    /// As [`ArenaView::after_func`].
    pub fn after_func(self, h: Handle, cb: Callback) -> Result<Handle, Error> {
        let site = self.site;
        match self.arena.run(None, |t| t.register(h, cb, site))? {
            Registered::Later(stop) => Ok(stop),
            Registered::RunNow => {
                cb.call();
                Ok(Handle::DEAD)
            }
        }
    }
}
