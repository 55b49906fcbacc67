//! Leak diagnostics: where and when every context was created, which ones are still held, and a
//! leak check (feature `diagnostics`, a default feature; firmware opts in).
//!
//! The seed's last advice is that "the worst goroutine bug is the one that never logs". A Go
//! program that forgets a `cancel` learns it from `go vet` at best; here every slot records the
//! source line that created it (`#[track_caller]`: a `&'static Location`, no allocation) and the
//! clock tick it was created at, in two extra fields of [`crate::Slot`] that exist only with the
//! feature. From them:
//!
//! - [`ArenaView::live`]: the contexts and callback registrations still held, oldest first, each
//!   a [`Live`] (kind, parent, age, creation site); [`ArenaView::report`] prints them.
//! - [`ArenaView::check_released`] / [`crate::Ctx::check_released`]: "everything under this root
//!   has been released", or the [`Leaks`] that have not.
//!
//! Nothing here allocates. The iterator takes the arena lock once per item and scans the slots for
//! the next oldest (O(N) under the lock per item, O(N²) for a whole report): diagnostics are for
//! tests, shutdown paths and debug consoles, not for hot paths or interrupt handlers. Each item is
//! a consistent snapshot of one slot; the report as a whole is not a snapshot of the arena.
//!
//! Contexts created through the C API record their C caller's `__FILE__` and `__LINE__` when
//! created with the `sw_*_at` functions (which the header's macros call): a
//! [`CreationSite::Foreign`]. Those created through the plain `sw_*` functions record the line of
//! the ffi crate that created them.

#[cfg(feature = "diagnostics")]
use core::fmt;

#[cfg(feature = "diagnostics")]
use crate::context::Ctx;
#[cfg(feature = "diagnostics")]
use crate::engine::arena::ArenaView;
#[cfg(feature = "diagnostics")]
use crate::engine::handle::Handle;
#[cfg(feature = "diagnostics")]
use crate::engine::run::Tree;
#[cfg(feature = "diagnostics")]
use crate::engine::slot::{
    gen_of, is_settled, kind_of, Idx, Kind, CLOCKED, ERR_CANCELED, ERR_MASK, HANDLE, NONE,
};
#[cfg(feature = "diagnostics")]
use crate::engine::sync::Ordering::Relaxed;
#[cfg(feature = "diagnostics")]
use crate::error::Error;

#[cfg(feature = "diagnostics")]
pub use crate::engine::site::CreationSite;
pub(crate) use crate::engine::site::Site;

impl Site {
    /// File and line, when recorded.
    #[cfg(feature = "defmt")]
    fn file_line(self) -> (&'static str, u32) {
        #[cfg(feature = "diagnostics")]
        return self.get().map_or(("?", 0), |s| (s.file(), s.line()));
        #[cfg(not(feature = "diagnostics"))]
        ("?", 0)
    }
}

/// Logs a refused creation (features `log`, `defmt`), after the lock is released.
#[cfg(any(feature = "log", feature = "defmt"))]
pub(crate) fn log_full(capacity: usize, site: Site) {
    #[cfg(feature = "log")]
    log::warn!("stopwire: arena full ({capacity} slots): creation at {site} refused");
    #[cfg(feature = "defmt")]
    {
        let (file, line) = site.file_line();
        defmt::warn!(
            "stopwire: arena full ({=usize} slots): creation at {=str}:{=u32} refused",
            capacity,
            file,
            line
        );
    }
}

/// What a held slot is.
#[cfg(feature = "diagnostics")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LiveKind {
    /// `with_cancel`, or a `with_deadline` / `with_timeout` clamped by an earlier parent deadline.
    Cancel,
    /// `with_deadline` / `with_timeout` whose own deadline is the effective one.
    Deadline,
    /// `with_value`.
    Value,
    /// `without_cancel`.
    Detached,
    /// An `after_func` registration not yet run or stopped.
    AfterFunc,
}

