//! `cargo xtask bench-report`: turns criterion's results (from `cargo bench --bench context`) into
//! `docs/benchmarks.md`, the ratio chart `docs/benchmarks.svg`, and the table in the README between
//! the markers `<!-- bench-report:start -->` and `<!-- bench-report:end -->`.
//!
//! Every number written comes from criterion's `estimates.json` files (the median of the samples
//! and its 95 % confidence interval); nothing is typed by hand. The workloads, their ids and the
//! targets are those of `BENCHMARKS.md` and issue 5.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::{cmd, output, root, run, Result};

/// The command that produces the results this report reads.
const BENCH_COMMAND: &str = "cargo bench --features embassy --bench context";

const README_START: &str = "<!-- bench-report:start -->";
const README_END: &str = "<!-- bench-report:end -->";

/// A target from issue 5.
#[derive(Clone, Copy)]
enum Target {
    /// stopwire / tokio-util at most this.
    Ratio(f64),
    /// stopwire's median at most this many nanoseconds.
    Ns(f64),
    None,
}

/// One row of the report.
struct Workload {
    id: &'static str,
    what: &'static str,
    /// The tokio-util twin, when there is one.
    peer: Option<&'static str>,
    target: Target,
    /// Shown in the README's headline table.
    headline: bool,
}

const WORKLOADS: [Workload; 10] = [
    Workload {
        id: "check/depth1",
        what: "is-done check, `with_cancel` child of background",
        peer: Some("tokio_check/depth1"),
        target: Target::Ratio(0.1),
        headline: true,
    },
    Workload {
        id: "check/depth10",
        what: "is-done check, leaf of a 10-deep chain",
        peer: Some("tokio_check/depth10"),
        target: Target::Ratio(0.1),
        headline: true,
    },
    Workload {
        id: "check/deadline",
        what: "is-done check, `with_timeout(1 h)` child (clock read included)",
        peer: None,
        target: Target::None,
        headline: false,
    },
    Workload {
        id: "create_cancel/cancel",
        what: "`with_cancel` under a long-lived parent, cancel, release",
        peer: Some("tokio_create_cancel/cancel"),
        target: Target::Ratio(0.25),
        headline: true,
    },
    Workload {
        id: "create_cancel/timeout",
        what: "`with_timeout(1 h)` under a long-lived parent, cancel, release",
        peer: None,
        target: Target::Ns(50.0),
        headline: false,
    },
    Workload {
        id: "tree/111",
        what: "fresh root, 10 x 10 children, cancel the root, release all",
        peer: Some("tokio_tree/111"),
        target: Target::Ratio(0.2),
        headline: true,
    },
    Workload {
        id: "tree/931",
        what: "fresh root, 30 x 30 children, cancel the root, release all",
        peer: Some("tokio_tree/931"),
        target: Target::Ratio(0.2),
        headline: true,
    },
    Workload {
        id: "value/depth10",
        what: "look up a key set 10 value layers above",
        peer: None,
        target: Target::Ns(10.0),
        headline: false,
    },
    Workload {
        id: "contended/create_cancel",
        what: "two threads doing `create_cancel/cancel` under one parent (per operation)",
        peer: Some("tokio_contended/create_cancel"),
        target: Target::Ratio(0.5),
        headline: true,
    },
    Workload {
        id: "wake/1000",
        what: "1000 tasks awaiting `done()` on children of one root; cancel; all woken",
        peer: Some("tokio_wake/1000"),
        target: Target::Ratio(1.0),
        headline: true,
    },
];

/// Absolute targets that apply on top of a ratio (issue 5: check <= 2 ns, create + cancel <= 40 ns).
fn absolute_target(id: &str) -> Option<f64> {
    match id {
        "check/depth1" | "check/depth10" => Some(2.0),
        "create_cancel/cancel" => Some(40.0),
        _ => None,
    }
}

