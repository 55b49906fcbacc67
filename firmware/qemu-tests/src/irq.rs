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

pub(crate) static TESTS: &[Test] = &[
    (
        "c10_t1_systick_cancels_while_thread_mode_creates_checks_and_releases",
        c10_t1,
    ),
    (
        "c2_c10_t3_a_stepped_cancel_of_a_large_tree_with_the_interrupt_inside_it",
        c2_c10_t3,
    ),
];

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
    if critical_section::with(|cs| BIG_ON.borrow(cs).get()) {
        big_tick();
        return;
    }
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

// ---- a stepped cancel walk with the interrupt inside its subtree (SPEC C2, C10, T3) ----------

/// Children of the big tree's root.
const KIDS: usize = 60;
/// Children the handler creates under the tree (kept for thread mode to check and release).
const ISR_MADE: usize = 40;
static BIG: Arena<{ KIDS + ISR_MADE + 8 }> = Arena::with_clock(&CLOCK);
static BIG_ON: Mutex<Cell<bool>> = Mutex::new(Cell::new(false));
static BIG_KIDS: Mutex<Cell<[Handle; KIDS]>> = Mutex::new(Cell::new([Handle::DEAD; KIDS]));
static BIG_MADE: Mutex<Cell<[Handle; ISR_MADE]>> = Mutex::new(Cell::new([Handle::DEAD; ISR_MADE]));
static BIG_TICKS: Counter = Counter::new();
static BIG_CANCELS: Counter = Counter::new();
static BIG_RELEASES: Counter = Counter::new();

/// The handler's part: at every tick, one of: create a child under a child of the tree, cancel a
/// child, release a child it created (the walk may be paused anywhere in that subtree).
fn big_tick() {
    let n = BIG_TICKS.get();
    BIG_TICKS.add(1);
    let kids = critical_section::with(|cs| BIG_KIDS.borrow(cs).get());
    let k = kids[(n as usize * 7) % KIDS];
    match n % 3 {
        0 => {
            if let Ok(h) = BIG.with_cancel(k) {
                critical_section::with(|cs| {
                    let cell = BIG_MADE.borrow(cs);
                    let mut made = cell.get();
                    match made.iter().position(|m| *m == Handle::DEAD) {
                        Some(free) => {
                            made[free] = h;
                            cell.set(made);
                        }
                        None => {
                            let _ = BIG.release(h);
                        }
                    }
                });
            }
        }
        1 => {
            if BIG.cancel(k, 9) == Ok(true) {
                BIG_CANCELS.add(1);
            }
        }
        _ => {
            let taken = critical_section::with(|cs| {
                let cell = BIG_MADE.borrow(cs);
                let mut made = cell.get();
                let at = made.iter().position(|m| *m != Handle::DEAD)?;
                let h = made[at];
                made[at] = Handle::DEAD;
                cell.set(made);
                Some(h)
            });
            if let Some(h) = taken {
                if BIG.release(h).is_ok() {
                    BIG_RELEASES.add(1);
                }
            }
        }
    }
}

fn c2_c10_t3() -> Result<(), &'static str> {
    const ROUNDS: u32 = 40;
    let base = BIG.stats().in_use;
    // SAFETY: thread mode only; the first test configured SysTick and gave the peripherals back
    // to nobody else: steal them to set a shorter period (no other code touches SYST now).
    let mut core = unsafe { cortex_m::Peripherals::steal() };
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(400); // a tick every few locked steps
    core.SYST.clear_current();
    for _ in 0..ROUNDS {
        let root = BIG.background().with_cancel().map_err(|_| "create root")?;
        let mut kids = [Handle::DEAD; KIDS];
        for k in kids.iter_mut() {
            *k = BIG.with_cancel(root.handle()).map_err(|_| "create kid")?;
        }
        critical_section::with(|cs| BIG_KIDS.borrow(cs).set(kids));
        critical_section::with(|cs| BIG_ON.borrow(cs).set(true));
        core.SYST.enable_interrupt();
        core.SYST.enable_counter();
        // Let the handler work on the live tree a little, then cancel it in steps.
        for _ in 0..2_000 {
            cortex_m::asm::nop();
        }
        check!(root.cancel());
        // C2 at return: every child and everything the handler made under them is done.
        let made = critical_section::with(|cs| BIG_MADE.borrow(cs).get());
        for k in kids {
            check!(BIG.is_done(k));
        }
        for m in made.iter().filter(|m| **m != Handle::DEAD) {
            check!(BIG.is_done(*m));
        }
        core.SYST.disable_interrupt();
        core.SYST.disable_counter();
        critical_section::with(|cs| BIG_ON.borrow(cs).set(false));
        let made =
            critical_section::with(|cs| BIG_MADE.borrow(cs).replace([Handle::DEAD; ISR_MADE]));
        for m in made.iter().filter(|m| **m != Handle::DEAD) {
            check_eq!(BIG.release(*m), Ok(()));
        }
        for k in kids {
            check_eq!(BIG.release(k), Ok(()));
        }
        drop(root);
        check_eq!(BIG.stats().in_use, base);
        check_eq!(BIG.audit().map_err(|e| e.what), Ok(()));
    }
    semihosting::println!(
        "    {} rounds of a {}-node cancel: {} handler ticks, {} cancels and {} releases inside it",
        ROUNDS,
        KIDS + 1,
        BIG_TICKS.get(),
        BIG_CANCELS.get(),
        BIG_RELEASES.get()
    );
    check!(BIG_TICKS.get() > ROUNDS);
    Ok(())
}