#[cfg(feature = "diagnostics")]
impl LiveKind {
    /// A short lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            LiveKind::Cancel => "cancel",
            LiveKind::Deadline => "deadline",
            LiveKind::Value => "value",
            LiveKind::Detached => "detached",
            LiveKind::AfterFunc => "after_func",
        }
    }
}

/// One context (or callback registration) still held: an item of [`ArenaView::live`].
#[cfg(feature = "diagnostics")]
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Live {
    /// Its handle (valid at the time of the snapshot).
    pub handle: Handle,
    /// Its slot index.
    pub slot: usize,
    /// What it is.
    pub kind: LiveKind,
    /// The slot index of its parent, `None` for a child of a root (and for a registration on a
    /// root or detached context).
    pub parent: Option<u32>,
    /// Whether the parent is itself still held (false: released, kept for its descendants).
    pub parent_held: bool,
    /// `Some(Canceled)` / `Some(DeadlineExceeded)` once done; `None` while not done (and always
    /// for registrations).
    pub err: Option<Error>,
    /// The clock tick it was created at.
    pub born: u64,
    /// Ticks since then, at the time of the snapshot.
    pub age: u64,
    /// Where it was created: the Rust source line, or the site a C caller gave
    /// ([`CreationSite::Foreign`]); `None` only if no site was recorded.
    pub site: Option<CreationSite>,
}

#[cfg(feature = "diagnostics")]
impl fmt::Display for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self.slot;
        write!(f, "#{slot:<4} {:<10}", self.kind.as_str())?;
        match self.err {
            Some(e) => write!(f, " {:<26}", e.as_str())?,
            None => write!(f, " {:<26}", "not done")?,
        }
        match (self.parent, self.parent_held) {
            (None, _) => write!(f, " parent root   ")?,
            (Some(p), true) => write!(f, " parent #{p:<6}")?,
            (Some(p), false) => write!(f, " parent #{p:<6} (released)")?,
        }
        write!(f, " age {:>9} ticks", self.age)?;
        match self.site {
            Some(s) => write!(f, "  created at {s}"),
            None => f.write_str("  created at (unknown)"),
        }
    }
}

/// The contexts still held, oldest first (by creation sequence, then slot index): from
/// [`ArenaView::live`] and [`ArenaView::live_under`].
#[cfg(feature = "diagnostics")]
#[derive(Clone, Debug)]
pub struct LiveIter<'a> {
    arena: &'a ArenaView,
    now: u64,
    /// Only strict descendants of this slot (`NONE`: every held slot).
    under: Idx,
    /// The (sequence, index) key of the last item returned.
    last: Option<(u64, Idx)>,
}

#[cfg(feature = "diagnostics")]
impl<'a> LiveIter<'a> {
    /// Whether slot `j` is a strict descendant of `self.under`. Under the lock; parents of
    /// allocated slots are allocated (I3), so the chain is sound; bounded by the capacity.
    fn is_under(&self, t: &Tree<'_>, j: Idx) -> bool {
        if self.under == NONE {
            return true;
        }
        let mut k = t.arena.slot(j).parent();
        for _ in 0..t.arena.capacity() {
            if k == NONE {
                return false;
            }
            if k == self.under {
                return true;
            }
            k = t.arena.slot(k).parent();
        }
        false
    }
}

