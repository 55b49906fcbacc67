//! SPEC W1-W2: detached contexts (`without_cancel`).

mod common;

use common::{arena, clock, key, nz, EARLY, SLOW};
use stopwire::{Error, Handle};

#[test]
fn w1_detached_keeps_values_and_is_never_done() {
    let clk = clock(0);
    let a = arena::<16>(clk);
    let p = a.background().with_value(key(1), 11).unwrap();
    let dl = p.with_deadline_cause(10, nz(SLOW)).unwrap();
    let w = dl.without_cancel().unwrap();
    assert_eq!(w.value(key(1)), Ok(Some(11)));
    assert_eq!(
        (w.err(), w.deadline(), w.cause()),
        (Ok(()), Ok(None), Err(Error::NotDone))
    );
    // Parent done after: not done.
    clk.set(10);
    assert!(dl.is_done());
    assert_eq!(a.expire(10), 1);
    assert_eq!(
        (w.err(), w.deadline(), w.cause()),
        (Ok(()), Ok(None), Err(Error::NotDone))
    );
    // Parent done before: not done either (K7 rows 19-20).
    let w2 = dl.without_cancel().unwrap();
    assert_eq!((w2.err(), w2.cause()), (Ok(()), Err(Error::NotDone)));
    assert_eq!(w2.value(key(1)), Ok(Some(11)));
    // It cannot be canceled; release gives the handle back without canceling anything below.
    assert!(!w.cancel());
    assert_eq!(a.cancel(w.handle(), EARLY), Err(Error::Detached));
    assert_eq!(w.err(), Ok(()));
    let below = w.with_cancel().unwrap();
    let wh = w.handle();
    drop(w);
    assert_eq!(a.err(wh), Err(Error::Stale));
    assert_eq!(below.err(), Ok(()));
    assert_eq!(
        below.value(key(1)),
        Ok(Some(11)),
        "V3: through a released detached layer"
    );
    // Released parents above it: values still readable.
    let w2v = *w2;
    drop((p, dl));
    assert_eq!(w2v.value(key(1)), Ok(Some(11)));
    assert_eq!(w2v.err(), Ok(()));
    drop((below, w2));
    assert_eq!(a.stats().in_use, 0);
    // Detached from a root.
    let r = a.with_cancel(Handle::BACKGROUND).unwrap();
    let wr = a.without_cancel(Handle::TODO).unwrap();
    assert_eq!(a.err(wr), Ok(()));
    a.release(r).unwrap();
    a.release(wr).unwrap();
}

#[test]
fn w2_descendants_of_a_detached_context_are_shielded_from_above_only() {
    let a = arena::<16>(clock(0));
    let top = a.background().with_cancel().unwrap();
    let mid = top.with_cancel().unwrap();
    let w = mid.without_cancel().unwrap();
    let c1 = w.with_cancel().unwrap();
    let c2 = c1.with_value(key(1), 1).unwrap();
    let c3 = w.with_deadline(u64::MAX).unwrap();
    top.cancel_with_cause(nz(EARLY));
    assert!(mid.is_done());
    for c in [&c1, &c2, &c3] {
        assert_eq!(c.err(), Ok(()));
    }
    drop((top, mid));
    assert_eq!(c2.err(), Ok(()));
    // Below the detach point, cancellation works as usual.
    assert!(c1.cancel_with_cause(nz(SLOW)));
    assert_eq!(
        (c2.err(), c2.cause()),
        (Err(Error::Canceled), Ok(Some(nz(SLOW))))
    );
    assert_eq!(c3.err(), Ok(()));
}
