//! The reference model of docs/spec.md: plain std Rust, vectors and loops, no atomics, no arena.
//!
//! It is written from the rules, not from the engine: every node is a record in a vector that
//! is never reused (so "stale" is a flag, not a generation), every walk is a recursion over an
//! explicit child list, every count is a plain integer. The driver (`driver.rs`) runs the same
//! operations on the engine and on this model and compares every observable.
//!
//! # Readings of the rules that the model fixes
//!
//! The SPEC leaves a few points open; the model takes one reading of each and states it here.
//!
//! - *Reached* (F3, T5): a context is made done either by a check that finds its deadline passed
//!   (lazy, D5: that changes nothing but what checks report) or by a *walk*: its own cancel or
//!   release, an ancestor's, or the deadline driver handling its deadline owner or an ancestor's.
//!   The first walk that reaches a context fixes its Err and cause for good (if its deadline had
//!   passed, that is `DeadlineExceeded` with its deadline owner's cause, C4/D4/K5), runs its
//!   callbacks (F3) and, for a deadline owner, ends its wait in the driver's queue (T5: it was
//!   "done before by other means"). A context born done (C7, D3) is reached at birth.
//! - *Deadline owner* (D2, K5): the context whose own deadline is the effective one. A
//!   `with_deadline` under a parent whose effective deadline is strictly earlier owns nothing
//!   (an ordinary cancel child); an equal deadline is kept, so the child owns it and its cause.
//! - *Driver order* (T5): `expire(now)` handles pending owners with deadline `<= now` by deadline,
//!   ties in creation order (so an ancestor comes before a descendant with the same deadline,
//!   and the descendant "becomes done with it" and is not counted).
//! - *Callbacks that call the library* (F3, F5): a callback's actions happen after the walk that
//!   made it due, before the call that made it due returns; `expire` handles its owners one by
//!   one in the order above, each owner's callbacks before the next owner. Only actions whose
//!   result does not depend on the order of sibling callbacks are generated (cancel without a
//!   cause, release of a context).
//! - *Slots* (A5, F6): a context takes a slot from creation until it is released and no child
//!   context (of any kind, held or itself kept) remains; a pending callback registration takes a
//!   slot until it runs or is stopped; a callback on a done context runs at once and takes none.

/// What an operation can answer: the two reasons of a done context and the refusals
/// (mirrors `stopwire::Error`, kept separate so that the model does not depend on the crate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MErr {
    /// Done: canceled.
    Canceled,
    /// Done: deadline passed.
    DeadlineExceeded,
    /// A3.
    Full,
    /// A2.
    Stale,
    /// R2.
    Root,
    /// W1.
    Detached,
    /// V4: a value layer has no cancellation of its own.
    ValueLayer,
    /// The handle names a callback registration.
    NotContext,
    /// V1.
    ZeroKey,
    /// K6: no cause before done.
    NotDone,
    /// Not produced by the model: the C API folds `Root`, `Detached`, `NotContext` and `ZeroKey`
    /// into one status (`SW_ERR_INVALID_ARG`), and the driver folds the model's answers the same
    /// way before comparing them with it.
    #[allow(dead_code, reason = "made by the C API engine of the fuzz crate")]
    InvalidArg,
}

/// What a callback does when it runs (F3: a callback may call the library). Only actions whose
/// combined effect does not depend on the order of the callbacks (F5) are modelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    /// Nothing but being recorded.
    Nothing,
    /// `cancel(target, 0)`.
    Cancel(MHandle),
    /// `release(target)` (a context handle).
    Release(MHandle),
}

/// Why a context is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// C2.
    Canceled,
    /// D4.
    DeadlineExceeded,
}

impl Reason {
    fn err(self) -> MErr {
        match self {
            Reason::Canceled => MErr::Canceled,
            Reason::DeadlineExceeded => MErr::DeadlineExceeded,
        }
    }
}

/// A handle as the model knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MHandle {
    /// R1.
    Background,
    /// R1.
    Todo,
    /// A context, by creation number.
    Ctx(usize),
    /// A callback registration, by registration number.
    Reg(usize),
    /// A handle never issued (forged, or the all-zero one, R3).
    Forged,
}

