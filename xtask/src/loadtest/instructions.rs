//! `cargo xtask loadtest --instructions`: the CPU instructions one request
//! costs under each variant, counted by valgrind's callgrind.
//!
//! Requests per second on a shared 2-core machine move by 10% to 30% between
//! runs; instruction counts for the same binary and the same requests do
//! not (callgrind counts instructions, not time, so the other core's load
//! changes nothing). Each variant's server runs twice under callgrind: once
//! answering `WARM_UP + FEW` requests and once `WARM_UP + MANY`, each
//! request sent on one keep-alive connection after the last answer came
//! back, then stopped by SIGTERM (it exits normally, so callgrind writes
//! its totals). Only instructions inside hyper's HTTP/1 dispatcher are
//! counted (`--toggle-collect`): reading, routing, handling, answering and
//! logging each request, not the runtime's idling nor background tasks,
//! which scale with wall time. Start-up and shutdown are the same in both
//! runs, so `(total(MANY) − total(FEW)) / (MANY − FEW)` is what one
//! request costs: hyper's parsing and writing, axum's routing, the handler
//! and the variant's layers. The difference from `bare` is the layers
//! alone.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{ROUTE, binary};

/// Requests before the counted ones differ between the two runs: lazy
/// statics, the connection, the allocator's first pages.
const WARM_UP: u32 = 200;
const FEW: u32 = 500;
const MANY: u32 = 2_500;

/// Instructions per request for `variant`.
pub(super) fn per_request(variant: &str, dir: &Path) -> Result<f64, String> {
    let few = total(variant, dir, WARM_UP + FEW)?;
    let many = total(variant, dir, WARM_UP + MANY)?;
    let per_request = (many as f64 - few as f64) / f64::from(MANY - FEW);
    // Reading, routing and answering a request is thousands of
    // instructions; far fewer means `--toggle-collect` no longer matches
    // hyper's dispatcher (a rename, or inlining), not a fast server.
    if per_request < 1_000.0 {
        return Err(format!(
            "{variant}: {per_request:.0} instructions per request ({few} for {} requests, {many} for {}): callgrind counted outside the request path; check --toggle-collect",
            WARM_UP + FEW,
            WARM_UP + MANY
        ));
    }
    Ok(per_request)
}

/// The instructions the server ran, from start to exit, answering
/// `requests` requests.
fn total(variant: &str, dir: &Path, requests: u32) -> Result<u64, String> {
    let addr_file = dir.join(format!("{variant}.callgrind.addr"));
    let out_file = dir.join(format!("{variant}.{requests}.callgrind"));
    let _ = std::fs::remove_file(&addr_file);
    let _ = std::fs::remove_file(&out_file);
    let mut child = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--dump-instr=no",
            "--dump-line=no",
            "--compress-strings=no",
            // Count only inside hyper's HTTP/1 dispatcher, where each
            // request is read, routed, handled, answered and logged: not
            // the runtime idling between requests, nor background tasks
            // (timers, samplers) whose work grows with wall time, which
            // under valgrind is far longer for more requests.
            "--toggle-collect=*Dispatcher*poll_catch*",
        ])
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(binary())
        .args(["serve", variant, "--addr-file"])
        .arg(&addr_file)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start valgrind: {e}"))?;
    let result = drive(&mut child, variant, &addr_file, requests);
    // Valgrind's exit (writing the profile) is slow: a generous grace.
    if !crate::process::stop_by_pid(&mut child, Duration::from_secs(120)) {
        return Err(format!("{variant} under callgrind did not exit on SIGTERM"));
    }
    result?;
    let profile =
        std::fs::read_to_string(&out_file).map_err(|e| format!("{}: {e}", out_file.display()))?;
    let _ = std::fs::remove_file(&out_file);
    totals(&profile).ok_or_else(|| format!("no totals in {}", out_file.display()))
}

