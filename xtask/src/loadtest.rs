//! `cargo xtask loadtest [--quick] [--rounds N] [--seconds S] [--only a,b]
//! [--no-report] [--instructions]`: the full stack measured as users run
//! it.
//!
//! Builds `examples/loadtest` in release and, for each named variant (the
//! same route and handler under one stack of layers each: bare axum, each
//! Cortex layer alone, tower-http's layers as peers, the facade's default
//! stack, the Hub's full router; `cortex-loadtest list`), starts its server
//! on a free loopback port and drives `GET /api/echo/42` with `wrk -t1
//! -c64` (Debian's, installed if missing). Variants are interleaved and the
//! order rotates every round, so a slow spell of this shared machine hits
//! every variant alike; each run has a 1 s warm-up first. Reported per
//! variant: median req/s over the rounds, median p50/p99/p99.9 latency
//! (wrk's own histogram, through a Lua `done` hook), the ratio to bare
//! axum's median, and the per-request overhead `1/rps − 1/rps(bare)`.
//!
//! A fixed-rate run follows for `bare`, `facade` and `hub`: each is
//! offered half of bare axum's measured maximum by `oha -q` with
//! `--latency-correction` (installed with `cargo install` if missing), so
//! tail latency under a set load is compared at equal load and a stall is
//! charged to every request it delayed, not hidden by coordinated
//! omission.
//!
//! Writes `target/loadtest/results.json` and, unless `--no-report`, the
//! section between the `loadtest` markers of `docs/benchmarks.md` and
//! `docs/loadtest.json`. The default (3 rounds of 8 s over 18 variants)
//! takes about 9 minutes; `--quick` (1 round of 3 s) about 2.
//!
//! `--instructions` replaces the wrk runs with callgrind's count of the
//! instructions one request costs under each variant, which repeats where
//! req/s on this shared machine does not (see [`instructions`]); it writes
//! its own section of `docs/benchmarks.md` and `docs/instructions.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::conformance::tools::ensure_packages;
use crate::{cargo, exec, root};

mod instructions;

/// wrk's `done` hook: one JSON line with what the report needs (latency in
/// microseconds).
const REPORT_LUA: &str = r#"
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "LOADTEST {\"requests\":%d,\"duration_us\":%d,\"errors\":%d,\"non_2xx\":%d,\"p50_us\":%d,\"p99_us\":%d,\"p999_us\":%d,\"max_us\":%d}\n",
    summary.requests, summary.duration, errors, summary.errors.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"#;

const ROUTE: &str = "/api/echo/42";
const CONNECTIONS: u32 = 64;
const MARK_START: &str = "<!-- loadtest:start -->";
const MARK_END: &str = "<!-- loadtest:end -->";
const INSTRUCTIONS_START: &str = "<!-- instructions:start -->";
const INSTRUCTIONS_END: &str = "<!-- instructions:end -->";

struct Options {
    rounds: usize,
    seconds: u64,
    only: Option<Vec<String>>,
    report: bool,
    instructions: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            rounds: 3,
            seconds: 8,
            only: None,
            report: true,
            instructions: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match arg.as_str() {
                "--quick" => {
                    options.rounds = 1;
                    options.seconds = 3;
                }
                "--rounds" => {
                    options.rounds = value("--rounds")?
                        .parse()
                        .map_err(|e| format!("--rounds: {e}"))?;
                }
                "--seconds" => {
                    options.seconds = value("--seconds")?
                        .parse()
                        .map_err(|e| format!("--seconds: {e}"))?;
                }
                "--only" => {
                    options.only = Some(value("--only")?.split(',').map(str::to_owned).collect());
                }
                "--no-report" => options.report = false,
                "--instructions" => options.instructions = true,
                other => return Err(format!("unknown loadtest option {other:?}")),
            }
        }
        if options.rounds == 0 || options.seconds == 0 {
            return Err("--rounds and --seconds must be at least 1".to_owned());
        }
        Ok(options)
    }
}

/// One wrk run's numbers.
#[derive(Debug, Clone)]
struct Run {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    errors: u64,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    exec(
        &cargo(),
        &["build", "--release", "--quiet", "-p", "cortex-loadtest"],
    )?;
    let dir = root().join("target").join("loadtest");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if options.instructions {
        return count_instructions(&options, &dir);
    }
    ensure_packages(&[("wrk", "wrk")])?;
    let report_lua = dir.join("report.lua");
    std::fs::write(&report_lua, REPORT_LUA).map_err(|e| e.to_string())?;
    let oha = ensure_oha()?;

