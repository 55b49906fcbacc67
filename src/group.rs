//! Waiting for work: a [`Group`] of threads, each with its own child context, canceled together on
//! the first error (feature `std`).
//!
//! The seed's last "when to use" line: "use sync.WaitGroup to wait for goroutines to finish, but
//! always combine it with context to avoid leaks". Go's `errgroup.WithContext` is that
//! combination; this is the same on scoped threads:
//!
//! - [`Ctx::group`] creates the group's context, a cancelable child of the parent, and runs a
//!   closure that spawns units of work with [`Group::spawn`];
//! - each unit gets a child context of the group's, released when the unit returns;
//! - the first unit to return `Err` (or to panic) cancels the group's context, and so every other
//!   unit's; its error is what [`Ctx::group`] returns, and the group's cause is its number
//!   (spawn order, from 1);
//! - [`Ctx::group`] returns only when every unit has finished (the scope joins them), and it
//!   releases the group's context last: no slot outlives the group.
//!
//! Units must still listen: a unit that never checks its context keeps the group waiting, exactly
//! as in Go.

use core::num::NonZeroU32;
// A plain counter outside the engine: not part of the loom-modelled state (`crate::sync`).
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::context::{Ctx, OwnedCtx};
use crate::error::Error;

/// A group of units of work on scoped threads, made by [`Ctx::group`].
///
/// ```
/// use stopwire::{Arena, Error};
/// static ARENA: Arena<8> = Arena::new();
///
/// let result = ARENA.background().group(|g| {
///     g.spawn(|ctx| {
///         // Waits until the group is canceled by the failing unit.
///         while !ctx.is_done() {
///             std::thread::yield_now();
///         }
///         ctx.err()
///     });
///     g.spawn(|_ctx| Err(Error::DeadlineExceeded)); // fails first: the group's error
/// });
/// assert_eq!(result, Err(Error::DeadlineExceeded));
/// assert_eq!(ARENA.stats().in_use, 0); // every context released
/// ```
pub struct Group<'scope, 'env, 'a, E> {
    scope: &'scope thread::Scope<'scope, 'env>,
    shared: Arc<Shared<'a, E>>,
}

/// What the group and its units share; the last owner (the group, after the scope has joined
/// every unit) releases the group's context.
struct Shared<'a, E> {
    owner: OwnedCtx<'a>,
    first: Mutex<Option<E>>,
    units: AtomicUsize,
}

impl<E> Shared<'_, E> {
    /// Records `error` if it is the first, then cancels the group with cause `unit`.
    fn fail(&self, unit: usize, error: E) {
        {
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                *first = Some(error);
            }
        }
        self.owner.cancel_with_cause(unit_cause(unit));
    }
}

/// The group's cause for a failure of unit `unit` (from 1).
fn unit_cause(unit: usize) -> NonZeroU32 {
    u32::try_from(unit)
        .ok()
        .and_then(NonZeroU32::new)
        .unwrap_or(NonZeroU32::MAX)
}

impl<E> core::fmt::Debug for Group<'_, '_, '_, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Group")
            .field("ctx", &self.shared.owner.ctx())
            .field("units", &self.shared.units.load(Ordering::Relaxed))
            .finish()
    }
}

/// Cancels the group if the unit's thread unwinds, so that the others stop and the scope can join
/// them before the panic propagates.
struct CancelOnUnwind<'o, 'a>(&'o OwnedCtx<'a>, usize);

impl Drop for CancelOnUnwind<'_, '_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.cancel_with_cause(unit_cause(self.1));
        }
    }
}

impl<'scope, 'a: 'scope, E> Group<'scope, '_, 'a, E>
where
    E: From<Error> + Send + 'scope,
{
    /// Starts a unit of work on a new scoped thread, with its own child of the group's context.
    ///
    /// The unit returns `Ok(())` when done (including when it stopped because its context was
    /// canceled, if that is not a failure for it) or `Err` to fail the group: the first `Err`
    /// cancels every other unit. If the arena has no slot for the unit's context, the unit does
    /// not run and the group fails with `E::from(Error::Full)`.
    pub fn spawn<F>(&self, unit: F)
    where
        F: FnOnce(Ctx<'a>) -> Result<(), E> + Send + 'scope,
    {
        let n = self.shared.units.fetch_add(1, Ordering::Relaxed) + 1;
        let child = match self.shared.owner.ctx().with_cancel() {
            Ok(child) => child,
            Err(e) => return self.shared.fail(n, E::from(e)),
        };
        let shared = Arc::clone(&self.shared);
        self.scope.spawn(move || {
            let _unwind = CancelOnUnwind(&shared.owner, n);
            let result = unit(*child);
            drop(child);
            if let Err(e) = result {
                shared.fail(n, e);
            }
        });
    }
}

impl<'a, E> Group<'_, '_, 'a, E> {
    /// The group's context: the parent of every unit's context.
    pub fn ctx(&self) -> Ctx<'a> {
        self.shared.owner.ctx()
    }

    /// Cancels the group's context, and so every unit's, without failing the group.
    pub fn cancel(&self) -> bool {
        self.shared.owner.cancel()
    }

    /// Units spawned so far.
    pub fn units(&self) -> usize {
        self.shared.units.load(Ordering::Relaxed)
    }
}

impl<'a> Ctx<'a> {
    /// Runs `f` with a [`Group`] whose context is a new cancelable child of this one, then waits
    /// for every unit `f` spawned (Go's `errgroup.WithContext` + `Wait`, on scoped threads).
    ///
    /// Returns `f`'s result when no unit failed, else the first unit error; `E::from(error)` if
    /// the group's own context cannot be created (e.g. [`Error::Full`]). The group's context is
    /// released after the last unit has returned.
    pub fn group<'env, E, R>(
        &self,
        f: impl for<'scope> FnOnce(&Group<'scope, 'env, 'a, E>) -> R,
    ) -> Result<R, E>
    where
        E: From<Error> + Send + 'env,
        'a: 'env,
    {
        let shared = Arc::new(Shared {
            owner: self.with_cancel().map_err(E::from)?,
            first: Mutex::new(None),
            units: AtomicUsize::new(0),
        });
        let group_shared = Arc::clone(&shared);
        let r = thread::scope(move |scope| {
            f(&Group {
                scope,
                shared: group_shared,
            })
        });
        // Every unit has been joined: their clones are gone, and this drop releases the group's
        // context (the failure, if any, is taken first).
        let first = shared
            .first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(shared);
        match first {
            Some(e) => Err(e),
            None => Ok(r),
        }
    }
}
