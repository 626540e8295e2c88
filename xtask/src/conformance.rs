//! `cargo xtask conformance`: the Hub's `/metrics`, checked by the real
//! tools instead of our own parser.
//!
//! 1. Installs what is missing: `promtool` (Debian package `prometheus`) and
//!    Python's `prometheus_client`.
//! 2. Starts the Hub on a free loopback port, sends traffic (including a 404
//!    and a non-standard method), and scrapes `/metrics` in both formats.
//! 3. Checks the `Content-Type` of each, runs `promtool check metrics` on the
//!    0.0.4 text and Python's OpenMetrics (and classic text) parser on the
//!    rest, then stops the Hub with SIGTERM and expects a clean exit.
//!
//! Before the Hub, the same tools check `cortex-metrics`' `exposition`
//! example, which holds what the Hub does not: escaped label values, NaN
//! and infinities, negative gauges and an overflow series.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, exec, root};

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Families the Hub must expose; checked by the Python parsers.
const REQUIRED_FAMILIES: &[&str] = &[
    "cortex_circuitbreaker_state",
    "cortex_actor_messages",
    "cortex_actor_handler_duration_seconds",
    "cortex_circuitbreaker_calls",
    "cortex_bulkhead_available_concurrent_calls",
    "cortex_retry_calls",
    "cortex_ratelimiter_available_permissions",
    "cortex_timeout_timed_out_calls",
    "cortex_health_check_status",
    "cortex_health_check_duration_seconds",
    "http_server_request_duration_seconds",
    "http_server_active_requests",
    "http_server_request_body_size_bytes",
    "http_server_response_body_size_bytes",
    "cortex_metrics_overflow",
    "hub_echo_requests",
    "hub_work_duration_seconds",
    "hub_work_in_progress",
    "process_cpu_seconds",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_threads",
];

const PYTHON_CHECK: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

om_path, text_path, required = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
failed = False
for label, parse, path in (("openmetrics", parse_om, om_path), ("prometheus-text", parse_text, text_path)):
    families = list(parse(open(path, encoding="utf-8").read()))
    names = {f.name for f in families}
    missing = [n for n in required if n not in names]
    samples = sum(len(f.samples) for f in families)
    print(f"python {label}: parsed {len(families)} families, {samples} samples")
    if missing:
        print(f"python {label}: missing families {missing}")
        failed = True
sys.exit(1 if failed else 0)
"#;

/// Checks the `exposition` example: every metric type, special values,
/// the overflow series, and a label value that must survive escaping.
const PYTHON_EXAMPLE_CHECK: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

om_path, text_path = sys.argv[1], sys.argv[2]
tricky = 'say "hi" \\ C:\\path\nnext line \u2713'
failed = False
for label, parse, path in (("openmetrics", parse_om, om_path), ("prometheus-text", parse_text, text_path)):
    families = list(parse(open(path, encoding="utf-8").read()))
    values = [s.labels.get("value") for f in families for s in f.samples]
    overflow = [s for f in families for s in f.samples if s.labels.get("otel_metric_overflow") == "true"]
    print(f"python {label} (example): {len(families)} families; tricky label round-trips: {tricky in values}; overflow series: {len(overflow)}")
    if tricky not in values or not overflow:
        failed = True
sys.exit(1 if failed else 0)
"#;

pub(crate) fn run() -> Result<(), String> {
    check_example()?;
    exec(&cargo(), &["build", "--quiet", "-p", "cortex-hub"])?;

    let addr = free_loopback_addr()?;
    let mut hub = HubProcess::start(addr)?;
    wait_until_listening(addr, Duration::from_secs(30))?;

    for head in [
        "GET / HTTP/1.1",
        "GET /health HTTP/1.1",
        "GET /api/echo/42 HTTP/1.1",
        "GET /api/echo/hello%20world HTTP/1.1",
        "GET /api/work?ms=5 HTTP/1.1",
        "GET /does/not/exist HTTP/1.1",
        "PURGE /api/echo/1 HTTP/1.1",
    ] {
        http(addr, head)?;
    }
    check_resilience(addr)?;
    check_orders(addr)?;

    let out_dir = root().join("target").join("conformance");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let text_path = scrape(addr, None, PROMETHEUS_TEXT, out_dir.join("metrics.txt"))?;
    let om_path = scrape(
        addr,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
        OPENMETRICS,
        out_dir.join("metrics.om"),
    )?;

    promtool_check(&text_path)?;
    let om_text = std::fs::read_to_string(&om_path).map_err(|e| e.to_string())?;
    if !om_text.contains(" # {trace_id=\"") {
        return Err("the OpenMetrics scrape carries no trace exemplar".to_owned());
    }

    let required = REQUIRED_FAMILIES.join(",");
    let python = Command::new("python3")
        .args(["-c", PYTHON_CHECK])
        .arg(&om_path)
        .arg(&text_path)
        .arg(required)
        .status()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !python.success() {
        return Err("the Python parsers rejected the exposition".to_owned());
    }

    check_health_endpoints(addr)?;
    crate::compression::check(addr, &out_dir)?;
    hub.stop_gracefully()?;
    eprintln!("conformance: all checks passed");
    Ok(())
}