    let mut chosen = chosen_variants(&options)?;
    let started = Instant::now();
    let mut runs: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for round in 0..options.rounds {
        // Rotate, so no variant always runs first or last in a round.
        chosen.rotate_left(round.min(1));
        for (name, _) in &chosen {
            let server = Server::start(name, &dir)?;
            // Warm-up: connections, allocator, caches, JIT-free but lazy
            // statics.
            wrk(&server, 1, &report_lua, &[])?;
            let run = wrk(&server, options.seconds, &report_lua, &[])?;
            eprintln!(
                "loadtest round {}: {name:<24} {:>9.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs  p99.9 {:>6.0} µs{}",
                round + 1,
                run.rps,
                run.p50_us,
                run.p99_us,
                run.p999_us,
                if run.errors > 0 {
                    format!("  ({} errors)", run.errors)
                } else {
                    String::new()
                }
            );
            runs.entry(name.clone()).or_default().push(run);
            server.stop();
        }
    }

    let bare_rps = median(runs["bare"].iter().map(|r| r.rps));
    let fixed_rate = (bare_rps / 2.0).round();
    let mut paced: BTreeMap<String, Run> = BTreeMap::new();
    for name in ["bare", "facade", "hub"] {
        if !chosen.iter().any(|(n, _)| n == name) {
            continue;
        }
        let server = Server::start(name, &dir)?;
        wrk(&server, 1, &report_lua, &[])?;
        let run = fixed_rate_run(&oha, &server, options.seconds, fixed_rate)?;
        eprintln!(
            "loadtest at {fixed_rate:.0} req/s: {name:<10} achieved {:>9.0} req/s  p50 {:>6.0} µs  p99 {:>6.0} µs  p99.9 {:>6.0} µs",
            run.rps, run.p50_us, run.p99_us, run.p999_us
        );
        paced.insert(name.to_owned(), run);
        server.stop();
    }

    let results = results_json(
        &chosen,
        &runs,
        &paced,
        fixed_rate,
        &options,
        started.elapsed(),
    );
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("results.json"), &text).map_err(|e| e.to_string())?;
    let table = markdown(&results);
    eprintln!("\n{table}");
    if options.report {
        std::fs::write(root().join("docs").join("loadtest.json"), &text)
            .map_err(|e| e.to_string())?;
        write_section(
            &root().join("docs").join("benchmarks.md"),
            (MARK_START, MARK_END),
            "Full stack under load",
            &table,
        )?;
        eprintln!("loadtest: wrote docs/benchmarks.md (loadtest section) and docs/loadtest.json");
    }
    eprintln!("loadtest: done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The variants `--only` picks (all by default), `bare` always among them,
/// in `cortex-loadtest list`'s order.
fn chosen_variants(options: &Options) -> Result<Vec<(String, String)>, String> {
    let chosen: Vec<(String, String)> = variants()?
        .into_iter()
        .filter(|(name, _)| {
            name == "bare"
                || options
                    .only
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|o| o == name))
        })
        .collect();
    if chosen.len() < 2 {
        return Err("no variant besides bare chosen; see `cortex-loadtest list`".to_owned());
    }
    Ok(chosen)
}

/// `--instructions`: callgrind's count of one request's instructions per
/// variant (see [`instructions`]); about 20 s a variant.
fn count_instructions(options: &Options, dir: &Path) -> Result<(), String> {
    ensure_packages(&[("valgrind", "valgrind")])?;
    let started = Instant::now();
    let mut counted = Vec::new();
    for (name, about) in chosen_variants(options)? {
        let count = instructions::per_request(&name, dir)?;
        eprintln!("loadtest --instructions: {name:<24} {count:>9.0} instructions per request");
        counted.push((name, about, count));
    }
    let results = instructions::results(&counted);
    let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("instructions.json"), &text).map_err(|e| e.to_string())?;
    let table = instructions::markdown(&results);
    eprintln!("\n{table}");
    if options.report {
        std::fs::write(root().join("docs").join("instructions.json"), &text)
            .map_err(|e| e.to_string())?;
        write_section(
            &root().join("docs").join("benchmarks.md"),
            (INSTRUCTIONS_START, INSTRUCTIONS_END),
            "Instructions per request",
            &table,
        )?;
        eprintln!(
            "loadtest: wrote docs/benchmarks.md (instructions section) and docs/instructions.json"
        );
    }
    eprintln!(
        "loadtest --instructions: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cortex-loadtest list`: the variants and what each adds.
fn variants() -> Result<Vec<(String, String)>, String> {
    let output = Command::new(binary())
        .arg("list")
        .output()
        .map_err(|e| format!("cannot run cortex-loadtest: {e}"))?;
    if !output.status.success() {
        return Err(format!("cortex-loadtest list failed: {}", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(name, about)| (name.to_owned(), about.to_owned()))
        .collect())
}

fn binary() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("release")
        .join("cortex-loadtest")
}

/// A variant's server process, killed when stopped or dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(variant: &str, dir: &Path) -> Result<Self, String> {
        let addr_file = dir.join(format!("{variant}.addr"));
        let _ = std::fs::remove_file(&addr_file);
        let child = Command::new(binary())
            .args(["serve", variant, "--addr-file"])
            .arg(&addr_file)
            // The Hub logs a line per request, as it does in production;
            // the bytes go nowhere.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start cortex-loadtest serve {variant}: {e}"))?;
        let mut server = Self {
            child,
            addr: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                server.addr = addr.trim().to_owned();
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("{variant} exited with {status} before listening"));
            }
            if Instant::now() > deadline {
                return Err(format!("{variant} did not listen within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("http://{}{ROUTE}", self.addr)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wrk(
    server: &Server,
    seconds: u64,
    script: &Path,
    script_args: &[String],
) -> Result<Run, String> {
    let mut command = Command::new("wrk");
    command
        .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{seconds}s")])
        .arg("-s")
        .arg(script)
        .arg(server.url());
    if !script_args.is_empty() {
        command.arg("--").args(script_args);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("wrk failed ({}): {stdout}", output.status));
    }
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("LOADTEST "))
        .ok_or_else(|| format!("wrk printed no LOADTEST line:\n{stdout}"))?;
    let report: Value = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
    let number = |key: &str| report.get(key).and_then(Value::as_f64).unwrap_or(0.0);
    let seconds = number("duration_us") / 1e6;
    Ok(Run {
        rps: if seconds > 0.0 {
            number("requests") / seconds
        } else {
            0.0
        },
        p50_us: number("p50_us"),
        p99_us: number("p99_us"),
        p999_us: number("p999_us"),
        errors: (number("errors") + number("non_2xx")) as u64,
    })
}

