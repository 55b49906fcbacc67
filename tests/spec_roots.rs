//! SPEC R1-R3: roots and the zero handle.

mod common;

use common::{arena, clock, key};
use stopwire::{Arena, Callback, Error, Handle};

fn never(_: usize) {
    panic!("R1/F7: a callback on a root must never run");
}

#[test]
fn r1_roots_are_never_done_and_have_no_deadline_values_or_cause() {
    let clk = clock(0);
    let a = arena::<4>(clk);
    let before = a.stats();
    for root in [a.background(), a.todo()] {
        assert!(root.handle().is_root());
        assert_eq!(root.err(), Ok(()));
        assert!(!root.is_done());
        assert_eq!(root.deadline(), Ok(None));
        assert_eq!(root.value(key(1)), Ok(None));
        assert_eq!(root.cause(), Err(Error::NotDone));
    }
    assert_ne!(a.background(), a.todo());
    // Creating them costs nothing, and nothing that happens makes them done.
    assert_eq!(a.stats(), before);
    let c = a.background().with_deadline(5).unwrap();
    c.cancel();
    clk.set(u64::MAX);
    assert_eq!(a.expire(u64::MAX), 0);
    drop(c);
    for root in [Handle::BACKGROUND, Handle::TODO] {
        assert_eq!(a.err(root), Ok(()));
        assert_eq!(a.deadline(root), Ok(None));
        assert_eq!(a.value(root, 9), Ok(None));
    }
    // Roots work on a full arena: they take no slot.
    let full: Arena<1> = Arena::new();
    let only = full.background().with_cancel().unwrap();
    assert_eq!(full.todo().with_cancel().err(), Some(Error::Full));
    assert!(!full.background().is_done() && !full.todo().is_done());
    drop(only);
}

#[test]
fn r2_roots_cannot_be_canceled_or_released() {
    let a = arena::<4>(clock(0));
    let child = a.background().with_cancel().unwrap();
    let stats = a.stats();
    for root in [Handle::BACKGROUND, Handle::TODO] {
        for cause in [0, 7] {
            assert_eq!(a.cancel(root, cause), Err(Error::Root));
        }
        assert_eq!(a.release(root), Err(Error::Root));
        assert_eq!(a.err(root), Ok(()));
    }
    assert_eq!(a.stats(), stats, "R2: a refused call changes nothing");
    assert!(!child.is_done(), "R2: children of a root are untouched");
    // F7: a registration on a root never runs; the first stop prevents it.
    let reg = a
        .after_func(Handle::BACKGROUND, Callback::new(never, 0))
        .unwrap();
    assert!(a.stop(reg));
    assert!(!a.stop(reg));
}

#[test]
fn r3_the_all_zero_handle_is_never_valid() {
    let a = arena::<4>(clock(0));
    // Even with slot 0 in use (the zero handle's low half would be index -1).
    let held = a.background().with_cancel().unwrap();
    let zero = Handle::from_raw(0);
    assert_eq!(zero, Handle::DEAD);
    assert!(!zero.is_root());
    assert!(a.is_done(zero));
    assert_eq!(a.err(zero), Err(Error::Stale));
    assert_eq!(a.cause(zero), Err(Error::Stale));
    assert_eq!(a.deadline(zero), Err(Error::Stale));
    assert_eq!(a.value(zero, 1), Err(Error::Stale));
    assert_eq!(a.with_cancel(zero), Err(Error::Stale));
    assert_eq!(a.with_value(zero, 1, 1), Err(Error::Stale));
    assert_eq!(a.with_deadline_cause(zero, 1, 0), Err(Error::Stale));
    assert_eq!(a.without_cancel(zero), Err(Error::Stale));
    assert_eq!(a.cancel(zero, 0), Err(Error::Stale));
    assert_eq!(a.release(zero), Err(Error::Stale));
    assert_eq!(
        a.after_func(zero, Callback::new(never, 0)),
        Err(Error::Stale)
    );
    assert!(!a.stop(zero));
    assert_eq!(a.stats().in_use, 1);
    assert!(!held.is_done());
    // The zero handle through the Rust API.
    let view = a.ctx(zero);
    assert!(view.is_done());
    assert_eq!(view.with_cancel().err(), Some(Error::Stale));
}
