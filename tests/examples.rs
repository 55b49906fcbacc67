//! Runs the examples as programs, the way the README tells a reader to, and checks what they do:
//! the worker stops on cancel, the tour walks its list, the server cancels a request whose client
//! went away (and leaks no slot), and the shutdown example stops cleanly on SIGTERM.
//!
//! Each test builds its example with the cargo that runs the tests (`cargo build --example`), so
//! a test never runs a stale binary. No timing thresholds: every wait is for an event (a log line,
//! a stats figure, an exit), with a generous timeout only to turn a hang into a failure.
#![cfg(all(feature = "std", feature = "diagnostics"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::Duration;

/// A hang becomes a failure after this long.
const PATIENCE: Duration = Duration::from_secs(60);

/// Builds `examples/<name>.rs` and returns the path of its binary.
fn example(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("test binary path");
    // <target>/<profile>/deps/examples-<hash> -> <target>/<profile>/examples/<name>
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile directory");
    let mut build = Command::new(env!("CARGO"));
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--example", name]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    if let Some(target_dir) = profile_dir.parent() {
        build.env("CARGO_TARGET_DIR", target_dir);
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// A running example whose stdout lines arrive on a channel; killed on drop.
struct Running {
    child: Child,
    lines: Receiver<String>,
    /// Every line so far; the first `consumed` have been looked at by `wait_for`.
    seen: Vec<String>,
    consumed: usize,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = Command::new(example(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn example");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            consumed: 0,
        }
    }

    /// Waits for the next stdout line (after those already returned) that contains `needle`;
    /// returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            while self.consumed < self.seen.len() {
                let line = &self.seen[self.consumed];
                self.consumed += 1;
                if line.contains(needle) {
                    return line.clone();
                }
            }
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!(
                    "no line with {needle:?} ({e}); output so far: {:#?}",
                    self.seen
                ),
            }
        }
    }
}

