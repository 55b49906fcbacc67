//! Hart 1: works on hart 0's subtrees while a round is open, checks what it made once hart 0
//! closes the round (hart 0 closes it after its cancel returned), releases it all and
//! acknowledges. Its machine-timer interrupt cancels `Shared::isr_target` and creates and
//! releases a child of `Shared::targets[0]`.

use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use riscv::interrupt::Interrupt;
use stopwire::{Error, Handle};

use crate::{
    mtime, set_mtimecmp, shared, violation, ACK, ARENA, GO, MODE, MODE_HAMMER, MODE_RACE,
    MODE_STOP, MODE_WATCH, OPS, RACE_RESULT, ROUND,
};

/// Timer interrupts every 20 µs of virtual time.
const PERIOD: u64 = 200;

/// Written by hart 1's interrupt only.
pub(crate) static TICKS: AtomicU32 = AtomicU32::new(0);
pub(crate) static ISR_CANCELS: AtomicU32 = AtomicU32::new(0);
pub(crate) static ISR_CREATED: AtomicU32 = AtomicU32::new(0);

/// The cause hart 1's cancels record; the interrupt's.
pub(crate) const HART1_CAUSE: u32 = 0x22;
pub(crate) const ISR_CAUSE: u32 = 0x15;

#[riscv_rt::core_interrupt(Interrupt::MachineTimer)]
fn machine_timer() {
    set_mtimecmp(1, mtime() + PERIOD);
    let ticks = TICKS.load(Relaxed) + 1;
    TICKS.store(ticks, Relaxed);
    let s = shared();
    if s.isr_target != Handle::DEAD
        && ticks.is_multiple_of(2)
        && ARENA.cancel(s.isr_target, ISR_CAUSE) == Ok(true)
    {
        ISR_CANCELS.store(ISR_CANCELS.load(Relaxed) + 1, Relaxed);
    }
    if s.len > 0 {
        let parent = s.targets[0];
        let parent_done = ARENA.err(parent).is_err();
        if let Ok(x) = ARENA.with_cancel(parent) {
            ISR_CREATED.store(ISR_CREATED.load(Relaxed) + 1, Relaxed);
            // C7: under a parent already done, a child is born done.
            if parent_done && ARENA.err(x).is_ok() {
                violation("C7 (interrupt): a child of a done parent was born not done");
            }
            let _ = ARENA.release(x);
        }
    }
}

/// Hart 1's main loop: one round at a time, as hart 0 opens them.
pub(crate) fn run() -> ! {
    set_mtimecmp(1, mtime() + PERIOD);
    // SAFETY: enables the machine-timer interrupt of this hart; its handler above is the only
    // code it runs, and every arena call in it takes the multi-core critical section.
    unsafe {
        riscv::register::mie::set_mtimer();
        riscv::interrupt::enable();
    }
    let mut done = 0;
    loop {
        let r = ROUND.load(Acquire);
        if r.is_multiple_of(2) || r == done {
            // A round hart 0 opened and closed while this hart was elsewhere (its interrupt,
            // the previous round's clean-up) left it nothing to check: acknowledge it.
            if r.is_multiple_of(2) && ACK.load(Relaxed) != r {
                ACK.store(r, Release);
            }
            core::hint::spin_loop();
            continue;
        }
        match MODE.load(Acquire) {
            MODE_HAMMER => hammer(r),
            MODE_RACE => race(r),
            MODE_WATCH => watch(r),
            MODE_STOP => {
                riscv::interrupt::disable();
                // SAFETY: turns this hart's timer interrupt off for good.
                unsafe { riscv::register::mie::clear_mtimer() };
                ACK.store(r + 1, Release);
                loop {
                    riscv::asm::wfi();
                }
            }
            _ => violation("hart 1: unknown mode"),
        }
        done = r;
        while ROUND.load(Acquire) == r {
            core::hint::spin_loop();
        }
        ACK.store(r + 1, Release);
    }
}

fn bump_ops() {
    OPS.store(OPS.load(Relaxed).wrapping_add(1), Relaxed);
}

/// A small pseudo-random sequence (xorshift), so that the mix of operations varies.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

/// Handles hart 1 holds in the current round, with the Err first seen on each.
struct Mine {
    h: [Handle; 16],
    seen: [Result<(), Error>; 16],
    len: usize,
}

impl Mine {
    fn push(&mut self, h: Handle) {
        if self.len == self.h.len() {
            self.remove(0);
        }
        self.h[self.len] = h;
        self.seen[self.len] = Ok(());
        self.len += 1;
    }

