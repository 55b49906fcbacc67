//! SPEC V1-V5: request-scoped values.

mod common;

use common::{arena, clock, key, nz, P};
use stopwire::{Error, Handle};

#[test]
fn v1_with_value_adds_one_pair_and_rejects_key_zero() {
    let a = arena::<8>(clock(0));
    let v = a
        .background()
        .with_value(key(usize::MAX), usize::MAX)
        .unwrap();
    assert_eq!(v.value(key(usize::MAX)), Ok(Some(usize::MAX)));
    let z = v.with_value(key(1), 0).unwrap();
    assert_eq!(z.value(key(1)), Ok(Some(0)), "a zero value is a value");
    let in_use = a.stats();
    // Raw API: key 0 refused, nothing changes; lookups of key 0 refused too.
    assert_eq!(a.with_value(v.handle(), 0, 5), Err(Error::ZeroKey));
    assert_eq!(a.with_value(Handle::BACKGROUND, 0, 5), Err(Error::ZeroKey));
    assert_eq!(a.stats(), in_use);
    assert_eq!(a.value(v.handle(), 0), Err(Error::ZeroKey));
    assert_eq!(a.value(Handle::BACKGROUND, 0), Err(Error::ZeroKey));
    // A value with a pointer in it.
    let x = 42u64;
    let p = a
        .background()
        .with_value(key(2), &x as *const u64 as usize)
        .unwrap();
    let got = p.value(key(2)).unwrap().unwrap() as *const u64;
    assert!(core::ptr::eq(got, &x));
}

#[test]
fn v2_nearest_layer_wins_and_a_missing_key_is_not_an_error() {
    let a = arena::<16>(clock(0));
    let outer = a.background().with_value(key(1), 10).unwrap();
    let other = outer.with_value(key(2), 20).unwrap();
    let c = other.with_cancel().unwrap();
    let inner = c.with_value(key(1), 11).unwrap();
    let leaf = inner.with_deadline(u64::MAX).unwrap();
    assert_eq!(leaf.value(key(1)), Ok(Some(11)));
    assert_eq!(leaf.value(key(2)), Ok(Some(20)));
    assert_eq!(c.value(key(1)), Ok(Some(10)));
    assert_eq!(leaf.value(key(3)), Ok(None));
    assert_eq!(a.background().value(key(1)), Ok(None));
    c.cancel();
    assert_eq!(
        leaf.value(key(3)),
        Ok(None),
        "not found, never an error of the context"
    );
    // A sibling's layer is not on the path.
    let sib = outer.with_value(key(3), 30).unwrap();
    assert_eq!(leaf.value(key(3)), Ok(None));
    assert_eq!(sib.value(key(1)), Ok(Some(10)));
}

#[test]
fn v3_values_stay_readable_after_cancel_expiry_and_release_of_ancestors() {
    let clk = clock(0);
    let a = arena::<16>(clk);
    let v1 = a.background().with_value(key(1), 1).unwrap();
    let d = v1.with_deadline(10).unwrap();
    let v2 = d.with_value(key(2), 2).unwrap();
    let leaf = v2.with_cancel().unwrap();
    clk.set(10);
    assert_eq!(a.expire(10), 1);
    assert_eq!(leaf.value(key(1)), Ok(Some(1)));
    assert_eq!(leaf.value(key(2)), Ok(Some(2)));
    let leaf_view = *leaf;
    drop((v1, d, v2));
    assert_eq!(a.stats().in_use, 4, "A5: ancestors kept for the held leaf");
    assert_eq!(leaf_view.value(key(1)), Ok(Some(1)));
    assert_eq!(leaf_view.value(key(2)), Ok(Some(2)));
    let c = a.background().with_value(key(5), 5).unwrap();
    c.cancel_with_cause(nz(P));
    assert_eq!(c.value(key(5)), Ok(Some(5)));
    drop(leaf);
    drop(c);
    assert_eq!(a.stats().in_use, 0);
}

