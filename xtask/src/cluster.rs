//! `cargo xtask cluster`: Cortex across several processes, on the engines
//! it builds on, checked from outside.
//!
//! What it proves so far (issue #17's Redis part):
//!
//! 1. **The distributed limiter against a real Redis**: `redis-server`
//!    (Debian's, installed if missing) on a free loopback port, then
//!    cortex-resilience's Redis tests, which are `#[ignore]`d in `cargo test`
//!    because they need the server (exact GCRA numbers, two limiters
//!    sharing a budget, concurrent exact accounting, `NOSCRIPT` recovery,
//!    key expiry).
//! 2. **One limit across three Hubs**: three Hub processes with
//!    `CORTEX_REDIS_URL` set, one client spreading `GET /api/flaky` over
//!    them round-robin for a few seconds. The per-client limit (50/s, burst
//!    100) is enforced once for the cluster: the client gets burst + 50/s,
//!    not three times that. The same three Hubs without Redis, each with its
//!    own local limiter, let about three times as many through (measured in
//!    the same run, for comparison). No decision in a measured window may
//!    be a fallback's (three fallbacks at a third of the limit let about as
//!    much through). After node 1 refuses, nodes 2 and 3 allow only what
//!    the shared bucket refilled meanwhile.
//! 3. **Redis stopped for 5 s mid-run, then restarted**: every request is
//!    still answered (200 or 429, never a 5xx), the Hubs fall back to their
//!    local limiters at the limit ÷ 3 (`CORTEX_REPLICAS=3`), so the cluster
//!    still lets about one budget through, the fallback is counted in
//!    `/metrics`, and the shared limit is back once Redis is.
//!
//! 4. **The event bus, actors and orders across three Hubs on NATS, with
//!    chaos** (`cluster_nats.rs`): cortex-actor's cluster tests against a
//!    real `nats-server -js`, then 3,000 orders over three clustered Hubs
//!    while nats-server is killed for 5 s and node 2 is killed.
//!
//! Servers run on loopback, on free ports, and are stopped by PID; the
//! whole scenario takes a few minutes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::conformance::client::Client;
use crate::conformance::tools::ensure_packages;
use crate::hub::HubProcess;
use crate::process::{free_loopback_addr, spawn_until_ready, stop_by_pid, version_of};
use crate::{cargo, root};