fn drive(child: &mut Child, variant: &str, addr_file: &Path, requests: u32) -> Result<(), String> {
    // Valgrind starts a program about 50 times slower than it runs.
    let deadline = Instant::now() + Duration::from_secs(180);
    let addr = loop {
        if let Ok(addr) = std::fs::read_to_string(addr_file) {
            break addr.trim().to_owned();
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{variant} under callgrind exited with {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{variant} under callgrind did not listen within 180 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stream = TcpStream::connect(&addr).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let request =
        format!("GET {ROUTE} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: cortex-loadtest\r\n\r\n");
    for sent in 0..requests {
        writer
            .write_all(request.as_bytes())
            .map_err(|e| format!("request {sent}: {e}"))?;
        read_response(&mut reader).map_err(|e| format!("{variant}, response {sent}: {e}"))?;
    }
    Ok(())
}

/// Reads one HTTP/1.1 response with a `Content-Length` (every variant's
/// echo answer has one), checking it is a 200.
fn read_response(reader: &mut impl BufRead) -> Result<(), String> {
    let mut line = String::new();
    let mut length = None;
    let mut status_line = true;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("connection closed".to_owned());
        }
        let trimmed = line.trim_end();
        if status_line {
            if !trimmed.starts_with("HTTP/1.1 200") {
                return Err(format!("status line {trimmed:?}"));
            }
            status_line = false;
            continue;
        }
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let length = length.ok_or("a response without Content-Length")?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())
}

/// The `totals:` (or, failing that, `summary:`) line of a callgrind
/// profile: instructions executed.
fn totals(profile: &str) -> Option<u64> {
    let find = |prefix: &str| {
        profile
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    find("totals:").or_else(|| find("summary:"))
}

/// The report's rows: instructions per request and over bare, per variant.
pub(super) fn results(counted: &[(String, String, f64)]) -> Value {
    let bare = counted
        .iter()
        .find(|(name, _, _)| name == "bare")
        .map_or(0.0, |(_, _, count)| *count);
    let rows: Vec<Value> = counted
        .iter()
        .map(|(name, about, count)| {
            json!({
                "variant": name,
                "about": about,
                "instructions": count.round(),
                "over_bare": (count - bare).round(),
                "ratio": if bare > 0.0 { count / bare } else { 0.0 },
            })
        })
        .collect();
    json!({
        "route": ROUTE,
        "method": format!("callgrind, ({} − {}) requests on one keep-alive connection, after {WARM_UP} warm-up", MANY, FEW),
        "variants": rows,
    })
}

pub(super) fn markdown(results: &Value) -> String {
    let mut out = String::from(
        "CPU instructions per request, counted by valgrind's callgrind (`cargo xtask loadtest --instructions`): the server answers `GET /api/echo/42` on one keep-alive connection, once 700 times and once 2 700 times; the difference over 2 000 is one request's cost, start-up excluded. Only instructions inside hyper's HTTP/1 dispatcher count (reading, routing, handling, answering, logging), not the runtime idling or background tasks. Counts repeat to within a fraction of a percent whatever else the machine does, so they show a layer's cost where req/s cannot. `over bare` is the variant's layers alone; `bare` itself is hyper, axum's router and the handler.\n\n",
    );
    out.push_str(
        "| variant | what it adds | instructions / request | over bare | ratio to bare |\n",
    );
    out.push_str("|---|---|---:|---:|---:|\n");
    for row in results["variants"].as_array().into_iter().flatten() {
        let number = |key: &str| row[key].as_f64().unwrap_or(0.0);
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:+.0} | {:.2} |",
            row["variant"].as_str().unwrap_or(""),
            row["about"].as_str().unwrap_or(""),
            number("instructions"),
            number("over_bare"),
            number("ratio"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_come_from_the_profile_header() {
        let profile = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 1234\n\nfn=main\n1 1\ntotals: 5678\n";
        assert_eq!(totals(profile), Some(5678));
        assert_eq!(totals("summary: 42\n"), Some(42));
        assert_eq!(totals("events: Ir\n"), None);
    }

    #[test]
    fn a_response_is_read_to_its_length() {
        let mut two = &b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..];
        assert!(read_response(&mut two).is_ok());
        assert!(read_response(&mut two).is_ok());
        let mut error = &b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"[..];
        assert!(read_response(&mut error).is_err());
    }
}
