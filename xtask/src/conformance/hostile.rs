//! Hostile clients against the running Hub: huge order bodies must not
//! grow its memory, a burst of orders must leave every accepted order final
//! (and the service accepting again), and every error it produces must be
//! RFC 9457 `application/problem+json`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::client::{Client, Reply};
use super::json::{str_field, u64_field};

/// How many oversized orders, and how big each one claims to be.
const HUGE_ORDERS: usize = 200;
const HUGE_ORDER_BYTES: usize = 2 * 1024 * 1024;
/// How much the Hub's RSS may grow across the huge orders.
const RSS_BUDGET_KIB: u64 = 20 * 1024;
/// The order burst: threads and how long they post.
const LOAD_THREADS: usize = 4;
const LOAD_FOR: Duration = Duration::from_secs(5);
/// At most this many orders per thread, so every accepted order is still in
/// the Hub's finished-order store (10 000) when it is checked.
const LOAD_MAX_PER_THREAD: usize = 2_000;
/// Orders posted after the tracked burst: with it, more than the Hub's
/// in-flight cap (10 000) in total.
const PAST_THE_CAP: usize = 8_000;
/// How long every accepted order may take to become final afterwards.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);
const PROBLEM_JSON: &str = "application/problem+json";

pub(crate) fn check(client: &Client, addr: SocketAddr, pid: u32) -> Result<(), String> {
    huge_orders(addr, pid)?;
    order_burst(client, addr)?;
    errors_are_problems(client)?;
    Ok(())
}

/// `VmRSS` of process `pid`, in KiB.
pub(super) fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading the Hub's /proc status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in the Hub's /proc status".to_owned())
}

