//! `/api/flaky` behind the standard pipeline and a per-client rate limit:
//! `RateLimit-*` headers on every answer; against a downstream that always
//! fails, 503s and then the breaker's own 503 with `Retry-After`. Then
//! `/resilience` (every policy's stats, shaped as
//! `cortex_resilience::AllStats`) and the `resilience` health check agree
//! that the breaker is open.

use serde_json::Value;

use super::client::{Client, Reply};
use super::json::{array_field, field, named, str_field, u64_field};

/// The breaker, bulkhead and retry guarding the flaky downstream.
const FLAKY: &str = "flaky-downstream";
/// The breaker's wait in the open state, in seconds: the most
/// `Retry-After` may say.
const OPEN_WAIT_SECONDS: u64 = 10;
/// The kinds of policy `/resilience` reports, in its field names.
const KINDS: [&str; 6] = [
    "circuit_breakers",
    "bulkheads",
    "retries",
    "rate_limiters",
    "timeouts",
    // The Hub registers one response cache (`catalog`).
    "caches",
];

pub(crate) fn check(client: &Client) -> Result<(), String> {
    let put_rate =
        |rate: &str| client.send("PUT", &format!("/api/flaky/config?rate={rate}"), &[], None);
    put_rate("2")?.expect_status(400)?;

    let healthy = client.get("/api/flaky")?;
    check_rate_limit_headers(&healthy)?;
    healthy.expect_status(200)?;
    if str_field(&healthy.json()?, "downstream")? != "ok" {
        return Err(format!("a healthy downstream answered {healthy}"));
    }

    put_rate("1")?.expect_status(200)?;
    let rate = client.get("/api/flaky/config")?.json()?;
    if field(&rate, "failure_rate")?.as_f64() != Some(1.0) {
        return Err(format!("GET /api/flaky/config after PUT rate=1: {rate}"));
    }
    let mut opened = false;
    for _ in 0..20 {
        let reply = client.get("/api/flaky")?;
        check_rate_limit_headers(&reply)?;
        reply.expect_status(503)?;
        let body = reply.json()?;
        // The breaker's own refusal: an RFC 9457 problem naming the policy.
        if body.get("policy").and_then(Value::as_str) == Some("circuit_breaker") {
            if reply.header("content-type") != Some("application/problem+json") {
                return Err(format!(
                    "the open breaker's 503 is not problem+json: {reply}"
                ));
            }
            check_retry_after(&reply)?;
            opened = true;
            break;
        }
        // Until then, the downstream's own failure, after the retries.
        if str_field(&body, "downstream")? != "failed" {
            return Err(format!("/api/flaky with a dead downstream: {reply}"));
        }
    }
    if !opened {
        return Err("the breaker never opened on a failing downstream".to_owned());
    }

    check_stats(client)?;
    let health = client.get("/health?verbose")?.json()?;
    let resilience = field(field(&health, "checks")?, "resilience")?;
    let status = resilience
        .get(0)
        .map(|entry| str_field(entry, "status"))
        .transpose()?;
    if status != Some("warn") {
        return Err(format!(
            "the resilience health check does not warn of the open breaker: {health}"
        ));
    }
    put_rate("0")?.expect_status(200)?;
    eprintln!(
        "resilience: RateLimit-* headers, breaker opens with Retry-After, /resilience and health agree"
    );
    Ok(())
}

/// `RateLimit-Limit`, `-Remaining` and `-Reset` (the IETF draft's
/// fields) as integers, remaining within the limit.
fn check_rate_limit_headers(reply: &Reply) -> Result<(), String> {
    let number = |name: &str| -> Result<u64, String> {
        reply
            .header(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no integer {name} header:\n{reply}"))
    };
    let limit = number("ratelimit-limit")?;
    let remaining = number("ratelimit-remaining")?;
    number("ratelimit-reset")?;
    if remaining > limit {
        return Err(format!(
            "RateLimit-Remaining above RateLimit-Limit:\n{reply}"
        ));
    }
    Ok(())
}

/// RFC 9110 §10.2.3 delta-seconds, no longer than the breaker's wait.
fn check_retry_after(reply: &Reply) -> Result<(), String> {
    let seconds: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            format!("breaker rejection without a delta-seconds Retry-After:\n{reply}")
        })?;
    if !(1..=OPEN_WAIT_SECONDS).contains(&seconds) {
        return Err(format!(
            "Retry-After {seconds} is outside 1..={OPEN_WAIT_SECONDS} s:\n{reply}"
        ));
    }
    Ok(())
}

/// `/resilience`: the five lists, each sorted by name, with the Hub's
/// policies in the states this check drove them to.
fn check_stats(client: &Client) -> Result<(), String> {
    let reply = client.get("/resilience")?;
    reply.expect_status(200)?;
    if reply.header("content-type") != Some("application/json") {
        return Err(format!("/resilience is not JSON:\n{reply}"));
    }
    let stats = reply.json()?;
    let keys: Vec<&str> = stats
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if keys.len() != KINDS.len() || !KINDS.iter().all(|kind| keys.contains(kind)) {
        return Err(format!(
            "/resilience: expected exactly {KINDS:?}, got {keys:?}"
        ));
    }
    for kind in KINDS {
        let names = array_field(&stats, kind)?
            .iter()
            .map(|entry| str_field(entry, "name"))
            .collect::<Result<Vec<_>, _>>()?;
        if !names.is_sorted() {
            return Err(format!(
                "/resilience: {kind} are not sorted by name: {names:?}"
            ));
        }
    }

    let breakers = array_field(&stats, "circuit_breakers")?;
    let flaky = named(breakers, FLAKY)?;
    expect(flaky, "state", &Value::from("open"))?;
    if u64_field(flaky, "not_permitted_calls")? == 0 {
        return Err(format!(
            "/resilience: the open breaker rejected nothing: {flaky}"
        ));
    }
    if !field(flaky, "failure_rate")?
        .as_f64()
        .is_some_and(|rate| rate >= 50.0)
    {
        return Err(format!(
            "/resilience: open below its 50% threshold: {flaky}"
        ));
    }
    expect(
        named(breakers, "payments")?,
        "state",
        &Value::from("closed"),
    )?;

    let bulkhead = named(array_field(&stats, "bulkheads")?, FLAKY)?;
    expect(bulkhead, "max_concurrent_calls", &Value::from(32))?;
    expect(bulkhead, "in_flight", &Value::from(0))?;
    let retry = named(array_field(&stats, "retries")?, FLAKY)?;
    if u64_field(retry, "failed_with_retry")? == 0 {
        return Err(format!("/resilience: no failed retries recorded: {retry}"));
    }
    named(array_field(&stats, "retries")?, "payments")?;
    let limiter = named(array_field(&stats, "rate_limiters")?, "flaky-per-client")?;
    if u64_field(limiter, "permitted_total")? == 0 {
        return Err(format!(
            "/resilience: the rate limiter permitted nothing: {limiter}"
        ));
    }
    let timeouts = array_field(&stats, "timeouts")?;
    for (name, duration) in [
        ("flaky-attempt", "2s"),
        ("flaky-total", "8s"),
        ("payments-attempt", "500ms"),
        ("payments-total", "2s"),
    ] {
        expect(
            named(timeouts, name)?,
            "timeout_duration",
            &Value::from(duration),
        )?;
    }
    Ok(())
}

/// `entry[key] == expected`.
fn expect(entry: &Value, key: &str, expected: &Value) -> Result<(), String> {
    let actual = field(entry, key)?;
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "/resilience: {key} is {actual}, expected {expected}, in {entry}"
        ))
    }
}