/// What a creation asks for (D1: `with_timeout` is turned into an absolute deadline by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Create {
    /// C1.
    Cancel,
    /// D1, K5: absolute deadline and the cause it records if it fires (0: none).
    Deadline {
        /// Absolute tick.
        at: u64,
        /// Cause code, 0 for none.
        cause: u32,
    },
    /// V1.
    Value {
        /// Key (0 is refused).
        key: usize,
        /// Value.
        value: usize,
    },
    /// W1.
    Detached,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Cancel,
    /// Owns its deadline (D2) and records `cause` if it fires (K5).
    Owner {
        at: u64,
        cause: u32,
    },
    Value {
        key: usize,
        value: usize,
    },
    Detached,
}

#[derive(Clone, Debug)]
struct Node {
    parent: Option<usize>,
    kind: Kind,
    /// Effective deadline (D2, D6) and the owner that set it.
    deadline: Option<(u64, usize)>,
    /// Set by the first walk that reached it (see the module docs), or at birth.
    reached: Option<(Reason, u32)>,
    released: bool,
    freed: bool,
    children: Vec<usize>,
    /// Pending registrations on this context.
    regs: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RegState {
    Pending,
    Ran,
    Stopped,
}

#[derive(Clone, Debug)]
struct Reg {
    /// The context it waits for; `None` for a root or a detached context (F7: never runs).
    target: Option<usize>,
    token: usize,
    act: Act,
    state: RegState,
}

/// What `after_func` did (F1, F2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Registered {
    /// The context was already done: the callback ran before the call returned (F2).
    RanNow,
    /// Registered; the handle stops it.
    Later(MHandle),
}

/// Arena figures (A6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct MStats {
    /// Slots.
    pub(crate) capacity: u32,
    /// Slots in use.
    pub(crate) in_use: u32,
    /// Most ever in use.
    pub(crate) high_water: u32,
    /// Refused creations.
    pub(crate) full_count: u32,
}

/// The whole modelled world: one arena and its clock.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    now: u64,
    stats: MStats,
    nodes: Vec<Node>,
    regs: Vec<Reg>,
    /// Tokens of the callbacks that ran since the last [`Model::take_ran`].
    ran: Vec<usize>,
    /// Actions of callbacks that ran and whose action has not been done yet.
    due: Vec<Act>,
}

enum Target {
    Root,
    Ctx(usize),
}

impl Model {
    /// An empty arena of `capacity` slots whose clock reads `now`.
    pub(crate) fn new(capacity: u32, now: u64) -> Self {
        Model {
            now,
            stats: MStats {
                capacity,
                ..MStats::default()
            },
            nodes: Vec::new(),
            regs: Vec::new(),
            ran: Vec::new(),
            due: Vec::new(),
        }
    }

    /// The clock.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Moves the clock (T4: monotonic, saturating).
    pub(crate) fn advance(&mut self, ticks: u64) {
        self.now = self.now.saturating_add(ticks);
    }

    /// A6.
    pub(crate) fn stats(&self) -> MStats {
        self.stats
    }

    /// The tokens of the callbacks that ran since the last call, sorted (F5: order unspecified).
    pub(crate) fn take_ran(&mut self) -> Vec<usize> {
        let mut r = std::mem::take(&mut self.ran);
        r.sort_unstable();
        r
    }

    // ---- validation (A2, R1, R3) ----

    fn resolve_ctx(&self, h: MHandle) -> Result<Target, MErr> {
        match h {
            MHandle::Background | MHandle::Todo => Ok(Target::Root),
            MHandle::Ctx(i) if !self.nodes[i].released => Ok(Target::Ctx(i)),
            MHandle::Reg(r) if self.regs[r].state == RegState::Pending => Err(MErr::NotContext),
            _ => Err(MErr::Stale),
        }
    }

    // ---- what a check reports ----