/// 200 orders of 2 MB each, sent in full: each is refused (413) without
/// the Hub holding the bodies.
fn huge_orders(addr: SocketAddr, pid: u32) -> Result<(), String> {
    let before = rss_kib(pid)?;
    let item = "x".repeat(HUGE_ORDER_BYTES);
    let body = format!(r#"{{"item":"{item}","quantity":1}}"#);
    for _ in 0..HUGE_ORDERS {
        let status = post_raw(addr, body.as_bytes())?;
        if status != 413 {
            return Err(format!("a 2 MB order got {status}, not 413"));
        }
    }
    let after = rss_kib(pid)?;
    let grown = after.saturating_sub(before);
    if grown > RSS_BUDGET_KIB {
        return Err(format!(
            "{HUGE_ORDERS} orders of 2 MB grew the Hub's RSS by {grown} KiB ({before} -> {after})"
        ));
    }
    eprintln!(
        "hostile: {HUGE_ORDERS} orders of 2 MB refused with 413; RSS {before} -> {after} KiB (+{grown})"
    );
    Ok(())
}

/// `POST /api/orders` with `body`, written in full by a second thread
/// while this one reads the answer (the Hub may answer before reading it
/// all); returns the status code.
fn post_raw(addr: SocketAddr, body: &[u8]) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /api/orders HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let body = body.to_vec();
    let sender = std::thread::spawn(move || {
        // The Hub may close after answering: a failed write is expected.
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    drop(stream);
    let _ = sender.join();
    let line = String::from_utf8_lossy(&response);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {:?}", line.lines().next()))
}

/// Four threads post orders for five seconds; then every accepted order
/// must become final, and a new order must be accepted.
fn order_burst(client: &Client, addr: SocketAddr) -> Result<(), String> {
    let started = Instant::now();
    let workers: Vec<_> = (0..LOAD_THREADS)
        .map(|_| {
            std::thread::spawn(move || -> Result<(Vec<u64>, usize), String> {
                let client = Client::new(addr);
                let mut accepted = Vec::new();
                let mut refused = 0;
                while started.elapsed() < LOAD_FOR && accepted.len() + refused < LOAD_MAX_PER_THREAD
                {
                    let reply =
                        client.post_json("/api/orders", r#"{"item":"burst","quantity":1}"#)?;
                    match reply.status.as_u16() {
                        202 => accepted.push(u64_field(&reply.json()?, "id")?),
                        503 => {
                            expect_problem(&reply)?;
                            refused += 1;
                        }
                        other => return Err(format!("an order in the burst got {other}")),
                    }
                }
                Ok((accepted, refused))
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for worker in workers {
        let (ids, no) = worker
            .join()
            .map_err(|_| "an order-burst thread panicked".to_owned())??;
        accepted.extend(ids);
        refused += no;
    }
    let deadline = Instant::now() + SETTLE_WITHIN;
    let mut pending: Vec<u64> = accepted.clone();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            let reply = client.get(&format!("/api/orders/{id}"))?;
            reply.expect_status(200)?;
            let state = str_field(&reply.json()?, "state")?.to_owned();
            if !matches!(state.as_str(), "completed" | "failed") {
                still.push(id);
            }
        }
        pending = still;
        if !pending.is_empty() {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} of {} accepted orders not final {SETTLE_WITHIN:?} after the burst",
                    pending.len(),
                    accepted.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // Past the in-flight cap in total: finished orders must not hold it.
    let more = post_untracked(addr, PAST_THE_CAP)?;
    client
        .post_json("/api/orders", r#"{"item":"after the burst","quantity":1}"#)?
        .expect_status(202)?;
    eprintln!(
        "hostile: order burst ({LOAD_THREADS} clients, {LOAD_FOR:?}): {} accepted, all final; {refused} refused with 503; then {more} more (over the 10 000 cap in total), and a new order is still accepted",
        accepted.len()
    );
    Ok(())
}

/// Posts `total` orders from [`LOAD_THREADS`] clients without tracking
/// them; each must be accepted or refused with a 503 problem. Returns how
/// many were accepted.
fn post_untracked(addr: SocketAddr, total: usize) -> Result<usize, String> {
    let workers: Vec<_> = (0..LOAD_THREADS)
        .map(|_| {
            std::thread::spawn(move || -> Result<usize, String> {
                let client = Client::new(addr);
                let mut accepted = 0;
                for _ in 0..total / LOAD_THREADS {
                    let reply =
                        client.post_json("/api/orders", r#"{"item":"more","quantity":1}"#)?;
                    match reply.status.as_u16() {
                        202 => accepted += 1,
                        503 => expect_problem(&reply)?,
                        other => return Err(format!("an order past the cap got {other}")),
                    }
                }
                Ok(accepted)
            })
        })
        .collect();
    let mut accepted = 0;
    for worker in workers {
        accepted += worker
            .join()
            .map_err(|_| "an order thread panicked".to_owned())??;
    }
    Ok(accepted)
}

/// The reply is an RFC 9457 problem whose `status` matches the response.
pub(super) fn expect_problem(reply: &Reply) -> Result<(), String> {
    let content_type = reply.header("content-type").unwrap_or_default();
    if !content_type.starts_with(PROBLEM_JSON) {
        return Err(format!("expected {PROBLEM_JSON}, got {reply}"));
    }
    let problem = reply.json()?;
    let status = u64_field(&problem, "status")?;
    if status != u64::from(reply.status.as_u16()) || str_field(&problem, "title")?.is_empty() {
        return Err(format!(
            "not an RFC 9457 problem for {}: {problem}",
            reply.status
        ));
    }
    Ok(())
}

/// Every kind of error the Hub produces, each as problem+json with its
/// protocol headers kept.
fn errors_are_problems(client: &Client) -> Result<(), String> {
    let not_found = client.get("/no/such/route")?;
    not_found.expect_status(404)?;
    expect_problem(&not_found)?;

    let wrong_method = client.send("DELETE", "/api/echo/1", &[], None)?;
    wrong_method.expect_status(405)?;
    expect_problem(&wrong_method)?;
    if wrong_method.header("allow").is_none() {
        return Err(format!("a 405 without Allow: {wrong_method}"));
    }
    let wrong_method_on_cortex = client.send("DELETE", "/metrics", &[], None)?;
    wrong_method_on_cortex.expect_status(405)?;
    expect_problem(&wrong_method_on_cortex)?;

    let long_item = format!(r#"{{"item":"{}","quantity":1}}"#, "y".repeat(300));
    let invalid = client.post_json("/api/orders", &long_item)?;
    invalid.expect_status(422)?;
    expect_problem(&invalid)?;

    let malformed = client.post_json("/api/orders", "{")?;
    malformed.expect_status(400)?;
    expect_problem(&malformed)?;

    let unknown_coding = client.send(
        "POST",
        "/api/upload",
        &[("content-encoding", "x-foo")],
        Some(b"abc"),
    )?;
    unknown_coding.expect_status(415)?;
    expect_problem(&unknown_coding)?;
    if unknown_coding.header("accept-encoding").is_none() {
        return Err(format!("a 415 without Accept-Encoding: {unknown_coding}"));
    }

    let unacceptable_scrape = client.get_with("/metrics", &[("accept", "application/json")])?;
    unacceptable_scrape.expect_status(406)?;
    expect_problem(&unacceptable_scrape)?;

    eprintln!("hostile: 404, 405 (Hub and Cortex routes), 400, 422, 415, 406 are all problem+json");
    Ok(())
}