/// Criterion's median of one benchmark, in nanoseconds, with its 95 % confidence interval.
#[derive(Clone, Copy)]
struct Median {
    ns: f64,
    lo: f64,
    hi: f64,
    /// When criterion wrote it (seconds since the epoch).
    written: u64,
}

/// Where criterion keeps its results: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`, else
/// `target/criterion` of the workspace (criterion's own rule).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        root().join(target)
    };
    target.join("criterion")
}

/// The number after `"key":` at or after `from` in `json`.
fn number_after(json: &str, from: usize, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let at = json[from..].find(&pat)? + from + pat.len();
    let rest = json[at..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Reads the median of `id` from criterion's `estimates.json` (the object
/// `"median":{"confidence_interval":{..,"lower_bound":x,"upper_bound":y},"point_estimate":z,..}`).
fn read_median(dir: &Path, id: &str) -> Result<Option<Median>> {
    let file = dir.join(id).join("new").join("estimates.json");
    let json = match fs::read_to_string(&file) {
        Ok(j) => j,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let bad = || format!("{}: no median in criterion's estimates", file.display());
    let m = json.find("\"median\":").ok_or_else(bad)?;
    let ns = number_after(&json, m, "point_estimate").ok_or_else(bad)?;
    let lo = number_after(&json, m, "lower_bound").ok_or_else(bad)?;
    let hi = number_after(&json, m, "upper_bound").ok_or_else(bad)?;
    let written = fs::metadata(&file)
        .and_then(|md| md.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    Ok(Some(Median {
        ns,
        lo,
        hi,
        written,
    }))
}

/// `2026-11-25 18:30 UTC` from seconds since the epoch (civil-from-days, proleptic Gregorian).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// A duration in nanoseconds, with a unit a reader takes in at a glance.
fn human(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns >= 10.0 {
        format!("{ns:.1} ns")
    } else {
        format!("{ns:.2} ns")
    }
}

/// The machine the numbers came from: CPU model, logical CPUs, kernel, rustc.
fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = output(cmd("uname", &["-sr"])).unwrap_or_default();
    let rustc = output(cmd("rustc", &["-V"])).unwrap_or_default();
    format!(
        "{cpu}, {cpus} logical CPUs, {}, {}",
        kernel.trim(),
        rustc.trim()
    )
}

/// One measured row.
struct Row<'a> {
    w: &'a Workload,
    ours: Median,
    peer: Option<Median>,
}

impl Row<'_> {
    fn ratio(&self) -> Option<f64> {
        self.peer.map(|p| self.ours.ns / p.ns)
    }

    /// The targets of the row, and whether each is met: `"≤ 0.25 ✓"`, `"≤ 40 ns ✗"`.
    fn verdict(&self) -> String {
        let mut parts = Vec::new();
        match self.w.target {
            Target::Ratio(t) => {
                if let Some(r) = self.ratio() {
                    parts.push(format!("ratio ≤ {t} {}", mark(r <= t)));
                }
            }
            Target::Ns(t) => parts.push(format!("≤ {t} ns {}", mark(self.ours.ns <= t))),
            Target::None => {}
        }
        if let Some(t) = absolute_target(self.w.id) {
            parts.push(format!("≤ {t} ns {}", mark(self.ours.ns <= t)));
        }
        if parts.is_empty() {
            "-".to_string()
        } else {
            parts.join(", ")
        }
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

fn ratio_text(r: Option<f64>) -> String {
    match r {
        Some(r) if r < 0.1 => format!("{r:.3}"),
        Some(r) => format!("{r:.2}"),
        None => "-".to_string(),
    }
}

/// The Markdown table; `headline` keeps only the rows the README shows.
fn table(rows: &[Row<'_>], headline: bool) -> String {
    let mut s = String::new();
    if headline {
        s.push_str(
            "| workload | stopwire | tokio-util | ratio | target |\n|---|---|---|---|---|\n",
        );
    } else {
        s.push_str(
            "| workload | what one iteration does | stopwire median [95 % CI] | tokio-util median [95 % CI] | ratio | target |\n|---|---|---|---|---|---|\n",
        );
    }
    for r in rows.iter().filter(|r| !headline || r.w.headline) {
        let peer = r.peer.map_or_else(
            || "-".to_string(),
            |p| {
                if headline {
                    human(p.ns)
                } else {
                    format!("{} [{} - {}]", human(p.ns), human(p.lo), human(p.hi))
                }
            },
        );
        if headline {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} | {} | {} |",
                r.w.id,
                human(r.ours.ns),
                peer,
                ratio_text(r.ratio()),
                r.verdict()
            );
        } else {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} [{} - {}] | {} | {} | {} |",
                r.w.id,
                r.w.what,
                human(r.ours.ns),
                human(r.ours.lo),
                human(r.ours.hi),
                peer,
                ratio_text(r.ratio()),
                r.verdict()
            );
        }
    }
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal bar chart of the ratios on a log scale, with each row's target as a tick and the
/// parity line at 1: written by hand, so the report needs no plotting crate.
fn svg(rows: &[Row<'_>], stamp: &str) -> String {
    let bars: Vec<(&str, f64, Option<f64>)> = rows
        .iter()
        .filter_map(|r| {
            let t = match r.w.target {
                Target::Ratio(t) => Some(t),
                _ => None,
            };
            r.ratio().map(|x| (r.w.id, x, t))
        })
        .collect();
    // Decades covering every ratio, every target and 1.
    let mut lo = 0.1f64;
    let mut hi = 1.0f64;
    for &(_, x, t) in &bars {
        lo = lo.min(x / 1.5).min(t.unwrap_or(1.0) / 1.5);
        hi = hi.max(x);
    }
    let lo_dec = lo.log10().floor() as i32;
    let hi_dec = (hi.log10().ceil() as i32).max(lo_dec + 1);
    let (left, right, top, row_h) = (200.0, 40.0, 60.0, 34.0);
    let plot_w = 520.0;
    let width = left + plot_w + right;
    let height = top + row_h * bars.len() as f64 + 60.0;
    let x_of =
        |v: f64| left + (v.log10() - f64::from(lo_dec)) / f64::from(hi_dec - lo_dec) * plot_w;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{}" y="24" font-size="16" text-anchor="middle">stopwire time / tokio-util time (log scale; lower is better)</text>
<text x="{}" y="44" font-size="11" text-anchor="middle" fill="#555555">{}</text>"##,
        width / 2.0,
        width / 2.0,
        xml_escape(stamp)
    );
    let bottom = top + row_h * bars.len() as f64;
    // Grid: 1, 2, 5 per decade.
    for dec in lo_dec..=hi_dec {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(dec);
            if dec == hi_dec && m > 1.0 {
                continue;
            }
            let x = x_of(v);
            let (stroke, w) = if m == 1.0 {
                ("#999999", 1.0)
            } else {
                ("#dddddd", 0.8)
            };
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="{stroke}" stroke-width="{w}"/>"#
            );
            let label = if v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            };
            let _ = writeln!(
                s,
                r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#555555">{label}</text>"##,
                bottom + 16.0
            );
        }
    }
    let one = x_of(1.0);
    let _ = writeln!(
        s,
        r##"<line x1="{one:.1}" y1="{}" x2="{one:.1}" y2="{}" stroke="#333333" stroke-width="1.5"/>"##,
        top - 6.0,
        bottom + 4.0
    );
    for (k, &(id, x, t)) in bars.iter().enumerate() {
        let y = top + row_h * k as f64;
        let base = x_of(10f64.powi(lo_dec));
        let end = x_of(x);
        let met = t.is_none_or(|t| x <= t);
        let fill = if met { "#2e7d32" } else { "#c62828" };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + row_h / 2.0 + 4.0,
            xml_escape(id)
        );
        let _ = writeln!(
            s,
            r#"<rect x="{base:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}"/>"#,
            y + 6.0,
            (end - base).max(1.0),
            row_h - 12.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            end + 4.0,
            y + row_h / 2.0 + 4.0,
            ratio_text(Some(x))
        );
        if let Some(t) = t {
            let tx = x_of(t);
            let _ = writeln!(
                s,
                r##"<line x1="{tx:.1}" y1="{:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#000000" stroke-width="2" stroke-dasharray="3,2"/>"##,
                y + 2.0,
                y + row_h - 2.0
            );
        }
    }
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{:.1}" font-size="11" text-anchor="middle" fill="#555555">bars: ratio of medians (green: target met, red: missed); dashed ticks: targets of issue 5; dark line: parity</text>"##,
        width / 2.0,
        bottom + 40.0
    );
    s.push_str("</svg>\n");
    s
}

