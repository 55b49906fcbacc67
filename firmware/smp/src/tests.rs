//! Hart 0's side of each test, named by SPEC rule id.

use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use stopwire::{Callback, Error, Handle};

use crate::hart1::{HART1_CAUSE, ISR_CANCELS, ISR_CAUSE, ISR_CREATED, TICKS};
use crate::{
    close, mtime, open, publish, wait_for, Shared, ACK, ARENA, GO, MODE, MODE_HAMMER, MODE_RACE,
    MODE_STOP, MODE_WATCH, OPS, RACE_RESULT, ROUND,
};

type R = Result<(), &'static str>;

/// A test: its name (SPEC rule ids first) and hart 0's body.
type Test = (&'static str, fn() -> R);

pub(crate) static TESTS: &[Test] = &[
    (
        "c2_c10_cancel_returns_with_the_subtree_done_while_the_other_hart_and_an_interrupt_work_in_it",
        c2_c10,
    ),
    ("c3_k3_two_harts_cancel_at_once_one_is_first_its_cause_wins", c3_k3),
    (
        "c4_k3_k6_err_and_cause_never_change_when_a_cancel_races_the_deadline",
        c4_k6,
    ),
    ("a6_slots_back_at_baseline_and_the_arena_audits_clean", a6),
];

/// Hart 0's cancels record this cause.
const CAUSE: u32 = 1;
/// The deadline's cause in the race test.
const DEADLINE_CAUSE: u32 = 7;

fn nz(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

static ROUNDS_OPENED: AtomicU32 = AtomicU32::new(0);

/// The next round number (rounds are numbered across tests).
fn next_round() -> u32 {
    let r = ROUNDS_OPENED.load(Relaxed) + 1;
    ROUNDS_OPENED.store(r, Relaxed);
    r
}

fn made(r: Result<Handle, Error>) -> Result<Handle, &'static str> {
    r.map_err(|_| "hart 0: a creation failed")
}

static CALLBACKS: AtomicU32 = AtomicU32::new(0);

/// Runs on whichever hart made the context done; hart 0's cancel in this test (F3).
fn on_done(_: usize) {
    critical_section::with(|_| CALLBACKS.store(CALLBACKS.load(Relaxed) + 1, Relaxed));
}

/// Hart 0 builds a small tree and cancels its root while hart 1 creates, cancels, releases and
/// checks inside it and hart 1's timer interrupt cancels one of its nodes: when the cancel
/// returns, every node is done (C2), including those hart 1 created during the walk (C10, checked
/// on hart 1), with the root's cause unless canceled before on their own (K4); the callback ran
/// once, before the cancel returned (F1, F3).
fn c2_c10() -> R {
    const ROUNDS: u32 = 400;
    MODE.store(MODE_HAMMER, Release);
    CALLBACKS.store(0, Relaxed);
    let isr_before = ISR_CANCELS.load(Relaxed);
    for i in 0..ROUNDS {
        let r = next_round();
        let p = made(ARENA.with_cancel(Handle::BACKGROUND))?;
        let a = made(ARENA.with_cancel(p))?;
        let b = made(ARENA.with_timeout_cause(a, 1 << 40, 0))?;
        let c = made(ARENA.with_value(p, 5, i as usize))?;
        let d = made(ARENA.with_cancel(c))?;
        let reg = made(ARENA.after_func(b, Callback::new(on_done, 0)))?;
        let mut targets = [Handle::DEAD; 8];
        targets[..5].copy_from_slice(&[p, a, b, c, d]);
        publish(Shared {
            targets,
            len: 5,
            isr_target: d,
        });
        let ops = OPS.load(Relaxed);
        let ticks = TICKS.load(Relaxed);
        open(r);
        // Let hart 1 get going (a varying amount, so that the cancel meets it at different
        // points), and its interrupt fire at least once in the round.
        wait_for(|| OPS.load(Relaxed).wrapping_sub(ops) > i % 13).ok_or("hart 1 does not run")?;
        wait_for(|| TICKS.load(Relaxed) != ticks)
            .ok_or("hart 1's timer interrupt does not fire")?;
        if ARENA.cancel(p, CAUSE) != Ok(true) {
            return Err("C3: hart 0's cancel of its root was not first");
        }
        for h in [p, a, b, c, d] {
            if ARENA.err(h) != Err(Error::Canceled) {
                return Err("C2: a node is not canceled when cancel returns");
            }
        }
        for h in [p, a, b, c] {
            if ARENA.cause(h) != Ok(nz(CAUSE)) {
                return Err("K4: a node does not carry the root's cause");
            }
        }
        if ![Ok(nz(CAUSE)), Ok(nz(ISR_CAUSE))].contains(&ARENA.cause(d)) {
            return Err("K3/K4: the interrupt's target has a cause nobody gave it");
        }
        if CALLBACKS.load(Relaxed) != i + 1 {
            return Err("F1/F3: the callback did not run exactly once before cancel returned");
        }
        close(r)?;
        publish(Shared::NONE);
        if ARENA.stop(reg) {
            return Err("F4: stop after the callback ran said it prevented it");
        }
        for h in [d, c, b, a, p] {
            ARENA.release(h).map_err(|_| "hart 0: a release failed")?;
        }
    }
    if ISR_CANCELS.load(Relaxed) == isr_before || ISR_CREATED.load(Relaxed) == 0 {
        return Err("the timer interrupt never canceled or created (the test would prove nothing)");
    }
    semihosting::println!(
        "    {ROUNDS} rounds; hart 1: {} operations; its interrupt: {} ticks, {} cancels of a node under the root, {} children made",
        OPS.load(Relaxed),
        TICKS.load(Relaxed),
        ISR_CANCELS.load(Relaxed) - isr_before,
        ISR_CREATED.load(Relaxed)
    );
    Ok(())
}

/// Both harts cancel the same root, with different causes, at the same moment: exactly one is
/// told it was first (C3), and the root and its subtree carry that one's cause (K3, K4).
fn c3_k3() -> R {
    const ROUNDS: u32 = 400;
    MODE.store(MODE_RACE, Release);
    let mut hart1_first = 0;
    for i in 0..ROUNDS {
        let r = next_round();
        let p = made(ARENA.with_cancel(Handle::BACKGROUND))?;
        let mut kids = [Handle::DEAD; 6];
        for k in &mut kids {
            *k = made(ARENA.with_cancel(p))?;
        }
        let mut targets = [Handle::DEAD; 8];
        targets[0] = p;
        publish(Shared {
            targets,
            len: 1,
            isr_target: Handle::DEAD,
        });
        open(r);
        // Hart 1 waits for GO; give it a varying head start so that either may win.
        let ops = OPS.load(Relaxed);
        GO.store(r, Release);
        for _ in 0..(i % 17) * 8 {
            core::hint::spin_loop();
        }
        let mine = ARENA
            .cancel(p, CAUSE)
            .map_err(|_| "hart 0: cancel failed")?;
        wait_for(|| OPS.load(Relaxed) != ops).ok_or("hart 1 did not cancel")?;
        let theirs = match RACE_RESULT.load(Acquire) {
            v if v == r * 4 + 1 => true,
            v if v == r * 4 + 2 => false,
            _ => return Err("hart 1's cancel failed"),
        };
        if mine == theirs {
            return Err("C3: not exactly one of two concurrent cancels was told it was first");
        }
        hart1_first += u32::from(theirs);
        let cause = nz(if mine { CAUSE } else { HART1_CAUSE });
        for h in core::iter::once(p).chain(kids) {
            if ARENA.err(h) != Err(Error::Canceled) || ARENA.cause(h) != Ok(cause) {
                return Err("K3/K4: a node does not carry the first cancel's cause");
            }
        }
        close(r)?;
        publish(Shared::NONE);
        for h in kids.into_iter().chain(core::iter::once(p)) {
            ARENA.release(h).map_err(|_| "hart 0: a release failed")?;
        }
    }
    semihosting::println!(
        "    {ROUNDS} rounds: hart 1 first in {hart1_first}, hart 0 in {}",
        ROUNDS - hart1_first
    );
    Ok(())
}

/// The race of issue 11: a root with a deadline and 48 children; hart 0 cancels it close to the
/// deadline while hart 1 reads Err and cause of eight of the nodes (and the root) over and over.
/// Whatever a check reported first must stay: Err (C4) and cause (K3, K6).
///
/// Virtual time follows the host's clock here, so the moment of the cancel is steered: when a
/// round's cancel came after the deadline for every node, the next one starts earlier; when it
/// came before it for every node, later. The rounds then hover where the cancel walk and the
/// deadline overlap, which is where the race is.
fn c4_k6() -> R {
    const ROUNDS: u32 = 1_000;
    const KIDS: usize = 48;
    MODE.store(MODE_WATCH, Release);
    let (mut canceled, mut expired, mut mixed) = (0u32, 0u32, 0u32);
    // Time allowed for building the tree before the deadline, in mtime ticks (10 MHz): twice the
    // last building time, bounded so that one slow moment of the host does not slow every round.
    let mut budget = 20_000u64;
    // How long before the deadline the cancel starts, in ticks.
    let mut lead = 500u64;
    for i in 0..ROUNDS {
        let r = next_round();
        let t = mtime();
        let deadline = t + budget + 2_000;
        let p = made(ARENA.with_deadline_cause(Handle::BACKGROUND, deadline, DEADLINE_CAUSE))?;
        let mut kids = [Handle::DEAD; KIDS];
        for k in &mut kids {
            *k = made(ARENA.with_cancel(p))?;
        }
        // The root, the first three and the last four children.
        let mut targets = [p; 8];
        targets[1..4].copy_from_slice(&kids[..3]);
        targets[4..8].copy_from_slice(&kids[KIDS - 4..]);
        publish(Shared {
            targets,
            len: 8,
            isr_target: Handle::DEAD,
        });
        budget = ((mtime() - t) * 2 + 1_000).clamp(2_000, 20_000);
        let ops = OPS.load(Relaxed);
        open(r);
        // Hart 1 is watching before the cancel (if it is slow to start, the round still counts
        // for C2 on this hart).
        let _ = wait_for(|| OPS.load(Relaxed) != ops);
        // Plus or minus 10 µs around the steered point.
        let at = (deadline + u64::from(i * 37 % 200)).saturating_sub(lead + 100);
        while mtime() < at {
            core::hint::spin_loop();
        }
        let _ = ARENA.cancel(p, CAUSE);
        let (mut c, mut x) = (0u32, 0u32);
        for h in core::iter::once(p).chain(kids) {
            match (ARENA.err(h), ARENA.cause(h)) {
                (Err(Error::Canceled), Ok(k)) if k == nz(CAUSE) => c += 1,
                (Err(Error::DeadlineExceeded), Ok(k)) if k == nz(DEADLINE_CAUSE) => x += 1,
                _ => return Err("C2/K4: a node is not done, or has a cause nobody gave it"),
            }
        }
        if c == 0 {
            lead = (lead + 100).min(budget);
        } else if x == 0 {
            lead = lead.saturating_sub(50);
        } else {
            mixed += 1;
        }
        canceled += c;
        expired += x;
        close(r)?;
        publish(Shared::NONE);
        for h in kids.into_iter().chain(core::iter::once(p)) {
            ARENA.release(h).map_err(|_| "hart 0: a release failed")?;
        }
    }
    semihosting::println!(
        "    {ROUNDS} rounds, {mixed} with both outcomes in one tree; nodes done Canceled: {canceled}, DeadlineExceeded: {expired}; hart 1: {} operations",
        OPS.load(Relaxed)
    );
    if canceled == 0 || expired == 0 {
        return Err(
            "the cancels never met the deadline from both sides (the test would prove nothing)",
        );
    }
    Ok(())
}

/// Hart 1 stops; then every slot is back (A6) and the arena's structure is sound (`audit`).
fn a6() -> R {
    MODE.store(MODE_STOP, Release);
    let r = next_round();
    open(r);
    wait_for(|| ACK.load(Acquire) == 2 * r + 2).ok_or("hart 1 did not stop")?;
    ROUND.store(2 * r + 2, Release);
    if ARENA.stats().in_use != 0 {
        semihosting::println!("    slots in use: {}", ARENA.stats().in_use);
        return Err("A6: slots in use did not return to the baseline (0)");
    }
    ARENA.audit().map_err(|e| e.what)?;
    Ok(())
}
