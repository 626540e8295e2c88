//! `cargo xtask cluster`, the NATS part: the event bus, actors and orders
//! across three Hub processes, with chaos.
//!
//! 1. **cortex-actor's cluster tests against a real `nats-server -js`**
//!    (Debian's, installed if missing), which `cargo test` ignores because
//!    they need the server: bridges, consumer groups with dead letters,
//!    remote asks, placement and takeover, ids, `wait_stored`.
//! 2. **Three Hubs clustered by configuration** (`CORTEX_NATS_URL`,
//!    `CORTEX_REDIS_URL`, a node name each, `CORTEX_NODE_TTL=3s`):
//!    - a WebSocket client on node 3 receives every event of orders placed
//!      on node 1;
//!    - an order's live actor answers `GET /api/orders/{id}/actor` from
//!      another node;
//!    - 3,000 orders spread round-robin, while **nats-server is killed
//!      (SIGKILL) for 5 s** and restarted on its store, and while **node 2
//!      is killed (SIGKILL)** right after a batch of orders: every answer is
//!      202 (never a 5xx); every order answered `"stored": true`, and every
//!      order placed on a surviving node, reaches exactly one final state
//!      on both survivors (each order's log is checked on both); orders node
//!      2 left unfinished are taken over and failed with the reason; each
//!      survivor's analytics count every order once.
//!
//! Servers run on loopback, on free ports, and are stopped by PID.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conformance::client::Client;
use crate::conformance::showcase::{self, Ws};
use crate::conformance::tools::ensure_packages;
use crate::hub::HubProcess;
use crate::process::{free_loopback_addr, spawn_until_ready, stop_by_pid, version_of};
use crate::{cargo, root};

const NODES: usize = 3;
const ORDERS: usize = 3000;
/// Orders placed on node 1 while node 3's WebSocket watches.
const WATCHED: usize = 20;
/// How long nats-server stays dead.
const OUTAGE: Duration = Duration::from_secs(5);
/// Client threads placing orders at once.
const PLACERS: usize = 6;
/// How long the survivors may take to agree on every order.
const CONVERGE_WITHIN: Duration = Duration::from_secs(90);

/// One placed order, as its answer said.
#[derive(Debug, Clone)]
struct Placed {
    id: u64,
    node: usize,
    stored: bool,
}