    /// The cause a deadline gives: its owner's (K5).
    fn owner_cause(&self, i: usize) -> u32 {
        let (_, owner) = self.nodes[i].deadline.expect("only asked with a deadline");
        match self.nodes[owner].kind {
            Kind::Owner { cause, .. } => cause,
            _ => unreachable!("a deadline owner owns a deadline"),
        }
    }

    fn expired_at(&self, i: usize, now: u64) -> bool {
        self.nodes[i].deadline.is_some_and(|(d, _)| d <= now)
    }

    /// Done, and why (C4, D4, K5): the reached state, or the deadline as a check sees it.
    fn done(&self, i: usize) -> Option<(Reason, u32)> {
        let n = &self.nodes[i];
        if n.reached.is_some() {
            return n.reached;
        }
        if self.expired_at(i, self.now) {
            return Some((Reason::DeadlineExceeded, self.owner_cause(i)));
        }
        None
    }

    /// `err` (C2, C4, D4, R1, W1, A2).
    pub(crate) fn err(&self, h: MHandle) -> Result<(), MErr> {
        match self.resolve_ctx(h)? {
            Target::Root => Ok(()),
            Target::Ctx(i) => match self.done(i) {
                None => Ok(()),
                Some((r, _)) => Err(r.err()),
            },
        }
    }

    /// `cause` (K1-K7): `Ok(None)` when done without one, `NotDone` before done.
    pub(crate) fn cause(&self, h: MHandle) -> Result<Option<u32>, MErr> {
        match self.resolve_ctx(h)? {
            Target::Root => Err(MErr::NotDone),
            Target::Ctx(i) => match self.done(i) {
                None => Err(MErr::NotDone),
                Some((_, 0)) => Ok(None),
                Some((_, c)) => Ok(Some(c)),
            },
        }
    }

    /// `deadline` (D2, D6).
    pub(crate) fn deadline(&self, h: MHandle) -> Result<Option<u64>, MErr> {
        match self.resolve_ctx(h)? {
            Target::Root => Ok(None),
            Target::Ctx(i) => Ok(self.nodes[i].deadline.map(|(d, _)| d)),
        }
    }

    /// `value` (V1-V3, W1): the nearest layer with `key`, through released ancestors.
    pub(crate) fn value(&self, h: MHandle, key: usize) -> Result<Option<usize>, MErr> {
        if key == 0 {
            return Err(MErr::ZeroKey);
        }
        let mut at = match self.resolve_ctx(h)? {
            Target::Root => return Ok(None),
            Target::Ctx(i) => Some(i),
        };
        while let Some(i) = at {
            if let Kind::Value { key: k, value } = self.nodes[i].kind {
                if k == key {
                    return Ok(Some(value));
                }
            }
            at = self.nodes[i].parent;
        }
        Ok(None)
    }

