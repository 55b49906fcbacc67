//! The host deadline driver (feature `std`): deadlines fire by themselves (SPEC N1).
//!
//! One thread per driven arena, started the first time a deadline is created on it, named
//! `stopwire-driver`. It asks the arena for the earliest pending deadline and, in the same locked
//! step, leaves its waker there ([`ArenaView::driver_poll`]); it sleeps until that deadline (a
//! real-time clock: `park_timeout` by the clock's rate) or until told the clock moved (a virtual
//! clock such as [`crate::ManualClock`]: [`crate::clock::advanced`]), and is woken early only when
//! an earlier deadline is created. When it wakes it runs [`ArenaView::expire`], so callbacks run
//! and waiters wake in the driver thread (SPEC F3); on a clock without a rate, only after an
//! `advanced` it has not seen (a new deadline wakes it only to look at the clock's rate again).
//! No periodic polling.
//!
//! With a real-time clock, the arena is marked driven: checks of contexts with a deadline stop
//! reading the clock, and expiry becomes a state change the driver makes, as in Go
//! ([`crate::engine::query`]). The driver's lateness is what the `deadline/fire` benchmark
//! measures; with a virtual clock checks keep comparing the clock, so tests stay deterministic.
//!
//! # Which arenas are driven
//!
//! The driver thread holds a reference to the arena for as long as the program runs, so the arena
//! must never move or be dropped: it must be a `static`. [`ArenaView::drive`] takes `&'static self`
//! and starts the driver for any such arena (a `static`, or one leaked with `Box::leak`). An arena
//! that lives in a `static` and reads a real-time clock (the default [`crate::StdClock`]) is also
//! driven without being asked: the first creation of a deadline checks, on ELF platforms (Linux, the BSDs), whether the arena's address lies in a writable
//! segment of a loaded object (`dl_iterate_phdr`), which holds exactly the `static`s. An arena on
//! the stack or the heap, or on a virtual clock, is never driven behind the program's back: a blocking wait on it drives
//! its own deadline, and everything else waits for [`ArenaView::expire`].

use core::task::Waker;
use core::time::Duration;
use std::sync::Mutex;
use std::task::Wake;
use std::thread::Thread;
use std::vec::Vec;

use crate::engine::arena::{ArenaView, DRIVEN_NONE, DRIVEN_REALTIME};
use crate::engine::sync::Ordering::Relaxed;
use core::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// Arenas whose clock has no real-time rate are driven, but checks still read their clock.
const DRIVEN_VIRTUAL: u32 = 2;

/// Addresses of the arenas a driver serves (to start one per arena, once).
static DRIVEN: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Threads to wake when a clock without a rate moves (drivers of virtual clocks, blocking waits).
static VIRTUAL_SLEEPERS: Mutex<Vec<Thread>> = Mutex::new(Vec::new());
/// How many [`crate::clock::advanced`] notifications there have been: a driver whose clock has no
/// rate expires only after one it has not seen yet.
static ADVANCES: AtomicU64 = AtomicU64::new(0);

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// The hook of [`crate::clock::advanced`]: wakes every thread that sleeps on virtual time.
fn clock_advanced() {
    ADVANCES.fetch_add(1, SeqCst);
    let sleepers = VIRTUAL_SLEEPERS.lock().unwrap_or_else(|e| e.into_inner());
    for t in sleepers.iter() {
        t.unpark();
    }
}

/// Registers the calling thread to be unparked when a virtual clock moves, for the life of the
/// returned guard.
pub(crate) struct VirtualSleep(Thread);

impl VirtualSleep {
    pub(crate) fn new() -> Self {
        crate::clock::set_advanced_hook(clock_advanced);
        let me = std::thread::current();
        VIRTUAL_SLEEPERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(me.clone());
        VirtualSleep(me)
    }
}

impl Drop for VirtualSleep {
    fn drop(&mut self) {
        let mut v = VIRTUAL_SLEEPERS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = v.iter().position(|t| t.id() == self.0.id()) {
            v.swap_remove(k);
        }
    }
}

/// How long `ticks` of `arena`'s clock last, if its clock follows real time.
pub(crate) fn real_duration(arena: &ArenaView, ticks: u64) -> Option<Duration> {
    let hz = arena.clock().ticks_per_second()?;
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1));
    Some(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// Starts the driver of `arena` before a deadline is created on it, if it lives in a `static`
/// (module docs). Cheap when it runs already, or once the arena was found not to be a `static`:
/// two relaxed loads.
#[inline]
pub(crate) fn ensure(arena: &ArenaView) {
    if arena.header.driven.load(Relaxed) != DRIVEN_NONE || arena.header.not_static.load(Relaxed) {
        return;
    }
    ensure_slow(arena);
}

#[cold]
fn ensure_slow(arena: &ArenaView) {
    // Only clocks that follow real time: arenas on virtual clocks (tests, simulations) are driven
    // when asked ([`ArenaView::drive`]), so that a test decides when its deadlines are expired.
    if arena.clock().ticks_per_second().is_none() {
        return;
    }
    // Where the arena lies does not change: looked at once (`dl_iterate_phdr` walks the headers
    // of every loaded object).
    if is_static(core::ptr::from_ref(arena).cast::<u8>() as usize) {
        // SAFETY: the arena lies in a writable segment of a loaded object: it is a `static`, which
        // is never moved or dropped, so a `'static` reference to it is valid (module docs).
        let arena: &'static ArenaView = unsafe { &*core::ptr::from_ref(arena) };
        arena.drive();
    } else {
        arena.header.not_static.store(true, Relaxed);
    }
}

/// Whether `addr` lies in a writable loadable segment of the program or a shared library.
#[cfg(all(unix, not(target_os = "macos"), not(target_os = "ios"), not(miri)))]
fn is_static(addr: usize) -> bool {
    struct Query {
        addr: usize,
        found: bool,
    }
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `Query` passed below; `info` is valid for this call (dl_iterate_phdr).
        let (q, info) = unsafe { (&mut *data.cast::<Query>(), &*info) };
        for k in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers.
            let ph = unsafe { &*info.dlpi_phdr.add(k) };
            if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W != 0 {
                let start = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
                let end = start.wrapping_add(ph.p_memsz as usize);
                if (start..end).contains(&q.addr) {
                    q.found = true;
                    return 1;
                }
            }
        }
        0
    }
    let mut q = Query { addr, found: false };
    // SAFETY: `each` only reads the headers it is given and writes `q`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), core::ptr::from_mut(&mut q).cast()) };
    q.found
}

