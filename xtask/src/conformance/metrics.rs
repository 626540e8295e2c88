//! Metrics exposition, judged by promtool and Python's parsers.
//!
//! First `cortex-metrics`' `exposition` example, which holds what the Hub
//! does not: escaped label values and help text, NaN and infinities,
//! negative gauges and an overflow series. Then the Hub's `/metrics` in
//! both formats, after the other checks' traffic: each `Content-Type`,
//! promtool on the 0.0.4 text, both parsers agreeing on every family and
//! its type, and the values that traffic must have left (route templates
//! rather than raw paths, the open breaker, exemplars with trace ids).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::client::Client;
use super::exposition::{Exposition, Format, promtool_check};
use crate::{cargo, root};

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// What Prometheus itself sends when it prefers OpenMetrics.
const OPENMETRICS_ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Every family the Hub exposes, with its type, as both parsers name it
/// (counters without `_total`).
const HUB_FAMILIES: &[(&str, &str)] = &[
    ("cortex_metrics_overflow", "counter"),
    ("hub_echo_requests", "counter"),
    ("hub_work_in_progress", "gauge"),
    ("hub_work_duration_seconds", "histogram"),
    ("cortex_health_check_status", "gauge"),
    ("cortex_health_check_duration_seconds", "histogram"),
    ("cortex_compression_bytes", "counter"),
    ("cortex_compression_responses", "counter"),
    ("http_server_request_duration_seconds", "histogram"),
    ("http_server_active_requests", "gauge"),
    ("http_server_request_body_size_bytes", "histogram"),
    ("http_server_response_body_size_bytes", "histogram"),
    ("cortex_circuitbreaker_state", "gauge"),
    ("cortex_circuitbreaker_calls", "counter"),
    ("cortex_circuitbreaker_failure_rate", "gauge"),
    ("cortex_circuitbreaker_slow_call_rate", "gauge"),
    ("cortex_circuitbreaker_buffered_calls", "gauge"),
    ("cortex_bulkhead_available_concurrent_calls", "gauge"),
    ("cortex_bulkhead_max_allowed_concurrent_calls", "gauge"),
    ("cortex_bulkhead_queue_depth", "gauge"),
    ("cortex_bulkhead_rejected_calls", "counter"),
    ("cortex_retry_calls", "counter"),
    ("cortex_ratelimiter_available_permissions", "gauge"),
    ("cortex_ratelimiter_calls", "counter"),
    ("cortex_timeout_limit_seconds", "gauge"),
    ("cortex_timeout_timed_out_calls", "counter"),
    ("cortex_actor_messages", "counter"),
    ("cortex_actor_errors", "counter"),
    ("cortex_actor_restarts", "counter"),
    ("cortex_actor_restarts_exhausted", "counter"),
    ("cortex_actor_dead_letters", "counter"),
    ("cortex_actor_mailbox_depth", "gauge"),
    ("cortex_actor_live", "gauge"),
    ("cortex_actor_handler_duration_seconds", "histogram"),
    ("cortex_actor_bus_deliveries", "counter"),
    ("cortex_worker_workers", "gauge"),
    ("cortex_worker_busy", "gauge"),
    ("cortex_worker_queue_length", "gauge"),
    ("cortex_worker_queue_capacity", "gauge"),
    ("cortex_worker_submitted", "counter"),
    ("cortex_worker_jobs", "counter"),
    ("cortex_worker_queue_wait_seconds", "histogram"),
    ("cortex_worker_run_seconds", "histogram"),
    ("process_cpu_seconds", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_virtual_memory_bytes", "gauge"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_start_time_seconds", "gauge"),
    ("process_threads", "gauge"),
];

/// The `exposition` example in both formats, through promtool and both
/// Python parsers.
pub(crate) fn check_example(out_dir: &Path) -> Result<(), String> {
    let text = out_dir.join("example.txt");
    let om = out_dir.join("example.om");
    run_example("text", &text)?;
    run_example("openmetrics", &om)?;
    promtool_check(&text)?;
    for exposition in [
        Exposition::parse(Format::OpenMetrics, &om)?,
        Exposition::parse(Format::PrometheusText, &text)?,
    ] {
        check_example_values(&exposition)?;
    }
    eprintln!(
        "metrics example: escaping, NaN/±Inf, negative gauges, overflow and histograms read back by both parsers"
    );
    Ok(())
}

fn run_example(format: &str, path: &Path) -> Result<(), String> {
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
    std::fs::write(path, &output.stdout).map_err(|e| e.to_string())
}