/// Replaces the README's table between the markers, or inserts a section with them before
/// `## License` the first time.
fn update_readme(headline: &str) -> Result {
    let path = root().join("README.md");
    let readme = fs::read_to_string(&path).map_err(|e| format!("README.md: {e}"))?;
    let block = format!("{README_START}\n{headline}{README_END}");
    let new = match (readme.find(README_START), readme.find(README_END)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{block}{}", &readme[..a], &readme[b + README_END.len()..])
        }
        _ => {
            let at = readme
                .find("\n## License")
                .map(|i| i + 1)
                .ok_or("README.md has neither the bench-report markers nor `## License`")?;
            let section = format!(
                "## Performance\n\n\
                 Ratios of medians, stopwire / tokio-util `CancellationToken`, measured in one run on the \
                 same machine (lower is better; the targets are those of issue 5). Full table, machine, \
                 and the rows without a peer: [docs/benchmarks.md](docs/benchmarks.md); chart: \
                 [docs/benchmarks.svg](docs/benchmarks.svg). Regenerate with `{BENCH_COMMAND}` then \
                 `cargo xtask bench-report`; where the time goes: \
                 [docs/benchmarks-profile.md](docs/benchmarks-profile.md).\n\n{block}\n\n"
            );
            format!("{}{section}{}", &readme[..at], &readme[at..])
        }
    };
    if new != readme {
        fs::write(&path, new).map_err(|e| format!("README.md: {e}"))?;
    }
    Ok(())
}

