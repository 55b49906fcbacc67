//! The creation site of a slot, as the engine carries it: an opaque value that the faces make
//! (`#[track_caller]`) and diagnostics read. Zero-sized without feature `diagnostics`.

#[cfg(feature = "diagnostics")]
use core::panic::Location;

/// Where a context or registration was created.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Site {
    #[cfg(feature = "diagnostics")]
    pub(crate) loc: &'static Location<'static>,
}

impl Site {
    /// The caller of the `#[track_caller]` chain this is called from.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn caller() -> Site {
        Site {
            #[cfg(feature = "diagnostics")]
            loc: Location::caller(),
        }
    }

    /// The pointer stored in a slot's `site` field.
    #[cfg(feature = "diagnostics")]
    #[inline]
    pub(crate) fn as_ptr(self) -> *mut () {
        core::ptr::from_ref(self.loc).cast_mut().cast()
    }
}

impl core::fmt::Display for Site {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        #[cfg(feature = "diagnostics")]
        return write!(f, "{}", self.loc);
        #[cfg(not(feature = "diagnostics"))]
        f.write_str("(site unknown: feature `diagnostics` is off)")
    }
}
