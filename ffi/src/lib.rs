//! The C API of stopwire (filled by the C API issue).
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]
