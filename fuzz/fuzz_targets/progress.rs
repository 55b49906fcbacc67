//! Operation counts of a fuzzing run, printed now and then (libFuzzer reports inputs, not the
//! operations inside them): the line `<target>-fuzz: N inputs, M operations, 0 divergences`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static INPUTS: AtomicU64 = AtomicU64::new(0);
static OPS: AtomicU64 = AtomicU64::new(0);

/// Counts one input of `ops` operations; prints the totals at every power of two inputs and every
/// 1 000 inputs after that.
pub(crate) fn add(target: &str, ops: u64) {
    let n = INPUTS.fetch_add(1, Relaxed) + 1;
    let total = OPS.fetch_add(ops, Relaxed) + ops;
    if n.is_power_of_two() || n % 1_000 == 0 {
        eprintln!("{target}-fuzz: {n} inputs, {total} operations, 0 divergences");
    }
}
