//! `/api/compute` under a flood, against a Hub of its own whose worker
//! pool is small (1 worker, 2 queue places, through `CORTEX_COMPUTE_*`):
//! 16 clients send 200 slow hash jobs at once; every answer must be the
//! right digest (200) or a refusal that is `429` problem+json with
//! `Retry-After`, never an error or a lost request; afterwards the pool's
//! stats must account for every submission exactly once, and agree with
//! the answers and with `/metrics`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Client, Reply};
use super::hostile::expect_problem;
use super::json::{field, str_field, u64_field};
use crate::hub::HubProcess;

const WORKERS: &str = "1";
const QUEUE: &str = "2";
/// The flood: requests in all, and the clients sending them at once.
const REQUESTS: usize = 200;
const CLIENTS: usize = 16;
/// Each job hashes 16 KiB 512 times (8 MiB): long enough for the queue to
/// fill while the clients keep sending.
const BODY_BYTES: usize = 16 * 1024;
const ROUNDS: u64 = 512;
/// How long the pool may take to finish what it accepted.
const SETTLE_WITHIN: Duration = Duration::from_secs(10);
/// The outcome counters whose sum is `submitted`.
const OUTCOMES: [&str; 6] = [
    "completed",
    "panicked",
    "timed_out",
    "expired",
    "cancelled",
    "rejected",
];

pub(crate) fn check() -> Result<(), String> {
    let hub = HubProcess::start_with(
        &[
            ("CORTEX_DRAIN_DELAY", "500ms"),
            ("CORTEX_COMPUTE_WORKERS", WORKERS),
            ("CORTEX_COMPUTE_QUEUE", QUEUE),
        ],
        None,
    )?;
    let client = Client::new(hub.addr());
    let known = known_answers(&client)?;
    let (completed, refused) = flood(hub.addr())?;
    accounting(&client, known + completed, refused)?;
    drop(client);
    hub.stop()
}

/// FNV-1a 64, computed here, not trusted from the Hub.
fn fnv1a_64(bytes: &[u8], rounds: u64) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for _ in 0..rounds {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// A hash answer: 200, JSON, the digest of `body` repeated `rounds` times.
fn expect_digest(reply: &Reply, body: &[u8], rounds: u64) -> Result<(), String> {
    reply.expect_status(200)?;
    let answer = reply.json()?;
    let expected = fnv1a_64(body, rounds);
    if str_field(&answer, "digest")? != expected
        || u64_field(&answer, "rounds")? != rounds
        || u64_field(&answer, "bytes")? != body.len() as u64
    {
        return Err(format!(
            "POST /api/compute/hash?rounds={rounds}: expected digest {expected}: {answer}"
        ));
    }
    Ok(())
}

/// The published FNV-1a 64 vectors, a blur, and input refused before it
/// reaches the pool (422 naming the field, 400). Returns how many jobs ran.
fn known_answers(client: &Client) -> Result<u64, String> {
    for (body, rounds) in [(&b"a"[..], 1), (&b"foobar"[..], 1), (&b"foobar"[..], 3)] {
        let reply = client.send(
            "POST",
            &format!("/api/compute/hash?rounds={rounds}"),
            &[],
            Some(body),
        )?;
        expect_digest(&reply, body, rounds)?;
    }
    if fnv1a_64(b"a", 1) != "af63dc4c8601ec8c" {
        return Err("the check's own FNV-1a 64 is wrong".to_owned());
    }
    let blur = client.post_json(
        "/api/compute/blur",
        r#"{"width":5,"height":1,"pixels":[0,0,90,0,0]}"#,
    )?;
    blur.expect_status(200)?;
    let blurred = blur.json()?;
    if field(&blurred, "pixels")? != &serde_json::json!([0, 30, 30, 30, 0]) {
        return Err(format!("POST /api/compute/blur: a wrong blur: {blurred}"));
    }

    let out_of_range = client.send("POST", "/api/compute/hash?rounds=0", &[], Some(b"x"))?;
    out_of_range.expect_status(422)?;
    expect_problem(&out_of_range)?;
    let errors = field(&out_of_range.json()?, "errors")?.clone();
    if errors.get(0).and_then(|e| e.get("field")) != Some(&Value::from("rounds")) {
        return Err(format!(
            "a 422 that does not name `rounds`:\n{out_of_range}"
        ));
    }
    let unreadable = client.send("POST", "/api/compute/hash?rounds=many", &[], Some(b"x"))?;
    unreadable.expect_status(400)?;
    expect_problem(&unreadable)?;
    let malformed = client.post_json("/api/compute/blur", "{")?;
    malformed.expect_status(400)?;
    expect_problem(&malformed)?;
    Ok(4)
}

/// [`REQUESTS`] slow hashes from [`CLIENTS`] threads at once; returns how
/// many were answered 200 and how many 429.
fn flood(addr: SocketAddr) -> Result<(u64, u64), String> {
    let body: Vec<u8> = (0..BODY_BYTES).map(|i| (i % 251) as u8).collect();
    let expected = fnv1a_64(&body, ROUNDS);
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|thread| {
            let body = body.clone();
            let expected = expected.clone();
            std::thread::spawn(move || -> Result<(u64, u64), String> {
                let client = Client::new(addr);
                let path = format!("/api/compute/hash?rounds={ROUNDS}");
                let (mut completed, mut refused) = (0, 0);
                for _ in (thread..REQUESTS).step_by(CLIENTS) {
                    let reply = client.send("POST", &path, &[], Some(&body))?;
                    match reply.status.as_u16() {
                        200 => {
                            if str_field(&reply.json()?, "digest")? != expected {
                                return Err(format!(
                                    "a wrong digest (expected {expected}):\n{reply}"
                                ));
                            }
                            completed += 1;
                        }
                        429 => {
                            expect_problem(&reply)?;
                            let retry_after = reply.header("retry-after").unwrap_or_default();
                            if !retry_after.parse::<u64>().is_ok_and(|s| s >= 1) {
                                return Err(format!(
                                    "a 429 without a Retry-After of whole seconds:\n{reply}"
                                ));
                            }
                            refused += 1;
                        }
                        _ => {
                            return Err(format!(
                                "a flooded compute request got neither 200 nor 429:\n{reply}"
                            ));
                        }
                    }
                }
                Ok((completed, refused))
            })
        })
        .collect();
    let (mut completed, mut refused) = (0, 0);
    for thread in threads {
        let (ok, no) = thread
            .join()
            .map_err(|_| "a compute flood thread panicked".to_owned())??;
        completed += ok;
        refused += no;
    }
    if completed + refused != REQUESTS as u64 {
        return Err(format!(
            "{REQUESTS} requests sent, {} answered",
            completed + refused
        ));
    }
    if completed == 0 || refused == 0 {
        return Err(format!(
            "a flood of {REQUESTS} against {WORKERS} worker and {QUEUE} queue places should both run and refuse jobs: {completed} ran, {refused} refused"
        ));
    }
    eprintln!(
        "compute: {REQUESTS} hashes from {CLIENTS} clients in {:.1?} against {WORKERS} worker + {QUEUE} queued: {completed} answered 200 (right digest), {refused} refused with 429 problem+json and Retry-After",
        started.elapsed()
    );
    Ok((completed, refused))
}

