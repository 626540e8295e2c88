//! Trace export over OTLP, received by a real OTLP/HTTP receiver: a Hub
//! of its own, configured only by the standard `OTEL_*` variables, exports
//! the spans of one traced order to `xtask/otlp_receiver.py`, which parses
//! every request with the official `opentelemetry-proto` bindings (a
//! malformed export fails there, not in our own decoder) and writes each
//! span as a JSON line to `target/conformance/otlp-spans.jsonl`.
//!
//! A `POST /api/orders` with a fresh `traceparent` must produce, all with
//! the incoming trace id and `service.name` = [`SERVICE`]:
//! - the HTTP server span `POST /api/orders` (kind SERVER, `http.route`
//!   `/api/orders`, status 202), a child of the `traceparent`'s span;
//! - `order.process`, the order actor's work in its own task, a child of
//!   the server span (the trace continues into the actor);
//! - `payments.charge` (`policy` = `payments`), its child, the charge
//!   through the resilience pipeline;
//! - `payments.attempt` (`attempt` = 1), the charge's child, the one call
//!   that reached the provider.
//!
//! The last three are `tracing` spans at `info`, exported through
//! tracing-opentelemetry: the Hub runs with `RUST_LOG=info` (the other
//! Hubs' `warn` would filter them out before any layer sees them).
//! Spans are batched (`OTEL_BSP_SCHEDULE_DELAY=200` ms here, which the
//! SDK's batch processor reads); the file is polled while the Hub runs,
//! then the Hub is stopped with SIGTERM, whose tracing guard flushes what
//! is left, so a span exported only at shutdown still counts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::client::Client;
use super::json::{str_field, u64_field};
use super::orders::finished;
use super::tools::ensure_otlp_proto;
use crate::hub::HubProcess;
use crate::root;

/// The service name the Hub is given through `OTEL_SERVICE_NAME`.
const SERVICE: &str = "cortex-hub-conformance";
/// How long the spans may take to arrive while the Hub runs.
const EXPORT_WITHIN: Duration = Duration::from_secs(20);
/// The server span's name: method and route template.
const SERVER_SPAN: &str = "POST /api/orders";
/// The spans the order must produce, parent first.
const EXPECTED: [&str; 4] = [
    SERVER_SPAN,
    "order.process",
    "payments.charge",
    "payments.attempt",
];

