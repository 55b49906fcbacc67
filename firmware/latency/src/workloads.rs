//! The measured operations (issue 11). Each builds its tree outside the measurement, resets the
//! instrument, runs the one operation whose critical sections count, checks that it did what it
//! should, and releases everything so that the arena is back at zero slots in use.

use stopwire::{ArenaView, Clock, Error, Handle, ManualClock};

use crate::{cs, Measured, Sizes};

/// A workload: arena, clock, sizes, a buffer for handles.
type Case = fn(&ArenaView, &ManualClock, Sizes, &mut [Handle]) -> Result<Measured, &'static str>;

/// The cases, in the order of the table.
pub(crate) static CASES: &[(&str, Case)] = &[
    ("cancel_flat", cancel_flat),
    ("cancel_deadlines", cancel_deadlines),
    ("cancel_chain", cancel_chain),
    ("release_cascade", release_cascade),
    ("deadline_insert", deadline_insert),
    ("deadline_scan", deadline_scan),
    ("expire", expire),
];

/// Runs `op` with the instrument reset before it: the sections it took, and the whole
/// operation's length by the second counter.
fn measure(op: impl FnOnce()) -> (cs::Record, u64) {
    cs::reset();
    let from = cs::second_now();
    op();
    let to = cs::second_now();
    (cs::record(), cs::second_insns(from, to))
}

fn made(r: Result<Handle, Error>) -> Result<Handle, &'static str> {
    r.map_err(|_| "a creation failed")
}

fn release_all(arena: &ArenaView, hs: &[Handle]) -> Result<(), &'static str> {
    for &h in hs {
        arena.release(h).map_err(|_| "a release failed")?;
    }
    Ok(())
}

/// A chain `hs[0]` (under the background root) to `hs[depth - 1]`, each the child of the one
/// before.
fn chain(arena: &ArenaView, hs: &mut [Handle]) -> Result<(), &'static str> {
    let mut parent = Handle::BACKGROUND;
    for h in hs.iter_mut() {
        *h = made(arena.with_cancel(parent))?;
        parent = *h;
    }
    Ok(())
}

/// Cancel of a flat tree: one root with `flat - 1` children.
fn cancel_flat(
    arena: &ArenaView,
    _: &ManualClock,
    s: Sizes,
    hs: &mut [Handle],
) -> Result<Measured, &'static str> {
    let hs = &mut hs[..s.flat];
    hs[0] = made(arena.with_cancel(Handle::BACKGROUND))?;
    let root = hs[0];
    for h in &mut hs[1..] {
        *h = made(arena.with_cancel(root))?;
    }
    let mut first = Ok(false);
    let (record, outer) = measure(|| first = arena.cancel(root, 0));
    if first != Ok(true) || arena.err(hs[s.flat - 1]) != Err(Error::Canceled) {
        return Err("cancel_flat: the tree was not canceled");
    }
    release_all(arena, hs)?;
    Ok(Measured {
        size: s.flat,
        record,
        outer,
    })
}

/// Cancel of a flat tree whose children all have deadlines of their own, pending: the walk's
/// costliest unit, marking a deadline owner (lane removal, and on targets without
/// compare-and-swap the marking protocol's fence and fresh clock reading).
fn cancel_deadlines(
    arena: &ArenaView,
    clock: &ManualClock,
    s: Sizes,
    hs: &mut [Handle],
) -> Result<Measured, &'static str> {
    let hs = &mut hs[..s.flat];
    let t0 = clock.now();
    hs[0] = made(arena.with_cancel(Handle::BACKGROUND))?;
    let root = hs[0];
    for (i, h) in hs[1..].iter_mut().enumerate() {
        *h = made(arena.with_deadline_cause(root, t0 + 1_000_000 + i as u64, 0))?;
    }
    let mut first = Ok(false);
    let (record, outer) = measure(|| first = arena.cancel(root, 0));
    if first != Ok(true)
        || arena.err(hs[s.flat - 1]) != Err(Error::Canceled)
        || arena.next_deadline().is_some()
    {
        return Err("cancel_deadlines: the tree was not canceled, or a deadline is still pending");
    }
    release_all(arena, hs)?;
    Ok(Measured {
        size: s.flat,
        record,
        outer,
    })
}

/// Cancel of a chain `chain` deep, from its top.
fn cancel_chain(
    arena: &ArenaView,
    _: &ManualClock,
    s: Sizes,
    hs: &mut [Handle],
) -> Result<Measured, &'static str> {
    let hs = &mut hs[..s.chain];
    chain(arena, hs)?;
    let mut first = Ok(false);
    let (record, outer) = measure(|| first = arena.cancel(hs[0], 0));
    if first != Ok(true) || arena.err(hs[s.chain - 1]) != Err(Error::Canceled) {
        return Err("cancel_chain: the leaf was not canceled");
    }
    release_all(arena, hs)?;
    Ok(Measured {
        size: s.chain,
        record,
        outer,
    })
}

