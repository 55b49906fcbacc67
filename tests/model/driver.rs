//! The differential driver: runs one sequence of operations on the engine (the raw
//! `ArenaView` API on `Handle`s, with a `ManualClock`) and on the reference model, and compares
//! every answer and every observable after every step: Err, `is_done`, cause, deadline, values,
//! the callbacks that ran (as a sorted list: F5 leaves their order open), `next_deadline` and the
//! arena figures. Shared by `tests/model.rs` (proptest, shrinking) and `fuzz/` (libFuzzer).

use std::cell::RefCell;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use stopwire::{Arena, ArenaView, Callback, Clock, Error, Handle, ManualClock};

use crate::reference::{Create, MErr, MHandle, Model, Registered};

thread_local! {
    /// Tokens of the engine's callbacks, in the order they ran (callbacks run on the thread that
    /// makes the context done, F3: always this one here).
    static RAN: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// One clock per thread, so that parallel tests do not move each other's time. Never goes
    /// back (T4): each case starts from where the last one left it.
    static CLOCK: &'static ManualClock = Box::leak(Box::new(ManualClock::new(1_000)));
}

/// What the runs so far have exercised (summed over every case, every thread): shows that a
/// run met the paths it is meant to test.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    pub(crate) callbacks_run: AtomicU64,
    pub(crate) full_refusals: AtomicU64,
    pub(crate) deadlines_expired: AtomicU64,
    pub(crate) stale_answers: AtomicU64,
    pub(crate) done_by_deadline_seen: AtomicU64,
}

/// The process-wide coverage figures.
pub(crate) static COVERAGE: Coverage = Coverage {
    callbacks_run: AtomicU64::new(0),
    full_refusals: AtomicU64::new(0),
    deadlines_expired: AtomicU64::new(0),
    stale_answers: AtomicU64::new(0),
    done_by_deadline_seen: AtomicU64::new(0),
};

impl Coverage {
    /// One line of figures.
    pub(crate) fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Relaxed);
        format!(
            "{} callbacks run, {} Full refusals, {} deadlines handled by expire, {} stale-handle answers, {} DeadlineExceeded seen",
            g(&self.callbacks_run),
            g(&self.full_refusals),
            g(&self.deadlines_expired),
            g(&self.stale_answers),
            g(&self.done_by_deadline_seen)
        )
    }
}

fn bump(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Relaxed);
}

fn record(token: usize) {
    RAN.with(|r| r.borrow_mut().push(token));
}

fn clock() -> &'static ManualClock {
    CLOCK.with(|c| *c)
}

/// Which handle an operation is given.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pick {
    /// R1.
    Background,
    /// R1.
    Todo,
    /// One of the handles issued so far in this case (contexts and registrations, live or
    /// stale), by index modulo their number.
    Issued(u16),
    /// A handle never issued (A2).
    Forged(u64),
    /// The all-zero handle (R3).
    Dead,
}

/// What a creation makes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Make {
    /// C1.
    Cancel,
    /// D1: `at` is relative to the case's starting tick (`u64::MAX`: never).
    Deadline { at: u64, cause: u32 },
    /// D1: `now + ticks`, saturating.
    Timeout { ticks: u64, cause: u32 },
    /// V1.
    Value { key: usize, value: usize },
    /// W1.
    Detached,
}

/// One operation of a sequence.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Create {
        parent: Pick,
        make: Make,
    },
    Cancel {
        h: Pick,
        cause: u32,
    },
    Release {
        h: Pick,
    },
    Advance {
        ticks: u64,
    },
    /// `expire(now - ticks)` when `back`, else `expire(now + ticks)`.
    Expire {
        back: bool,
        ticks: u64,
    },
    AfterFunc {
        h: Pick,
    },
    Stop {
        h: Pick,
    },
    Query {
        h: Pick,
        key: usize,
    },
}

/// One generated case.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// Selects the arena capacity in [`CAPACITIES`].
    pub(crate) capacity: u8,
    /// Compare every observable of every handle after every `check_every`-th step (and after the
    /// last). Above 1, checks happen more rarely, so that walks also meet deadlines that no check
    /// has seen yet (the two paths of C4).
    pub(crate) check_every: u8,
    pub(crate) ops: Vec<Op>,
}

/// Arena sizes a case can run in: tiny ones fill up (A3) and reuse slots (A2) all the time.
pub(crate) const CAPACITIES: [usize; 4] = [3, 8, 16, 40];

