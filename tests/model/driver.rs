//! The differential driver: runs one sequence of operations on the engine and on the reference
//! model, and compares every answer and every observable after every step: Err, `is_done`,
//! cause, deadline, values, the callbacks that ran (as a sorted list: F5 leaves their order
//! open), `next_deadline` and the arena figures. Shared by `tests/model.rs` (proptest, shrinking)
//! and `fuzz/` (libFuzzer).
//!
//! The engine is reached through [`Engine`]: [`ArenaEngine`] is the raw `ArenaView` API on
//! `Handle`s with a `ManualClock`; the fuzz crate adds the C API (`fuzz/fuzz_targets/capi.rs`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Debug;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use stopwire::{Arena, ArenaView, Callback, Error, Handle, ManualClock};

use crate::reference::{Act, Create, MErr, MHandle, Model, Registered};

/// What the driver needs from an engine. Errors are given in the model's terms.
pub(crate) trait Engine {
    fn capacity(&self) -> usize;
    fn now(&self) -> u64;
    fn advance(&self, ticks: u64);
    fn with_cancel(&self, parent: Handle) -> Result<Handle, MErr>;
    fn with_deadline_cause(&self, parent: Handle, at: u64, cause: u32) -> Result<Handle, MErr>;
    fn with_timeout_cause(&self, parent: Handle, ticks: u64, cause: u32) -> Result<Handle, MErr>;
    fn with_value(&self, parent: Handle, key: usize, value: usize) -> Result<Handle, MErr>;
    fn without_cancel(&self, parent: Handle) -> Result<Handle, MErr>;
    /// `Ok(Some(first))`, or `Ok(None)` when the engine does not tell whether it was first.
    fn cancel(&self, h: Handle, cause: u32) -> Result<Option<bool>, MErr>;
    fn release(&self, h: Handle) -> Result<(), MErr>;
    /// Registers the driver's recording callback with `token` as its argument.
    fn after_func(&self, h: Handle, token: usize) -> Result<Handle, MErr>;
    fn stop(&self, h: Handle) -> bool;
    fn expire(&self, now: u64) -> u32;
    /// `None` when the engine has no such query.
    fn next_deadline(&self) -> Option<Option<u64>>;
    fn err(&self, h: Handle) -> Result<(), MErr>;
    fn is_done(&self, h: Handle) -> bool;
    fn cause(&self, h: Handle) -> Result<Option<u32>, MErr>;
    fn deadline(&self, h: Handle) -> Result<Option<u64>, MErr>;
    fn value(&self, h: Handle, key: usize) -> Result<Option<usize>, MErr>;
    /// Capacity, in use, high-water mark, refused creations.
    fn stats(&self) -> (u32, u32, u32, u32);
    /// Makes a model answer as coarse as the engine's (the C API has one "invalid argument").
    fn fold(&self, e: MErr) -> MErr {
        e
    }
    /// Checks of arguments the model has no notion of (the C API's NULL pointers); each must
    /// change nothing.
    fn extra_checks(&self, _h: Handle) -> Result<(), String> {
        Ok(())
    }
}

/// How a callback's action reaches the engine of the case being run.
pub(crate) type Perform = Rc<dyn Fn(Act, Handle)>;

thread_local! {
    /// Tokens of the engine's callbacks, in the order they ran (callbacks run on the thread that
    /// makes the context done, F3: always this one here).
    static RAN: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// What each registered callback does when it runs, by token.
    static ACTIONS: RefCell<HashMap<usize, (Act, Handle)>> = RefCell::new(HashMap::new());
    /// How a callback reaches the engine of the case being run.
    static PERFORM: RefCell<Option<Perform>> = const { RefCell::new(None) };
    /// One clock per thread, so that parallel tests do not move each other's time. Never goes
    /// back (T4): each case starts from where the last one left it.
    static CLOCK: &'static ManualClock = Box::leak(Box::new(ManualClock::new(1_000)));
}

/// The body of every engine callback: records that it ran, then does its action (F3: callbacks
/// may call the library). Public so that the C target can wrap it.
pub(crate) fn callback_ran(token: usize) {
    RAN.with(|r| r.borrow_mut().push(token));
    let action = ACTIONS.with(|a| a.borrow().get(&token).copied());
    let perform = PERFORM.with(|p| p.borrow().clone());
    if let (Some((act, h)), Some(perform)) = (action, perform) {
        perform(act, h);
    }
}