/// A chain `zombies` deep whose nodes are all released top down except the leaf (each kept as
/// a zombie for its descendant, SPEC A5); then the leaf's release reclaims the whole chain.
fn release_cascade(
    arena: &ArenaView,
    _: &ManualClock,
    s: Sizes,
    hs: &mut [Handle],
) -> Result<Measured, &'static str> {
    let hs = &mut hs[..s.zombies];
    // One slot more than the chain, released before the measurement, so that the free list is
    // not empty when the cascade starts, whatever the arena's size: pushing onto an empty list
    // is a few instructions shorter, which would make the small arena's figure look better only
    // because its chain takes every free slot.
    let spare = made(arena.with_cancel(Handle::BACKGROUND))?;
    chain(arena, hs)?;
    arena
        .release(spare)
        .map_err(|_| "release_cascade: a release failed")?;
    let (leaf, above) = hs.split_last().ok_or("release_cascade: empty chain")?;
    // The first of these releases cancels the whole chain (A4); that is not what is measured.
    release_all(arena, above)?;
    if arena.stats().in_use as usize != s.zombies {
        return Err("release_cascade: the zombies were reclaimed early");
    }
    let mut released = Ok(());
    let (record, outer) = measure(|| released = arena.release(*leaf));
    if released.is_err() || arena.stats().in_use != 0 {
        return Err("release_cascade: the chain was not reclaimed");
    }
    Ok(Measured {
        size: s.zombies,
        record,
        outer,
    })
}

/// Creation of a deadline earlier than `deadlines` pending ones.
fn deadline_insert(
    arena: &ArenaView,
    clock: &ManualClock,
    s: Sizes,
    hs: &mut [Handle],
) -> Result<Measured, &'static str> {
    let hs = &mut hs[..s.deadlines + 1];
    let t0 = clock.now();
    let (new, pending) = hs.split_last_mut().ok_or("deadline_insert: no room")?;
    for (i, h) in pending.iter_mut().enumerate() {
        *h = made(arena.with_deadline_cause(Handle::BACKGROUND, t0 + 1_000_000 + i as u64, 0))?;
    }
    let mut r = Err(Error::Stale);
    let (record, outer) =
        measure(|| r = arena.with_deadline_cause(Handle::BACKGROUND, t0 + 500_000, 0));
    *new = made(r)?;
    if arena.next_deadline() != Some(t0 + 500_000) {
        return Err("deadline_insert: the new deadline is not the next one");
    }
    release_all(arena, hs)?;
    Ok(Measured {
        size: s.deadlines,
        record,
        outer,
    })
}

/// Creation of a deadline that every lane spans, so that it is put in place by a backward scan
/// of a lane holding `deadlines` later ones (`src/engine/deadline.rs`, case 4 of the insert).
///
/// The lanes are laid out through the insert's own rules: four early owners open the four lanes
/// (10, 5, 3, 1 ticks on), one late owner goes at the tail of each (900 onto the lane of 10, then
/// 800, 700, 600), and `deadlines` later ones are appended to the lane of 900; a deadline at 500
/// is then before every tail and after every head.
fn deadline_scan(
    arena: &ArenaView,
    clock: &ManualClock,
    s: Sizes,
    hs: &mut [Handle],
) -> Result<Measured, &'static str> {
    const LAYOUT: [u64; 8] = [10, 5, 3, 1, 900, 800, 700, 600];
    let hs = &mut hs[..LAYOUT.len() + s.deadlines + 1];
    let t0 = clock.now();
    let (new, pending) = hs.split_last_mut().ok_or("deadline_scan: no room")?;
    let (layout, stream) = pending.split_at_mut(LAYOUT.len());
    for (h, &at) in layout.iter_mut().zip(&LAYOUT) {
        *h = made(arena.with_deadline_cause(Handle::BACKGROUND, t0 + at, 0))?;
    }
    for (i, h) in stream.iter_mut().enumerate() {
        *h = made(arena.with_deadline_cause(Handle::BACKGROUND, t0 + 1_000 + i as u64, 0))?;
    }
    let mut r = Err(Error::Stale);
    let (record, outer) =
        measure(|| r = arena.with_deadline_cause(Handle::BACKGROUND, t0 + 500, 0));
    *new = made(r)?;
    if arena.next_deadline() != Some(t0 + 1) {
        return Err("deadline_scan: the earliest deadline changed");
    }
    if record.sections < 2 {
        return Err("deadline_scan: the insert did not scan (the lanes are not laid out as meant)");
    }
    arena.audit().map_err(|e| e.what)?;
    release_all(arena, hs)?;
    Ok(Measured {
        size: s.deadlines,
        record,
        outer,
    })
}

/// `expire` of `deadlines` deadlines that have all passed.
fn expire(
    arena: &ArenaView,
    clock: &ManualClock,
    s: Sizes,
    hs: &mut [Handle],
) -> Result<Measured, &'static str> {
    let hs = &mut hs[..s.deadlines];
    let t0 = clock.now();
    for (i, h) in hs.iter_mut().enumerate() {
        *h = made(arena.with_deadline_cause(Handle::BACKGROUND, t0 + 100 + i as u64, 0))?;
    }
    let now = t0 + 100 + s.deadlines as u64;
    clock.set(now);
    let mut handled = 0;
    let (record, outer) = measure(|| handled = arena.expire(now));
    if handled as usize != s.deadlines || arena.err(hs[0]) != Err(Error::DeadlineExceeded) {
        return Err("expire: not every deadline was handled");
    }
    release_all(arena, hs)?;
    Ok(Measured {
        size: s.deadlines,
        record,
        outer,
    })
}