impl Running {
    /// Whether a line not yet returned by `wait_for` contains `needle` (does not wait).
    fn saw(&mut self, needle: &str) -> bool {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen[self.consumed..]
            .iter()
            .any(|l| l.contains(needle))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an example to completion; returns its stdout.
fn run_to_end(name: &str) -> String {
    let out = Command::new(example(name))
        .stdin(Stdio::null())
        .output()
        .expect("run example");
    assert!(out.status.success(), "{name} failed: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// One HTTP/1.1 request; returns the status code and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read answer");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// The `in_use=` figure of a `/stats` answer or a log line.
fn in_use(text: &str) -> u32 {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("in_use="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no in_use= in {text:?}"))
}

/// Starts the server on a free loopback port; returns it and its address.
fn start_server(timeout_ms: &str) -> (Running, String) {
    let mut server = Running::start(
        "server",
        &["--addr", "127.0.0.1:0", "--timeout-ms", timeout_ms],
    );
    let line = server.wait_for("listening on ");
    let addr = line
        .split_whitespace()
        .nth(2)
        .expect("address in the listening line")
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{line}");
    (server, addr)
}

#[test]
fn c2_worker_example_stops_on_cancel() {
    let out = run_to_end("worker");
    assert!(out.contains("Working..."), "{out}");
    assert!(out.contains("Stopped: context canceled"), "{out}");
    assert!(out.contains("arena: 0 of 16 slots in use"), "{out}");
}

#[test]
fn a6_tour_example_walks_the_when_to_use_list() {
    let out = run_to_end("tour");
    for section in [
        "== Background",
        "== WithCancel",
        "== WithTimeout",
        "== WithDeadline",
        "== WithValue",
        "== Group",
        "== Leak report",
    ] {
        assert!(out.contains(section), "missing {section}:\n{out}");
    }
    assert!(out.contains("worker returned Err(Canceled)"), "{out}");
    assert!(
        out.contains("query with a 50 ms timeout returned Err(DeadlineExceeded)"),
        "{out}"
    );
    assert!(out.contains("trace id = 0xc0ffee, user id = None"), "{out}");
    assert!(
        out.contains(
            "group returned Err(\"fetch prices: upstream refused\"); slots in use after it: 0"
        ),
        "{out}"
    );
    // The leak report names the line of the forgotten context in the example's source.
    let source = include_str!("../examples/tour.rs");
    let leak_line = source
        .lines()
        .position(|l| l.contains("let forgotten = "))
        .expect("the forgotten context in tour.rs")
        + 1;
    assert!(
        out.contains("1 context(s) not released"),
        "no leak reported:\n{out}"
    );
    assert!(
        out.contains(&format!("created at examples/tour.rs:{leak_line}:")),
        "leak not at line {leak_line}:\n{out}"
    );
    assert!(out.contains("after releasing it: Ok(())"), "{out}");
    assert!(out.contains("done: 0 slots in use"), "{out}");
}

#[test]
fn c2_server_cancels_the_request_of_a_client_that_left_and_leaks_nothing() {
    let (mut server, addr) = start_server("60000");

    assert_eq!(get(&addr, "/"), (200, "hello from stopwire\n".into()));
    server.wait_for("GET / 200 ok");

    // A client asks for the slow page, then goes away mid-request.
    let mut leaving = TcpStream::connect(&addr).unwrap();
    write!(leaving, "GET /slow HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    // Wait until the server holds its request's context: /stats counts it and itself.
    loop {
        let (status, body) = get(&addr, "/stats");
        assert_eq!(status, 200);
        // Only a machine stalled for the whole two seconds could let it finish unseen: say so
        // rather than poll forever.
        assert!(
            !server.saw("GET /slow"),
            "the slow request ended before the test saw it in flight: {:#?}",
            server.seen
        );
        if in_use(&body) == 2 {
            assert!(
                body.contains("examples/server.rs:"),
                "the report names the server's creation site:\n{body}"
            );
            break;
        }
        thread::yield_now();
    }
    drop(leaving);

    // The watcher saw the disconnect and the fetch stopped before its 40 slices.
    let line = server.wait_for("GET /slow");
    assert!(line.contains(" 503 canceled "), "{line}");
    let steps: u32 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("steps="))
        .and_then(|s| s.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no steps in {line}"));
    assert!(steps < 40, "the work was not canceled: {line}");
    assert_eq!(in_use(&line), 0, "the request's slot leaked: {line}");

    // Nothing else is held: /stats sees only its own context.
    let (_, body) = get(&addr, "/stats");
    assert_eq!(in_use(&body), 1, "{body}");

    // A client that waits gets its answer.
    assert_eq!(get(&addr, "/slow"), (200, "data\n".into()));
    let line = server.wait_for("GET /slow");
    assert!(line.contains(" 200 ok steps=40/40 "), "{line}");
    assert_eq!(in_use(&line), 0, "{line}");
}

#[test]
fn d1_server_request_past_its_timeout_answers_503_with_the_err_text() {
    let (mut server, addr) = start_server("100");
    assert_eq!(
        get(&addr, "/slow"),
        (503, "context deadline exceeded\n".into())
    );
    let line = server.wait_for("GET /slow");
    assert!(line.contains(" 503 deadline exceeded "), "{line}");
    assert_eq!(in_use(&line), 0, "{line}");
    assert_eq!(get(&addr, "/nowhere").0, 404);
}

#[test]
fn c2_shutdown_example_stops_every_worker_on_sigterm_and_exits_cleanly() {
    let mut app = Running::start("shutdown", &[]);
    app.wait_for("ready: 3 workers running");
    let pid = app.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    app.wait_for("shutdown: signal received, canceling the root context");
    let mut stopped: Vec<String> = (0..3)
        .map(|_| app.wait_for("stopped after"))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    stopped.sort();
    assert_eq!(stopped, ["worker 1", "worker 2", "worker 3"]);
    app.wait_for("shutdown: all workers stopped");
    app.wait_for("shutdown: leak check clean, exiting");
    let status = app.child.wait().expect("wait");
    assert!(status.success(), "exit status {status}");
}
