//! The engine: slots, the lock, the tree and its walks in bounded steps, lock-free checks,
//! deadlines, callback dispatch, waiter lists. It imports nothing of the layers built on it
//! (waiting, faces, diagnostics, C API): only the ground modules `clock` and `error`.

pub(crate) mod arena;
pub(crate) mod audit;
pub(crate) mod callback;
pub(crate) mod deadline;
pub(crate) mod handle;
pub(crate) mod lock;
pub(crate) mod query;
pub(crate) mod run;
pub(crate) mod site;
pub(crate) mod slot;
pub(crate) mod sync;
pub(crate) mod tree;
pub(crate) mod waiter;
pub(crate) mod walk;
