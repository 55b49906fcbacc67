//! Three real tonic services over loopback, each its own process: a client calls A with a
//! 300 ms deadline, A calls B with what remains, and B's work outlasts the budget.
//!
//! ```text
//! cargo run -p stopwire-tower --example three_services
//! ```
//!
//! Run with no argument, the program is the conductor: it starts A and B (this same program
//! with the argument `a` or `b`) on free ports of 127.0.0.1, then two clients (argument
//! `client`):
//!
//! 1. with a 300 ms deadline: A's and B's contexts expire with the client's, and B is sent a
//!    smaller `grpc-timeout` than A;
//! 2. with no deadline, killed (SIGKILL) once B has started working: A's and B's contexts are
//!    canceled.
//!
//! Every process logs what it sees; the conductor prints the times of each context's end
//! relative to the client's deadline or to the kill, then stops A and B gracefully (it closes
//! their stdin: each cancels its server root and shuts down). Each context's end is logged by
//! an `after_func` callback, so the time printed is the moment the context became done, not
//! when a task woke up to look at it. Times are wall-clock microseconds, comparable across the
//! processes of one machine. Every wait is bounded; the program stops by itself.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stopwire::{Arena, Ctx, Error, GrpcTimeout, Handle};
use stopwire_tower::{run_until_done, ServerLayer};
use tonic::{Response, Status};

/// The client's budget.
const BUDGET: Duration = Duration::from_millis(300);
/// B's work: far longer than the budget.
const WORK: Duration = Duration::from_secs(10);
/// The longest the conductor waits for any line (and the longest a server lives).
const PATIENCE: Duration = Duration::from_secs(30);

static ARENA: Arena<256> = Arena::new();
static ROLE: OnceLock<&'static str> = OnceLock::new();

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// A line for the conductor: `@@ <who> <event> <unix µs> <detail>`.
fn event(what: &str, detail: &str) {
    let who = ROLE.get().copied().unwrap_or("?");
    println!("@@ {who} {what} {} {detail}", now_us());
}

/// `after_func` callback: the context (raw handle in `data`) has just become done.
fn on_done(data: usize) {
    let why = match ARENA.ctx(Handle::from_raw(data as u64)).err() {
        Err(Error::Stale) => "released".to_string(),
        Err(e) => e.to_string(),
        Ok(()) => "not done?".to_string(),
    };
    event("ctx-done", &why);
}

/// Logs when `ctx` becomes done, whatever makes it so.
fn watch(ctx: Ctx<'static>) {
    match ctx.after_func(on_done, ctx.handle().to_raw() as usize) {
        Ok(reg) => drop(reg.forget()),
        Err(e) => event("no-watch", &e.to_string()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => conduct(),
        Some("b") => server("B", None),
        Some("a") => server("A", Some(args.get(1).expect("B's address").clone())),
        Some("client") => client(
            args.get(1).expect("A's address"),
            args.get(2).is_some_and(|d| d == "deadline"),
        ),
        Some(other) => panic!("unknown role {other}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Service A (calls `next`) or B (works for [`WORK`]); stops when stdin closes.
fn server(who: &'static str, next: Option<String>) {
    ROLE.set(who).ok();
    runtime().block_on(async move {
        let root = ARENA.background().with_cancel().expect("root");
        let handler = common::handler(move |req| {
            let ctx = common::ctx_of(&req);
            let header = common::timeout_header(&req).unwrap_or_else(|| "none".into());
            event("request", &format!("grpc-timeout={header}"));
            watch(ctx);
            let next = next.clone();
            async move {
                let outcome = match next {
                    Some(addr) => {
                        let addr = addr.parse().expect("address");
                        let mut to_b = common::client(addr);
                        let call = common::call(&mut to_b, Some(ctx), None, "b");
                        match run_until_done(ctx, call).await {
                            Ok(Ok(reply)) => Ok(format!("A+{reply}")),
                            Ok(Err(status)) => Err(status),
                            Err(why) => Err(common::status_for(why)),
                        }
                    }
                    None => {
                        event("work", "started");
                        match run_until_done(ctx, tokio::time::sleep(WORK)).await {
                            Ok(()) => Ok("B worked".to_string()),
                            Err(why) => Err(common::status_for(why)),
                        }
                    }
                };
                event(
                    "reply",
                    &format!("{:?}", outcome.as_ref().map_err(Status::code)),
                );
                outcome.map(Response::new)
            }
        });
        let running = common::serve(ServerLayer::new(*root), handler).await;
        event("listening", &running.addr.to_string());
        // Stop when the conductor closes stdin (or after PATIENCE at the latest).
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        });
        let _ = tokio::time::timeout(PATIENCE, stdin_closed).await;
        event("shutdown", "root canceled");
        root.cancel();
        let _ = tokio::time::timeout(PATIENCE, running.stop()).await;
    });
}

/// One call of A, with the 300 ms deadline or without any.
fn client(a: &str, deadline: bool) {
    ROLE.set("client").ok();
    let addr = a.parse().expect("address");
    runtime().block_on(async move {
        let mut c = common::client(addr);
        c.ready().await.expect("A is up");
        let ctx = if deadline {
            ARENA
                .background()
                .with_timeout(BUDGET.as_micros() as u64)
                .ok()
        } else {
            None
        };
        let deadline_us = now_us() + BUDGET.as_micros();
        event(
            "call",
            &if deadline {
                format!("deadline_us={deadline_us}")
            } else {
                "no deadline".to_string()
            },
        );
        let got = common::call(&mut c, ctx.as_deref().copied(), None, "x").await;
        event("result", &format!("{:?}", got.map_err(|s| s.code())));
    });
}

/// One parsed `@@` line.
#[derive(Clone, Debug)]
struct Event {
    who: String,
    what: String,
    at_us: u128,
    detail: String,
}

/// Starts this program with `args`; its `@@` lines go to `tx`, every line is echoed.
fn spawn(args: &[&str], tx: &mpsc::Sender<Event>) -> Child {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("    | {line}");
            let mut parts = line.splitn(5, ' ');
            if parts.next() != Some("@@") {
                continue;
            }
            let (Some(who), Some(what), Some(at)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let _ = tx.send(Event {
                who: who.to_string(),
                what: what.to_string(),
                at_us: at.parse().unwrap_or(0),
                detail: parts.next().unwrap_or("").to_string(),
            });
        }
    });
    child
}

