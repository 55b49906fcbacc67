//! libFuzzer target: the differential model check through the C API (`sw_*` of `stopwire-ffi`),
//! on its one process-wide arena, with forged handles (never-issued generations, indices past
//! the end, the zero handle) and NULL pointer arguments. Every answer is compared with the
//! reference model of docs/spec.md, folded to the C API's status codes.
#![no_main]

#[allow(
    dead_code,
    reason = "shared with tests/model.rs, which uses other parts"
)]
#[path = "../../tests/model/driver.rs"]
mod driver;
#[allow(
    dead_code,
    reason = "shared with tests/model.rs, which uses other parts"
)]
#[path = "../../tests/model/reference.rs"]
mod reference;

mod progress;

use std::ffi::c_void;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Once;

use driver::Engine;
use ffi::*;
use libfuzzer_sys::fuzz_target;
use reference::MErr;
use stopwire::Handle;

/// The C API's clock: moved only by the driver.
static TICKS: AtomicU64 = AtomicU64::new(1_000);

unsafe extern "C" fn ticks() -> u64 {
    TICKS.load(SeqCst)
}

unsafe extern "C" fn c_callback(userdata: *mut c_void) {
    driver::callback_ran(userdata.addr());
}

fn ctx(h: Handle) -> sw_ctx {
    sw_ctx { raw: h.to_raw() }
}

fn handle(c: sw_ctx) -> Handle {
    Handle::from_raw(c.raw)
}

/// A status as the model would say it; `SW_OK` is `Ok`.
fn status(s: sw_status) -> Result<(), MErr> {
    match s {
        sw_status::SW_OK => Ok(()),
        sw_status::SW_CANCELED => Err(MErr::Canceled),
        sw_status::SW_DEADLINE_EXCEEDED => Err(MErr::DeadlineExceeded),
        sw_status::SW_ERR_STALE_HANDLE => Err(MErr::Stale),
        sw_status::SW_ERR_ARENA_FULL => Err(MErr::Full),
        sw_status::SW_ERR_NOT_FOUND => Err(MErr::NotDone),
        sw_status::SW_ERR_INVALID_ARG => Err(MErr::InvalidArg),
        other => panic!("unexpected status {other:?}"),
    }
}

fn create(f: impl FnOnce(*mut sw_ctx) -> sw_status) -> Result<Handle, MErr> {
    let mut out = sw_ctx { raw: 0 };
    status(f(&mut out)).map(|()| handle(out))
}

/// The C API as an engine for the driver.
struct CEngine;