#[cfg(feature = "diagnostics")]
impl Iterator for LiveIter<'_> {
    type Item = Live;

    fn next(&mut self) -> Option<Live> {
        let now = self.now;
        self.arena.locked(|t| {
            let mut best: Option<(u64, Idx)> = None;
            for j in 0..t.arena.capacity() as Idx {
                let slot = t.arena.slot(j);
                let s = slot.state.load(Relaxed);
                if s & HANDLE == 0 || kind_of(s) == Kind::Free {
                    continue;
                }
                let key = (u64::from(slot.seq.load(Relaxed)), j);
                if self.last.is_some_and(|l| key <= l) || best.is_some_and(|b| key >= b) {
                    continue;
                }
                if self.is_under(t, j) {
                    best = Some(key);
                }
            }
            let (seq, j) = best?;
            self.last = Some((seq, j));
            let slot = t.arena.slot(j);
            let born = slot.born.get();
            let s = slot.state.load(Relaxed);
            let kind = match kind_of(s) {
                Kind::Deadline => LiveKind::Deadline,
                Kind::Value => LiveKind::Value,
                Kind::Detached => LiveKind::Detached,
                Kind::CallbackRust | Kind::CallbackC => LiveKind::AfterFunc,
                Kind::Cancel | Kind::Free => LiveKind::Cancel,
            };
            let err = if kind == LiveKind::AfterFunc {
                None
            } else if is_settled(s) {
                Some(match s & ERR_MASK {
                    ERR_CANCELED => Error::Canceled,
                    _ => Error::DeadlineExceeded,
                })
            } else if s & ERR_MASK != 0
                || (s & CLOCKED != 0
                    && kind != LiveKind::Detached
                    && t.arena.checks_read_clock()
                    && now >= slot.deadline.get())
            {
                Some(Error::DeadlineExceeded)
            } else {
                None
            };
            let p = slot.parent();
            let parent_held = p != NONE && t.arena.slot(p).state.load(Relaxed) & HANDLE != 0;
            let site = slot.site.load(Relaxed);
            #[allow(clippy::unnecessary_cast, reason = "Idx is u16 on 32-bit targets")]
            let parent = (p != NONE).then_some(p as u32);
            Some(Live {
                handle: t.arena.handle_of(j, gen_of(s)),
                slot: j as usize,
                kind,
                parent,
                parent_held,
                err,
                born,
                age: now.saturating_sub(born),
                // SAFETY: `site` is null or the word of a `Site`, stored by `Tree::record`; it is
                // never written with anything else (engine::site, S2).
                site: unsafe { Site::decode(site.cast_const()) },
            })
        })
    }
}

/// A human-readable report of the contexts still held: `Display` prints the arena figures and
/// one line per context, oldest first. From [`ArenaView::report`].
#[cfg(feature = "diagnostics")]
#[derive(Clone, Copy, Debug)]
pub struct Report<'a> {
    arena: &'a ArenaView,
}

#[cfg(feature = "diagnostics")]
impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.arena.stats();
        writeln!(
            f,
            "stopwire arena: {} of {} slots in use (high water {}, {} creations refused)",
            s.in_use, s.capacity, s.high_water, s.full_count
        )?;
        let mut held = 0;
        for live in self.arena.live() {
            writeln!(f, "  {live}")?;
            held += 1;
        }
        if held == 0 {
            writeln!(f, "  no context held")?;
        }
        Ok(())
    }
}

/// How many leaks [`Leaks`] keeps with their details; the count covers all of them.
#[cfg(feature = "diagnostics")]
pub const LEAKS_KEPT: usize = 8;

/// The contexts found still held by [`ArenaView::check_released`]: how many, and the oldest
/// [`LEAKS_KEPT`] of them with their creation sites. `Display` lists them.
#[cfg(feature = "diagnostics")]
#[derive(Clone, Debug)]
pub struct Leaks {
    count: usize,
    kept: [Option<Live>; LEAKS_KEPT],
}

#[cfg(feature = "diagnostics")]
impl Leaks {
    /// How many contexts were still held.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The oldest of them (at most [`LEAKS_KEPT`]), oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Live> {
        self.kept.iter().flatten()
    }
}

#[cfg(feature = "diagnostics")]
impl fmt::Display for Leaks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} context(s) not released:", self.count)?;
        for live in self.iter() {
            writeln!(f, "  {live}")?;
        }
        if self.count > LEAKS_KEPT {
            writeln!(f, "  ... and {} more", self.count - LEAKS_KEPT)?;
        }
        Ok(())
    }
}

#[cfg(feature = "diagnostics")]
impl core::error::Error for Leaks {}