/// Runs every benchmark routine once, without timing (criterion's `--test` mode), for `cargo
/// xtask test`.
pub(crate) fn smoke() -> Result {
    let mut args: Vec<&str> = BENCH_COMMAND.split_whitespace().skip(1).collect();
    args.extend(["--", "--test"]);
    run(cmd("cargo", &args)).map(|_| ())
}

/// The task. `--partial` writes the report even if some workloads have no results yet.
pub(crate) fn report(args: &[String]) -> Result {
    let partial = args.iter().any(|a| a == "--partial");
    let dir = criterion_dir();
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for w in &WORKLOADS {
        let ours = read_median(&dir, w.id)?;
        let peer = match w.peer {
            Some(p) => {
                let m = read_median(&dir, p)?;
                if m.is_none() {
                    missing.push(p);
                }
                m
            }
            None => None,
        };
        match ours {
            Some(ours) => rows.push(Row { w, ours, peer }),
            None => missing.push(w.id),
        }
    }
    if !missing.is_empty() && !partial {
        return Err(format!(
            "no criterion results in {} for: {} (run `{BENCH_COMMAND}` first)",
            dir.display(),
            missing.join(", ")
        ));
    }
    let newest = rows
        .iter()
        .flat_map(|r| std::iter::once(r.ours.written).chain(r.peer.map(|p| p.written)))
        .max()
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    let date = utc(newest);
    let machine = machine();

    let mut md = String::new();
    md.push_str("# Benchmarks: stopwire against tokio-util\n\n");
    md.push_str(
        "Generated by `cargo xtask bench-report` from criterion's results; do not edit by hand.\n\n",
    );
    let _ = writeln!(md, "- **Machine**: {machine}");
    let _ = writeln!(md, "- **Date of the run**: {date}");
    let commit = output(cmd("git", &["describe", "--always", "--dirty"])).unwrap_or_default();
    if !commit.trim().is_empty() {
        let _ = writeln!(
            md,
            "- **Source tree when this report was made** (make it right after the run): `{}`",
            commit.trim()
        );
    }
    let _ = writeln!(
        md,
        "- **Commands**: `{BENCH_COMMAND}` (criterion 0.8; 1 s warm-up, 2 s measurement, 50 samples per workload; `wake/1000`: 0.5 s, 1 s, 10 samples), then `cargo xtask bench-report`"
    );
    md.push_str(
        "- **Peer**: tokio-util 0.7.20 `CancellationToken`, in the same bench binary and run, ids \
         prefixed `tokio_`\n- **Medians** are criterion's median time per iteration with its 95 % \
         confidence interval; **ratio** = stopwire median / tokio-util median (lower is better). \
         Machines like this one are shared and noisy: the ratio is the figure to trust, the absolute \
         times are indicative.\n\n",
    );
    md.push_str(&table(&rows, false));
    if let Some(f) = read_median(&dir, "floor/black_box_ctx")? {
        let _ = writeln!(
            md,
            "\nHarness floor (`floor/black_box_ctx`: criterion's loop and the `black_box` of the \
             view, no check): {} per iteration; the check rows include it.",
            human(f.ns)
        );
    }
    md.push_str("\n![ratios](benchmarks.svg)\n\n");
    md.push_str(
        "Rows without a peer (`check/deadline`, `create_cancel/timeout`, `value/depth10`): tokio-util \
         has no deadlines and no values. They are judged against the absolute targets of issue 5 and \
         the figures of `BENCHMARKS.md` (Go 1.19: 375 ns for a create + cancel with timeout, 16 ns \
         for a value at depth 10); there is no earlier stopwire release to compare with yet.\n\n",
    );
    md.push_str(
        "How each workload is built (setup outside the timed part, `black_box` on the context) is \
         written at the top of `benches/context.rs`. Where the time goes in the rows that miss their \
         targets, with instruction counts: [benchmarks-profile.md](benchmarks-profile.md).\n",
    );
    if !missing.is_empty() {
        let _ = writeln!(
            md,
            "\n**Not measured in this run**: {}.",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let docs = root().join("docs");
    fs::create_dir_all(&docs).map_err(|e| format!("docs/: {e}"))?;
    fs::write(docs.join("benchmarks.md"), &md).map_err(|e| format!("docs/benchmarks.md: {e}"))?;
    let stamp = format!("{date}; {machine}");
    fs::write(docs.join("benchmarks.svg"), svg(&rows, &stamp))
        .map_err(|e| format!("docs/benchmarks.svg: {e}"))?;

    let mut headline = table(&rows, true);
    let _ = writeln!(
        headline,
        "\n<sub>{date}; {machine}; `{BENCH_COMMAND}` then `cargo xtask bench-report`.</sub>"
    );
    update_readme(&headline)?;

    println!("{}", table(&rows, false));
    println!("machine: {machine}\ndate: {date}");
    println!("wrote docs/benchmarks.md, docs/benchmarks.svg and the README table");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_631_400), "2026-11-25 18:30 UTC");
    }

    #[test]
    fn number_after_reads_criterion_json() {
        let j = r#"{"mean":{"point_estimate":9.0},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.25,"upper_bound":1.5e0},"point_estimate":1.37,"standard_error":0.06}}"#;
        let m = j.find("\"median\":").unwrap();
        assert_eq!(number_after(j, m, "point_estimate"), Some(1.37));
        assert_eq!(number_after(j, m, "lower_bound"), Some(1.25));
        assert_eq!(number_after(j, m, "upper_bound"), Some(1.5));
    }
}