/// The Hub's per-client limit on `/api/flaky` (examples/hub/src/flaky.rs).
const LIMIT_PER_SECOND: f64 = 50.0;
const BURST: f64 = 100.0;
/// How long each measurement spreads requests over the Hubs.
const WINDOW: Duration = Duration::from_secs(4);
const NODES: usize = 3;
const FALLBACKS: &str = "cortex_ratelimiter_fallback_decisions_total";

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let only = match args {
        [] => None,
        [flag, part] if flag == "--only" && (part == "redis" || part == "nats") => {
            Some(part.as_str())
        }
        _ => return Err("usage: cargo xtask cluster [--only redis|nats]".to_owned()),
    };
    let started = Instant::now();
    let mut redis = RedisServer::start()?;
    if only == Some("nats") {
        HubProcess::build()?;
        crate::cluster_nats::run(&redis.url())?;
        redis.stop()?;
        return Ok(());
    }
    println!(
        "cluster: redis-server {} on {}",
        RedisServer::version(),
        redis.addr
    );

    // 1. The limiter's own tests against this server.
    let status = Command::new(cargo())
        .current_dir(root())
        .args([
            "test",
            "--quiet",
            "-p",
            "cortex-resilience",
            "--features",
            "redis",
            "--test",
            "redis",
            "--",
            "--ignored",
        ])
        .env("CORTEX_TEST_REDIS_URL", redis.url())
        .status()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    if !status.success() {
        return Err("cluster: cortex-resilience's Redis tests failed".to_owned());
    }
    println!("cluster: cortex-resilience's Redis tests passed against a real redis-server");

    // 2. One budget across three Hubs, and three without Redis for
    // comparison.
    HubProcess::build()?;
    let local = {
        let hubs = start_hubs(None)?;
        let counts = spread(&hubs, WINDOW)?;
        stop_all(hubs)?;
        counts
    };
    local.expect_no_errors("local limits")?;
    let hubs = start_hubs(Some(&redis.url()))?;
    wait_until_redis_is_up(&hubs)?;
    let shared = shared_window(&hubs)?;
    let expected = LIMIT_PER_SECOND.mul_add(WINDOW.as_secs_f64(), BURST);
    println!(
        "cluster: {NODES} Hubs, one client, {} s round-robin: shared limit {} allowed ({} refused), local limits {} allowed; expected {expected:.0} (burst {BURST:.0} + {LIMIT_PER_SECOND:.0}/s)",
        WINDOW.as_secs(),
        shared.allowed,
        shared.refused,
        local.allowed,
    );
    shared.expect_no_errors("shared limit")?;
    // The window is measured on the client: a request in flight as it
    // closes, and the first interval, give a permit or two either way.
    let slack = 0.02_f64.mul_add(expected, 2.0);
    if (shared.allowed as f64 - expected).abs() > slack {
        return Err(format!(
            "cluster: the shared limit let {} through in {} s; expected {expected:.0} ± {slack:.0}",
            shared.allowed,
            WINDOW.as_secs()
        ));
    }
    if (local.allowed as f64) <= expected + slack {
        return Err(format!(
            "cluster: {NODES} local limiters let only {} through in {} requests; expected about {NODES} × {expected:.0} (is the client too slow?)",
            local.allowed,
            local.allowed + local.refused
        ));
    }
    one_budget_whichever_node(&hubs)?;

    // 3. Redis down for 5 s, then back.
    redis.stop()?;
    let outage_started = Instant::now();
    let during = spread(&hubs, Duration::from_secs(4))?;
    during.expect_no_errors("Redis down")?;
    let fallbacks = metric_sum(&hubs, FALLBACKS)?;
    println!(
        "cluster: Redis down: {} allowed, {} refused, no 5xx; {fallbacks:.0} fallback decisions in /metrics",
        during.allowed, during.refused
    );
    if fallbacks < 1.0 {
        return Err("cluster: no fallback decision was counted while Redis was down".to_owned());
    }
    // Each node falls back to the limit ÷ 3 from a fresh local budget, so
    // the cluster as a whole still lets about one budget through.
    let during_expected = LIMIT_PER_SECOND.mul_add(4.0, BURST);
    if (during.allowed as f64) > 1.5 * during_expected {
        return Err(format!(
            "cluster: while Redis was down {} were allowed; the local fallback at the limit ÷ {NODES} should allow about {during_expected:.0}",
            during.allowed
        ));
    }
    std::thread::sleep(Duration::from_secs(5).saturating_sub(outage_started.elapsed()));
    redis.restart()?;
    wait_until_redis_is_up(&hubs)?;
    let after = shared_window(&hubs)?;
    after.expect_no_errors("after Redis came back")?;
    println!(
        "cluster: Redis back: {} allowed, {} refused",
        after.allowed, after.refused
    );
    if (after.allowed as f64 - expected).abs() > slack {
        return Err(format!(
            "cluster: after Redis came back the shared limit let {} through; expected {expected:.0} ± {slack:.0}",
            after.allowed
        ));
    }
    stop_all(hubs)?;

    // 4. The event bus, actors and orders across nodes on NATS, with chaos.
    if only.is_none() {
        crate::cluster_nats::run(&redis.url())?;
    }
    redis.stop()?;
    println!(
        "cluster: all checks passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn start_hubs(redis_url: Option<&str>) -> Result<Vec<HubProcess>, String> {
    (0..NODES)
        .map(|node| {
            let name = format!("node-{}", node + 1);
            let mut env = vec![
                ("CORTEX_DRAIN_DELAY", "200ms".to_owned()),
                ("CORTEX_NODE_NAME", name),
                ("CORTEX_REPLICAS", NODES.to_string()),
                ("RUST_LOG", "warn".to_owned()),
            ];
            if let Some(url) = redis_url {
                env.push(("CORTEX_REDIS_URL", url.to_owned()));
                // Debug Hubs on a loaded 2-core machine: a budget a stall
                // does not exceed, so a measured window is Redis's alone
                // (the outage still trips it at once: refused connections).
                env.push(("CORTEX_REDIS_TIMEOUT", "500ms".to_owned()));
            }
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            HubProcess::start_with(&env, None)
        })
        .collect()
}