/// `oha` (a Rust HTTP load generator with an open-loop `-q` rate and
/// latency correction), installed with `cargo install` when missing. Its
/// client needs a TLS backend to build: `native-tls` over Debian's OpenSSL
/// (its default, aws-lc-rs, needs cmake); loopback runs never use it.
fn ensure_oha() -> Result<PathBuf, String> {
    let installed = |path: &Path| {
        Command::new(path)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let on_path = PathBuf::from("oha");
    if installed(&on_path) {
        return Ok(on_path);
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .unwrap_or_default()
        .join("bin")
        .join("oha");
    if installed(&cargo_bin) {
        return Ok(cargo_bin);
    }
    ensure_packages(&[("pkg-config", "pkg-config")])?;
    if !Path::new("/usr/include/openssl/ssl.h").exists() {
        // A header, not a command, so not `ensure_packages`.
        exec("apt-get", &["update", "-qq"])?;
        exec("apt-get", &["install", "-y", "-qq", "libssl-dev"])?;
    }
    exec(
        &cargo(),
        &[
            "install",
            "--locked",
            "--no-default-features",
            "--features",
            "native-tls",
            "oha",
        ],
    )?;
    Ok(cargo_bin)
}

/// A fixed-rate run at `rate` requests a second with `oha -q`: requests
/// are sent on a schedule, and `--latency-correction` measures each from
/// its scheduled time, so a stall that holds back later requests counts
/// against them (wrk measures from the actual send, which hides it).
fn fixed_rate_run(oha: &Path, server: &Server, seconds: u64, rate: f64) -> Result<Run, String> {
    let output = Command::new(oha)
        .args([
            "-z",
            &format!("{seconds}s"),
            "-q",
            &format!("{rate:.0}"),
            "-c",
            &CONNECTIONS.to_string(),
            "--latency-correction",
            "--no-tui",
            "--output-format",
            "json",
        ])
        .arg(server.url())
        .output()
        .map_err(|e| format!("cannot run oha: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "oha failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let report: Value = serde_json::from_str(&stdout).map_err(|e| format!("oha's JSON: {e}"))?;
    let micros = |key: &str| {
        report["latencyPercentiles"][key]
            .as_f64()
            .map_or(0.0, |seconds| seconds * 1e6)
    };
    let run = Run {
        rps: report["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        p50_us: micros("p50"),
        p99_us: micros("p99"),
        p999_us: micros("p99.9"),
        errors: 0,
    };
    if run.rps < rate * 0.95 {
        eprintln!(
            "loadtest: only {:.0} of {rate:.0} req/s achieved by oha",
            run.rps
        );
    }
    Ok(run)
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

fn results_json(
    chosen: &[(String, String)],
    runs: &BTreeMap<String, Vec<Run>>,
    paced: &BTreeMap<String, Run>,
    fixed_rate: f64,
    options: &Options,
    elapsed: Duration,
) -> Value {
    let bare = median(runs["bare"].iter().map(|r| r.rps));
    // Report in `cortex-loadtest list`'s order, not the rotated one.
    let mut order: Vec<&(String, String)> = chosen.iter().collect();
    let listed = variants().unwrap_or_default();
    order.sort_by_key(|(name, _)| listed.iter().position(|(n, _)| n == name));
    let rows: Vec<Value> = order
        .iter()
        .map(|(name, about)| {
            let of = &runs[name];
            let rps = median(of.iter().map(|r| r.rps));
            json!({
                "variant": name,
                "about": about,
                "rps": rps.round(),
                "rps_rounds": of.iter().map(|r| r.rps.round()).collect::<Vec<_>>(),
                "ratio": if bare > 0.0 { rps / bare } else { 0.0 },
                "overhead_us": if rps > 0.0 && bare > 0.0 { (1.0 / rps - 1.0 / bare) * 1e6 } else { 0.0 },
                "p50_us": median(of.iter().map(|r| r.p50_us)),
                "p99_us": median(of.iter().map(|r| r.p99_us)),
                "p999_us": median(of.iter().map(|r| r.p999_us)),
                "errors": of.iter().map(|r| r.errors).sum::<u64>(),
            })
        })
        .collect();
    let fixed: Vec<Value> = paced
        .iter()
        .map(|(name, run)| {
            json!({
                "variant": name,
                "achieved_rps": run.rps.round(),
                "p50_us": run.p50_us,
                "p99_us": run.p99_us,
                "p999_us": run.p999_us,
            })
        })
        .collect();
    json!({
        "route": ROUTE,
        "load_generator": format!("wrk -t1 -c{CONNECTIONS}"),
        "rounds": options.rounds,
        "seconds_per_run": options.seconds,
        "elapsed_seconds": elapsed.as_secs(),
        "machine": machine(),
        "variants": rows,
        "fixed_rate": { "rps": fixed_rate, "runs": fixed },
    })
}

/// The CPU model and count, for the report.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cpus} × {model}")
}

fn markdown(results: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "`cargo xtask loadtest`: `{}` on `GET {}`, server and load generator on one {} machine over loopback, {} round(s) of {} s per variant, variants interleaved; medians over the rounds.\n",
        results["load_generator"].as_str().unwrap_or(""),
        results["route"].as_str().unwrap_or(""),
        results["machine"].as_str().unwrap_or(""),
        results["rounds"],
        results["seconds_per_run"],
    );
    out.push_str("| variant | what it adds | req/s | ratio to bare | overhead µs/req | p50 µs | p99 µs | p99.9 µs |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for row in results["variants"].as_array().into_iter().flatten() {
        let number = |key: &str| row[key].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} |",
            row["variant"].as_str().unwrap_or(""),
            row["about"].as_str().unwrap_or(""),
            number("rps"),
            number("ratio"),
            number("overhead_us"),
            number("p50_us"),
            number("p99_us"),
            number("p999_us"),
        );
    }
    let fixed = &results["fixed_rate"];
    if fixed["runs"]
        .as_array()
        .is_some_and(|runs| !runs.is_empty())
    {
        let _ = writeln!(
            out,
            "\nAt a fixed {:.0} req/s (half of bare axum's maximum above):\n",
            fixed["rps"].as_f64().unwrap_or(0.0)
        );
        out.push_str("| variant | achieved req/s | p50 µs | p99 µs | p99.9 µs |\n|---|---:|---:|---:|---:|\n");
        for run in fixed["runs"].as_array().into_iter().flatten() {
            let number = |key: &str| run[key].as_f64().unwrap_or(0.0);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} |",
                run["variant"].as_str().unwrap_or(""),
                number("achieved_rps"),
                number("p50_us"),
                number("p99_us"),
                number("p999_us"),
            );
        }
    }
    out
}

