//! An embassy-time driver on the Cortex-M SysTick: a 1 kHz tick (`tick-hz-1_000`), a 64-bit tick
//! count kept in a critical section, and embassy's timer queue, expired from the SysTick handler.
//!
//! The tick is periodic, so the core wakes once a millisecond; the executor polls a task only
//! when its timer (or another waker) fires. A tickless driver would program a one-shot alarm at
//! the queue's next expiration instead.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// QEMU's lm3s6965evb runs the core at 12 MHz.
const CORE_HZ: u32 = 12_000_000;

struct SysTickDriver {
    ticks: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            queue.schedule_wake(at, waker);
            // Wakes at once whatever is already due (`at` may lie in the past).
            queue.next_expiration(self.ticks.borrow(cs).get());
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// Starts the 1 kHz tick.
pub(crate) fn start() {
    // SAFETY: the demo owns SysTick; nothing else configures it.
    let mut syst = unsafe { cortex_m::Peripherals::steal() }.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / 1_000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = DRIVER.ticks.borrow(cs);
        let now = ticks.get() + 1;
        ticks.set(now);
        DRIVER.queue.borrow_ref_mut(cs).next_expiration(now);
    });
}