/// Runs `case`; `Ok(operations executed)` or the first divergence.
pub(crate) fn run(case: &Case) -> Result<u64, String> {
    match CAPACITIES[case.capacity as usize % CAPACITIES.len()] {
        3 => run_in(&Box::new(Arena::<3>::with_clock(clock())), case),
        8 => run_in(&Box::new(Arena::<8>::with_clock(clock())), case),
        16 => run_in(&Box::new(Arena::<16>::with_clock(clock())), case),
        _ => run_in(&Box::new(Arena::<40>::with_clock(clock())), case),
    }
}

fn run_in(arena: &ArenaView, case: &Case) -> Result<u64, String> {
    RAN.with(|r| r.borrow_mut().clear());
    let clock = clock();
    let base = clock.now();
    let mut h = Harness {
        arena,
        clock,
        base,
        model: Model::new(arena.capacity() as u32, base),
        issued: Vec::new(),
        next_token: 1,
    };
    h.observe_all().map_err(|e| format!("at start: {e}"))?;
    let every = usize::from(case.check_every.max(1));
    for (step, op) in case.ops.iter().enumerate() {
        let last = step + 1 == case.ops.len();
        h.step(op)
            .and_then(|()| h.after_step())
            .and_then(|()| {
                if step % every == 0 || last {
                    h.observe_all()
                } else {
                    Ok(())
                }
            })
            .map_err(|e| format!("step {step} {op:?}: {e}"))?;
    }
    h.release_all().map_err(|e| format!("final release: {e}"))?;
    bump(&COVERAGE.full_refusals, u64::from(arena.stats().full_count));
    Ok(case.ops.len() as u64)
}

struct Harness<'a> {
    arena: &'a ArenaView,
    clock: &'static ManualClock,
    base: u64,
    model: Model,
    issued: Vec<(MHandle, Handle)>,
    next_token: usize,
}

fn same<T: PartialEq + Debug>(what: &str, engine: T, model: T) -> Result<(), String> {
    if engine == model {
        Ok(())
    } else {
        Err(format!("{what}: engine {engine:?}, model {model:?}"))
    }
}

fn merr(e: Error) -> MErr {
    match e {
        Error::Canceled => MErr::Canceled,
        Error::DeadlineExceeded => MErr::DeadlineExceeded,
        Error::Full => MErr::Full,
        Error::Stale => MErr::Stale,
        Error::Root => MErr::Root,
        Error::Detached => MErr::Detached,
        Error::NotContext => MErr::NotContext,
        Error::ZeroKey => MErr::ZeroKey,
        Error::NotDone => MErr::NotDone,
        other => panic!("an error the model does not know: {other:?}"),
    }
}

fn mres<T>(r: Result<T, Error>) -> Result<T, MErr> {
    r.map_err(merr)
}