/// The `exposition` example in both formats, through promtool and Python.
fn check_example() -> Result<(), String> {
    ensure_promtool()?;
    ensure_python_client()?;
    let out_dir = root().join("target").join("conformance");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let mut paths = Vec::new();
    for (format, file) in [("text", "example.txt"), ("openmetrics", "example.om")] {
        let output = Command::new(cargo())
            .args([
                "run",
                "--quiet",
                "-p",
                "cortex-metrics",
                "--example",
                "exposition",
                "--",
                format,
            ])
            .current_dir(root())
            .output()
            .map_err(|e| format!("cannot run the exposition example: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "the exposition example failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let path = out_dir.join(file);
        std::fs::write(&path, &output.stdout).map_err(|e| e.to_string())?;
        paths.push(path);
    }
    promtool_check(&paths[0])?;
    let python = Command::new("python3")
        .args(["-c", PYTHON_EXAMPLE_CHECK])
        .arg(&paths[1])
        .arg(&paths[0])
        .status()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !python.success() {
        return Err("the Python parsers rejected the example exposition".to_owned());
    }
    Ok(())
}

fn promtool_check(path: &Path) -> Result<(), String> {
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).map_err(|e| e.to_string())?)
        .output()
        .map_err(|e| format!("cannot run promtool: {e}"))?;
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
    if !promtool.status.success() || !findings.trim().is_empty() {
        return Err(format!(
            "promtool check metrics {} failed ({}):\n{findings}",
            path.display(),
            promtool.status
        ));
    }
    eprintln!("promtool check metrics {}: no problems", path.display());
    Ok(())
}

/// Installs Debian packages whose commands are missing.
pub(crate) fn ensure_packages(commands_and_packages: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = commands_and_packages
        .iter()
        .filter(|(command, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {command}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing Debian packages: {}", missing.join(" "));
    let update = Command::new("apt-get")
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !update.success() {
        return Err(format!("apt-get update failed with {update}"));
    }
    let install = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if install.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get install {} failed with {install}",
            missing.join(" ")
        ))
    }
}

fn ensure_promtool() -> Result<(), String> {
    ensure_packages(&[("promtool", "prometheus")])
}

fn ensure_python_client() -> Result<(), String> {
    let present = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    let install = ["-m", "pip", "install", "--quiet", "prometheus_client"];
    exec("python3", &install).or_else(|_| {
        // A Debian-managed Python refuses plain installs (PEP 668).
        exec(
            "python3",
            &[&install[..], &["--break-system-packages"]].concat(),
        )
    })
}

/// `/api/flaky` against a downstream that always fails: rate-limit headers
/// on every answer, 503s, then the breaker's own 503 with `Retry-After`,
/// and `/resilience` reporting it open.
fn check_resilience(addr: SocketAddr) -> Result<(), String> {
    let (head, _) = http(addr, "PUT /api/flaky/config?rate=1 HTTP/1.1")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("PUT /api/flaky/config: {head}"));
    }
    let mut opened = false;
    for _ in 0..20 {
        let (head, body) = http(addr, "GET /api/flaky HTTP/1.1")?;
        let lower = head.to_ascii_lowercase();
        if !lower.contains("ratelimit-limit:") || !lower.contains("ratelimit-remaining:") {
            return Err(format!("/api/flaky: no RateLimit-* headers:\n{head}"));
        }
        if !head.starts_with("HTTP/1.1 503") {
            return Err(format!("/api/flaky with a dead downstream: {head}"));
        }
        if body.contains("circuit breaker is open") {
            if !lower.contains("retry-after:") {
                return Err(format!("breaker rejection without Retry-After:\n{head}"));
            }
            opened = true;
            break;
        }
    }
    if !opened {
        return Err("the breaker never opened on a failing downstream".to_owned());
    }
    let (_, body) = http(addr, "GET /resilience HTTP/1.1")?;
    let json: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("/resilience: invalid JSON ({e})"))?;
    if !body.contains(r#""state":"open""#) && !body.contains(r#""state": "open""#) {
        return Err(format!(
            "/resilience does not report the open breaker: {json}"
        ));
    }
    http(addr, "PUT /api/flaky/config?rate=0 HTTP/1.1")?;
    eprintln!("resilience: rate-limit headers, breaker opens with Retry-After, /resilience agrees");
    Ok(())
}