/// Waits for the event `who what`, keeping every event seen in `log`.
fn wait_for(rx: &mpsc::Receiver<Event>, log: &mut Vec<Event>, who: &str, what: &str) -> Event {
    if let Some(e) = log.iter().find(|e| e.who == who && e.what == what) {
        return e.clone();
    }
    loop {
        let e = rx
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no `{who} {what}` within {PATIENCE:?}"));
        log.push(e.clone());
        if e.who == who && e.what == what {
            return e;
        }
    }
}

fn ms(from: u128, to: u128) -> String {
    format!("{:+.1} ms", (to as f64 - from as f64) / 1000.0)
}

fn conduct() {
    let (tx, rx) = mpsc::channel();
    let mut log = Vec::new();
    let mut b = spawn(&["b"], &tx);
    let b_addr = wait_for(&rx, &mut log, "B", "listening").detail;
    let mut a = spawn(&["a", &b_addr], &tx);
    let a_addr = wait_for(&rx, &mut log, "A", "listening").detail;
    println!("A on {a_addr}, B on {b_addr}");

    println!(
        "\n1. the client calls A with a {} ms deadline",
        BUDGET.as_millis()
    );
    let mut c = spawn(&["client", &a_addr, "deadline"], &tx);
    let call = wait_for(&rx, &mut log, "client", "call");
    let result = wait_for(&rx, &mut log, "client", "result");
    let a_done = wait_for(&rx, &mut log, "A", "ctx-done");
    let b_done = wait_for(&rx, &mut log, "B", "ctx-done");
    let a_req = wait_for(&rx, &mut log, "A", "request");
    let b_req = wait_for(&rx, &mut log, "B", "request");
    let _ = c.wait();
    let deadline: u128 = call
        .detail
        .trim_start_matches("deadline_us=")
        .parse()
        .expect("deadline");
    println!("   times relative to the client's deadline:");
    println!(
        "   client  call ended {:<10} {}",
        ms(deadline, result.at_us),
        result.detail
    );
    for (who, req, done) in [("A", &a_req, &a_done), ("B", &b_req, &b_done)] {
        // Its own deadline: arrival plus the budget it was sent (1 tick = 1 us).
        let sent = req.detail.trim_start_matches("grpc-timeout=");
        let own = GrpcTimeout::decode(sent.as_bytes(), GrpcTimeout::STD_CLOCK_RATE)
            .map_or("?".to_string(), |t| ms(deadline, req.at_us + u128::from(t)));
        println!(
            "   {who}       got {:<22} own deadline {:<10} context done {:<10} ({})",
            req.detail,
            own,
            ms(deadline, done.at_us),
            done.detail
        );
    }
    log.clear();

    println!("\n2. a client calls A with no deadline and is killed once B works");
    let mut c = spawn(&["client", &a_addr], &tx);
    wait_for(&rx, &mut log, "B", "work");
    let killed = now_us();
    c.kill().expect("kill the client");
    let _ = c.wait();
    println!("   client killed (SIGKILL); times relative to the kill:");
    for who in ["A", "B"] {
        let done = wait_for(&rx, &mut log, who, "ctx-done");
        println!(
            "   {who}       context done {:<10} ({})",
            ms(killed, done.at_us),
            done.detail
        );
    }

    println!("\n3. graceful shutdown of A and B");
    for child in [&mut a, &mut b] {
        drop(child.stdin.take()); // EOF: the server cancels its root and stops
    }
    for (who, child) in [("A", &mut a), ("B", &mut b)] {
        let status = child.wait().expect("wait");
        println!("   {who} exited: {status}");
    }
}
