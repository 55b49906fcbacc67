//! Waiting for contexts: futures (feature `async`).

#[cfg(all(feature = "async", not(loom)))]
pub(crate) mod future;