/// Without program headers to read, no arena is taken for a `static`: call
/// [`ArenaView::drive`].
#[cfg(not(all(unix, not(target_os = "macos"), not(target_os = "ios"), not(miri))))]
fn is_static(_addr: usize) -> bool {
    false
}

impl ArenaView {
    /// Starts this arena's host deadline driver, if it has none (SPEC N1): from then on
    /// deadlines fire by themselves, callbacks run and waiters wake in the driver thread. Arenas
    /// in a `static` are driven without asking (module docs of the driver); call this for an
    /// arena made `'static` otherwise (`Box::leak`). Idempotent.
    ///
    /// ```
    /// use stopwire::{Arena, ManualClock};
    /// static CLOCK: ManualClock = ManualClock::new(0);
    /// let arena: &'static Arena<8> = Box::leak(Box::new(Arena::with_clock(&CLOCK)));
    /// arena.drive();
    /// let ctx = arena.background().with_deadline(10).unwrap();
    /// CLOCK.set(10); // the driver expires it
    /// assert_eq!(ctx.wait(), stopwire::Error::DeadlineExceeded);
    /// ```
    pub fn drive(&'static self) {
        if self.header.driven.load(Relaxed) != DRIVEN_NONE {
            return;
        }
        let addr = core::ptr::from_ref(self).cast::<u8>() as usize;
        {
            let mut driven = DRIVEN.lock().unwrap_or_else(|e| e.into_inner());
            if driven.contains(&addr) {
                return;
            }
            driven.push(addr);
        }
        let realtime = self.clock().ticks_per_second().is_some();
        if !realtime {
            crate::clock::set_advanced_hook(clock_advanced);
        }
        // Counted from here: a clock that moves from now on wakes the driver even if it moves
        // before the thread runs.
        let seen = ADVANCES.load(SeqCst);
        let spawned = std::thread::Builder::new()
            .name("stopwire-driver".into())
            .spawn(move || self.driver_loop(realtime, seen));
        if spawned.is_ok() {
            let mode = if realtime {
                DRIVEN_REALTIME
            } else {
                DRIVEN_VIRTUAL
            };
            self.header.driven.store(mode, Relaxed);
        }
    }

    /// The driver thread. With a real-time clock it expires whenever a deadline is due. With a
    /// clock that has no rate it expires only after an [`crate::clock::advanced`] notification
    /// it has not seen (`seen` counts those it has), as [`crate::Clock::ticks_per_second`] says:
    /// being woken by a new deadline, or a clock that moves unannounced (the C library's clock of
    /// `sw_set_clock`, which the program drives with `sw_expire`, docs/c-api.md), is not a reason
    /// to expire, only to look at the clock's rate again. Otherwise this thread would be a second
    /// deadline driver beside the program's `expire`, and take the deadlines it counts (SPEC D5,
    /// T5) and run their callbacks in a thread the program does not know (F3).
    fn driver_loop(&'static self, realtime: bool, mut seen: u64) -> ! {
        // Linux lets a sleeping thread wake up to 50 µs late by default (timer slack), inherited
        // from whoever started it; a deadline driver wants its wake-ups on time.
        #[cfg(all(target_os = "linux", not(miri)))]
        // SAFETY: PR_SET_TIMERSLACK takes an integer and affects only the calling thread.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1u64);
        }
        let _virtual = (!realtime).then(VirtualSleep::new);
        let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
        loop {
            let timed = self.clock().ticks_per_second().is_some();
            // Read before the queue and the clock: a move after this read unparks the park
            // below, and the next round sees its notification.
            let advanced = {
                let n = ADVANCES.load(SeqCst);
                core::mem::replace(&mut seen, n) != n
            };
            let next = self.driver_poll_as(&waker, timed);
            let now = self.now();
            // Whether this thread may expire: after an `advanced` it has not seen, or while the
            // clock has a rate. The rate is asked inside each locked step of the expiry: the C
            // library's clock can lose its rate at any time (`sw_set_clock`), and a deadline of
            // the program's new clock is created after that, so a step that sees the deadline
            // also sees the clock without a rate and leaves the deadline to the program's
            // `sw_expire` (the C suite's t5_d5_f3 test caught a rate asked outside the step on
            // a loaded machine).
            let allowed = || advanced || self.clock().ticks_per_second().is_some();
            match next {
                Some(d) if d <= now && allowed() => {
                    self.expire_while(now, allowed);
                    continue;
                }
                // Asked afresh each time: a clock can stop following real time (the C library's
                // after `sw_set_clock`); then only `advanced` or a new deadline wakes it.
                Some(d) if d > now => match real_duration(self, d - now) {
                    Some(wait) => std::thread::park_timeout(wait),
                    None => std::thread::park(),
                },
                _ => std::thread::park(),
            }
            // The clock may have lost its rate while this thread slept: asked in the steps.
            self.expire_while(self.now(), || self.clock().ticks_per_second().is_some());
        }
    }
}