fn check_example_values(exposition: &Exposition) -> Result<(), String> {
    let format = exposition.format;
    // A label value and a help text that only survive correct escaping.
    let tricky = "say \"hi\" \\ C:\\path\nnext line \u{2713}";
    exposition.expect("demo_escaping_total", &[("value", tricky)], "1", |v| {
        v == 1.0
    })?;
    let help = &exposition.family("demo_escaping")?.help;
    if help != "Help with \"quotes\", a \\ backslash\nand a newline." {
        return Err(format!(
            "{format}: demo_escaping's help came back as {help:?}"
        ));
    }
    let special = |kind| exposition.value("demo_special_values", &[("kind", kind)]);
    if !special("nan")?.is_nan()
        || special("inf")? != f64::INFINITY
        || special("neg_inf")? != f64::NEG_INFINITY
    {
        return Err(format!("{format}: NaN/+Inf/-Inf did not round-trip"));
    }
    exposition.expect("demo_temperature_celsius", &[], "negative", |v| v < 0.0)?;
    exposition.expect("demo_queue_depth", &[], "negative", |v| v < 0.0)?;
    // The overflow series carries what the cardinality guard redirected,
    // and the guard's own counter agrees.
    let overflowed = exposition.value(
        "demo_requests_by_user_total",
        &[("otel_metric_overflow", "true")],
    )?;
    exposition.expect(
        "cortex_metrics_overflow_total",
        &[("metric", "demo_requests_by_user")],
        &format!("{overflowed} (the overflow series)"),
        |v| v == overflowed && v > 0.0,
    )?;
    check_histogram(exposition, "demo_payload_bytes")
}