impl Harness<'_> {
    fn pick(&self, p: Pick) -> (MHandle, Handle) {
        match p {
            Pick::Background => (MHandle::Background, Handle::BACKGROUND),
            Pick::Todo => (MHandle::Todo, Handle::TODO),
            Pick::Issued(_) if self.issued.is_empty() => (MHandle::Background, Handle::BACKGROUND),
            // Counted from the newest, so that small indices name recent handles.
            Pick::Issued(i) => {
                let n = self.issued.len();
                self.issued[n - 1 - usize::from(i) % n]
            }
            Pick::Dead => (MHandle::Forged, Handle::DEAD),
            Pick::Forged(x) => {
                let raw = if x & 1 == 0 {
                    // A generation no slot reaches (they are 25 bits wide).
                    x | (1 << 63)
                } else {
                    // A small generation, an index past the end of the arena.
                    let low = self.arena.capacity() as u64 + 1 + u64::from(x as u16);
                    ((x >> 40) & 0xff) << 32 | low
                };
                (MHandle::Forged, Handle::from_raw(raw))
            }
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        same("clock", self.arena.now(), self.model.now())?;
        match *op {
            Op::Create { parent, make } => {
                let (mp, ep) = self.pick(parent);
                let now = self.model.now();
                let (engine, model) = match make {
                    Make::Cancel => (
                        self.arena.with_cancel(ep),
                        self.model.create(mp, Create::Cancel),
                    ),
                    Make::Deadline { at, cause } => {
                        let at = self.base.saturating_add(at);
                        (
                            self.arena.with_deadline_cause(ep, at, cause),
                            self.model.create(mp, Create::Deadline { at, cause }),
                        )
                    }
                    Make::Timeout { ticks, cause } => (
                        self.arena.with_timeout_cause(ep, ticks, cause),
                        self.model.create(
                            mp,
                            Create::Deadline {
                                at: now.saturating_add(ticks),
                                cause,
                            },
                        ),
                    ),
                    Make::Value { key, value } => (
                        self.arena.with_value(ep, key, value),
                        self.model.create(mp, Create::Value { key, value }),
                    ),
                    Make::Detached => (
                        self.arena.without_cancel(ep),
                        self.model.create(mp, Create::Detached),
                    ),
                };
                same(
                    "create",
                    engine.map(|_| ()).map_err(merr),
                    model.map(|_| ()),
                )?;
                if let (Ok(e), Ok(m)) = (engine, model) {
                    if self
                        .issued
                        .iter()
                        .any(|&(om, oe)| oe == e && om != m && self.is_live(om))
                    {
                        return Err(format!("create returned {e:?}, a handle still live"));
                    }
                    self.issued.push((m, e));
                }
            }
            Op::Cancel { h, cause } => {
                let (m, e) = self.pick(h);
                same(
                    "cancel",
                    mres(self.arena.cancel(e, cause)),
                    self.model.cancel(m, cause),
                )?;
            }
            Op::Release { h } => {
                let (m, e) = self.pick(h);
                same(
                    "release",
                    mres(self.arena.release(e)),
                    self.model.release(m),
                )?;
            }
            Op::Advance { ticks } => {
                self.clock.advance(ticks);
                self.model.advance(ticks);
            }
            Op::Expire { back, ticks } => {
                let now = self.model.now();
                let at = if back {
                    now.saturating_sub(ticks)
                } else {
                    now.saturating_add(ticks)
                };
                let handled = self.arena.expire(at);
                bump(&COVERAGE.deadlines_expired, u64::from(handled));
                same("expire", handled, self.model.expire(at))?;
            }
            Op::AfterFunc { h } => {
                let (m, e) = self.pick(h);
                let token = self.next_token;
                self.next_token += 1;
                let engine = mres(self.arena.after_func(e, Callback::new(record, token)));
                let model = self.model.after_func(m, token);
                match (engine, model) {
                    (Ok(stop), Ok(Registered::RanNow)) => {
                        same("after_func stop handle", stop, Handle::DEAD)?
                    }
                    (Ok(stop), Ok(Registered::Later(reg))) => {
                        if stop == Handle::DEAD {
                            return Err(
                                "after_func ran the callback; the model registered it".into()
                            );
                        }
                        self.issued.push((reg, stop));
                    }
                    (engine, model) => same("after_func", engine.map(|_| ()), model.map(|_| ()))?,
                }
            }
            Op::Stop { h } => {
                let (m, e) = self.pick(h);
                same("stop", self.arena.stop(e), self.model.stop(m))?;
            }
            Op::Query { h, key } => {
                let (m, e) = self.pick(h);
                self.observe(m, e)?;
                same(
                    "value",
                    mres(self.arena.value(e, key)),
                    self.model.value(m, key),
                )?;
            }
        }
        Ok(())
    }

    fn is_live(&self, m: MHandle) -> bool {
        !matches!(self.model.err(m), Err(MErr::Stale))
    }

    /// What is compared after every step: callbacks run, figures, the driver's next deadline.
    fn after_step(&mut self) -> Result<(), String> {
        let mut ran = RAN.with(|r| std::mem::take(&mut *r.borrow_mut()));
        ran.sort_unstable();
        bump(&COVERAGE.callbacks_run, ran.len() as u64);
        same("callbacks run", ran, self.model.take_ran())?;
        let s = self.arena.stats();
        let m = self.model.stats();
        same(
            "stats (capacity, in_use, high_water, full_count)",
            (s.capacity, s.in_use, s.high_water, s.full_count),
            (m.capacity, m.in_use, m.high_water, m.full_count),
        )?;
        same(
            "next_deadline",
            self.arena.next_deadline(),
            self.model.next_deadline(),
        )
    }

    /// Every observable of one handle.
    fn observe(&self, m: MHandle, e: Handle) -> Result<(), String> {
        let a = self.arena;
        let what = |q: &str| format!("{q}({m:?} = {e:?})");
        let err = mres(a.err(e));
        match err {
            Err(MErr::Stale) => bump(&COVERAGE.stale_answers, 1),
            Err(MErr::DeadlineExceeded) => bump(&COVERAGE.done_by_deadline_seen, 1),
            _ => {}
        }
        same(&what("err"), err, self.model.err(m))?;
        same(&what("is_done"), a.is_done(e), err.is_err())?;
        same(
            &what("cause"),
            mres(a.cause(e)).map(|c| c.map(|c| c.get())),
            self.model.cause(m),
        )?;
        same(
            &what("deadline"),
            mres(a.deadline(e)),
            self.model.deadline(m),
        )?;
        for key in 0..=3 {
            same(
                &what(&format!("value key {key}")),
                mres(a.value(e, key)),
                self.model.value(m, key),
            )?;
        }
        Ok(())
    }

    fn observe_all(&self) -> Result<(), String> {
        for p in [
            Pick::Background,
            Pick::Todo,
            Pick::Dead,
            Pick::Forged(6),
            Pick::Forged(7),
        ] {
            let (m, e) = self.pick(p);
            self.observe(m, e)?;
        }
        for &(m, e) in &self.issued {
            self.observe(m, e)?;
        }
        Ok(())
    }

    /// Gives back every handle still held, newest first, and checks that the arena is empty
    /// again (A5, A6: no slot ever leaks).
    fn release_all(&mut self) -> Result<(), String> {
        for i in (0..self.issued.len()).rev() {
            let (m, e) = self.issued[i];
            if self.is_live(m) || matches!(m, MHandle::Reg(_)) {
                same(
                    "release",
                    mres(self.arena.release(e)),
                    self.model.release(m),
                )?;
                self.after_step()?;
            }
        }
        same(
            "slots in use after releasing everything",
            self.arena.stats().in_use,
            0,
        )
    }
}