impl Engine for CEngine {
    fn capacity(&self) -> usize {
        CAPACITY
    }
    fn now(&self) -> u64 {
        sw_now()
    }
    fn advance(&self, ticks: u64) {
        let _ = TICKS.fetch_update(SeqCst, SeqCst, |t| Some(t.saturating_add(ticks)));
    }
    fn with_cancel(&self, p: Handle) -> Result<Handle, MErr> {
        // SAFETY: `out` is a valid local.
        create(|out| unsafe { sw_with_cancel(ctx(p), out) })
    }
    fn with_deadline_cause(&self, p: Handle, at: u64, cause: u32) -> Result<Handle, MErr> {
        // SAFETY: `out` is a valid local.
        create(|out| unsafe {
            if cause == 0 {
                sw_with_deadline(ctx(p), at, out)
            } else {
                sw_with_deadline_cause(ctx(p), at, cause, out)
            }
        })
    }
    fn with_timeout_cause(&self, p: Handle, ticks: u64, cause: u32) -> Result<Handle, MErr> {
        // SAFETY: `out` is a valid local.
        create(|out| unsafe {
            if cause == 0 {
                sw_with_timeout(ctx(p), ticks, out)
            } else {
                sw_with_timeout_cause(ctx(p), ticks, cause, out)
            }
        })
    }
    fn with_value(&self, p: Handle, key: usize, value: usize) -> Result<Handle, MErr> {
        // SAFETY: `out` is a valid local.
        create(|out| unsafe { sw_with_value(ctx(p), key, value, out) })
    }
    fn without_cancel(&self, p: Handle) -> Result<Handle, MErr> {
        // SAFETY: `out` is a valid local.
        create(|out| unsafe { sw_without_cancel(ctx(p), out) })
    }
    fn cancel(&self, h: Handle, cause: u32) -> Result<Option<bool>, MErr> {
        let s = if cause == 0 {
            sw_cancel(ctx(h))
        } else {
            sw_cancel_cause(ctx(h), cause)
        };
        status(s).map(|()| None)
    }
    fn release(&self, h: Handle) -> Result<(), MErr> {
        status(sw_release(ctx(h)))
    }
    fn after_func(&self, h: Handle, token: usize) -> Result<Handle, MErr> {
        let mut out = sw_ctx { raw: u64::MAX };
        let data = std::ptr::without_provenance_mut::<c_void>(token);
        // SAFETY: `c_callback` may run on this thread at any time (it only records), `data` is
        // an integer it never dereferences, `out` is a valid local.
        let s = unsafe { sw_after_func(ctx(h), Some(c_callback), data, &mut out) };
        status(s).map(|()| handle(out))
    }
    fn stop(&self, h: Handle) -> bool {
        sw_stop(ctx(h))
    }
    fn expire(&self, now: u64) -> u32 {
        sw_expire(now)
    }
    fn next_deadline(&self) -> Option<Option<u64>> {
        None
    }
    fn err(&self, h: Handle) -> Result<(), MErr> {
        status(sw_err(ctx(h)))
    }
    fn is_done(&self, h: Handle) -> bool {
        sw_is_done(ctx(h))
    }
    fn cause(&self, h: Handle) -> Result<Option<u32>, MErr> {
        let mut c = u32::MAX;
        // SAFETY: `c` is a valid local.
        status(unsafe { sw_cause(ctx(h), &mut c) }).map(|()| (c != 0).then_some(c))
    }
    fn deadline(&self, h: Handle) -> Result<Option<u64>, MErr> {
        let mut d = 0;
        // SAFETY: `d` is a valid local.
        match status(unsafe { sw_deadline(ctx(h), &mut d) }) {
            Ok(()) => Ok(Some(d)),
            Err(MErr::NotDone) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn value(&self, h: Handle, key: usize) -> Result<Option<usize>, MErr> {
        let mut v = 0;
        // SAFETY: `v` is a valid local.
        match status(unsafe { sw_value(ctx(h), key, &mut v) }) {
            Ok(()) => Ok(Some(v)),
            Err(MErr::NotDone) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn stats(&self) -> (u32, u32, u32, u32) {
        let mut s = sw_stats {
            capacity: 0,
            in_use: 0,
            high_water: 0,
            full_count: 0,
        };
        // SAFETY: `s` is a valid local.
        assert_eq!(unsafe { sw_stats_get(&mut s) }, sw_status::SW_OK);
        (s.capacity, s.in_use, s.high_water, s.full_count)
    }
    /// The C API has one status for every refused argument.
    fn fold(&self, e: MErr) -> MErr {
        match e {
            MErr::Root | MErr::Detached | MErr::ValueLayer | MErr::NotContext | MErr::ZeroKey => {
                MErr::InvalidArg
            }
            e => e,
        }
    }
    /// NULL pointers: `SW_ERR_NULL_ARG` and nothing done (the next comparison of the figures
    /// with the model shows that nothing changed).
    fn extra_checks(&self, h: Handle) -> Result<(), String> {
        let null = sw_status::SW_ERR_NULL_ARG;
        let c = ctx(h);
        let mut stop = sw_ctx { raw: 7 };
        // SAFETY: every pointer is NULL or a valid local; NULL is what is being tested.
        let got = unsafe {
            [
                sw_with_cancel(c, std::ptr::null_mut()),
                sw_with_deadline(c, 5, std::ptr::null_mut()),
                sw_with_timeout_cause(c, 5, 9, std::ptr::null_mut()),
                sw_with_value(c, 1, 1, std::ptr::null_mut()),
                sw_without_cancel(c, std::ptr::null_mut()),
                sw_cause(c, std::ptr::null_mut()),
                sw_deadline(c, std::ptr::null_mut()),
                sw_value(c, 1, std::ptr::null_mut()),
                sw_after_func(c, None, std::ptr::null_mut(), &mut stop),
                sw_after_func(
                    c,
                    Some(c_callback),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                ),
                sw_stats_get(std::ptr::null_mut()),
            ]
        };
        if let Some(i) = got.iter().position(|&s| s != null) {
            return Err(format!("NULL argument #{i} on {h:?}: {:?}", got[i]));
        }
        if stop.raw != 7 {
            return Err("an out-pointer was written by a refused call".into());
        }
        for s in [0u32, 8, 9, 1_000, u32::MAX] {
            if sw_status_str(s).is_null() {
                return Err(format!("sw_status_str({s}) is NULL"));
            }
        }
        Ok(())
    }
}

static CLOCK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    CLOCK.call_once(|| {
        // SAFETY: `ticks` reads an atomic: callable from any thread, monotonic (the driver only
        // moves it forward), and it does not call the library.
        unsafe { sw_set_clock(Some(ticks)) };
    });
    let case = driver::decode(data);
    let perform: driver::Perform = Rc::new(|act, h| driver::perform(&CEngine, act, h));
    match driver::run_with(&CEngine, perform, &case) {
        Ok(ops) => progress::add("capi", ops),
        Err(e) => panic!("C API and model diverge: {e}\n{case:#?}"),
    }
});