fn clock() -> &'static ManualClock {
    CLOCK.with(|c| *c)
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

/// The engine's own error in the model's terms.
pub(crate) fn merr(e: Error) -> MErr {
    match e {
        Error::Canceled => MErr::Canceled,
        Error::DeadlineExceeded => MErr::DeadlineExceeded,
        Error::Full => MErr::Full,
        Error::Stale => MErr::Stale,
        Error::Root => MErr::Root,
        Error::Detached => MErr::Detached,
        Error::ValueLayer => MErr::ValueLayer,
        Error::NotContext => MErr::NotContext,
        Error::ZeroKey => MErr::ZeroKey,
        Error::NotDone => MErr::NotDone,
        other => panic!("an error the model does not know: {other:?}"),
    }
}

fn mres<T>(r: Result<T, Error>) -> Result<T, MErr> {
    r.map_err(merr)
}

/// The raw engine API: an `ArenaView`, its `Handle`s and a `ManualClock`.
pub(crate) struct ArenaEngine {
    arena: Rc<ArenaView>,
    clock: &'static ManualClock,
}

impl Engine for ArenaEngine {
    fn capacity(&self) -> usize {
        self.arena.capacity()
    }
    fn now(&self) -> u64 {
        self.arena.now()
    }
    fn advance(&self, ticks: u64) {
        self.clock.advance(ticks);
    }
    fn with_cancel(&self, parent: Handle) -> Result<Handle, MErr> {
        mres(self.arena.with_cancel(parent))
    }
    fn with_deadline_cause(&self, parent: Handle, at: u64, cause: u32) -> Result<Handle, MErr> {
        mres(self.arena.with_deadline_cause(parent, at, cause))
    }
    fn with_timeout_cause(&self, parent: Handle, ticks: u64, cause: u32) -> Result<Handle, MErr> {
        mres(self.arena.with_timeout_cause(parent, ticks, cause))
    }
    fn with_value(&self, parent: Handle, key: usize, value: usize) -> Result<Handle, MErr> {
        mres(self.arena.with_value(parent, key, value))
    }
    fn without_cancel(&self, parent: Handle) -> Result<Handle, MErr> {
        mres(self.arena.without_cancel(parent))
    }
    fn cancel(&self, h: Handle, cause: u32) -> Result<Option<bool>, MErr> {
        mres(self.arena.cancel(h, cause)).map(Some)
    }
    fn release(&self, h: Handle) -> Result<(), MErr> {
        mres(self.arena.release(h))
    }
    fn after_func(&self, h: Handle, token: usize) -> Result<Handle, MErr> {
        mres(self.arena.after_func(h, Callback::new(callback_ran, token)))
    }
    fn stop(&self, h: Handle) -> bool {
        self.arena.stop(h)
    }
    fn expire(&self, now: u64) -> u32 {
        self.arena.expire(now)
    }
    fn next_deadline(&self) -> Option<Option<u64>> {
        Some(self.arena.next_deadline())
    }
    fn err(&self, h: Handle) -> Result<(), MErr> {
        mres(self.arena.err(h))
    }
    fn is_done(&self, h: Handle) -> bool {
        self.arena.is_done(h)
    }
    fn cause(&self, h: Handle) -> Result<Option<u32>, MErr> {
        mres(self.arena.cause(h)).map(|c| c.map(|c| c.get()))
    }
    fn deadline(&self, h: Handle) -> Result<Option<u64>, MErr> {
        mres(self.arena.deadline(h))
    }
    fn value(&self, h: Handle, key: usize) -> Result<Option<usize>, MErr> {
        mres(self.arena.value(h, key))
    }
    fn stats(&self) -> (u32, u32, u32, u32) {
        let s = self.arena.stats();
        (s.capacity, s.in_use, s.high_water, s.full_count)
    }
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
    /// Registers a callback; when it runs it cancels (`Some((false, t))`) or releases
    /// (`Some((true, t))`) the context `t`, if `t` names one.
    AfterFunc {
        h: Pick,
        act: Option<(bool, Pick)>,
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

/// Runs `case` on a fresh arena; `Ok(operations executed)` or the first divergence.
pub(crate) fn run(case: &Case) -> Result<u64, String> {
    let arena: Rc<ArenaView> = match CAPACITIES[case.capacity as usize % CAPACITIES.len()] {
        3 => Rc::new(Arena::<3>::with_clock(clock())),
        8 => Rc::new(Arena::<8>::with_clock(clock())),
        16 => Rc::new(Arena::<16>::with_clock(clock())),
        _ => Rc::new(Arena::<40>::with_clock(clock())),
    };
    let engine = Rc::new(ArenaEngine {
        arena,
        clock: clock(),
    });
    let e = engine.clone();
    let perform: Perform = Rc::new(move |act, h| perform(&*e, act, h));
    let r = run_with(&*engine, perform, case);
    bump(
        &COVERAGE.full_refusals,
        u64::from(engine.arena.stats().full_count),
    );
    r
}

/// What a callback's action does on an engine.
pub(crate) fn perform(e: &dyn Engine, act: Act, h: Handle) {
    match act {
        Act::Nothing => {}
        Act::Cancel(_) => {
            let _ = e.cancel(h, 0);
        }
        Act::Release(_) => {
            let _ = e.release(h);
        }
    }
}

/// Runs `case` on `engine`, whose callbacks do their actions through `perform`. The engine's
/// arena must have no slot in use; its high-water mark is compared only if it is 0 at the start.
pub(crate) fn run_with<E: Engine>(
    engine: &E,
    perform: Perform,
    case: &Case,
) -> Result<u64, String> {
    RAN.with(|r| r.borrow_mut().clear());
    ACTIONS.with(|a| a.borrow_mut().clear());
    PERFORM.with(|p| *p.borrow_mut() = Some(perform));
    let start = engine.stats();
    let base = engine.now();
    let mut h = Harness {
        engine,
        base,
        start,
        model: Model::new(engine.capacity() as u32, base),
        issued: Vec::new(),
        next_token: 1,
    };
    let r = (|| {
        same("slots in use at the start", start.1, 0)?;
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
        Ok(case.ops.len() as u64)
    })();
    PERFORM.with(|p| *p.borrow_mut() = None);
    r
}

struct Harness<'a, E: Engine> {
    engine: &'a E,
    base: u64,
    /// The engine's figures at the start.
    start: (u32, u32, u32, u32),
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

impl<E: Engine> Harness<'_, E> {
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
                    // A generation no slot reaches (the model's arenas have at most 6 index
                    // bits, so bit 63 is a generation bit above the 57 a state word holds).
                    x | (1 << 63)
                } else {
                    // A small generation with an index field of 0 (never a slot, R3).
                    ((x >> 40) & 0xff) << 32 | (x & 0xffff) << 16
                };
                (MHandle::Forged, Handle::from_raw(raw))
            }
        }
    }

    /// Compares an engine answer with the model's, folded to the engine's coarseness.
    fn same_res<T: PartialEq + Debug>(
        &self,
        what: &str,
        engine: Result<T, MErr>,
        model: Result<T, MErr>,
    ) -> Result<(), String> {
        same(what, engine, model.map_err(|e| self.engine.fold(e)))
    }

    fn step(&mut self, op: &Op) -> Result<(), String> {
        let en = self.engine;
        same("clock", en.now(), self.model.now())?;
        match *op {
            Op::Create { parent, make } => {
                let (mp, ep) = self.pick(parent);
                let now = self.model.now();
                let (engine, model) = match make {
                    Make::Cancel => (en.with_cancel(ep), self.model.create(mp, Create::Cancel)),
                    Make::Deadline { at, cause } => {
                        let at = self.base.saturating_add(at);
                        (
                            en.with_deadline_cause(ep, at, cause),
                            self.model.create(mp, Create::Deadline { at, cause }),
                        )
                    }
                    Make::Timeout { ticks, cause } => (
                        en.with_timeout_cause(ep, ticks, cause),
                        self.model.create(
                            mp,
                            Create::Deadline {
                                at: now.saturating_add(ticks),
                                cause,
                            },
                        ),
                    ),
                    Make::Value { key, value } => (
                        en.with_value(ep, key, value),
                        self.model.create(mp, Create::Value { key, value }),
                    ),
                    Make::Detached => (
                        en.without_cancel(ep),
                        self.model.create(mp, Create::Detached),
                    ),
                };
                self.same_res("create", engine.map(|_| ()), model.map(|_| ()))?;
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
                let model = self.model.cancel(m, cause);
                match en.cancel(e, cause) {
                    Ok(Some(first)) => self.same_res("cancel", Ok(first), model)?,
                    engine => self.same_res("cancel", engine.map(|_| ()), model.map(|_| ()))?,
                }
            }
            Op::Release { h } => {
                let (m, e) = self.pick(h);
                let engine = en.release(e);
                let model = self.model.release(m);
                self.same_res("release", engine, model)?;
            }
            Op::Advance { ticks } => {
                en.advance(ticks);
                self.model.advance(ticks);
            }
            Op::Expire { back, ticks } => {
                let now = self.model.now();
                let at = if back {
                    now.saturating_sub(ticks)
                } else {
                    now.saturating_add(ticks)
                };
                let handled = en.expire(at);
                bump(&COVERAGE.deadlines_expired, u64::from(handled));
                same("expire", handled, self.model.expire(at))?;
            }
            Op::AfterFunc { h, act } => {
                let (m, e) = self.pick(h);
                let token = self.next_token;
                self.next_token += 1;
                let (mact, eh) = match act {
                    Some((release, t)) => match self.pick(t) {
                        // Only contexts: releasing a registration is `stop`, whose result
                        // depends on the order of callbacks (F5).
                        (MHandle::Reg(_), _) => (Act::Nothing, Handle::DEAD),
                        (mt, et) if release => (Act::Release(mt), et),
                        (mt, et) => (Act::Cancel(mt), et),
                    },
                    None => (Act::Nothing, Handle::DEAD),
                };
                ACTIONS.with(|a| a.borrow_mut().insert(token, (mact, eh)));
                let engine = en.after_func(e, token);
                let model = self.model.after_func(m, token, mact);
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
                    (engine, model) => {
                        self.same_res("after_func", engine.map(|_| ()), model.map(|_| ()))?
                    }
                }
            }
            Op::Stop { h } => {
                let (m, e) = self.pick(h);
                same("stop", en.stop(e), self.model.stop(m))?;
            }
            Op::Query { h, key } => {
                let (m, e) = self.pick(h);
                self.observe(m, e)?;
                self.same_res("value", en.value(e, key), self.model.value(m, key))?;
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
        let (capacity, in_use, high_water, full) = self.engine.stats();
        let m = self.model.stats();
        same(
            "stats (capacity, in_use, full_count)",
            (capacity, in_use, full - self.start.3),
            (m.capacity, m.in_use, m.full_count),
        )?;
        if self.start.2 == 0 {
            same("stats high_water", high_water, m.high_water)?;
        }
        if let Some(next) = self.engine.next_deadline() {
            same("next_deadline", next, self.model.next_deadline())?;
        }
        Ok(())
    }

    /// Every observable of one handle.
    fn observe(&self, m: MHandle, e: Handle) -> Result<(), String> {
        let en = self.engine;
        let what = |q: &str| format!("{q}({m:?} = {e:?})");
        let err = en.err(e);
        match err {
            Err(MErr::Stale) => bump(&COVERAGE.stale_answers, 1),
            Err(MErr::DeadlineExceeded) => bump(&COVERAGE.done_by_deadline_seen, 1),
            _ => {}
        }
        self.same_res(&what("err"), err, self.model.err(m))?;
        self.same_res(&what("cause"), en.cause(e), self.model.cause(m))?;
        same(&what("is_done"), en.is_done(e), err.is_err())?;
        self.same_res(&what("deadline"), en.deadline(e), self.model.deadline(m))?;
        for key in 0..=3 {
            self.same_res(
                &what(&format!("value key {key}")),
                en.value(e, key),
                self.model.value(m, key),
            )?;
        }
        en.extra_checks(e)
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
                let model = self.model.release(m);
                self.same_res("release", self.engine.release(e), model)?;
                self.after_step()?;
            }
        }
        same(
            "slots in use after releasing everything",
            self.engine.stats().1,
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
            12 | 13 => Op::AfterFunc {
                h: self.pick(),
                act: match self.u8() % 4 {
                    0 => Some((false, self.pick())),
                    1 => Some((true, self.pick())),
                    _ => None,
                },
            },
            14 => Op::Stop { h: self.pick() },
            _ => Op::Query {
                h: self.pick(),
                key: usize::from(self.u8() % 4),
            },
        }
    }
}