/// Once nothing is queued or running, `submitted` is the sum of the
/// outcomes, `completed` and `rejected` are what the clients saw, and
/// `/metrics` says the same.
fn accounting(client: &Client, completed: u64, refused: u64) -> Result<(), String> {
    let deadline = Instant::now() + SETTLE_WITHIN;
    let stats = loop {
        let reply = client.get("/api/compute/stats")?;
        reply.expect_status(200)?;
        let stats = reply.json()?;
        let mut outcomes = 0;
        for outcome in OUTCOMES {
            outcomes += u64_field(&stats, outcome)?;
        }
        // `busy` is a gauge: a worker clears its place just after it has
        // answered, so it may still read 1 for a moment.
        if u64_field(&stats, "submitted")? == outcomes && u64_field(&stats, "busy")? == 0 {
            break stats;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the pool's outcomes ({outcomes}) never added up to its submissions, with no worker busy, {SETTLE_WITHIN:?} after the flood: {stats}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let expected = [
        ("submitted", completed + refused),
        ("completed", completed),
        ("rejected", refused),
        ("panicked", 0),
        ("timed_out", 0),
        ("expired", 0),
        ("cancelled", 0),
        ("queue_len", 0),
        ("busy", 0),
    ];
    for (key, value) in expected {
        if u64_field(&stats, key)? != value {
            return Err(format!(
                "/api/compute/stats: {key} should be {value} after the answers the clients saw: {stats}"
            ));
        }
    }
    let metrics = client.get("/metrics")?;
    metrics.expect_status(200)?;
    let text = String::from_utf8_lossy(&metrics.body);
    for (outcome, value) in [("completed", completed), ("rejected", refused)] {
        let series = format!("cortex_worker_jobs_total{{pool=\"compute\",outcome=\"{outcome}\"}}");
        let found = sample(&text, &series).ok_or_else(|| format!("/metrics has no {series}"))?;
        if found != value as f64 {
            return Err(format!(
                "/metrics: {series} is {found}, the clients saw {value}"
            ));
        }
    }
    eprintln!(
        "compute: the pool's stats add up (submitted {} = completed {completed} + rejected {refused}, nothing else) and /metrics agrees",
        completed + refused
    );
    Ok(())
}

/// The value of the sample `series` (name and labels) in a 0.0.4 text.
pub(super) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.split(' ').next()?.parse().ok())
}