    fn remove(&mut self, i: usize) {
        let _ = ARENA.release(self.h[i]);
        self.h.copy_within(i + 1..self.len, i);
        self.seen.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }
}

/// Creates, cancels, releases and checks under hart 0's contexts until the round closes; then
/// every context it holds must be done (C2 at the return of hart 0's cancel, C10 for those it
/// created during the walk), and a new child must be born done (C7).
fn hammer(r: u32) {
    let s = shared();
    let mut rng = Rng(0x9E37_79B9 ^ r);
    let mut mine = Mine {
        h: [Handle::DEAD; 16],
        seen: [Ok(()); 16],
        len: 0,
    };
    while ROUND.load(Acquire) == r {
        let pick = rng.next();
        let parent = if mine.len > 0 && pick & 1 == 0 {
            mine.h[(pick >> 8) as usize % mine.len]
        } else {
            s.targets[(pick >> 8) as usize % s.len]
        };
        match pick % 8 {
            0..=2 => {
                if let Ok(h) = ARENA.with_cancel(parent) {
                    mine.push(h);
                }
            }
            3 => {
                if let Ok(h) = ARENA.with_timeout_cause(parent, 1 << 40, 0) {
                    mine.push(h);
                }
            }
            4 if mine.len > 0 => {
                let _ = ARENA.cancel(mine.h[(pick >> 8) as usize % mine.len], HART1_CAUSE);
            }
            5 if mine.len > 0 => mine.remove((pick >> 8) as usize % mine.len),
            6 => {
                if let Ok(h) = ARENA.with_value(parent, 3, pick as usize) {
                    mine.push(h);
                }
            }
            _ => {}
        }
        // C4: an Err once seen never changes.
        for i in 0..mine.len {
            let e = ARENA.err(mine.h[i]);
            if mine.seen[i].is_err() && e != mine.seen[i] {
                violation("C4 (hart 1): an Err changed after it was seen");
            }
            if e.is_err() {
                mine.seen[i] = e;
            }
        }
        bump_ops();
    }
    // The round is closed: hart 0's cancel of the round's root has returned.
    for i in 0..mine.len {
        if ARENA.err(mine.h[i]) != Err(Error::Canceled) {
            violation("C2/C10 (hart 1): a context under the canceled root is not canceled");
        }
    }
    if let Ok(x) = ARENA.with_cancel(s.targets[0]) {
        if ARENA.err(x) != Err(Error::Canceled) {
            violation("C7 (hart 1): a child of the canceled root was born not done");
        }
        let _ = ARENA.release(x);
    }
    while mine.len > 0 {
        mine.remove(mine.len - 1);
    }
}

/// Waits for hart 0's signal, then cancels the round's root at the same moment as hart 0.
/// (`r` is the value of `ROUND`, `2 * n + 1` for round `n`.)
fn race(r: u32) {
    let s = shared();
    let n = r / 2;
    if crate::wait_for(|| GO.load(Acquire) == n).is_none() {
        violation("hart 1: no go signal");
        return;
    }
    let tag = match ARENA.cancel(s.targets[0], HART1_CAUSE) {
        Ok(true) => 1,
        Ok(false) => 2,
        Err(_) => 3,
    };
    RACE_RESULT.store(n * 4 + tag, Release);
    bump_ops();
}

/// What a check reported first: Err and cause.
type Seen = (Result<(), Error>, Result<Option<NonZeroU32>, Error>);

/// Reads Err and cause of the watched contexts over and over while hart 0's cancel races their
/// deadline: once either is seen, it must never change (C4, K3, K6).
fn watch(r: u32) {
    let s = shared();
    let mut first: [Option<Seen>; 8] = [None; 8];
    let look = |first: &mut [Option<Seen>; 8]| {
        for (&h, seen) in s.targets[..s.len].iter().zip(first.iter_mut()) {
            let e = ARENA.err(h);
            if e.is_err() {
                let k = ARENA.cause(h);
                match *seen {
                    None => *seen = Some((e, k)),
                    Some((e0, k0)) => {
                        if e != e0 {
                            violation("C4 (hart 1): Err changed after it was reported");
                        }
                        if k != k0 {
                            violation("K3/K6 (hart 1): the cause changed after it was reported");
                        }
                    }
                }
            } else if seen.is_some() {
                violation("C4 (hart 1): a context reported done reports not done again");
            }
        }
    };
    while ROUND.load(Acquire) == r {
        look(&mut first);
        bump_ops();
    }
    // Once more after hart 0's cancel returned: everything is done, with what was first seen.
    look(&mut first);
    if first[..s.len].iter().any(Option::is_none) {
        violation("C2 (hart 1): a watched context is not done after the cancel returned");
    }
}
