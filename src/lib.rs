//! # stopwire
//!
//! Go's `context` for places Go cannot go: a tree of contexts where canceling a node stops its
//! whole subtree, where deadlines and request-scoped values flow down, and where work checks a
//! signal and bails out — on a fixed-capacity arena with atomic flags: no heap, no threads
//! required, safe from interrupt handlers, the same code on a Cortex-M0 and on a desktop, with a C
//! API for firmware and foreign code.
//!
//! ```
//! use stopwire::{Arena, Error};
//!
//! static ARENA: Arena<64> = Arena::new();
//!
//! // A worker that listens: it checks its context between units of work.
//! fn worker(ctx: stopwire::Ctx<'_>) -> Error {
//!     loop {
//!         if let Err(why) = ctx.err() {
//!             return why;
//!         }
//!         // ... one unit of work ...
//!         # break Error::Canceled;
//!     }
//! }
//!
//! let ctx = ARENA.background().with_cancel()?; // Go: ctx, cancel := WithCancel(Background())
//! ctx.cancel();                                  // Go: cancel()
//! assert_eq!(worker(*ctx), Error::Canceled);
//! // Dropping `ctx` releases its slot: Go's `defer cancel()`, made automatic.
//! # Ok::<(), Error>(())
//! ```
//!
//! ## Main types
//!
//! - [`Arena`]: `N` slots, `const`-constructible as a `static`; [`ArenaView`] is the same arena
//!   with the capacity erased and carries every operation on raw [`Handle`]s (the engine).
//! - [`Ctx`]: a `Copy` view of a context to pass down call chains; [`OwnedCtx`]: the owner,
//!   which cancels, and releases on drop; [`AfterFunc`]: a callback registration.
//! - [`Error`]: why a context is done, or why a call was refused.
//! - `Group` (feature `std`): threads with a child context each, waited for together, canceled
//!   on the first error (Go's errgroup); [`TaskGroup`]: the same for async tasks, no heap.
//! - [`Clock`]: the tick source ([`StdClock`], [`ManualClock`], [`FnClock`], [`NoClock`]).
//!
//! ## Features
//!
//! - `std` (default): [`StdClock`] as the default clock, a per-arena spin-then-sleep lock instead
//!   of a critical section, the host deadline driver (deadlines fire by themselves for arenas in a
//!   `static`) and blocking waits (`Ctx::wait`, `wait_timeout`, `sleep`). Without it the crate is
//!   `#![no_std]` with no allocator, and the firmware provides a `critical-section`
//!   implementation (on a multi-core chip, one that also excludes the other cores).
//! - `async`: `Ctx::done()` is a future that completes once the context is done, and
//!   `Ctx::run_until_done(fut)` drops `fut` when it is; any executor, no timer crate.
//! - `embassy`: `async` plus `EmbassyClock` (embassy-time ticks) and `ArenaView::embassy_driver`,
//!   the one task that expires deadlines on firmware.
//! - `defmt`: `defmt::Format` for [`Error`], [`Handle`] and [`Stats`].
//! - `diagnostics` (default): every context records the line that created it and its
//!   creation tick; `ArenaView::live`, `report` and `check_released` list what is still held
//!   and where it came from (the leak report). Three fields more per slot.
//! - `log`: a refused creation (arena full) and each leak found by `check_released` are logged
//!   through the `log` crate.
//!
//! ## Where the design is written
//!
//! The concurrency design sits at the top of the module that relies on it, in `src/engine/`: the
//! invariants and critical sections in `arena`, the state word in `slot`, the lock in `lock`,
//! bounded locked steps in `run`, the cancel walk in `walk`, creation and reclamation in `tree`,
//! the lock-free checks in `query`, deadlines and the driver hook in `deadline`, callbacks in
//! `callback`, waiter lists in `waiter`; the host driver, blocking waits and futures in
//! `src/wait/`. The behaviour contract is `docs/spec.md` in the repository (rule ids such as
//! "SPEC C2" name its paragraphs); tests in `tests/` are named by its rule ids.
#![no_std]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "std", test))]
extern crate std;

mod clock;
mod context;
mod diagnostics;
mod engine;
mod error;
mod group;
mod grpc_timeout;
mod wait;

#[cfg(feature = "std")]
pub use clock::StdClock;
pub use clock::{advanced, Clock, FnClock, ManualClock, NoClock};
pub use context::{AfterFunc, Ctx, OwnedCtx};
#[cfg(feature = "diagnostics")]
pub use diagnostics::{CreationSite, Leaks, Live, LiveIter, LiveKind, Report, LEAKS_KEPT};
pub use engine::arena::{Arena, ArenaInner, ArenaView, Stats};
pub use engine::audit::AuditError;
pub use engine::callback::Callback;
pub use engine::handle::Handle;
pub use engine::site::{ArenaAt, ForeignSite};
pub use engine::slot::Slot;
pub use error::Error;
#[cfg(feature = "std")]
pub use group::Group;
#[cfg(not(loom))]
pub use group::{Member, TaskGroup, Wait};
pub use grpc_timeout::{GrpcTimeout, GrpcTimeoutError, TimeoutUnit};
#[cfg(all(feature = "embassy", not(loom)))]
pub use wait::future::EmbassyClock;
#[cfg(feature = "async")]
pub use wait::future::{Done, UntilDone};