pub(crate) fn run(redis_url: &str) -> Result<(), String> {
    let started = Instant::now();
    let mut nats = NatsServer::start()?;
    println!(
        "cluster: {} with JetStream on {}",
        NatsServer::version(),
        nats.addr
    );
    let status = Command::new(cargo())
        .current_dir(root())
        .args([
            "test",
            "--quiet",
            "-p",
            "cortex-actor",
            "--features",
            "nats",
            "--test",
            "cluster",
            "--",
            "--ignored",
        ])
        .env("CORTEX_TEST_NATS_URL", nats.url())
        .status()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    if !status.success() {
        return Err("cluster: cortex-actor's cluster tests failed".to_owned());
    }
    println!("cluster: cortex-actor's cluster tests passed against a real nats-server");

    let mut hubs: Vec<Option<HubProcess>> = (0..NODES)
        .map(|node| start_hub(node, &nats.url(), redis_url).map(Some))
        .collect::<Result<_, _>>()?;
    let addrs: Vec<SocketAddr> = hubs.iter().flatten().map(HubProcess::addr).collect();
    wait_until_connected(&addrs)?;

    // A WebSocket on node 3 sees node 1's orders.
    let mut placed = watch_from_another_node(addrs[0], addrs[2])?;
    // A live order actor on node 1, asked from node 2.
    placed.extend(remote_actor(addrs[0], addrs[1])?);

    // Orders: steady, then nats-server dead for 5 s, then node 2 killed.
    let steady = ORDERS / 2 - placed.len();
    placed.extend(place(&addrs, &[0, 1, 2], Until::Placed(steady))?);
    println!("cluster: {steady} orders placed round-robin on 3 nodes");

    nats.kill();
    let during = place(&addrs, &[0, 1, 2], Until::Deadline(Instant::now() + OUTAGE))?;
    nats.restart()?;
    let unstored = during.iter().filter(|order| !order.stored).count();
    if unstored != during.len() {
        return Err(format!(
            "cluster: with nats-server dead, {} of {} orders still answered stored: true",
            during.len() - unstored,
            during.len()
        ));
    }
    println!(
        "cluster: nats-server killed for {} s: {} orders placed meanwhile, all 202 ({unstored} answered stored: false)",
        OUTAGE.as_secs(),
        during.len()
    );
    placed.extend(during);
    wait_until_connected(&addrs)?;

    let before_kill = (ORDERS - placed.len()) / 3;
    placed.extend(place(&addrs, &[0, 1, 2], Until::Placed(before_kill))?);
    let (burst, mut node2) = burst_then_kill(addrs[1], hubs[1].take())?;
    println!(
        "cluster: node-2 killed (SIGKILL) after {before_kill} more orders, as the first answers of a burst of 12 came back ({} answered)",
        burst.len()
    );
    placed.extend(burst);
    if let Some(node2) = node2.as_mut() {
        node2.kill();
    }
    let left = ORDERS - placed.len();
    placed.extend(place(&addrs, &[0, 2], Until::Placed(left))?);

    let report = converge(&addrs, &placed)?;
    println!(
        "cluster: {} orders answered 202 ({} by node-2), {} of them stored: true; node-1 and node-3 each hold all of them and {} more (node-2 stored them, then died before answering), every one final exactly once ({} completed, {} failed), and their analytics count {} created; {} unfinished orders of node-2 were taken over and failed with the reason ({} of them answered 202); {} unstored orders of node-2 were lost with it",
        placed.len(),
        placed.iter().filter(|order| order.node == 1).count(),
        placed.iter().filter(|order| order.stored).count(),
        report.known.saturating_sub(placed.len()),
        report.completed,
        report.failed,
        report.known,
        report.taken_over,
        report.recovered,
        report.lost,
    );
    if placed.len() != ORDERS {
        return Err(format!(
            "cluster: placed {} orders, meant {ORDERS}",
            placed.len()
        ));
    }
    for (node, status) in [(0, &report.cluster[0]), (2, &report.cluster[1])] {
        println!(
            "cluster: node-{} /api/cluster: {}",
            node + 1,
            status["events"]
        );
    }

    for hub in hubs.into_iter().flatten() {
        hub.stop()?;
    }
    nats.stop();
    println!(
        "cluster: the NATS scenario passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn start_hub(node: usize, nats_url: &str, redis_url: &str) -> Result<HubProcess, String> {
    let name = format!("node-{}", node + 1);
    let log = root()
        .join("target")
        .join("tmp")
        .join(format!("cluster-{name}.log"));
    let _ = std::fs::create_dir_all(log.parent().unwrap_or(&root()));
    HubProcess::start_logged(
        &[
            ("CORTEX_DRAIN_DELAY", "200ms"),
            ("CORTEX_NODE_NAME", &name),
            ("CORTEX_REPLICAS", "3"),
            ("CORTEX_NATS_URL", nats_url),
            ("CORTEX_REDIS_URL", redis_url),
            ("CORTEX_NODE_TTL", "3s"),
            ("RUST_LOG", "warn"),
        ],
        &log,
    )
}

/// Waits until every Hub says it is connected to NATS.
fn wait_until_connected(addrs: &[SocketAddr]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for addr in addrs {
        let client = Client::new(*addr);
        loop {
            let status = client.get("/api/cluster").ok().and_then(|r| r.json().ok());
            if status.as_ref().is_some_and(|s| s["connected"] == true) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "cluster: the Hub on {addr} is not connected to NATS: {status:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn place_body(n: usize) -> String {
    format!(r#"{{"item":"cluster order {n}","quantity":1}}"#)
}

/// Sends a burst of orders to node 2 and kills it (SIGKILL) as soon as
/// the first is answered, so some of its orders are mid-payment when it
/// dies. Orders whose request failed were never accepted; the answered
/// ones are returned.
fn burst_then_kill(
    addr: SocketAddr,
    hub: Option<HubProcess>,
) -> Result<(Vec<Placed>, Option<HubProcess>), String> {
    let Some(mut hub) = hub else {
        return Err("cluster: node-2 is not running".to_owned());
    };
    let (answered, first) = std::sync::mpsc::channel::<()>();
    let placed: Vec<Placed> = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..12)
            .map(|n| {
                let answered = answered.clone();
                scope.spawn(move || {
                    let placed = place_on(&Client::new(addr), 1, n).ok();
                    let _ = answered.send(());
                    placed
                })
            })
            .collect();
        let _ = first.recv_timeout(Duration::from_secs(10));
        hub.kill();
        senders
            .into_iter()
            .filter_map(|sender| sender.join().ok().flatten())
            .collect()
    });
    Ok((placed, Some(hub)))
}

fn place_on(client: &Client, node: usize, n: usize) -> Result<Placed, String> {
    let reply = client.post_json("/api/orders", &place_body(n))?;
    if reply.status.as_u16() != 202 {
        return Err(format!(
            "cluster: POST /api/orders on node-{} answered {}: {}",
            node + 1,
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    let body = reply.json()?;
    Ok(Placed {
        id: body["id"]
            .as_u64()
            .ok_or_else(|| format!("cluster: no id in {body}"))?,
        node,
        stored: body["stored"] == true,
    })
}

/// How long [`place`] goes on.
#[derive(Clone, Copy)]
enum Until {
    /// This many orders in all.
    Placed(usize),
    /// Until then.
    Deadline(Instant),
}

/// Places orders round-robin over `nodes` from [`PLACERS`] threads (each
/// with a keep-alive client per node) until `until`.
fn place(addrs: &[SocketAddr], nodes: &[usize], until: Until) -> Result<Vec<Placed>, String> {
    let results: Vec<Result<Vec<Placed>, String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PLACERS)
            .map(|worker| {
                scope.spawn(move || {
                    let clients: Vec<Client> =
                        nodes.iter().map(|&node| Client::new(addrs[node])).collect();
                    let mut placed = Vec::new();
                    let mut n = worker;
                    while match until {
                        Until::Placed(count) => n < count,
                        Until::Deadline(deadline) => Instant::now() < deadline,
                    } {
                        let which = n % nodes.len();
                        placed.push(place_on(&clients[which], nodes[which], n)?);
                        n += PLACERS;
                    }
                    Ok(placed)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err("a placer panicked".to_owned()))
            })
            .collect()
    });
    let mut all = Vec::new();
    for result in results {
        all.extend(result?);
    }
    Ok(all)
}

/// A WebSocket client on `watcher` in room `orders` receives every event
/// of orders placed on `origin`, through NATS.
fn watch_from_another_node(origin: SocketAddr, watcher: SocketAddr) -> Result<Vec<Placed>, String> {
    let mut socket = showcase::open(watcher, "orders", None)?;
    let welcome = showcase::next_json(&mut socket)?;
    if welcome["type"] != "welcome" {
        return Err(format!("cluster: WebSocket welcome was {welcome}"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<BTreeMap<u64, Vec<String>>>> = Arc::default();
    let reader = {
        let stop = Arc::clone(&stop);
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || read_orders(socket, &stop, &seen))
    };
    let client = Client::new(origin);
    let mut placed = Vec::new();
    for n in 0..WATCHED {
        placed.push(place_on(&client, 0, n)?);
        std::thread::sleep(Duration::from_millis(20));
    }
    let ids: Vec<u64> = placed.iter().map(|order| order.id).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let finished = |seen: &BTreeMap<u64, Vec<String>>| {
        ids.iter().all(|id| {
            seen.get(id).is_some_and(|kinds| {
                kinds.first().map(String::as_str) == Some("created")
                    && kinds
                        .last()
                        .is_some_and(|kind| kind == "completed" || kind == "failed")
            })
        })
    };
    while !finished(
        &seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    ) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let read = reader
        .join()
        .map_err(|_| "the WebSocket reader panicked".to_owned())?;
    let seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !finished(&seen) {
        return Err(format!(
            "cluster: node-3's WebSocket did not see every event of node-1's orders {ids:?}: {seen:?} ({read:?})"
        ));
    }
    let events: usize = ids.iter().map(|id| seen[id].len()).sum();
    println!(
        "cluster: a WebSocket on node-3 received all {events} events of {WATCHED} orders placed on node-1, each order from created to final"
    );
    Ok(placed)
}

/// Reads `type: order` messages until `stop`; what ended it.
fn read_orders(
    mut socket: Ws,
    stop: &AtomicBool,
    seen: &Mutex<BTreeMap<u64, Vec<String>>>,
) -> Result<(), String> {
    socket
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    while !stop.load(Ordering::Relaxed) {
        match showcase::next_json(&mut socket) {
            Ok(message) if message["type"] == "order" => {
                let event = &message["event"];
                if let (Some(id), Some(kind)) = (event["order_id"].as_u64(), event["type"].as_str())
                {
                    seen.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(id)
                        .or_default()
                        .push(kind.to_owned());
                }
            }
            Ok(_) => {}
            Err(error) if error.contains("no message within") => {}
            Err(error) => return Err(error),
        }
    }
    let _ = socket.close(None);
    Ok(())
}

/// A live order's actor on `owner` answers `GET /api/orders/{id}/actor`
/// asked on `other`. Orders finish in milliseconds, so the question is
/// asked over and over while the order is placed: a node hands out ids
/// from its block in sequence, so the next order's id is known ahead.
fn remote_actor(owner: SocketAddr, other: SocketAddr) -> Result<Vec<Placed>, String> {
    let owner_client = Client::new(owner);
    let mut all = Vec::new();
    for n in 0..50 {
        let first = place_on(&owner_client, 0, n)?;
        let next = first.id + 1;
        all.push(first);
        let placed_next = AtomicBool::new(false);
        let (placed, answer) = std::thread::scope(|scope| {
            let asker = scope.spawn(|| {
                let client = Client::new(other);
                let mut after_placed = 0;
                while after_placed < 50 {
                    if placed_next.load(Ordering::Relaxed) {
                        after_placed += 1;
                    }
                    let reply = client.get(&format!("/api/orders/{next}/actor"))?;
                    match reply.status.as_u16() {
                        200 => return Ok(Some(reply.json()?)),
                        // Not there yet, or already final (503: its actor
                        // stopped as it was asked).
                        404 | 503 => {}
                        status => {
                            return Err(format!(
                                "cluster: GET /api/orders/{next}/actor on node-2 answered {status}"
                            ));
                        }
                    }
                }
                Ok(None)
            });
            let placed = place_on(&owner_client, 0, n);
            placed_next.store(true, Ordering::Relaxed);
            let answer = asker
                .join()
                .unwrap_or_else(|_| Err("the asker panicked".to_owned()));
            (placed, answer)
        });
        let placed = placed?;
        let id = placed.id;
        all.push(placed);
        if id != next {
            // Another block began: try again.
            continue;
        }
        if let Some(view) = answer? {
            if view["node"] != "node-1" || view["order"]["id"] != next {
                return Err(format!(
                    "cluster: order {next}'s actor, asked from node-2, answered {view}"
                ));
            }
            println!(
                "cluster: order {next}'s live actor on node-1 answered GET /api/orders/{{id}}/actor on node-2 (state {}), over NATS request/reply",
                view["order"]["state"]
            );
            return Ok(all);
        }
    }
    Err("cluster: no order was caught live when asked from another node (50 tries)".to_owned())
}

#[derive(Debug)]
struct Converged {
    known: usize,
    /// Takeovers the survivors counted (`/api/cluster`).
    taken_over: u64,
    lost: usize,
    completed: u64,
    failed: u64,
    recovered: u64,
    cluster: Vec<Value>,
}

/// Waits until node 1 and node 3 agree on every order that must survive,
/// then checks each one's log on both.
fn converge(addrs: &[SocketAddr], placed: &[Placed]) -> Result<Converged, String> {
    let survivors = [addrs[0], addrs[2]];
    // Orders of node 2 that were not stored when answered may have died
    // with it; everything else must be on both survivors.
    let must: Vec<&Placed> = placed
        .iter()
        .filter(|order| order.stored || order.node != 1)
        .collect();
    let deadline = Instant::now() + CONVERGE_WITHIN;
    loop {
        let summaries: Vec<Value> = survivors
            .iter()
            .map(|addr| Client::new(*addr).get("/api/orders")?.json())
            .collect::<Result<_, _>>()?;
        let settled = summaries.iter().all(|summary| {
            let events = &summary["events"];
            let created = events["created"].as_u64().unwrap_or(0);
            let finals =
                events["completed"].as_u64().unwrap_or(0) + events["failed"].as_u64().unwrap_or(0);
            created >= must.len() as u64 && created == finals
        }) && summaries[0]["events"] == summaries[1]["events"];
        if settled {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "cluster: node-1 and node-3 did not settle within {CONVERGE_WITHIN:?} on {} orders: {}, {}",
                must.len(),
                summaries[0]["events"],
                summaries[1]["events"]
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every order's log, on both survivors: one created, one final event,
    // the final last.
    let mut recovered = 0;
    for addr in survivors {
        let client = Client::new(addr);
        for order in &must {
            let log = client.get(&format!("/api/orders/{}/events", order.id))?;
            if log.status.as_u16() != 200 {
                return Err(format!(
                    "cluster: order {} (placed on node-{}, stored: {}) is unknown to {addr}: {}",
                    order.id,
                    order.node + 1,
                    order.stored,
                    log.status
                ));
            }
            let log = log.json()?;
            let events = log["events"].as_array().cloned().unwrap_or_default();
            let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
            let finals = kinds
                .iter()
                .filter(|k| matches!(**k, "completed" | "failed"))
                .count();
            if kinds.first() != Some(&"created")
                || finals != 1
                || !matches!(kinds.last(), Some(&"completed" | &"failed"))
            {
                return Err(format!(
                    "cluster: order {}'s log on {addr} is not created … one final event: {kinds:?}",
                    order.id
                ));
            }
            if addr == addrs[0] {
                let reason = events
                    .last()
                    .and_then(|e| e["reason"].as_str())
                    .unwrap_or("");
                if reason.contains("node node-2 stopped") {
                    recovered += 1;
                }
            }
        }
    }
    let summary = Client::new(addrs[0]).get("/api/orders")?.json()?;
    for addr in survivors {
        let analytics = Client::new(addr).get("/api/analytics")?.json()?;
        let orders = &analytics["orders"];
        if orders["created"] != summary["events"]["created"]
            || orders["completed"] != summary["events"]["completed"]
            || orders["failed"] != summary["events"]["failed"]
            || orders["active"] != 0
        {
            return Err(format!(
                "cluster: analytics on {addr} counted {orders}, the journal {}",
                summary["events"]
            ));
        }
    }
    let known = summary["events"]["created"].as_u64().unwrap_or(0) as usize;
    // Node 2's orders answered before they were stored may have died
    // with it: count them, by asking a survivor for each.
    let survivor = Client::new(addrs[0]);
    let mut lost = 0;
    for order in placed
        .iter()
        .filter(|order| !order.stored && order.node == 1)
    {
        if survivor
            .get(&format!("/api/orders/{}", order.id))?
            .status
            .as_u16()
            == 404
        {
            lost += 1;
        }
    }
    let cluster = survivors
        .iter()
        .map(|addr| Client::new(*addr).get("/api/cluster")?.json())
        .collect::<Result<Vec<Value>, String>>()?;
    // The same counts as Prometheus series, on each survivor.
    for addr in survivors {
        let text = Client::new(addr).get("/metrics")?;
        let text = String::from_utf8_lossy(&text.body);
        for series in [
            r#"cortex_cluster_connected{namespace="hub"} 1"#,
            r#"cortex_cluster_events_total{namespace="hub",outcome="stored"}"#,
            r#"cortex_cluster_events_total{namespace="hub",outcome="imported"}"#,
        ] {
            if !text.contains(series) {
                return Err(format!("cluster: {addr}/metrics has no {series}"));
            }
        }
    }
    let taken_over = cluster
        .iter()
        .map(|status| status["orders"]["recovered"].as_u64().unwrap_or(0))
        .sum();
    Ok(Converged {
        known,
        taken_over,
        lost,
        completed: summary["events"]["completed"].as_u64().unwrap_or(0),
        failed: summary["events"]["failed"].as_u64().unwrap_or(0),
        recovered,
        cluster,
    })
}

/// A `nats-server -js` child on a loopback port, its store in `target/tmp`
/// (kept across a kill, so JetStream comes back with its streams).
pub(crate) struct NatsServer {
    child: Option<Child>,
    addr: SocketAddr,
    store: PathBuf,
}

impl NatsServer {
    /// Installs `nats-server` if missing and starts it on a free port with
    /// an empty store.
    pub(crate) fn start() -> Result<Self, String> {
        ensure_packages(&[("nats-server", "nats-server")])?;
        let addr = free_loopback_addr()?;
        let store = root()
            .join("target")
            .join("tmp")
            .join(format!("nats-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        std::fs::create_dir_all(&store).map_err(|e| format!("{}: {e}", store.display()))?;
        let mut server = Self {
            child: None,
            addr,
            store,
        };
        server.restart()?;
        Ok(server)
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Starts the server (again) on its port and store; waits for its
    /// `INFO` greeting.
    fn restart(&mut self) -> Result<(), String> {
        let port = self.addr.port().to_string();
        let store = self.store.display().to_string();
        let addr = self.addr;
        let child = spawn_until_ready(
            Command::new("nats-server")
                .args(["-js", "-a", "127.0.0.1", "-p", &port, "-sd", &store])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            || Self::greets(addr),
        )?;
        self.child = Some(child);
        Ok(())
    }

    fn greets(addr: SocketAddr) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut greeting = [0_u8; 4];
        stream.read_exact(&mut greeting).is_ok() && &greeting == b"INFO"
    }

    fn version() -> String {
        version_of("nats-server", "--version")
    }

    /// SIGKILL: the abrupt end the chaos check wants.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server by PID (SIGTERM, then SIGKILL after 5 s).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_by_pid(&mut child, Duration::from_secs(5));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
