//! The engine: slots, the lock, the tree and its walks, lock-free checks, deadlines, callback
//! dispatch. It imports nothing of the layers built on it (waiting, faces, diagnostics, C API).

pub(crate) mod arena;
pub(crate) mod audit;
pub(crate) mod callback;
pub(crate) mod deadline;
pub(crate) mod handle;
pub(crate) mod lock;
pub(crate) mod query;
pub(crate) mod slot;
pub(crate) mod sync;
pub(crate) mod tree;
