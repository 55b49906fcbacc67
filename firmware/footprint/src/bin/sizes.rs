//! Prints what one context costs in RAM on this target, through semihosting, and exits.
#![no_std]
#![no_main]

use core::mem::size_of;

use stopwire::{Arena, Slot};
use stopwire_footprint::entry;

#[entry]
fn main() -> ! {
    // One slot per context, and nothing else that grows with the number of contexts: the
    // difference between two arenas divided by the difference in capacity.
    let per_context = (size_of::<Arena<65>>() - size_of::<Arena<1>>()) / 64;
    semihosting::println!(
        "node_bytes={} ram_bytes_per_context={}",
        size_of::<Slot>(),
        per_context
    );
    semihosting::process::exit(0)
}