/// Every series of histogram `name` has cumulative buckets whose last,
/// `le="+Inf"`, equals its `_count`.
fn check_histogram(exposition: &Exposition, name: &str) -> Result<(), String> {
    let format = exposition.format;
    let count = format!("{name}_count");
    let bucket = format!("{name}_bucket");
    let mut series = 0;
    for total in exposition.samples(&count, &[]) {
        series += 1;
        let labels: Vec<(&str, &str)> = total
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut buckets: Vec<(f64, f64)> = exposition
            .samples(&bucket, &labels)
            .map(|s| {
                let le = match s.labels.get("le").map(String::as_str) {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => le.parse().unwrap_or(f64::NAN),
                    None => f64::NAN,
                };
                (le, s.value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let cumulative = buckets.windows(2).all(|w| w[0].1 <= w[1].1);
        if !cumulative || buckets.last() != Some(&(f64::INFINITY, total.value)) {
            return Err(format!(
                "{format}: {name}{labels:?}: buckets {buckets:?} are not cumulative up to +Inf = count {}",
                total.value
            ));
        }
    }
    if series == 0 {
        return Err(format!("{format}: {name} has no series"));
    }
    Ok(())
}

/// Scrapes the Hub in both formats and checks what the tools read.
/// `routes` are the templates of the Hub's index: the only `http_route`
/// values allowed besides `unmatched`.
pub(crate) fn check_hub(client: &Client, routes: &[String], out_dir: &Path) -> Result<(), String> {
    let text_path = out_dir.join("metrics.txt");
    let om_path = out_dir.join("metrics.om");
    scrape(client, None, PROMETHEUS_TEXT, &text_path)?;
    let om = scrape(client, Some(OPENMETRICS_ACCEPT), OPENMETRICS, &om_path)?;
    if !om.ends_with(b"# EOF\n") {
        return Err("the OpenMetrics scrape does not end with `# EOF`".to_owned());
    }
    promtool_check(&text_path)?;
    let text = Exposition::parse(Format::PrometheusText, &text_path)?;
    let om = Exposition::parse(Format::OpenMetrics, &om_path)?;

    let kinds = |e: &Exposition| -> BTreeSet<(String, String)> {
        e.families
            .iter()
            .map(|f| (f.name.clone(), f.kind.clone()))
            .collect()
    };
    if kinds(&text) != kinds(&om) {
        return Err(format!(
            "the two formats disagree on families or types:\n  text: {:?}\n  openmetrics: {:?}",
            kinds(&text),
            kinds(&om)
        ));
    }
    for exposition in [&text, &om] {
        for (name, kind) in HUB_FAMILIES {
            let family = exposition.family(name)?;
            if family.kind != *kind {
                return Err(format!(
                    "{}: {name} is a {}, expected a {kind}",
                    exposition.format, family.kind
                ));
            }
        }
        check_hub_values(exposition, routes)?;
    }
    check_exemplars(&om)?;
    eprintln!(
        "metrics: {} families in both formats; route templates only, breaker open, exemplars carry trace ids",
        text.families.len()
    );
    Ok(())
}

/// What the traffic of the other checks must have left.
fn check_hub_values(exposition: &Exposition, routes: &[String]) -> Result<(), String> {
    const REQUESTS: &str = "http_server_request_duration_seconds_count";
    let format = exposition.format;
    let request = |method, route, status| {
        [
            ("http_request_method", method),
            ("http_route", route),
            ("http_response_status_code", status),
            ("url_scheme", "http"),
        ]
    };
    exposition.expect(
        REQUESTS,
        &request("GET", "/api/echo/{id}", "200"),
        "at least 2",
        |v| v >= 2.0,
    )?;
    // A method outside the OTel list is `_OTHER`, never itself.
    exposition.expect(
        REQUESTS,
        &request("_OTHER", "/api/echo/{id}", "405"),
        "at least 1",
        |v| v >= 1.0,
    )?;
    exposition.expect(
        REQUESTS,
        &request("GET", "unmatched", "404"),
        "at least 1",
        |v| v >= 1.0,
    )?;
    for sample in exposition.samples(REQUESTS, &[]) {
        let route = sample.labels.get("http_route").map(String::as_str);
        let method = sample.labels.get("http_request_method").map(String::as_str);
        if !route.is_some_and(|r| r == "unmatched" || routes.iter().any(|t| t == r)) {
            return Err(format!(
                "{format}: http_route {route:?} is not a route template of the index"
            ));
        }
        if method == Some("PURGE") {
            return Err(format!(
                "{format}: a non-standard method became a label value"
            ));
        }
    }
    exposition.expect(
        "hub_echo_requests_total",
        &[("kind", "numeric")],
        "1",
        |v| v == 1.0,
    )?;
    exposition.expect("hub_echo_requests_total", &[("kind", "text")], "1", |v| {
        v == 1.0
    })?;
    exposition.expect("hub_work_duration_seconds_count", &[], "at least 1", |v| {
        v >= 1.0
    })?;
    exposition.expect("hub_work_in_progress", &[], "0", |v| v == 0.0)?;

    // The resilience check left the flaky breaker open, and only open.
    for (name, open_state) in [("flaky-downstream", "open"), ("payments", "closed")] {
        for sample in exposition.samples("cortex_circuitbreaker_state", &[("name", name)]) {
            let state = sample.labels.get("state").map(String::as_str);
            let expected = if state == Some(open_state) { 1.0 } else { 0.0 };
            if sample.value != expected {
                return Err(format!(
                    "{format}: breaker {name} state {state:?} is {}, expected {expected}",
                    sample.value
                ));
            }
        }
        exposition.value(
            "cortex_circuitbreaker_state",
            &[("name", name), ("state", open_state)],
        )?;
    }
    exposition.expect(
        "cortex_retry_calls_total",
        &[("name", "flaky-downstream"), ("kind", "failed_with_retry")],
        "at least 1",
        |v| v >= 1.0,
    )?;
    exposition.expect(
        "cortex_timeout_limit_seconds",
        &[("name", "payments-attempt")],
        "0.5",
        |v| v == 0.5,
    )?;
    exposition.expect(
        "cortex_timeout_limit_seconds",
        &[("name", "flaky-total")],
        "8",
        |v| v == 8.0,
    )?;
    exposition.expect(
        "cortex_health_check_status",
        &[("check", "uptime")],
        "1 (up)",
        |v| v == 1.0,
    )?;
    // A final order's actor stops (its order stays readable from the
    // finished-order store), so none is left live; the series is there.
    exposition.expect(
        "cortex_actor_live",
        &[("actor", "OrderActor")],
        "0 (finished orders' actors stop)",
        |v| v == 0.0,
    )?;
    exposition.expect("process_start_time_seconds", &[], "positive", |v| v > 0.0)?;
    exposition.expect("process_open_fds", &[], "positive", |v| v > 0.0)?;
    check_histogram(exposition, "http_server_request_duration_seconds")
}

/// Traced requests leave exemplars on the OpenMetrics histograms, with
/// W3C-shaped ids.
fn check_exemplars(om: &Exposition) -> Result<(), String> {
    let hex =
        |s: &str, len| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let exemplars: Vec<_> = om
        .families
        .iter()
        .flat_map(|f| &f.samples)
        .filter_map(|s| s.exemplar.as_ref())
        .collect();
    if exemplars.is_empty() {
        return Err("the OpenMetrics scrape carries no exemplar".to_owned());
    }
    for labels in exemplars {
        let trace_id = labels
            .get("trace_id")
            .map(String::as_str)
            .unwrap_or_default();
        let span_id = labels
            .get("span_id")
            .map(String::as_str)
            .unwrap_or_default();
        if !hex(trace_id, 32) || trace_id.bytes().all(|b| b == b'0') || !hex(span_id, 16) {
            return Err(format!(
                "an exemplar without valid trace/span ids: {labels:?}"
            ));
        }
    }
    Ok(())
}

/// `GET /metrics` (with `accept`, if any): 200 with `expected_type`,
/// body written to `path` and returned.
fn scrape(
    client: &Client,
    accept: Option<&str>,
    expected_type: &str,
    path: &Path,
) -> Result<Vec<u8>, String> {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    let reply = client.get_with("/metrics", &headers)?;
    reply.expect_status(200)?;
    let content_type = reply.header("content-type").unwrap_or_default();
    if content_type != expected_type {
        return Err(format!(
            "/metrics: expected Content-Type {expected_type:?}, got {content_type:?}"
        ));
    }
    std::fs::write(path, &reply.body).map_err(|e| e.to_string())?;
    eprintln!(
        "scraped {} bytes as {content_type} -> {}",
        reply.body.len(),
        path.display()
    );
    Ok(reply.body)
}
