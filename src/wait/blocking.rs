//! Blocking waits for threads (feature `std`): `wait`, `wait_timeout`, `sleep` (SPEC N2).
//!
//! The waiting thread links a [`WaiterNode`] from its own stack frame into the context's waiter
//! list and parks; whatever makes the context done (a cancel from any thread, a callback, an
//! ancestor, release, the deadline driver) takes the node out under the lock and unparks the
//! thread after it (N-I2 of [`crate::engine::waiter`]). No heap, no polling. On an arena no driver
//! serves, a thread waiting on a context with a deadline drives that deadline itself: it sleeps
//! until then (real-time clocks) or until the clock moves (virtual clocks, [`crate::clock::advanced`]),
//! and runs [`ArenaView::expire`].
//!
//! A waiter that returns — done, timed out, or unwinding — takes its node out first (a guard's
//! `Drop`), so nothing the engine can touch is left behind (SPEC N5).

use core::pin::Pin;
use core::time::Duration;
use std::time::Instant;

use crate::context::Ctx;
use crate::engine::arena::{ArenaView, DRIVEN_NONE};
use crate::engine::handle::Handle;
use crate::engine::sync::Ordering::Relaxed;
use crate::engine::waiter::{WaiterNode, Want};
use crate::error::Error;
use crate::wait::driver::{real_duration, VirtualSleep};

/// Removes the node when the wait ends, however it ends.
struct Linked<'a> {
    arena: &'a ArenaView,
    node: Pin<&'a WaiterNode>,
}

impl Drop for Linked<'_> {
    fn drop(&mut self) {
        self.arena.wait_remove(self.node);
    }
}

impl ArenaView {
    /// Blocks until `h` is done; returns why (SPEC N2). `Stale` for a stale handle. Waiting on a
    /// root blocks forever (it is never done). Raw-handle form of [`Ctx::wait`].
    pub fn wait(&self, h: Handle) -> Error {
        loop {
            if let Some(e) = self.wait_until(h, None) {
                return e;
            }
        }
    }

    /// Blocks until `h` is done or `timeout` has passed: `Some(why)` when done, `None` when the
    /// time ran out first (SPEC N2, N5). Raw-handle form of [`Ctx::wait_timeout`].
    pub fn wait_timeout(&self, h: Handle, timeout: Duration) -> Option<Error> {
        let until = Instant::now().checked_add(timeout);
        self.wait_until(h, until)
    }

    fn wait_until(&self, h: Handle, until: Option<Instant>) -> Option<Error> {
        let node = core::pin::pin!(WaiterNode::new());
        let node = node.into_ref();
        let _linked = Linked { arena: self, node };
        let mut virtual_sleep = None;
        loop {
            if let Some(e) = self.wait_poll(h, node, Want::Thread) {
                self.settle_seen(e);
                return Some(e);
            }
            // Drive the context's own deadline if no driver does.
            let own = if self.header.driven.load(Relaxed) == DRIVEN_NONE {
                self.deadline(h).ok().flatten()
            } else {
                None
            };
            let mut nap = until.map(|u| u.saturating_duration_since(Instant::now()));
            if let Some(d) = own {
                let left = d.saturating_sub(self.now());
                match real_duration(self, left) {
                    Some(x) => nap = Some(nap.map_or(x, |n| n.min(x))),
                    None => {
                        virtual_sleep.get_or_insert_with(VirtualSleep::new);
                    }
                }
            }
            match nap {
                Some(x) => std::thread::park_timeout(x),
                None => std::thread::park(),
            }
            if own.is_some_and(|d| self.now() >= d) {
                self.expire(self.now());
            }
            if until.is_some_and(|u| Instant::now() >= u) {
                return self.err(h).err();
            }
        }
    }

    /// A wait that found `DeadlineExceeded` on an arena no driver serves acts as the driver, so
    /// that the callbacks this expiry makes due run now (SPEC D5, F3).
    pub(crate) fn settle_seen(&self, why: Error) {
        if why == Error::DeadlineExceeded && self.header.driven.load(Relaxed) == DRIVEN_NONE {
            self.expire(self.now());
        }
    }
}

impl Ctx<'_> {
    /// Blocks the calling thread until this context is done, and returns why: Go's
    /// `<-ctx.Done()` followed by `ctx.Err()` (SPEC N2). Any number of threads may wait on one
    /// context; they are woken by a cancel from any thread, an ancestor's cancel, the deadline
    /// (the host driver, or this thread on an arena no driver serves), or the owner's release.
    ///
    /// ```
    /// use stopwire::{Arena, Error};
    /// static ARENA: Arena<8> = Arena::new();
    /// let job = ARENA.background().with_cancel().unwrap();
    /// let view = *job;
    /// std::thread::scope(|s| {
    ///     s.spawn(move || assert_eq!(view.wait(), Error::Canceled));
    ///     job.cancel();
    /// });
    /// ```
    pub fn wait(&self) -> Error {
        self.arena().wait(self.handle())
    }

    /// As [`Ctx::wait`], giving up after `timeout`: `Some(why)` once done, `None` when the time
    /// ran out first. A waiter that gives up leaves nothing behind (SPEC N5).
    ///
    /// ```
    /// use std::time::Duration;
    /// use stopwire::Arena;
    /// static ARENA: Arena<8> = Arena::new();
    /// let job = ARENA.background().with_cancel().unwrap();
    /// assert_eq!(job.wait_timeout(Duration::from_millis(1)), None);
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Error> {
        self.arena().wait_timeout(self.handle(), timeout)
    }

    /// Sleeps for `d` unless this context is done first: `Ok(())` after `d`, `Err(why)` as soon
    /// as it is done. The seed's `select { case <-ctx.Done(): ...; case <-time.After(d): ... }`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stopwire::{Arena, Error};
    /// static ARENA: Arena<8> = Arena::new();
    /// let job = ARENA.background().with_cancel().unwrap();
    /// assert_eq!(job.sleep(Duration::from_millis(1)), Ok(()));
    /// job.cancel();
    /// assert_eq!(job.sleep(Duration::from_secs(3600)), Err(Error::Canceled));
    /// ```
    pub fn sleep(&self, d: Duration) -> Result<(), Error> {
        match self.wait_timeout(d) {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }
}