/// Waits until every Hub has reached Redis (`cortex_ratelimiter_backend_up`
/// is 1 on each), then until the budget the probes spent has refilled.
/// Each Hub connects lazily and reconnects on its next failed command; until
/// a check gets through it decides locally, which would blur a measurement
/// of the shared limit.
fn wait_until_redis_is_up(hubs: &[HubProcess]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for hub in hubs {
            Client::new(hub.addr()).get("/api/flaky")?;
        }
        if metric_sum(hubs, "cortex_ratelimiter_backend_up")? >= NODES as f64 {
            break;
        }
        if Instant::now() > deadline {
            return Err("cluster: the Hubs did not reach Redis within 15 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // 100 permits at 50/s: full again after 2 s, whatever the probes took.
    std::thread::sleep(Duration::from_secs(3));
    Ok(())
}

/// A measured window of the shared limit: no decision in it may come from
/// a Hub's local fallback (then the count would say nothing about Redis:
/// three fallbacks at a third of the limit let about as much through).
fn shared_window(hubs: &[HubProcess]) -> Result<Counts, String> {
    let fallbacks_before = metric_sum(hubs, FALLBACKS)?;
    let counts = spread(hubs, WINDOW)?;
    let fallbacks = metric_sum(hubs, FALLBACKS)? - fallbacks_before;
    if fallbacks > 0.0 {
        return Err(format!(
            "cluster: {fallbacks:.0} decisions were the local fallback's while Redis was up (a check slower than its budget?)"
        ));
    }
    if counts.allowed + counts.refused < 2 * (BURST as u64 + 50 * WINDOW.as_secs()) {
        return Err(format!(
            "cluster: the client made only {} requests in {} s, too few to spend the budget",
            counts.allowed + counts.refused,
            WINDOW.as_secs()
        ));
    }
    Ok(counts)
}

/// The budget spent through one Hub is spent on all: after node 1 starts
/// refusing, nodes 2 and 3 allow only what the shared bucket refills
/// meanwhile (each with a budget of its own, they would allow a burst).
fn one_budget_whichever_node(hubs: &[HubProcess]) -> Result<(), String> {
    // Let the budget refill (100 permits at 50/s).
    std::thread::sleep(Duration::from_secs(3));
    let first = Client::new(hubs[0].addr());
    let mut sent = 0;
    loop {
        let status = first.get("/api/flaky")?.status.as_u16();
        sent += 1;
        if status == 429 {
            break;
        }
        if sent > 10 * BURST as u64 {
            return Err("cluster: node 1 never refused".to_owned());
        }
    }
    // Then 20 requests to each other node at once. The shared bucket has
    // refilled only what the elapsed time gives back (one permit per
    // 20 ms); budgets of their own would allow all 40.
    let spent_at = Instant::now();
    let mut allowed = 0_u32;
    for hub in &hubs[1..] {
        let client = Client::new(hub.addr());
        for _ in 0..20 {
            if client.get("/api/flaky")?.status.as_u16() == 200 {
                allowed += 1;
            }
        }
    }
    let refilled = LIMIT_PER_SECOND * spent_at.elapsed().as_secs_f64();
    if f64::from(allowed) > refilled + 2.0 {
        return Err(format!(
            "cluster: node 1 refused after {sent} requests, then nodes 2 and 3 allowed {allowed} of 40 in {:.0} ms (the shared budget refills about {refilled:.0} in that time): the budget is not shared",
            spent_at.elapsed().as_secs_f64() * 1000.0
        ));
    }
    println!(
        "cluster: node 1 refused after {sent} requests; then nodes 2 and 3 allowed {allowed} of 40 in {:.0} ms (what the shared bucket refilled; budgets of their own would allow 40)",
        spent_at.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

fn stop_all(hubs: Vec<HubProcess>) -> Result<(), String> {
    for hub in hubs {
        hub.stop()?;
    }
    Ok(())
}

/// What one client got from the cluster.
#[derive(Debug, Default)]
struct Counts {
    allowed: u64,
    refused: u64,
    other: Vec<u16>,
}

impl Counts {
    fn expect_no_errors(&self, phase: &str) -> Result<(), String> {
        if self.other.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "cluster ({phase}): {} answers were neither 200 nor 429: {:?}",
                self.other.len(),
                &self.other[..self.other.len().min(10)]
            ))
        }
    }
}

/// `GET /api/flaky` round-robin over `hubs`, one request at a time, for
/// `window`.
fn spread(hubs: &[HubProcess], window: Duration) -> Result<Counts, String> {
    let clients: Vec<Client> = hubs.iter().map(|hub| Client::new(hub.addr())).collect();
    let mut counts = Counts::default();
    let deadline = Instant::now() + window;
    let mut next = 0;
    while Instant::now() < deadline {
        let reply = clients[next % clients.len()].get("/api/flaky")?;
        next += 1;
        match reply.status.as_u16() {
            200 => counts.allowed += 1,
            429 => counts.refused += 1,
            other => counts.other.push(other),
        }
    }
    Ok(counts)
}

/// The sum over every Hub of the series of `name` in its `/metrics`.
fn metric_sum(hubs: &[HubProcess], name: &str) -> Result<f64, String> {
    let mut sum = 0.0;
    for hub in hubs {
        let reply = Client::new(hub.addr()).get("/metrics")?;
        let text = String::from_utf8_lossy(&reply.body);
        sum += text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    Ok(sum)
}

/// A `redis-server` child on a loopback port, without persistence (also
/// what `cargo xtask bench` measures the Redis limiter against).
pub(crate) struct RedisServer {
    child: Option<Child>,
    addr: SocketAddr,
}

impl RedisServer {
    /// Installs `redis-server` if missing and starts it on a free port.
    pub(crate) fn start() -> Result<Self, String> {
        ensure_packages(&[("redis-server", "redis-server")])?;
        let addr = free_loopback_addr()?;
        let mut server = Self { child: None, addr };
        server.restart()?;
        Ok(server)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Starts the server (again) on its port and waits for `PONG`.
    fn restart(&mut self) -> Result<(), String> {
        let port = self.addr.port().to_string();
        let addr = self.addr;
        let child = spawn_until_ready(
            Command::new("redis-server")
                .args([
                    "--port",
                    &port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
            || Self::ping(addr).is_ok(),
        )?;
        self.child = Some(child);
        Ok(())
    }

    fn ping(addr: SocketAddr) -> Result<(), String> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(|e| e.to_string())?;
        stream.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
        let mut reply = [0_u8; 7];
        stream.read_exact(&mut reply).map_err(|e| e.to_string())?;
        if &reply == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(format!("unexpected reply {reply:?}"))
        }
    }

    fn version() -> String {
        version_of("redis-server", "--version")
    }

    /// Stops the server by PID (SIGTERM, then SIGKILL after 5 s).
    pub(crate) fn stop(&mut self) -> Result<(), String> {
        if let Some(mut child) = self.child.take() {
            stop_by_pid(&mut child, Duration::from_secs(5));
        }
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
