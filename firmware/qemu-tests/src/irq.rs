//! SPEC T1 and C10 on a single core: the SysTick interrupt cancels contexts (and creates and
//! releases one of its own) while thread mode creates, checks and releases children in a loop.
//!
//! Thread mode publishes a parent's handle for the handler, builds children under it, then
//! withdraws the handle. On one core the handler runs to completion before thread mode resumes,
//! so once the handle is withdrawn the parent's fate is final, and exactly one of two things
//! holds: the parent is done, and then every child (whenever it was created) is done and the
//! callback ran once; or it is not, and nothing below it is done and the callback can still be
//! stopped. Anything else is a lost cancellation.

use core::cell::Cell;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use stopwire::{Arena, Error, Handle, ManualClock};

use crate::rules::Counter;
use crate::{check, check_eq, Test};

pub(crate) static TESTS: &[Test] = &[(
    "c10_t1_systick_cancels_while_thread_mode_creates_checks_and_releases",
    c10_t1,
)];

static CLOCK: ManualClock = ManualClock::new(0);
static ARENA: Arena<24> = Arena::with_clock(&CLOCK);
/// The parent the handler may cancel, or `Handle::DEAD` when none is published.
static TARGET: Mutex<Cell<Handle>> = Mutex::new(Cell::new(Handle::DEAD));
static TICKS: Counter = Counter::new();
static ISR_CANCELS: Counter = Counter::new();
static ISR_CREATED: Counter = Counter::new();
static CALLBACKS: Counter = Counter::new();

fn on_done(_: usize) {
    CALLBACKS.add(1);
}

#[exception]
fn SysTick() {
    TICKS.add(1);
    let target = critical_section::with(|cs| TARGET.borrow(cs).get());
    // Every other tick, so that some rounds are canceled and some are not.
    if target != Handle::DEAD && TICKS.get() & 1 == 0 && ARENA.cancel(target, 0) == Ok(true) {
        ISR_CANCELS.add(1);
    }
    // Creation and release from the handler too (T1).
    if let Ok(h) = ARENA.with_cancel(Handle::BACKGROUND) {
        ISR_CREATED.add(1);
        let _ = ARENA.release(h);
    }
}

fn publish(h: Handle) {
    critical_section::with(|cs| TARGET.borrow(cs).set(h));
}

fn c10_t1() -> Result<(), &'static str> {
    const ROUNDS: u32 = 3_000;
    let base = ARENA.stats().in_use;
    let mut core = cortex_m::Peripherals::take().ok_or("peripherals taken")?;
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(1_500);
    core.SYST.clear_current();
    core.SYST.enable_interrupt();
    core.SYST.enable_counter();

    let mut seen_done = 0u32;
    let mut seen_live = 0u32;
    CALLBACKS.take();
    for round in 0..ROUNDS {
        let parent = ARENA
            .background()
            .with_cancel()
            .map_err(|_| "create parent")?;
        publish(parent.handle());
        // Children created before, during and maybe after the handler's cancel.
        let a = parent.with_cancel().map_err(|_| "create a")?;
        let b = a.with_timeout(u64::MAX).map_err(|_| "create b")?;
        let reg = b.after_func(on_done, 0).map_err(|_| "register")?;
        let c = parent.with_value(core::num::NonZeroUsize::MIN, round as usize);
        let c = c.map_err(|_| "create c")?;
        let d = c.with_cancel().map_err(|_| "create d")?;
        for _ in 0..(round % 7) * 20 {
            cortex_m::asm::nop();
        }
        publish(Handle::DEAD);

        let ran_before = CALLBACKS.get();
        if parent.is_done() {
            seen_done += 1;
            for x in [&a, &b, &d] {
                check_eq!(x.err(), Err(Error::Canceled));
            }
            check!(c.is_done());
            check_eq!(ran_before, seen_done);
            check!(!reg.stop());
        } else {
            seen_live += 1;
            for x in [&a, &b, &c, &d] {
                check_eq!(x.err(), Ok(()));
            }
            check!(reg.stop());
        }
        drop((reg, d, c, b, a, parent));
        check_eq!(CALLBACKS.get(), seen_done);
    }
    core.SYST.disable_interrupt();
    core.SYST.disable_counter();

    semihosting::println!(
        "    {} rounds: {} canceled by the interrupt, {} not; {} ticks, {} children made in the handler",
        ROUNDS,
        seen_done,
        seen_live,
        TICKS.get(),
        ISR_CREATED.get()
    );
    check_eq!(seen_done, ISR_CANCELS.get());
    check!(seen_done > 0);
    check!(seen_live > 0);
    check_eq!(ARENA.stats().in_use, base);
    Ok(())
}
