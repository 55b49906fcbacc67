//! Waiting for contexts, the other half of Go's contract (SPEC N): the host deadline driver and
//! blocking waits (feature `std`), futures on any executor (feature `async`), and the embassy
//! deadline driver (feature `embassy`). All of it is built on the engine's waiter lists
//! ([`crate::engine::waiter`]) and deadline driver hook ([`crate::engine::deadline`]).

#[cfg(all(feature = "std", not(loom)))]
pub(crate) mod blocking;
#[cfg(all(feature = "std", not(loom)))]
pub(crate) mod driver;
#[cfg(feature = "async")]
pub(crate) mod future;
