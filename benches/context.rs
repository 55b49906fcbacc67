//! Criterion benchmarks (filled by the benchmark issue).
fn main() {}
