//! The differential model check: random sequences of operations run on the engine and on a
//! reference model of docs/spec.md (`tests/model/reference.rs`), every observable compared after every
//! step (`tests/model/driver.rs`). A divergence shrinks (proptest) to a minimal sequence.
//!
//! `model_differential_seeded` runs a fixed seed and at least 10^5 operations (the quick run of
//! `cargo xtask test`). Set `STOPWIRE_MODEL_OPS` for a larger run (`cargo xtask verify`) and
//! `STOPWIRE_MODEL_SEED` (a number) for another seed.

#[path = "model/driver.rs"]
mod driver;
#[path = "model/reference.rs"]
mod reference;

use std::sync::atomic::{AtomicU64, Ordering};

use driver::{Case, Make, Op, Pick};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use reference::{Create, MErr, MHandle, Model};

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        2 => Just(Pick::Background),
        1 => Just(Pick::Todo),
        12 => (0u16..6).prop_map(Pick::Issued),
        3 => any::<u16>().prop_map(Pick::Issued),
        1 => any::<u64>().prop_map(Pick::Forged),
        1 => Just(Pick::Dead),
    ]
}

fn cause() -> impl Strategy<Value = u32> {
    prop_oneof![2 => Just(0u32), 3 => 101u32..=104]
}

fn ticks(max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..max, 1 => Just(u64::MAX)]
}