pub(crate) fn check(out_dir: &Path) -> Result<(), String> {
    ensure_otlp_proto()?;
    let spans_path = out_dir.join("otlp-spans.jsonl");
    let receiver = Receiver::start(&spans_path)?;
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let hub = HubProcess::start_logged(
        &[
            ("RUST_LOG", "info"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_SERVICE_NAME", SERVICE),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("CORTEX_DRAIN_DELAY", "500ms"),
        ],
        &out_dir.join("hub-otlp.log"),
    )?;
    let client = Client::new(hub.addr());
    let incoming = Incoming::fresh();
    let placed = traced_order(&client, &incoming);
    let waited = match placed {
        Ok(_) => wait_for_spans(&spans_path, &incoming.trace_id),
        Err(_) => Ok(()),
    };
    drop(client);
    // SIGTERM: the tracing guard flushes the batch processor on the way
    // out, and a clean exit is still expected.
    let stopped = hub.stop();
    let id = placed?;
    waited?;
    stopped?;
    let spans = read_spans(&spans_path)?;
    drop(receiver);
    verify(&spans, &incoming, id)
}

/// `POST /api/orders` with the `traceparent` of `incoming`; the order
/// must complete. Returns its id.
fn traced_order(client: &Client, incoming: &Incoming) -> Result<u64, String> {
    let traceparent = format!("00-{}-{}-01", incoming.trace_id, incoming.span_id);
    let reply = client.send(
        "POST",
        "/api/orders",
        &[
            ("content-type", "application/json"),
            ("traceparent", &traceparent),
        ],
        Some(br#"{"item":"otlp"}"#),
    )?;
    reply.expect_status(202)?;
    let id = u64_field(&reply.json()?, "id")?;
    let order = finished(client, id)?;
    if str_field(&order, "state")? != "completed" {
        return Err(format!(
            "order {id} (traced for OTLP) did not complete: {order}"
        ));
    }
    Ok(id)
}

/// Polls the spans file until every [`EXPECTED`] span of `trace_id` is
/// there, for at most [`EXPORT_WITHIN`]; what is still missing then is
/// [`verify`]'s to report, after the shutdown flush.
fn wait_for_spans(path: &Path, trace_id: &str) -> Result<(), String> {
    let deadline = Instant::now() + EXPORT_WITHIN;
    loop {
        let spans = read_spans(path)?;
        let all = EXPECTED.iter().all(|name| {
            spans
                .iter()
                .any(|s| s["trace_id"] == trace_id && s["name"] == *name)
        });
        if all || Instant::now() >= deadline {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The spans of the incoming trace: each expected once, with its kind,
/// parent, attributes and service name.
fn verify(spans: &[Value], incoming: &Incoming, id: u64) -> Result<(), String> {
    let refused: Vec<&str> = spans
        .iter()
        .filter_map(|s| s.get("error").and_then(Value::as_str))
        .collect();
    if !refused.is_empty() {
        return Err(format!(
            "the OTLP receiver refused export requests from the Hub:\n  {}",
            refused.join("\n  ")
        ));
    }
    let trace: Vec<&Value> = spans
        .iter()
        .filter(|s| s["trace_id"] == incoming.trace_id.as_str())
        .collect();
    let shown = || {
        let lines: Vec<String> = trace
            .iter()
            .map(|s| {
                format!(
                    "{} ({}) span {} parent {}",
                    s["name"], s["kind"], s["span_id"], s["parent_span_id"]
                )
            })
            .collect();
        format!(
            "spans of trace {} received ({} spans in all, target/conformance/otlp-spans.jsonl):\n  {}",
            incoming.trace_id,
            spans.len(),
            if lines.is_empty() {
                "none".to_owned()
            } else {
                lines.join("\n  ")
            }
        )
    };
    let mut problems = Vec::new();
    let mut found: Vec<Option<&Value>> = Vec::new();
    for name in EXPECTED {
        let named: Vec<&&Value> = trace.iter().filter(|s| s["name"] == name).collect();
        match named.as_slice() {
            [span] => found.push(Some(span)),
            [] => {
                problems.push(format!(
                    "no `{name}` span exported with the incoming trace id (not within {EXPORT_WITHIN:?}, nor at the shutdown flush)"
                ));
                found.push(None);
            }
            more => {
                problems.push(format!(
                    "`{name}` exported {} times, once expected",
                    more.len()
                ));
                found.push(None);
            }
        }
    }
    for span in &trace {
        if span["service_name"] != SERVICE {
            problems.push(format!(
                "{}: resource service.name {}, expected {SERVICE:?} (OTEL_SERVICE_NAME)",
                span["name"], span["service_name"]
            ));
        }
    }
    // Each expected span's parent: the traceparent's span, then the one
    // before it in EXPECTED.
    let mut parent = Some(incoming.span_id.clone());
    for (name, span) in EXPECTED.iter().zip(&found) {
        if let (Some(span), Some(expected)) = (span, &parent)
            && span["parent_span_id"] != expected.as_str()
        {
            problems.push(format!(
                "`{name}`'s parent is {}, expected {expected}",
                span["parent_span_id"]
            ));
        }
        parent = span.and_then(|s| s["span_id"].as_str()).map(str::to_owned);
    }
    let attribute = |span: &Value, key: &str| span["attributes"][key].clone();
    // tracing-opentelemetry may export an integer field as text.
    let is_number = |value: &Value, n: u64| value.as_u64() == Some(n) || value == &n.to_string();
    if let [server, process, charge, attempt] = found[..] {
        if let Some(server) = server {
            if server["kind"] != "SPAN_KIND_SERVER" {
                problems.push(format!(
                    "`{SERVER_SPAN}` has kind {}, expected SPAN_KIND_SERVER",
                    server["kind"]
                ));
            }
            if attribute(server, "http.route") != "/api/orders"
                || !is_number(&attribute(server, "http.response.status_code"), 202)
            {
                problems.push(format!(
                    "`{SERVER_SPAN}`: expected http.route /api/orders and http.response.status_code 202: {}",
                    server["attributes"]
                ));
            }
        }
        if let Some(process) = process
            && !is_number(&attribute(process, "order"), id)
        {
            problems.push(format!(
                "`order.process`: expected order = {id}: {}",
                process["attributes"]
            ));
        }
        if let Some(charge) = charge
            && attribute(charge, "policy") != "payments"
        {
            problems.push(format!(
                "`payments.charge`: expected policy = payments: {}",
                charge["attributes"]
            ));
        }
        if let Some(attempt) = attempt
            && !is_number(&attribute(attempt, "attempt"), 1)
        {
            problems.push(format!(
                "`payments.attempt`: expected attempt = 1: {}",
                attempt["attributes"]
            ));
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "OTLP export of order {id}:\n  {}\n{}",
            problems.join("\n  "),
            shown()
        ));
    }
    eprintln!(
        "otlp: order {id}'s trace {} exported over OTLP/HTTP to a real receiver: {SERVER_SPAN} (SERVER, under the traceparent's span) > order.process > payments.charge > payments.attempt, service.name {SERVICE}",
        incoming.trace_id
    );
    Ok(())
}

/// The spans file's complete lines, parsed.
fn read_spans(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // A line still being written has no newline yet.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| format!("{}: not JSON ({e}): {line}", path.display()))
        })
        .collect()
}

/// The caller's side of the trace: a fresh trace id and the span id the
/// `traceparent` names as the parent.
struct Incoming {
    trace_id: String,
    span_id: String,
}

impl Incoming {
    fn fresh() -> Self {
        Self {
            trace_id: random_hex(16),
            span_id: random_hex(8),
        }
    }
}

/// `bytes` random bytes as lowercase hex, never all zeros (an invalid
/// id). Each `RandomState` has fresh keys: no crate needed.
fn random_hex(bytes: usize) -> String {
    let mut hex = String::new();
    while hex.len() < 2 * bytes {
        let mut hasher = RandomState::new().build_hasher();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(now);
        hex.push_str(&format!("{:016x}", hasher.finish()));
    }
    hex.truncate(2 * bytes);
    if hex.bytes().all(|b| b == b'0') {
        hex.replace_range(..1, "1");
    }
    hex
}

/// `xtask/otlp_receiver.py`, killed (by its pid) when dropped, on every
/// path.
struct Receiver {
    child: Child,
    port: u16,
}

impl Receiver {
    /// Starts the receiver, writing spans to `spans`, and reads its port.
    fn start(spans: &Path) -> Result<Self, String> {
        let script = root().join("xtask").join("otlp_receiver.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(spans)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", script.display()))?;
        let stdout = child.stdout.take();
        let mut receiver = Self { child, port: 0 };
        let mut line = String::new();
        if let Some(stdout) = stdout {
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(|e| format!("{}: reading its port: {e}", script.display()))?;
        }
        receiver.port = line.trim().parse().map_err(|_| {
            format!(
                "{} printed no port (got {line:?}); see its error above",
                script.display()
            )
        })?;
        eprintln!(
            "otlp: receiver listening on 127.0.0.1:{} (pid {})",
            receiver.port,
            receiver.child.id()
        );
        Ok(receiver)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
