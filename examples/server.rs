//! The seed's realistic usage: a small HTTP/1.1 server where every request has a context.
//!
//! ```text
//! cargo run --example server -- --addr 127.0.0.1:8080 [--timeout-ms 5000]
//! curl -i 127.0.0.1:8080/slow     # two seconds of simulated fetching; press Ctrl-C to disconnect
//! curl -i 127.0.0.1:8080/stats    # arena figures and the live-context report
//! ```
//!
//! As Go's `net/http` does for `r.Context()`, each request gets a context that is canceled when
//! the client closes the connection and that expires after the server's timeout. A watcher thread
//! notices the disconnect (the socket reads end-of-file) and cancels the request's context;
//! `fetch_data` checks it between slices of work and stops at once. A canceled or expired request
//! answers 503 with the error text, if the client is still there to read it, like the seed's
//! handler. Every request logs one line with its outcome (`ok`, `canceled`, `deadline exceeded`)
//! and the arena's slots in use after it was released.
//!
//! One thread per connection, one request per connection (`Connection: close`), no framework: the
//! request line is all the routing needs.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use stopwire::{Arena, Ctx, Error, OwnedCtx};

/// Room for 256 requests in flight (a request's context takes one slot).
static ARENA: Arena<256> = Arena::new();

/// `GET /slow` fetches in this many slices of [`SLICE`]: two seconds in all.
const STEPS: u32 = 40;
const SLICE: Duration = Duration::from_millis(50);

/// Simulated downstream work (the seed's `fetchData`): stops as soon as `ctx` is done. Returns
/// the data, or why it stopped and how many slices it had done.
fn fetch_data(ctx: Ctx<'_>) -> Result<&'static str, (Error, u32)> {
    for step in 0..STEPS {
        ctx.err().map_err(|why| (why, step))?;
        thread::sleep(SLICE);
    }
    Ok("data\n")
}

/// Cancels `req` when the client closes the connection; returns once `finished` is set.
fn watch_disconnect(stream: &TcpStream, req: &OwnedCtx<'_>, finished: &AtomicBool) {
    let mut probe = [0u8; 1];
    while !finished.load(Ordering::Acquire) {
        match stream.peek(&mut probe) {
            // End of file: the client is gone (Go: the request context is canceled).
            Ok(0) => {
                req.cancel();
                return;
            }
            // More bytes than the request (pipelining is not served): still connected.
            Ok(_) => thread::sleep(Duration::from_millis(20)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                req.cancel(); // reset by peer
                return;
            }
        }
    }
}

/// What a request turned into.
struct Answer {
    status: u16,
    body: String,
    outcome: &'static str,
    steps: Option<u32>,
}

impl Answer {
    fn ok(body: String) -> Self {
        Answer {
            status: 200,
            body,
            outcome: "ok",
            steps: None,
        }
    }

    fn failed(why: Error, steps: Option<u32>) -> Self {
        Answer {
            status: 503,
            body: format!("{why}\n"),
            outcome: match why {
                Error::Canceled => "canceled",
                Error::DeadlineExceeded => "deadline exceeded",
                _ => "error",
            },
            steps,
        }
    }
}

/// The handler: the request's context drives the work.
fn route(ctx: Ctx<'_>, path: &str) -> Answer {
    match path {
        "/" => match ctx.err() {
            Ok(()) => Answer::ok("hello from stopwire\n".into()),
            Err(why) => Answer::failed(why, None),
        },
        "/slow" => match fetch_data(ctx) {
            Ok(data) => Answer {
                steps: Some(STEPS),
                ..Answer::ok(data.into())
            },
            Err((why, steps)) => Answer::failed(why, Some(steps)),
        },
        "/stats" => {
            let s = ARENA.stats();
            Answer::ok(format!(
                "in_use={} high_water={} capacity={} full={}\n{}",
                s.in_use,
                s.high_water,
                s.capacity,
                s.full_count,
                ARENA.report()
            ))
        }
        _ => Answer {
            status: 404,
            body: "not found\n".into(),
            outcome: "ok",
            steps: None,
        },
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Service Unavailable",
    }
}

fn respond(mut stream: &TcpStream, status: u16, body: &str) {
    // The client may be gone (that is how a request gets canceled): ignore write errors.
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let _ = stream.flush();
}

/// Reads the request head; returns the method and path of the request line.
fn read_request(stream: &TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let request = (method.to_string(), path.to_string());
    // Skip the headers up to the empty line; bodies are not used by these routes.
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "\r\n" || line == "\n" => return Some(request),
            Ok(_) => {}
        }
    }
}

fn serve(stream: TcpStream, timeout: Duration) {
    let started = Instant::now();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some((method, path)) = read_request(&stream) else {
        respond(&stream, 400, "bad request\n");
        return;
    };
    let answer = if method != "GET" {
        Answer {
            status: 404,
            body: "only GET is served\n".into(),
            outcome: "ok",
            steps: None,
        }
    } else {
        match ARENA.background().with_timeout(timeout.as_micros() as u64) {
            Err(why) => Answer::failed(why, None), // arena full: 503
            Ok(req) => {
                // The watcher polls in short slices so that it can stop when the handler is done.
                let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
                let finished = AtomicBool::new(false);
                thread::scope(|s| {
                    s.spawn(|| watch_disconnect(&stream, &req, &finished));
                    let answer = route(*req, &path);
                    finished.store(true, Ordering::Release);
                    answer
                })
                // `req` is dropped here: released, like Go's `defer cancel()`.
            }
        }
    };
    respond(&stream, answer.status, &answer.body);
    let _ = stream.shutdown(Shutdown::Both);
    let steps = answer
        .steps
        .map(|n| format!(" steps={n}/{STEPS}"))
        .unwrap_or_default();
    println!(
        "{method} {path} {} {}{steps} ms={} in_use={}",
        answer.status,
        answer.outcome,
        started.elapsed().as_millis(),
        ARENA.stats().in_use
    );
}

fn main() {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut timeout_ms: u64 = 5000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(v)) => addr = v,
            ("--timeout-ms", Some(v)) => timeout_ms = v.parse().expect("--timeout-ms: a number"),
            _ => {
                eprintln!("usage: server [--addr 127.0.0.1:8080] [--timeout-ms 5000]");
                std::process::exit(2);
            }
        }
    }
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    println!(
        "listening on {} (request timeout {timeout_ms} ms)",
        listener.local_addr().expect("bound address")
    );
    let timeout = Duration::from_millis(timeout_ms);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || serve(stream, timeout));
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}
