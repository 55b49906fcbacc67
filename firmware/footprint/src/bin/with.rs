//! Uses with_cancel, with_timeout, with_value, cancel, is-done, value and release (drop), with
//! inputs and outputs the optimiser cannot see through.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::num::NonZeroUsize;

use stopwire::{Arena, FnClock};
use stopwire_footprint::{entry, tick};

static CLOCK: FnClock = FnClock(tick);
static ARENA: Arena<16> = Arena::with_clock(&CLOCK);

#[entry]
fn main() -> ! {
    let key = NonZeroUsize::MIN;
    loop {
        let bg = black_box(ARENA.background());
        if let Ok(req) = bg.with_cancel() {
            if let Ok(step) = req.with_timeout(black_box(100)) {
                if let Ok(tagged) = step.with_value(key, black_box(7)) {
                    black_box(tagged.is_done());
                    let _ = black_box(tagged.value(key));
                    if black_box(true) {
                        black_box(req.cancel());
                    }
                    black_box(tagged.is_done());
                }
            }
        }
        black_box(black_box(1u32) + black_box(2u32));
    }
}
