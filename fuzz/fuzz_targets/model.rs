//! libFuzzer target: the differential model check of `tests/model.rs` on bytes from the fuzzer.
//! Every byte string decodes to a valid sequence of operations (`driver::decode`); the run panics
//! (a finding) on the first answer where the engine and the reference model of docs/spec.md differ.
#![no_main]

#[allow(
    dead_code,
    reason = "shared with tests/model.rs, which uses other parts"
)]
#[path = "../../tests/model/driver.rs"]
mod driver;
#[allow(
    dead_code,
    reason = "shared with tests/model.rs, which uses other parts"
)]
#[path = "../../tests/model/reference.rs"]
mod reference;

mod progress;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let case = driver::decode(data);
    match driver::run(&case) {
        Ok(ops) => progress::add("model", ops),
        Err(e) => panic!("engine and model diverge: {e}\n{case:#?}"),
    }
});
