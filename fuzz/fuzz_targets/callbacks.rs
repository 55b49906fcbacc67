//! Callbacks that panic, stop or release while their walk dispatches them (SPEC F1, F4, A6; issue
//! 12): each input is a program over a small arena. Contexts are created; registrations are made
//! whose callback either counts, panics, stops another registration, or releases a context; cancels
//! and releases run under `catch_unwind`. After every operation the arena's invariants hold
//! (`audit`), a panic never loses another callback (each registration ends run or stopped, exactly
//! once), and when everything is released every slot is free again.
#![no_main]

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use libfuzzer_sys::fuzz_target;
use stopwire::{Arena, ArenaView, Callback, Handle};

static ARENA: Arena<24> = Arena::new();

thread_local! {
    /// Registrations by token: their stop handle, whether they ran, whether a stop prevented them.
    static REGS: RefCell<Vec<(Handle, bool, bool)>> = const { RefCell::new(Vec::new()) };
    /// Contexts a callback may release.
    static CTXS: RefCell<Vec<Handle>> = const { RefCell::new(Vec::new()) };
}
static RUNS: AtomicU32 = AtomicU32::new(0);

fn a() -> &'static ArenaView {
    &ARENA
}

/// The callback: `data` packs the token (low 16 bits) and the action (bits 16..).
fn act(data: usize) {
    let token = data & 0xffff;
    RUNS.fetch_add(1, SeqCst);
    let first = REGS.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() == token {
            r.push((Handle::DEAD, false, false)); // running at registration (F2)
        }
        let was = r[token].1;
        r[token].1 = true;
        !was
    });
    assert!(first, "F1: a callback ran twice");
    match data >> 16 {
        0 => {}
        1 => panic!("a callback that panics"),
        2 => {
            // Stop another registration (maybe claimed by the same walk, not started yet).
            let other = REGS.with(|r| r.borrow().get(token ^ 1).map(|x| x.0));
            if let Some(h) = other {
                if a().stop(h) {
                    REGS.with(|r| r.borrow_mut()[token ^ 1].2 = true);
                }
            }
        }
        _ => {
            let victim = CTXS.with(|c| c.borrow_mut().pop());
            if let Some(h) = victim {
                let _ = a().release(h);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The callbacks' own panics are expected; any other is a finding and is printed.
    std::panic::set_hook(Box::new(|info| {
        let expected = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| *m == "a callback that panics");
        if !expected {
            eprintln!("{info}");
        }
    }));
    REGS.with(|r| r.borrow_mut().clear());
    CTXS.with(|c| c.borrow_mut().clear());
    let base = a().stats().in_use;
    for chunk in data.chunks(2).take(200) {
        let (op, arg) = (chunk[0], *chunk.get(1).unwrap_or(&0) as usize);
        let ctxs = CTXS.with(|c| c.borrow().clone());
        let pick = |n: usize| ctxs.get(n % ctxs.len().max(1)).copied().unwrap_or(Handle::BACKGROUND);
        match op % 6 {
            0 | 1 => {
                if let Ok(h) = a().with_cancel(pick(arg)) {
                    CTXS.with(|c| c.borrow_mut().push(h));
                }
            }
            2 => {
                let token = REGS.with(|r| r.borrow().len());
                let data = token | ((arg & 3) << 16);
                // A callback that runs at registration (F2) and panics: the panic reaches here.
                let reg = catch_unwind(AssertUnwindSafe(|| {
                    a().after_func(pick(arg >> 2), Callback::new(act, data))
                }));
                if let Ok(Ok(stop)) = reg {
                    // A callback that ran at registration (F2) marked itself already: it pushed
                    // nothing, so its entry is added here, ran.
                    REGS.with(|r| {
                        let mut r = r.borrow_mut();
                        let ran = stop == Handle::DEAD;
                        if r.len() == token {
                            r.push((stop, ran, false));
                        } else {
                            r[token].0 = stop;
                        }
                    });
                }
            }
            3 => {
                let _ = catch_unwind(AssertUnwindSafe(|| a().cancel(pick(arg), 0)));
            }
            4 => {
                let h = CTXS.with(|c| {
                    let mut c = c.borrow_mut();
                    let n = c.len();
                    (n > 0).then(|| c.remove(arg % n))
                });
                if let Some(h) = h {
                    let _ = catch_unwind(AssertUnwindSafe(|| a().release(h)));
                }
            }
            _ => {
                let n = REGS.with(|r| r.borrow().len());
                if n > 0 {
                    let (h, _, _) = REGS.with(|r| r.borrow()[arg % n]);
                    if a().stop(h) {
                        REGS.with(|r| r.borrow_mut()[arg % n].2 = true);
                    }
                }
            }
        }
        assert_eq!(a().audit(), Ok(()), "invariants after {op}");
    }
    // Release everything: every registration ends run or stopped, every slot comes back (A6).
    loop {
        let h = CTXS.with(|c| c.borrow_mut().pop());
        let Some(h) = h else { break };
        let _ = catch_unwind(AssertUnwindSafe(|| a().release(h)));
    }
    let regs = REGS.with(|r| r.borrow().clone());
    for (i, (h, ran, stopped)) in regs.into_iter().enumerate() {
        // Never run and never stopped yet: on a root (F7), stop prevents it now.
        let stopped = stopped || (!ran && a().stop(h));
        assert!(ran != stopped, "F1/F4: registration {i}: ran {ran}, stopped {stopped}");
    }
    assert_eq!(a().audit(), Ok(()));
    assert_eq!(a().stats().in_use, base, "A6: a slot leaked");
});