/// Replaces the text between the `markers` of `page` (appending a section
/// under `heading` with them if there are none).
fn write_section(
    page: &Path,
    (mark_start, mark_end): (&str, &str),
    heading: &str,
    table: &str,
) -> Result<(), String> {
    let text = std::fs::read_to_string(page).map_err(|e| format!("{}: {e}", page.display()))?;
    let section = format!("{mark_start}\n{table}{mark_end}");
    let updated = match (text.find(mark_start), text.find(mark_end)) {
        (Some(start), Some(end)) if start < end => {
            format!(
                "{}{section}{}",
                &text[..start],
                &text[end + mark_end.len()..]
            )
        }
        _ => format!("{text}\n## {heading}\n\n{section}\n"),
    };
    std::fs::write(page, updated).map_err(|e| format!("{}: {e}", page.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    #[test]
    fn options_parse() {
        let quick = Options::parse(&["--quick".to_owned()]).unwrap();
        assert_eq!((quick.rounds, quick.seconds), (1, 3));
        let only = Options::parse(&["--only".to_owned(), "metrics,hub".to_owned()]).unwrap();
        assert_eq!(only.only.unwrap(), ["metrics", "hub"]);
        assert!(Options::parse(&["--rounds".to_owned(), "0".to_owned()]).is_err());
    }
}
