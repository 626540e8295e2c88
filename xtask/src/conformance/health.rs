//! The health probes, read as the IETF health-check draft
//! (`application/health+json`): a `status` of pass, warn or fail that
//! agrees with the HTTP status and with the worst of its `checks` (a map of
//! name to a list of `{status, time, ...}`), an RFC 3339 `time`, details
//! only when asked for, and liveness that never depends on a downstream.

use std::collections::BTreeSet;

use serde_json::Value;

use super::client::Client;
use super::json::{field, str_field};

const HEALTH_JSON: &str = "application/health+json";
/// Every check the Hub registers.
const HUB_CHECKS: [&str; 9] = [
    "uptime",
    "memory",
    "disk",
    "work_queue",
    "actors",
    "resilience",
    "workers:compute",
    "wasm:image",
    "wasm:hostile",
];
/// Checks of things outside the process: a liveness probe that failed on
/// them would restart a healthy process for someone else's fault.
const NOT_LIVENESS: [&str; 3] = ["disk", "resilience", "work_queue"];

pub(crate) fn check(client: &Client) -> Result<(), String> {
    for path in [
        "/health",
        "/health?verbose",
        "/health/live",
        "/health/ready",
        "/health/startup",
        "/livez",
        "/readyz",
    ] {
        let report = probe(client, path)?;
        let checks = check_names(&report)?;
        let shows_details = report_entries(&report)?
            .any(|(_, entry)| entry.get("details").is_some() || entry.get("output").is_some());
        match path {
            "/health" | "/health?verbose" | "/health/ready" | "/readyz" => {
                if let Some(missing) = HUB_CHECKS.iter().find(|c| !checks.contains(**c)) {
                    return Err(format!("{path}: no {missing} check: {report}"));
                }
            }
            "/health/live" | "/livez" => {
                if !checks.contains("uptime") {
                    return Err(format!("{path}: no uptime check: {report}"));
                }
                if let Some(wrong) = NOT_LIVENESS.iter().find(|c| checks.contains(**c)) {
                    return Err(format!("{path}: liveness depends on {wrong}: {report}"));
                }
            }
            _ => {}
        }
        if path == "/health?verbose" {
            let work_queue = &field(field(&report, "checks")?, "work_queue")?[0];
            let in_progress = field(field(work_queue, "details")?, "in_progress")?;
            if !in_progress.is_u64() {
                return Err(format!(
                    "{path}: work_queue details without in_progress: {report}"
                ));
            }
        } else if shows_details {
            return Err(format!("{path}: details shown without ?verbose: {report}"));
        }
    }
    eprintln!(
        "health probes: valid application/health+json, statuses consistent, details on request"
    );
    Ok(())
}

/// One probe: its content type, its status against the HTTP status and
/// its checks, and its times.
fn probe(client: &Client, path: &str) -> Result<Value, String> {
    let reply = client.get(path)?;
    if reply.header("content-type") != Some(HEALTH_JSON) {
        return Err(format!("{path}: not {HEALTH_JSON}:\n{reply}"));
    }
    let report = reply.json()?;
    let status = str_field(&report, "status")?;
    let expected_http = match status {
        "pass" | "warn" => 200,
        "fail" => 503,
        other => return Err(format!("{path}: status {other:?} is not pass/warn/fail")),
    };
    reply.expect_status(expected_http)?;
    if !is_rfc3339(str_field(&report, "time")?) {
        return Err(format!("{path}: time is not RFC 3339: {report}"));
    }
    // The aggregate is the worst check, a non-critical fail counting as
    // warn, unless an `output` says why it is overridden (draining,
    // startup pending).
    let mut worst = "pass";
    for (name, entry) in report_entries(&report)? {
        let entry_status = str_field(entry, "status")?;
        if !matches!(entry_status, "pass" | "warn" | "fail") {
            return Err(format!("{path}: check {name} has status {entry_status:?}"));
        }
        if !is_rfc3339(str_field(entry, "time")?) {
            return Err(format!(
                "{path}: check {name}'s time is not RFC 3339: {entry}"
            ));
        }
        let critical = entry
            .get("critical")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let effective = if entry_status == "fail" && !critical {
            "warn"
        } else {
            entry_status
        };
        if rank(effective) > rank(worst) {
            worst = effective;
        }
    }
    if report.get("output").is_none() && status != worst {
        return Err(format!(
            "{path}: status {status} but its worst check is {worst}: {report}"
        ));
    }
    Ok(report)
}

/// `checks`: a map of name to a non-empty list of objects, flattened.
fn report_entries(report: &Value) -> Result<impl Iterator<Item = (&String, &Value)>, String> {
    let checks = field(report, "checks")?
        .as_object()
        .ok_or_else(|| format!("checks is not a map: {report}"))?;
    for (name, entries) in checks {
        let valid = entries
            .as_array()
            .is_some_and(|list| !list.is_empty() && list.iter().all(Value::is_object));
        if !valid {
            return Err(format!("check {name} is not a list of objects: {report}"));
        }
    }
    Ok(checks.iter().flat_map(|(name, entries)| {
        entries
            .as_array()
            .into_iter()
            .flatten()
            .map(move |entry| (name, entry))
    }))
}

fn check_names(report: &Value) -> Result<BTreeSet<String>, String> {
    Ok(report_entries(report)?
        .map(|(name, _)| name.clone())
        .collect())
}

fn rank(status: &str) -> u8 {
    match status {
        "pass" => 0,
        "warn" => 1,
        _ => 2,
    }
}

/// An RFC 3339 timestamp in UTC (what Cortex writes), checked by
/// humantime rather than by hand.
fn is_rfc3339(time: &str) -> bool {
    humantime::parse_rfc3339(time).is_ok()
}