    /// The earliest deadline among owners the driver has yet to handle (T5).
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.pending_owners(u64::MAX).first().map(|&(at, _)| at)
    }

    // ---- slots (A3, A5, A6, F6) ----

    fn alloc(&mut self) -> Result<(), MErr> {
        if self.stats.in_use == self.stats.capacity {
            self.stats.full_count += 1;
            return Err(MErr::Full);
        }
        self.stats.in_use += 1;
        self.stats.high_water = self.stats.high_water.max(self.stats.in_use);
        Ok(())
    }

    /// A5: frees a released context no child needs, then its ancestors that this leaves unneeded.
    fn reclaim(&mut self, mut i: usize) {
        loop {
            let n = &self.nodes[i];
            // A5; and a pending registration keeps its context (a released value layer's
            // callbacks still fire when its parent is canceled, V4).
            let needed = n.children.iter().any(|&c| !self.nodes[c].freed) || !n.regs.is_empty();
            if !n.released || n.freed || needed {
                return;
            }
            self.nodes[i].freed = true;
            self.stats.in_use -= 1;
            match self.nodes[i].parent {
                Some(p) => i = p,
                None => return,
            }
        }
    }

    // ---- creation (C1, C7, D1-D3, D8, V1, W1) ----

    /// Creates a child of `parent`.
    pub(crate) fn create(&mut self, parent: MHandle, what: Create) -> Result<MHandle, MErr> {
        let parent = match self.resolve_ctx(parent)? {
            Target::Root => None,
            Target::Ctx(i) => Some(i),
        };
        if let Create::Value { key: 0, .. } = what {
            return Err(MErr::ZeroKey);
        }
        self.alloc()?;
        let id = self.nodes.len();
        let inherited = parent.and_then(|p| self.nodes[p].deadline);
        let (kind, deadline) = match what {
            Create::Cancel => (Kind::Cancel, inherited),
            Create::Deadline { at, cause } => match inherited {
                // D2: a strictly earlier parent deadline wins; the child owns nothing.
                Some((pd, owner)) if pd < at => (Kind::Cancel, Some((pd, owner))),
                _ => (Kind::Owner { at, cause }, Some((at, id))),
            },
            Create::Value { key, value } => (Kind::Value { key, value }, inherited),
            // W1, D8: nothing above the detach point reaches it.
            Create::Detached => (Kind::Detached, None),
        };
        // C7: under a done parent, born done with the parent's Err and cause (W1: not detached).
        // D3: else a deadline already passed makes it born done with its own cause.
        let reached = match (kind, parent.and_then(|p| self.done(p))) {
            (Kind::Detached, _) => None,
            (_, Some(parent_done)) => Some(parent_done),
            (Kind::Owner { at, cause }, None) if at <= self.now => {
                Some((Reason::DeadlineExceeded, cause))
            }
            _ => None,
        };
        self.nodes.push(Node {
            parent,
            kind,
            deadline,
            reached,
            released: false,
            freed: false,
            children: Vec::new(),
            regs: Vec::new(),
        });
        if let Some(p) = parent {
            self.nodes[p].children.push(id);
        }
        Ok(MHandle::Ctx(id))
    }

    // ---- the walk (C2, C5, C6, K4, D4, F3) ----

    /// Reaches `i` (not yet reached) and every descendant not yet reached, except across a
    /// detach point (W2). `now` judges deadlines.
    fn walk(&mut self, i: usize, reason: Reason, cause: u32, now: u64) -> (Reason, u32) {
        let mine = if self.expired_at(i, now) {
            (Reason::DeadlineExceeded, self.owner_cause(i))
        } else {
            (reason, cause)
        };
        self.nodes[i].reached = Some(mine);
        let had_regs = !self.nodes[i].regs.is_empty();
        for r in std::mem::take(&mut self.nodes[i].regs) {
            self.regs[r].state = RegState::Ran;
            self.stats.in_use -= 1;
            self.ran.push(self.regs[r].token);
            self.due.push(self.regs[r].act);
        }
        for c in self.nodes[i].children.clone() {
            let child = &self.nodes[c];
            if child.kind != Kind::Detached && child.reached.is_none() {
                self.walk(c, mine.0, mine.1, now);
            }
        }
        if had_regs {
            self.reclaim(i); // a released layer kept only for its registrations
        }
        mine
    }

    /// Does the actions of the callbacks that ran, and of those these make run, and so on: the
    /// callbacks made due by one call run before it returns, with no lock held (F3).
    fn run_due(&mut self) {
        while let Some(act) = self.due.pop() {
            match act {
                Act::Nothing => {}
                Act::Cancel(h) => {
                    let _ = self.cancel_inner(h, 0);
                }
                Act::Release(h) => {
                    let _ = self.release_inner(h);
                }
            }
        }
    }

    /// `cancel` with `cause` (0: none): true when this call canceled it (C3, K1-K3, R2, W1).
    pub(crate) fn cancel(&mut self, h: MHandle, cause: u32) -> Result<bool, MErr> {
        let r = self.cancel_inner(h, cause);
        self.run_due();
        r
    }

    fn cancel_inner(&mut self, h: MHandle, cause: u32) -> Result<bool, MErr> {
        let i = match self.resolve_ctx(h)? {
            Target::Root => return Err(MErr::Root),
            Target::Ctx(i) => i,
        };
        if self.nodes[i].kind == Kind::Detached {
            return Err(MErr::Detached);
        }
        if matches!(self.nodes[i].kind, Kind::Value { .. }) {
            return Err(MErr::ValueLayer);
        }
        if self.nodes[i].reached.is_some() {
            return Ok(false);
        }
        let was_done = self.done(i).is_some();
        let (reason, _) = self.walk(i, Reason::Canceled, cause, self.now);
        Ok(!was_done && reason == Reason::Canceled)
    }

    /// `release` (A4, A5): cancels (unless detached or reached), and the handle is stale at once.
    /// A registration handle is stopped instead (docs/c-api.md).
    pub(crate) fn release(&mut self, h: MHandle) -> Result<(), MErr> {
        let r = self.release_inner(h);
        self.run_due();
        r
    }

    fn release_inner(&mut self, h: MHandle) -> Result<(), MErr> {
        if let MHandle::Reg(_) = h {
            return if self.stop(h) {
                Ok(())
            } else {
                Err(MErr::Stale)
            };
        }
        let i = match self.resolve_ctx(h)? {
            Target::Root => return Err(MErr::Root),
            Target::Ctx(i) => i,
        };
        // W1, V4: releasing a detached context or a value layer cancels nothing.
        if !matches!(self.nodes[i].kind, Kind::Detached | Kind::Value { .. })
            && self.nodes[i].reached.is_none()
        {
            self.walk(i, Reason::Canceled, 0, self.now);
        }
        self.nodes[i].released = true;
        self.reclaim(i);
        Ok(())
    }

    // ---- callbacks (F1-F7) ----

    /// `after_func`, with `token` standing for the function and its data, and `act` for what it
    /// does when it runs.
    pub(crate) fn after_func(
        &mut self,
        h: MHandle,
        token: usize,
        act: Act,
    ) -> Result<Registered, MErr> {
        let target = match self.resolve_ctx(h)? {
            Target::Root => None,
            Target::Ctx(i) if self.nodes[i].kind == Kind::Detached => None,
            Target::Ctx(i) => {
                if self.done(i).is_some() {
                    self.ran.push(token); // F2
                    self.due.push(act);
                    self.run_due();
                    return Ok(Registered::RanNow);
                }
                Some(i)
            }
        };
        self.alloc()?; // F6
        let r = self.regs.len();
        self.regs.push(Reg {
            target,
            token,
            act,
            state: RegState::Pending,
        });
        if let Some(i) = target {
            self.nodes[i].regs.push(r);
        }
        Ok(Registered::Later(MHandle::Reg(r)))
    }

    /// `stop` (F4, F7): true exactly when it prevented the callback.
    pub(crate) fn stop(&mut self, h: MHandle) -> bool {
        let MHandle::Reg(r) = h else {
            return false;
        };
        if self.regs[r].state != RegState::Pending {
            return false;
        }
        self.regs[r].state = RegState::Stopped;
        self.stats.in_use -= 1;
        if let Some(i) = self.regs[r].target {
            self.nodes[i].regs.retain(|&x| x != r);
            self.reclaim(i);
        }
        true
    }

    // ---- the deadline driver (D5, T5) ----

    /// Owners not yet reached whose deadline is `<= upto`, by deadline then creation.
    fn pending_owners(&self, upto: u64) -> Vec<(u64, usize)> {
        let mut v: Vec<(u64, usize)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n.kind {
                Kind::Owner { at, .. } if n.reached.is_none() && at <= upto => Some((at, i)),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// `expire(now)` (T5): handles each pending owner whose deadline is `<= now`; returns how many.
    pub(crate) fn expire(&mut self, now: u64) -> u32 {
        // A check may already have judged by the clock, so the walk judges by the later of both.
        let judge = now.max(self.now);
        let mut handled = 0;
        for (_, i) in self.pending_owners(now) {
            if self.nodes[i].reached.is_none() {
                let cause = self.owner_cause(i);
                self.walk(i, Reason::DeadlineExceeded, cause, judge);
                handled += 1;
                // Each owner's callbacks run before the next owner is handled.
                self.run_due();
            }
        }
        handled
    }
}
