//! The baseline: the same runtime and main loop as `with`, without stopwire.
#![no_std]
#![no_main]

use core::hint::black_box;

use stopwire_footprint::{entry, tick};

#[entry]
fn main() -> ! {
    loop {
        black_box(tick());
        black_box(black_box(1u32) + black_box(2u32));
    }
}