#[test]
fn v4_a_value_layer_has_its_parents_done_err_cause_and_deadline() {
    let clk = clock(0);
    let a = arena::<16>(clk);
    let p = a.background().with_deadline_cause(100, nz(P)).unwrap();
    let v = p.with_value(key(1), 1).unwrap();
    assert_eq!(v.deadline(), p.deadline());
    assert_eq!((v.err(), v.cause()), (Ok(()), Err(Error::NotDone)));
    clk.set(100);
    assert_eq!((v.err(), v.cause()), (p.err(), p.cause()));
    assert_eq!(v.err(), Err(Error::DeadlineExceeded));
    let q = a.background().with_cancel().unwrap();
    let w = q.with_value(key(2), 2).unwrap();
    assert_eq!(w.deadline(), Ok(None));
    q.cancel_with_cause(nz(P));
    assert_eq!((w.err(), w.cause()), (q.err(), q.cause()));
    // Under a root: never done, like the root.
    let r = a.background().with_value(key(3), 3).unwrap();
    assert_eq!((r.err(), r.deadline()), (Ok(()), Ok(None)));
}

/// V5: a lookup walks the context's own ancestors only: a crowd of other nodes carrying the same
/// key (and so more slots than the arena's ancestry) never changes its answer. (Cost itself is
/// argued in src/engine/query.rs: one step per ancestor; not timed here.)
#[test]
fn v5_lookup_follows_the_ancestry_not_the_arena() {
    let a = arena::<512>(clock(0));
    let mine = a.background().with_value(key(9), 1).unwrap();
    let leaf = mine.with_cancel().unwrap();
    let crowd: Vec<_> = (0..400)
        .map(|i| a.background().with_value(key(9), 1_000 + i).unwrap())
        .collect();
    let deep_other: Vec<_> = {
        let mut v = vec![crowd[0].with_value(key(8), 8).unwrap()];
        for _ in 0..50 {
            let n = v.last().unwrap().with_value(key(9), 7).unwrap();
            v.push(n);
        }
        v
    };
    assert_eq!(leaf.value(key(9)), Ok(Some(1)));
    assert_eq!(leaf.value(key(8)), Ok(None));
    assert_eq!(deep_other.last().unwrap().value(key(9)), Ok(Some(7)));
    assert_eq!(deep_other[0].value(key(9)), Ok(Some(1_000)));
}

/// V4: a value layer adds no cancellation of its own: it cannot be canceled by hand, releasing it
/// cancels nothing below, and a callback registered on it still fires when its parent is
/// canceled — also after the layer was released (its slot waits for the registration, A5).
#[test]
fn v4_value_layer_has_no_cancellation_of_its_own() {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    static FIRED: AtomicUsize = AtomicUsize::new(0);
    fn fired(n: usize) {
        FIRED.fetch_add(n, SeqCst);
    }
    let a: stopwire::Arena<8> = stopwire::Arena::new();
    let parent = a.with_cancel(Handle::BACKGROUND).unwrap();
    let layer = a.with_value(parent, 9, 90).unwrap();
    let below = a.with_cancel(layer).unwrap();
    assert_eq!(a.cancel(layer, 0), Err(Error::ValueLayer));
    assert_eq!(a.cancel(layer, 5), Err(Error::ValueLayer));
    assert_eq!(a.err(layer), Ok(()), "a refused cancel changes nothing");
    let stop = a
        .after_func(layer, stopwire::Callback::new(fired, 1))
        .unwrap();
    let before = FIRED.load(SeqCst);
    a.release(layer).unwrap();
    assert_eq!(
        a.err(below),
        Ok(()),
        "releasing a value layer cancels nothing below"
    );
    assert_eq!(
        a.value(below, 9),
        Ok(Some(90)),
        "V3: values through the released layer"
    );
    assert_eq!(FIRED.load(SeqCst), before, "the layer is not done");
    a.cancel(parent, 0).unwrap();
    assert_eq!(
        FIRED.load(SeqCst),
        before + 1,
        "F1: fires when the parent is canceled"
    );
    assert!(!a.stop(stop));
    assert_eq!(a.err(below), Err(Error::Canceled));
    a.release(below).unwrap();
    a.release(parent).unwrap();
    assert_eq!(a.stats().in_use, 0);
    assert_eq!(a.audit(), Ok(()));
}