/// Decodes a case from raw bytes (the fuzz target's input): every byte string is a valid case.
pub(crate) fn decode(data: &[u8]) -> Case {
    let mut r = Bytes(data);
    let capacity = r.u8();
    let check_every = 1 + r.u8() % 3;
    let mut ops = Vec::new();
    while !r.0.is_empty() && ops.len() < 512 {
        ops.push(r.op());
    }
    Case {
        capacity,
        check_every,
        ops,
    }
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }

    fn cause(&mut self) -> u32 {
        match self.u8() % 6 {
            0 | 1 => 0,
            n => 99 + u32::from(n),
        }
    }

    fn ticks(&mut self, max: u8) -> u64 {
        match self.u8() {
            255 => u64::MAX,
            b => u64::from(b % max),
        }
    }

    fn pick(&mut self) -> Pick {
        match self.u8() % 16 {
            0 => Pick::Background,
            1 => Pick::Todo,
            2 => Pick::Forged(u64::from(self.u16()) << 8 | u64::from(self.u8())),
            3 => Pick::Dead,
            4 => Pick::Issued(self.u16()),
            // Mostly recent handles.
            _ => Pick::Issued(u16::from(self.u8() % 8)),
        }
    }

    fn op(&mut self) -> Op {
        match self.u8() % 16 {
            0..=5 => {
                let parent = self.pick();
                let make = match self.u8() % 6 {
                    0 | 1 => Make::Cancel,
                    2 => Make::Deadline {
                        at: self.ticks(60),
                        cause: self.cause(),
                    },
                    3 => Make::Timeout {
                        ticks: self.ticks(30),
                        cause: self.cause(),
                    },
                    4 => Make::Value {
                        key: usize::from(self.u8() % 4),
                        value: usize::from(self.u8()),
                    },
                    _ => Make::Detached,
                };
                Op::Create { parent, make }
            }
            6 | 7 => Op::Cancel {
                h: self.pick(),
                cause: self.cause(),
            },
            8 | 9 => Op::Release { h: self.pick() },
            10 => Op::Advance {
                ticks: u64::from(self.u8() % 16),
            },
            11 => Op::Expire {
                back: self.u8() & 1 == 1,
                ticks: u64::from(self.u8() % 32),
            },
            12 | 13 => Op::AfterFunc { h: self.pick() },
            14 => Op::Stop { h: self.pick() },
            _ => Op::Query {
                h: self.pick(),
                key: usize::from(self.u8() % 4),
            },
        }
    }
}