fn make() -> impl Strategy<Value = Make> {
    prop_oneof![
        4 => Just(Make::Cancel),
        3 => (ticks(60), cause()).prop_map(|(at, cause)| Make::Deadline { at, cause }),
        3 => (ticks(30), cause()).prop_map(|(ticks, cause)| Make::Timeout { ticks, cause }),
        3 => (0usize..4, 0usize..1000).prop_map(|(key, value)| Make::Value { key, value }),
        1 => Just(Make::Detached),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (pick(), make()).prop_map(|(parent, make)| Op::Create { parent, make }),
        4 => (pick(), cause()).prop_map(|(h, cause)| Op::Cancel { h, cause }),
        5 => pick().prop_map(|h| Op::Release { h }),
        3 => (0u64..12).prop_map(|ticks| Op::Advance { ticks }),
        2 => (any::<bool>(), 0u64..24).prop_map(|(back, ticks)| Op::Expire { back, ticks }),
        4 => (pick(), prop::option::weighted(0.3, (any::<bool>(), pick())))
            .prop_map(|(h, act)| Op::AfterFunc { h, act }),
        2 => pick().prop_map(|h| Op::Stop { h }),
        1 => (pick(), 0usize..4).prop_map(|(h, key)| Op::Query { h, key }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u8>(),
        prop_oneof![3 => Just(1u8), 1 => 2u8..6],
        prop::collection::vec(op(), 1..160),
    )
        .prop_map(|(capacity, check_every, ops)| Case {
            capacity,
            check_every,
            ops,
        })
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs cases until `ops` operations have run; returns (cases, operations). Panics with the
/// shrunk minimal sequence on a divergence.
fn run_seeded(seed: u64, ops: u64) -> (u64, u64) {
    let executed = AtomicU64::new(0);
    let cases = AtomicU64::new(0);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    // Each batch is one proptest run: a failure inside it shrinks and stops everything.
    while executed.load(Ordering::Relaxed) < ops {
        let config = Config {
            cases: 256,
            failure_persistence: None,
            max_shrink_iters: 100_000,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&case(), |case| {
            let n = driver::run(&case).map_err(TestCaseError::fail)?;
            executed.fetch_add(n, Ordering::Relaxed);
            cases.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        if let Err(e) = result {
            panic!("engine and model diverge (seed {seed}):\n{e}");
        }
        // Next batch: a new seed derived from the old one.
        seed_bytes[8] = seed_bytes[8].wrapping_add(1);
        if seed_bytes[8] == 0 {
            seed_bytes[9] = seed_bytes[9].wrapping_add(1);
        }
    }
    (cases.into_inner(), executed.into_inner())
}

/// The differential run of `cargo xtask test` (at least 10^5 operations, fixed seed).
#[test]
fn model_differential_seeded() {
    let seed = env_u64("STOPWIRE_MODEL_SEED", 0x5709_3173);
    let want = env_u64("STOPWIRE_MODEL_OPS", 100_000);
    let start = std::time::Instant::now();
    let (cases, ops) = run_seeded(seed, want);
    assert!(ops >= want);
    println!(
        "model: seed {seed}, {cases} cases, {ops} operations, 0 divergences, {:.1} s",
        start.elapsed().as_secs_f64()
    );
    println!("model coverage: {}", driver::COVERAGE.summary());
}

/// The fuzz target's decoder gives runnable cases for any bytes (and the corpus seeds it uses
/// are not trivially short).
#[test]
fn model_decoder_accepts_any_bytes() {
    let mut bytes = Vec::new();
    for i in 0u32..2_000 {
        bytes.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
    }
    for len in [0, 1, 2, 7, 100, 2_000] {
        let case = driver::decode(&bytes[..len]);
        driver::run(&case).unwrap();
    }
}

// ---- the model against the SPEC's own table, engine-free ----

/// K7: the model reproduces the 20-row cause table (so the model encodes the SPEC, not the
/// engine). P = 101, CH = 102, SLOW = 103, EARLY = 104.
#[test]
fn k7_model_reproduces_the_cause_table() {
    const P: u32 = 101;
    const CH: u32 = 102;
    const SLOW: u32 = 103;
    const EARLY: u32 = 104;
    const FOREVER: u64 = u64::MAX;
    type Row = (fn(&mut Model) -> MHandle, Result<(), MErr>, Option<u32>);
    fn to(m: &mut Model, parent: MHandle, d: u64, cause: u32) -> MHandle {
        let at = m.now().saturating_add(d);
        m.create(parent, Create::Deadline { at, cause }).unwrap()
    }
    fn pair(m: &mut Model) -> (MHandle, MHandle) {
        let p = m.create(MHandle::Background, Create::Cancel).unwrap();
        let c = m.create(p, Create::Cancel).unwrap();
        (p, c)
    }
    let rows: [Row; 20] = [
        (|_| MHandle::Background, Ok(()), None),
        (|_| MHandle::Todo, Ok(()), None),
        (
            |m| {
                let c = m.create(MHandle::Background, Create::Cancel).unwrap();
                m.cancel(c, 0).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(0),
        ),
        (
            |m| {
                let c = m.create(MHandle::Background, Create::Cancel).unwrap();
                m.cancel(c, P).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(P),
        ),
        (
            |m| {
                let c = m.create(MHandle::Background, Create::Cancel).unwrap();
                m.cancel(c, 0).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(0),
        ),
        (
            |m| {
                let (p, c) = pair(m);
                m.cancel(p, P).unwrap();
                m.cancel(c, CH).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(P),
        ),
        (
            |m| {
                let (p, c) = pair(m);
                m.cancel(c, CH).unwrap();
                m.cancel(p, P).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(CH),
        ),
        (
            |m| {
                let (p, c) = pair(m);
                m.cancel(p, P).unwrap();
                m.cancel(c, 0).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(P),
        ),
        (
            |m| {
                let (p, c) = pair(m);
                m.cancel(c, 0).unwrap();
                m.cancel(p, P).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(0),
        ),
        (
            |m| {
                let (p, c) = pair(m);
                m.cancel(p, 0).unwrap();
                m.cancel(c, CH).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(0),
        ),
        (
            |m| {
                let (p, c) = pair(m);
                m.cancel(c, CH).unwrap();
                m.cancel(p, 0).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(CH),
        ),
        (
            |m| {
                let c = to(m, MHandle::Background, 0, 0);
                m.cancel(c, 0).unwrap();
                c
            },
            Err(MErr::DeadlineExceeded),
            Some(0),
        ),
        (
            |m| {
                let c = to(m, MHandle::Background, FOREVER, 0);
                m.cancel(c, 0).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(0),
        ),
        (
            |m| {
                let c = to(m, MHandle::Background, 0, SLOW);
                m.cancel(c, 0).unwrap();
                c
            },
            Err(MErr::DeadlineExceeded),
            Some(SLOW),
        ),
        (
            |m| {
                let c = to(m, MHandle::Background, FOREVER, SLOW);
                m.cancel(c, 0).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(0),
        ),
        (
            |m| {
                let p = m.create(MHandle::Background, Create::Cancel).unwrap();
                let c = to(m, p, 0, SLOW);
                m.cancel(p, EARLY).unwrap();
                c
            },
            Err(MErr::DeadlineExceeded),
            Some(SLOW),
        ),
        (
            |m| {
                let p = m.create(MHandle::Background, Create::Cancel).unwrap();
                let c = to(m, p, FOREVER, SLOW);
                m.cancel(p, EARLY).unwrap();
                c
            },
            Err(MErr::Canceled),
            Some(EARLY),
        ),
        (
            |m| m.create(MHandle::Background, Create::Detached).unwrap(),
            Ok(()),
            None,
        ),
        (
            |m| {
                let p = m.create(MHandle::Background, Create::Cancel).unwrap();
                let d = m.create(p, Create::Detached).unwrap();
                m.cancel(p, EARLY).unwrap();
                d
            },
            Ok(()),
            None,
        ),
        (
            |m| {
                let t = to(m, MHandle::Background, 0, SLOW);
                m.create(t, Create::Detached).unwrap()
            },
            Ok(()),
            None,
        ),
    ];
    for (n, (build, err, cause)) in rows.iter().enumerate() {
        let mut m = Model::new(8, 500);
        let h = build(&mut m);
        assert_eq!(m.err(h), *err, "row {}", n + 1);
        let got = match m.cause(h) {
            Err(MErr::NotDone) => None,
            Ok(c) => Some(c.unwrap_or(0)),
            Err(e) => panic!("row {}: {e:?}", n + 1),
        };
        assert_eq!(got, *cause, "row {}", n + 1);
    }
}