#[cfg(feature = "diagnostics")]
impl ArenaView {
    /// Every context and callback registration still held in this arena, oldest first (feature
    /// `diagnostics`). Released contexts kept only for their descendants are not listed.
    ///
    /// ```
    /// use stopwire::{Arena, LiveKind};
    /// static ARENA: Arena<4> = Arena::new();
    /// let job = ARENA.background().with_cancel().unwrap();
    /// let live: Vec<_> = ARENA.live().collect();
    /// assert_eq!(live.len(), 1);
    /// assert_eq!(live[0].kind, LiveKind::Cancel);
    /// assert_eq!(live[0].site.unwrap().line(), line!() - 4);
    /// # drop(job);
    /// ```
    pub fn live(&self) -> LiveIter<'_> {
        LiveIter {
            arena: self,
            now: self.now(),
            under: NONE,
            last: None,
        }
    }

    /// The contexts still held under `root` (its strict descendants), oldest first. For a root
    /// handle ([`Handle::BACKGROUND`], [`Handle::TODO`]), every held context. For a stale or
    /// invalid handle, also every held context: a check never hides a leak because its root went
    /// away first.
    pub fn live_under(&self, root: Handle) -> LiveIter<'_> {
        let under = self
            .locked(|t| t.resolve(root).ok())
            .map_or(NONE, |(i, _)| i);
        LiveIter {
            arena: self,
            now: self.now(),
            under,
            last: None,
        }
    }

    /// A `Display`able report of the contexts still held, oldest first.
    ///
    /// ```
    /// use stopwire::Arena;
    /// static ARENA: Arena<4> = Arena::new();
    /// let job = ARENA.background().with_timeout(1_000_000).unwrap();
    /// let text = ARENA.report().to_string();
    /// assert!(text.contains("1 of 4 slots in use"));
    /// assert!(text.contains(&format!("{}:{}", file!(), line!() - 3)));
    /// # drop(job);
    /// ```
    pub fn report(&self) -> Report<'_> {
        Report { arena: self }
    }

    /// The leak check: `Ok(())` when everything under `root` (see [`ArenaView::live_under`]) has
    /// been released, else the [`Leaks`] with their creation sites. With feature `log`, each
    /// leak is logged as a warning.
    ///
    /// ```
    /// use stopwire::Arena;
    /// static ARENA: Arena<4> = Arena::new();
    /// let job = ARENA.background().with_cancel().unwrap();
    /// let step = job.with_cancel().unwrap().into_handle(); // forgotten: a leak
    /// let leaks = ARENA.check_released(job.handle()).unwrap_err();
    /// assert_eq!(leaks.count(), 1);
    /// assert_eq!(leaks.iter().next().unwrap().site.unwrap().line(), line!() - 3);
    /// ARENA.release(step).unwrap();
    /// assert!(job.check_released().is_ok());
    /// ```
    #[allow(
        clippy::result_large_err,
        reason = "no heap: the leaks come back by value, on the failure path only"
    )]
    pub fn check_released(&self, root: Handle) -> Result<(), Leaks> {
        let mut leaks = Leaks {
            count: 0,
            kept: [None; LEAKS_KEPT],
        };
        for live in self.live_under(root) {
            if let Some(k) = leaks.kept.get_mut(leaks.count) {
                *k = Some(live);
            }
            leaks.count += 1;
            #[cfg(feature = "log")]
            log::warn!("stopwire: leak: {live}");
            #[cfg(feature = "defmt")]
            {
                let (file, line) = live.site.map_or(("?", 0), |s| (s.file(), s.line()));
                defmt::warn!(
                    "stopwire: leak: slot {=usize} ({=str}) created at {=str}:{=u32}",
                    live.slot,
                    live.kind.as_str(),
                    file,
                    line
                );
            }
        }
        if leaks.count == 0 {
            Ok(())
        } else {
            Err(leaks)
        }
    }
}

#[cfg(feature = "diagnostics")]
impl Ctx<'_> {
    /// The leak check for this context's subtree: `Ok(())` when every context created under it
    /// has been released (SPEC A4), else where the remaining ones were created. See
    /// [`ArenaView::check_released`].
    #[allow(
        clippy::result_large_err,
        reason = "no heap: the leaks come back by value, on the failure path only"
    )]
    pub fn check_released(&self) -> Result<(), Leaks> {
        self.arena().check_released(self.handle())
    }
}