/// An order placed over HTTP becomes an actor that reaches `completed`; a
/// bad body is refused with a typed error; an unknown order is a 404.
fn check_orders(addr: SocketAddr) -> Result<(), String> {
    let body = r#"{"item":"conformance","quantity":1}"#;
    let (head, created) = post_json(addr, "/api/orders", body)?;
    if !head.starts_with("HTTP/1.1 202") {
        return Err(format!("POST /api/orders: {head}\n{created}"));
    }
    let created: serde_json::Value = serde_json::from_str(&created)
        .map_err(|e| format!("POST /api/orders: invalid JSON ({e})"))?;
    let id = created["id"]
        .as_u64()
        .ok_or_else(|| format!("POST /api/orders: no id in {created}"))?;
    let mut state = String::new();
    for _ in 0..100 {
        let (_, order) = http(addr, &format!("GET /api/orders/{id} HTTP/1.1"))?;
        let order: serde_json::Value = serde_json::from_str(&order)
            .map_err(|e| format!("GET /api/orders/{id}: invalid JSON ({e})"))?;
        state = order["state"].as_str().unwrap_or_default().to_owned();
        if state == "completed" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if state != "completed" {
        return Err(format!(
            "order {id} ended in state {state:?}, not completed"
        ));
    }
    let (head, _) = http(addr, "GET /api/orders/987654321 HTTP/1.1")?;
    if !head.starts_with("HTTP/1.1 404") {
        return Err(format!("unknown order: {head}"));
    }
    let bad = r#"{"item":""}"#;
    let (head, _) = post_json(addr, "/api/orders", bad)?;
    if !head.starts_with("HTTP/1.1 422") {
        return Err(format!("an empty item: {head}"));
    }
    eprintln!("orders: an order actor completed; bad input 422, unknown order 404");
    Ok(())
}

/// Every probe answers `application/health+json` with an IETF status word
/// that agrees with the HTTP status.
fn check_health_endpoints(addr: SocketAddr) -> Result<(), String> {
    for path in [
        "/health",
        "/health?verbose",
        "/health/live",
        "/health/ready",
        "/health/startup",
        "/livez",
        "/readyz",
    ] {
        let (head, body) = http(addr, &format!("GET {path} HTTP/1.1"))?;
        if !head
            .to_ascii_lowercase()
            .contains("content-type: application/health+json")
        {
            return Err(format!("{path}: not application/health+json:\n{head}"));
        }
        let json: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("{path}: invalid JSON ({e}): {body}"))?;
        let status = json["status"].as_str().unwrap_or_default();
        let expected_http = match status {
            "pass" | "warn" => "HTTP/1.1 200",
            "fail" => "HTTP/1.1 503",
            other => return Err(format!("{path}: status {other:?} is not pass/warn/fail")),
        };
        if !head.starts_with(expected_http) {
            return Err(format!("{path}: status {status} but {head}"));
        }
        if !json["checks"].is_object() || !json["time"].is_string() {
            return Err(format!("{path}: missing checks or time: {body}"));
        }
    }
    eprintln!("health probes: all answer valid application/health+json");
    Ok(())
}

fn free_loopback_addr() -> Result<SocketAddr, String> {
    // Bind port 0, read the port, release it for the Hub. The window in
    // which another process could take it is negligible on a CI machine.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map_err(|e| e.to_string())
}

struct HubProcess {
    child: Child,
}

impl HubProcess {
    fn start(addr: SocketAddr) -> Result<Self, String> {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"));
        let binary = target.join("debug").join("cortex-hub");
        let child = Command::new(&binary)
            .args(["--addr", &addr.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        Ok(Self { child })
    }

    fn stop_gracefully(&mut self) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return if status.success() {
                    eprintln!("hub: clean exit after SIGTERM");
                    Ok(())
                } else {
                    Err(format!("hub exited with {status} after SIGTERM"))
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("hub did not stop within 10 s of SIGTERM".to_owned())
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_until_listening(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "the hub did not listen on {addr} within {timeout:?}"
    ))
}

/// A `POST` of a JSON body.
fn post_json(addr: SocketAddr, path: &str, body: &str) -> Result<(String, String), String> {
    send(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}",
            body.len()
        ),
        body,
    )
}

/// One HTTP/1.1 exchange with `Connection: close`: (head, body).
pub(crate) fn http(addr: SocketAddr, head: &str) -> Result<(String, String), String> {
    send(addr, head, "")
}

/// `head` (request line and headers), then `body`; answers (head, body).
fn send(addr: SocketAddr, head: &str, body: &str) -> Result<(String, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "{head}\r\nHost: conformance\r\nConnection: close\r\n\r\n{body}"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let response = String::from_utf8(response).map_err(|e| format!("non-UTF-8 response: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed response: {response:?}"))?;
    Ok((head.to_owned(), body.to_owned()))
}

fn scrape(
    addr: SocketAddr,
    accept: Option<&str>,
    expected_type: &str,
    path: PathBuf,
) -> Result<PathBuf, String> {
    let request = match accept {
        Some(accept) => format!("GET /metrics HTTP/1.1\r\nAccept: {accept}"),
        None => "GET /metrics HTTP/1.1".to_owned(),
    };
    let (head, body) = http(addr, &request)?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("scrape failed: {head}"));
    }
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    if content_type != expected_type {
        return Err(format!(
            "expected Content-Type {expected_type:?}, got {content_type:?}"
        ));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err("the scrape was chunked; this checker reads whole bodies only".to_owned());
    }
    std::fs::write(&path, &body).map_err(|e| e.to_string())?;
    eprintln!(
        "scraped {} bytes as {content_type} -> {}",
        body.len(),
        path.display()
    );
    Ok(path)
}
