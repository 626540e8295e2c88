//! The Hub's showcase services, used the way their clients use them.
//!
//! While the main Hub runs ([`check`]):
//! - **Event-sourced orders over HTTP**: a placed order's
//!   `/api/orders/{id}/events` is exactly `created`, `processing`,
//!   `payment_succeeded`, `completed` with `seq` 1 to 4, and its `order` is
//!   what `GET /api/orders/{id}` answers (the order is the fold of its
//!   log); `/api/analytics` counts it, and `/api/status` shows the same
//!   counts, the service, its health and its request total.
//! - **A real WebSocket client** (tungstenite, blocking, plain TCP) in room
//!   `orders`: the welcome, `ping`/`join`/`leave` answered, each of 3
//!   orders' 4 events in `seq` order, nothing after leaving the room; a
//!   foreign `Origin` is refused with 403.
//! - **Slow consumers**: 20 sockets in room `orders` that never read, with
//!   a 4 KiB receive buffer and a 536-byte MSS so the kernels hold little
//!   for them, while orders are placed until each one's server-side queue
//!   (64 messages) overflowed, and 1 000 more. Each is counted dropped exactly once in `/metrics`, its
//!   socket ends with close 1008 "slow consumer" (or is dropped, when the
//!   close itself could not be written within the Hub's 5 s), every close
//!   is counted, and the Hub's RSS stays within [`SLOW_RSS_BUDGET_KIB`]:
//!   the Hub must drop what a slow client cannot take, not hold it.
//! - **A real browser** on the status page at `/`, through the DevTools
//!   protocol ([`cdp`](super::cdp) says why not `--dump-dom`): the live
//!   values fill in (the health badge, the request total, the notification
//!   WebSocket connected), orders placed meanwhile show up in its counts and
//!   its event list, nothing is written to the console or refused by the
//!   CSP; its screenshot is saved as `target/conformance/status-page.png`
//!   and `docs/status-page.png` (what the README shows).
//!
//! With a Hub of its own, logging JSON at `info` to a file
//! ([`check_own_hub`]):
//! - **Logs join traces**. Every log line is a JSON object; an order placed
//!   with a `traceparent` has an access-log line with that trace id, and
//!   that `trace_id` on every event of its log; a declined order's `order
//!   failed` line, written inside its actor, carries its request's trace id
//!   too.
//! - **Read your write**: an order is found at the `location` that `POST
//!   /api/orders` answered, the moment it answered (the other checks poll
//!   past a 404, so they do not race the Hub; this one counts it).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use socket2::{Domain, Protocol, Socket, Type};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use super::cdp::{Browser, png_size};
use super::client::Client;
use super::compute::sample;
use super::json::{array_field, field, str_field, u64_field};
use super::orders::{finished, place};
use super::tools::ensure_packages;
use crate::hub::HubProcess;
use crate::root;

/// A completed order's log.
const COMPLETED: [&str; 4] = ["created", "processing", "payment_succeeded", "completed"];
/// A declined order's log.
const DECLINED: [&str; 4] = ["created", "processing", "payment_declined", "failed"];
/// How long a message, an order, or a live value may take to arrive.
const ARRIVE_WITHIN: Duration = Duration::from_secs(10);
const NOTIFICATIONS: &str = "/api/notifications/ws";

/// Slow consumers: how many, their receive buffer and segment size, and at
/// most how many orders to place until every one has overflowed its queue
/// (about 200 do: what the kernels buffer, then 64 queued messages).
const SLOW_SOCKETS: usize = 20;
const SLOW_RECEIVE_BUFFER: usize = 4 * 1024;
const SLOW_MSS: u32 = 536;
const SLOW_MAX_ORDERS: usize = 3_000;
/// Orders placed after every slow socket overflowed: what a Hub that kept
/// buffering for them would now hold too.
const SLOW_EXTRA_ORDERS: usize = 1_000;
/// How much the Hub's RSS may grow across the slow-consumer run. What it
/// must hold: about 1 200 orders (finished-order store, journal,
/// analytics), at most 64 queued messages per slow socket (texts shared by
/// every socket), and the sockets' tasks and buffers: measured at about
/// 3 MiB on a fresh Hub. What it must not: a copy of every message for
/// each socket that does not read (a per-connection write buffer with no
/// bound): 20 sockets × ~4 400 messages past what the kernels took ×
/// ~165 bytes, about 14 MiB. (An unbounded queue of shared texts would
/// cost less, but is caught by the dropped count instead.)
const SLOW_RSS_BUDGET_KIB: u64 = 8 * 1024;
/// The whole slow-consumer run, orders and closes included.
const SLOW_WITHIN: Duration = Duration::from_secs(30);

/// The browser's window, and so the screenshot's size.
const WINDOW: (u32, u32) = (1280, 1800);

pub(crate) fn check(
    client: &Client,
    addr: SocketAddr,
    pid: u32,
    out_dir: &Path,
) -> Result<(), String> {
    event_log(client)?;
    websocket(client, addr)?;
    slow_consumers(client, addr, pid)?;
    browser(client, out_dir)
}

/// `/api/orders/{id}/events`: the log, and the order it folds to.
fn event_log(client: &Client) -> Result<(), String> {
    let counts = |client: &Client| -> Result<Value, String> {
        let reply = client.get("/api/analytics")?;
        reply.expect_status(200)?;
        Ok(field(&reply.json()?, "orders")?.clone())
    };
    let before = counts(client)?;
    let id = place(client, r#"{"item":"event-sourced","quantity":2}"#)?;
    finished(client, id)?;
    let log = order_log(client, id, &COMPLETED)?;
    let events = array_field(&log, "events")?;
    if events[0]["item"] != "event-sourced" || events[0]["quantity"] != 2 {
        return Err(format!(
            "order {id}: `created` does not say what was ordered: {log}"
        ));
    }
    if events[2]["attempts"] != 1 {
        return Err(format!(
            "order {id}: `payment_succeeded` after 1 attempt expected: {log}"
        ));
    }
    let view = client.get(&format!("/api/orders/{id}"))?;
    view.expect_status(200)?;
    if field(&log, "order")? != &view.json()? {
        return Err(format!(
            "order {id}: the log's `order` differs from GET /api/orders/{id}:\n  log: {log}\n  {view}"
        ));
    }
    let unknown = client.get("/api/orders/987654321/events")?;
    unknown.expect_status(404)?;
    super::hostile::expect_problem(&unknown)?;

    // Analytics is a consumer of the same events, a moment behind.
    let count = |counts: &Value, key: &str| counts[key].as_u64().unwrap_or(0);
    let grown = |after: &Value, key: &str| count(after, key).saturating_sub(count(&before, key));
    let deadline = Instant::now() + ARRIVE_WITHIN;
    let after = loop {
        let after = counts(client)?;
        if (grown(&after, "created"), grown(&after, "completed")) == (1, 1) {
            break after;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "GET /api/analytics: one completed order should add 1 created and 1 completed: {before} -> {after}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = client.get("/api/status")?;
    status.expect_status(200)?;
    let status = status.json()?;
    if str_field(&status, "service")? != "cortex-hub"
        || !matches!(status["health"]["status"].as_str(), Some("UP" | "DEGRADED"))
        || status["http"]["requests_total"].as_u64().unwrap_or(0) == 0
        || status["orders"]["orders"] != after
    {
        return Err(format!(
            "GET /api/status: expected the Hub's service, health, request total, and the analytics' orders {after}: {status}"
        ));
    }
    eprintln!(
        "showcase: order {id}'s event log is created, processing, payment_succeeded, completed (seq 1-4) and folds to GET /api/orders/{id}; /api/analytics and /api/status count it"
    );
    Ok(())
}

/// `GET /api/orders/{id}/events` of a final order: `types` in order, `seq`
/// 1 up, every event of order `id`, times in order, one trace id (if any)
/// on all. Returns the whole answer.
fn order_log(client: &Client, id: u64, types: &[&str]) -> Result<Value, String> {
    let reply = client.get(&format!("/api/orders/{id}/events"))?;
    reply.expect_status(200)?;
    let log = reply.json()?;
    let events = array_field(&log, "events")?;
    check_sequence(id, events, types).map_err(|e| format!("GET /api/orders/{id}/events: {e}"))?;
    let mut at = 0;
    for event in events {
        let at_ms = u64_field(event, "at_ms")?;
        if at_ms < at {
            return Err(format!("order {id}: at_ms goes back in time: {log}"));
        }
        at = at_ms;
        if event.get("trace_id") != events[0].get("trace_id") {
            return Err(format!(
                "order {id}: the events disagree on the trace id: {log}"
            ));
        }
    }
    Ok(log)
}

/// `events` are order `id`'s, of `types` in order, `seq` 1, 2, …
fn check_sequence(id: u64, events: &[Value], types: &[&str]) -> Result<(), String> {
    let found: Vec<(u64, u64, &str)> = events
        .iter()
        .map(|e| {
            (
                e["order_id"].as_u64().unwrap_or(0),
                e["seq"].as_u64().unwrap_or(0),
                e["type"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    let expected: Vec<(u64, u64, &str)> = (1..).zip(types).map(|(s, t)| (id, s, *t)).collect();
    if found == expected {
        Ok(())
    } else {
        Err(format!(
            "order {id}: expected (order, seq, type) {expected:?}, got {found:?}"
        ))
    }
}

pub(crate) type Ws = WebSocket<TcpStream>;

/// Opens `/api/notifications/ws?rooms=…` over plain TCP, with `origin`
/// if given and a receive buffer of `receive_buffer` bytes if given (set
/// before connecting, so the window the Hub sees is small from the
/// start). `Ok(Err(status))` is a refused handshake.
fn open_socket(
    addr: SocketAddr,
    rooms: &str,
    origin: Option<&str>,
    receive_buffer: Option<usize>,
) -> Result<Result<Ws, u16>, String> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| format!("socket: {e}"))?;
    if let Some(size) = receive_buffer {
        socket
            .set_recv_buffer_size(size)
            .map_err(|e| format!("SO_RCVBUF: {e}"))?;
        // Loopback's MSS is 64 KiB, and Linux sizes a connection's send
        // buffer from its first congestion window in segments: megabytes
        // the Hub's kernel would accept for a client that reads nothing.
        // A small MSS in our SYN keeps that buffer to tens of KiB.
        socket
            .set_tcp_mss(SLOW_MSS)
            .map_err(|e| format!("TCP_MAXSEG: {e}"))?;
    }
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(ARRIVE_WITHIN))
        .map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}{NOTIFICATIONS}?rooms={rooms}");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    if let Some(origin) = origin {
        let origin = HeaderValue::from_str(origin).map_err(|e| e.to_string())?;
        request.headers_mut().insert("origin", origin);
    }
    match tungstenite::client(request, stream) {
        Ok((socket, _)) => Ok(Ok(socket)),
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Ok(Err(response.status().as_u16()))
        }
        Err(error) => Err(format!("WebSocket handshake {url}: {error}")),
    }
}

/// [`open_socket`] that must succeed.
pub(crate) fn open(
    addr: SocketAddr,
    rooms: &str,
    receive_buffer: Option<usize>,
) -> Result<Ws, String> {
    open_socket(addr, rooms, None, receive_buffer)?
        .map_err(|status| format!("WebSocket {NOTIFICATIONS}?rooms={rooms} refused with {status}"))
}

/// The next text message as JSON (pings are answered by tungstenite).
pub(crate) fn next_json(socket: &mut Ws) -> Result<Value, String> {
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => {
                return serde_json::from_str(text.as_str())
                    .map_err(|e| format!("WebSocket: not JSON ({e}): {text}"));
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => return Err(format!("WebSocket: expected a JSON text, got {other:?}")),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return Err(format!("WebSocket: no message within {ARRIVE_WITHIN:?}"));
            }
            Err(e) => return Err(format!("WebSocket: {e}")),
        }
    }
}

/// Sends `command` and returns the first answer that is not an order or
/// alert message (those may arrive in between at any time).
fn command(socket: &mut Ws, command: &Value) -> Result<Value, String> {
    socket
        .send(Message::text(command.to_string()))
        .map_err(|e| format!("WebSocket: sending {command}: {e}"))?;
    loop {
        let message = next_json(socket)?;
        if !matches!(message["type"].as_str(), Some("order" | "alert")) {
            return Ok(message);
        }
    }
}

/// One client in room `orders`: the protocol, and every event of its
/// orders in order.
fn websocket(client: &Client, addr: SocketAddr) -> Result<(), String> {
    let mut socket = open(addr, "orders", None)?;
    let welcome = next_json(&mut socket)?;
    if welcome["type"] != "welcome" || !welcome["connection"].is_u64() {
        return Err(format!(
            "WebSocket: the first message is not a welcome: {welcome}"
        ));
    }
    for (sent, expected) in [
        (json!({"op": "ping"}), json!({"type": "pong"})),
        (
            json!({"op": "join", "room": "alerts"}),
            json!({"type": "joined", "room": "alerts"}),
        ),
    ] {
        let answer = command(&mut socket, &sent)?;
        if answer != expected {
            return Err(format!(
                "WebSocket: {sent} answered {answer}, expected {expected}"
            ));
        }
    }
    let refused = command(&mut socket, &json!({"op": "join", "room": "Not A Room"}))?;
    if refused["type"] != "error" || !refused["message"].is_string() {
        return Err(format!("WebSocket: a bad room name answered {refused}"));
    }

    let ids = (0..3)
        .map(|i| place(client, &format!(r#"{{"item":"socket {i}","quantity":1}}"#)))
        .collect::<Result<Vec<u64>, String>>()?;
    let mut received: BTreeMap<u64, Vec<Value>> = ids.iter().map(|id| (*id, Vec::new())).collect();
    let deadline = Instant::now() + ARRIVE_WITHIN;
    while received
        .values()
        .any(|events| events.len() < COMPLETED.len())
    {
        if Instant::now() >= deadline {
            return Err(format!(
                "WebSocket: not every event of orders {ids:?} arrived within {ARRIVE_WITHIN:?}: {received:?}"
            ));
        }
        let message = next_json(&mut socket)?;
        if message["type"] != "order" {
            return Err(format!("WebSocket: unexpected message {message}"));
        }
        let event = field(&message, "event")?;
        if let Some(events) = event["order_id"]
            .as_u64()
            .and_then(|id| received.get_mut(&id))
        {
            events.push(event.clone());
        }
    }
    for (id, events) in &received {
        check_sequence(*id, events, &COMPLETED).map_err(|e| format!("WebSocket: {e}"))?;
    }

    // Out of the room, an order's events no longer come: after it is final
    // (and a moment for the last publish), a ping's pong is the next thing.
    let left = command(&mut socket, &json!({"op": "leave", "room": "orders"}))?;
    if left != json!({"type": "left", "room": "orders"}) {
        return Err(format!("WebSocket: leave answered {left}"));
    }
    let unseen = place(client, r#"{"item":"unseen","quantity":1}"#)?;
    finished(client, unseen)?;
    std::thread::sleep(Duration::from_millis(300));
    socket
        .send(Message::text(json!({"op": "ping"}).to_string()))
        .map_err(|e| format!("WebSocket: {e}"))?;
    let next = next_json(&mut socket)?;
    if next != json!({"type": "pong"}) {
        return Err(format!(
            "WebSocket: after leaving room orders, order {unseen} still sent {next}"
        ));
    }
    let _ = socket.close(None);
    while socket.read().is_ok() {}

    match open_socket(addr, "orders", Some("http://evil.example"), None)? {
        Err(403) => {}
        Err(status) => {
            return Err(format!(
                "WebSocket from a foreign origin: {status}, not 403"
            ));
        }
        Ok(_) => return Err("WebSocket from a foreign origin: accepted, not 403".to_owned()),
    }
    let own = format!("http://{addr}");
    let mut same_origin = open_socket(addr, "orders", Some(&own), None)?
        .map_err(|status| format!("WebSocket from the Hub's own origin {own}: {status}"))?;
    let _ = same_origin.close(None);
    eprintln!(
        "showcase: a WebSocket client in room orders got all 4 events of orders {ids:?} in seq order; ping, join, leave answered; a foreign Origin refused with 403"
    );
    Ok(())
}

/// The ws series of `/metrics` the slow-consumer run reads.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WsSeries {
    dropped: f64,
    /// Closes of slow consumers: kicked (`slow_consumer`), or dropped
    /// because even that close could not be written (`write_timeout`).
    slow_closes: f64,
    connections: f64,
}

fn ws_series(client: &Client) -> Result<WsSeries, String> {
    let reply = client.get("/metrics")?;
    reply.expect_status(200)?;
    let text = String::from_utf8_lossy(&reply.body);
    let value = |series: &str| sample(&text, series).unwrap_or(0.0);
    Ok(WsSeries {
        dropped: value(
            r#"cortex_hub_notification_messages_total{transport="ws",outcome="dropped"}"#,
        ),
        slow_closes: value(
            r#"cortex_hub_notification_closes_total{transport="ws",reason="slow_consumer"}"#,
        ) + value(
            r#"cortex_hub_notification_closes_total{transport="ws",reason="write_timeout"}"#,
        ),
        connections: sample(&text, "cortex_hub_websocket_connections")
            .ok_or("/metrics has no cortex_hub_websocket_connections")?,
    })
}

/// How a slow socket ended, read after the flood.
#[derive(Debug, PartialEq, Eq)]
enum SlowEnd {
    /// Close 1008 "slow consumer".
    Closed,
    /// Dropped without a close frame.
    Dropped,
}

/// Reads a slow socket to its end: what the kernel held, then the close.
/// Returns how it ended and how many order messages came first.
fn read_to_end(socket: &mut Ws) -> Result<(SlowEnd, usize), String> {
    let mut orders = 0;
    loop {
        match socket.read() {
            Ok(Message::Text(_)) => orders += 1,
            Ok(Message::Close(Some(frame)))
                if frame.code == CloseCode::Policy && frame.reason.as_str() == "slow consumer" =>
            {
                return Ok((SlowEnd::Closed, orders));
            }
            Ok(Message::Close(frame)) => {
                return Err(format!(
                    "closed with {frame:?}, not 1008 \"slow consumer\", after {orders} messages"
                ));
            }
            Ok(_) => {}
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ),
            ) => return Ok((SlowEnd::Dropped, orders)),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe
                ) =>
            {
                return Ok((SlowEnd::Dropped, orders));
            }
            Err(e) => return Err(format!("{e} after {orders} messages (still open?)")),
        }
    }
}

/// Sockets that never read, flooded with order events.
fn slow_consumers(client: &Client, addr: SocketAddr, pid: u32) -> Result<(), String> {
    let started = Instant::now();
    let before = ws_series(client)?;
    let rss_before = super::hostile::rss_kib(pid)?;
    let mut sockets = (0..SLOW_SOCKETS)
        .map(|_| open(addr, "orders", Some(SLOW_RECEIVE_BUFFER)))
        .collect::<Result<Vec<Ws>, String>>()?;
    let mut placed = 0;
    let mut now = before;
    let place_batch = |count: usize| -> Result<(), String> {
        for _ in 0..count {
            place(client, r#"{"item":"flood","quantity":1}"#)?;
        }
        Ok(())
    };
    while now.dropped - before.dropped < SLOW_SOCKETS as f64 {
        if placed >= SLOW_MAX_ORDERS {
            return Err(format!(
                "{placed} orders ({} events each) and only {} of {SLOW_SOCKETS} sockets that never read were dropped as slow consumers",
                COMPLETED.len(),
                now.dropped - before.dropped
            ));
        }
        place_batch(100)?;
        placed += 100;
        now = ws_series(client)?;
    }
    let overflowed_after = placed;
    // The flood goes on: a Hub that kept queuing for the dropped sockets
    // would now hold these too.
    place_batch(SLOW_EXTRA_ORDERS)?;
    placed += SLOW_EXTRA_ORDERS;
    let rss_after = super::hostile::rss_kib(pid)?;
    let grown = rss_after.saturating_sub(rss_before);
    if grown > SLOW_RSS_BUDGET_KIB {
        return Err(format!(
            "{SLOW_SOCKETS} slow consumers and {placed} orders grew the Hub's RSS by {grown} KiB ({rss_before} -> {rss_after}), more than {SLOW_RSS_BUDGET_KIB} KiB"
        ));
    }

    let (mut closed, mut dropped, mut most) = (0, 0, 0);
    for (index, socket) in sockets.iter_mut().enumerate() {
        let (end, orders) =
            read_to_end(socket).map_err(|e| format!("slow consumer {index}: {e}"))?;
        if orders >= placed * COMPLETED.len() {
            return Err(format!(
                "slow consumer {index} got all {orders} messages: it was never cut off"
            ));
        }
        most = most.max(orders);
        match end {
            SlowEnd::Closed => closed += 1,
            SlowEnd::Dropped => dropped += 1,
        }
    }
    drop(sockets);
    let deadline = Instant::now() + ARRIVE_WITHIN;
    let after = loop {
        let after = ws_series(client)?;
        if after.slow_closes - before.slow_closes >= SLOW_SOCKETS as f64 && after.connections == 0.0
        {
            break after;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "/metrics after {SLOW_SOCKETS} slow consumers ended: {before:?} -> {after:?}; expected {SLOW_SOCKETS} more slow_consumer/write_timeout closes and no socket open"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if after.dropped - before.dropped != SLOW_SOCKETS as f64
        || after.slow_closes - before.slow_closes != SLOW_SOCKETS as f64
    {
        return Err(format!(
            "/metrics: {before:?} -> {after:?}; each of {SLOW_SOCKETS} slow consumers should be one dropped message and one close"
        ));
    }
    if started.elapsed() > SLOW_WITHIN {
        return Err(format!(
            "the slow-consumer run took {:?}, more than {SLOW_WITHIN:?}",
            started.elapsed()
        ));
    }
    eprintln!(
        "showcase: {SLOW_SOCKETS} WebSockets that never read overflowed within {overflowed_after} orders (then {SLOW_EXTRA_ORDERS} more): each dropped once in /metrics and ended ({closed} close 1008 \"slow consumer\", {dropped} dropped after the write timeout; at most {most} messages read back); RSS +{grown} KiB (budget {SLOW_RSS_BUDGET_KIB}) in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What the browser check reads from the page's DOM.
const DOM_VALUES: &str = r##"(() => {
  // Null until the page's DOM is there (Page.navigate does not wait).
  const text = (id) => document.getElementById(id)?.textContent ?? null;
  return {
    overall: text("overall"),
    total: text("http-total"),
    transport: text("transport"),
    completed: text("orders-completed"),
    events: Array.from(document.querySelectorAll("#events li"), (li) => li.textContent),
  };
})()"##;

/// Headless Chromium on the status page.
fn browser(client: &Client, out_dir: &Path) -> Result<(), String> {
    ensure_packages(&[("chromium", "chromium")])?;
    let mut browser = Browser::launch(
        &out_dir.join("chromium-status-profile"),
        &out_dir.join("chromium-status.log"),
        WINDOW,
    )?;
    let url = client.url("/");
    browser.navigate(&url)?;
    let live = wait_for(&mut browser, "the live values", |dom| {
        matches!(dom["overall"].as_str(), Some("UP" | "DEGRADED"))
            && dom["total"]
                .as_str()
                .is_some_and(|t| t.parse::<u64>().is_ok())
            && dom["transport"] == "WebSocket"
    })?;
    let completed = |dom: &Value| {
        dom["completed"]
            .as_str()
            .and_then(|c| c.parse::<u64>().ok())
    };
    let before = completed(&live)
        .ok_or_else(|| format!("the page's completed orders are not a number: {live}"))?;

    let ids = (0..3)
        .map(|i| place(client, &format!(r#"{{"item":"browser {i}","quantity":1}}"#)))
        .collect::<Result<Vec<u64>, String>>()?;
    let shown = wait_for(&mut browser, "the new orders", |dom| {
        let events: Vec<&str> = dom["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        completed(dom).is_some_and(|c| c >= before + 3)
            && ids.iter().all(|id| {
                let done = format!("order {id} #4 completed");
                events.iter().any(|e| e.contains(&done))
            })
    })?;
    // One more status event, so the screenshot shows the latest figures.
    std::thread::sleep(Duration::from_millis(1200));
    let png = browser.screenshot()?;
    // Chromium asks for /favicon.ico by itself, whatever the page says, and
    // logs the Hub's 404 for it as a network error: not the page's doing
    // (and the CSP would refuse the usual `data:` icon).
    let complaints: Vec<String> = browser
        .complaints()?
        .into_iter()
        .filter(|c| !(c.contains("404") && c.contains("/favicon.ico")))
        .collect();
    drop(browser);
    if !complaints.is_empty() {
        return Err(format!(
            "the status page wrote to the console or was refused something by its CSP:\n  {}",
            complaints.join("\n  ")
        ));
    }
    if png_size(&png)? != WINDOW {
        return Err(format!(
            "the screenshot is {:?}, not {WINDOW:?}",
            png_size(&png)?
        ));
    }
    let shot = out_dir.join("status-page.png");
    std::fs::write(&shot, &png).map_err(|e| format!("{}: {e}", shot.display()))?;
    let docs = root().join("docs").join("status-page.png");
    std::fs::write(&docs, &png).map_err(|e| format!("{}: {e}", docs.display()))?;
    eprintln!(
        "showcase: Chromium shows the status page live (health {}, {} requests, events over {}), orders {ids:?} in its counts ({before} -> {}) and event list, no console message or CSP violation; screenshot in {}",
        shown["overall"].as_str().unwrap_or("?"),
        shown["total"].as_str().unwrap_or("?"),
        shown["transport"].as_str().unwrap_or("?"),
        shown["completed"].as_str().unwrap_or("?"),
        shot.display()
    );
    Ok(())
}

/// Reads [`DOM_VALUES`] until `ready` holds, for [`ARRIVE_WITHIN`].
fn wait_for(
    browser: &mut Browser,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Result<Value, String> {
    let deadline = Instant::now() + ARRIVE_WITHIN;
    loop {
        let dom = browser.evaluate(DOM_VALUES)?;
        if ready(&dom) {
            return Ok(dom);
        }
        if Instant::now() >= deadline {
            let complaints = browser.complaints().unwrap_or_default();
            return Err(format!(
                "the status page did not show {what} within {ARRIVE_WITHIN:?}: {dom}\n  console: {complaints:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The trace ids the log check sends (any 32 hex digits, not all zero).
const PAID_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const DECLINED_TRACE: &str = "5b8efff798038103d269b633813fc60c";

/// A Hub logging JSON at `info` to `target/conformance/hub-json.log`:
/// [`logs_join_traces`] and [`readable_at_once`], both run whatever the
/// other finds, their failures reported together.
pub(crate) fn check_own_hub(out_dir: &Path) -> Result<(), String> {
    let log_path = out_dir.join("hub-json.log");
    let hub = HubProcess::start_logged(
        &[
            ("RUST_LOG", "info"),
            ("CORTEX_LOG_FORMAT", "json"),
            ("CORTEX_DRAIN_DELAY", "500ms"),
        ],
        &log_path,
    )?;
    let client = Client::new(hub.addr());
    let failures: Vec<String> = [
        logs_join_traces(&client, &log_path),
        readable_at_once(&client),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    drop(client);
    hub.stop()?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// How many orders the read-your-write probe places.
const READ_PROBES: usize = 50;

/// `POST /api/orders` answers 202 with the order's `location`: a client
/// that follows it at once must find the order, not a 404.
fn readable_at_once(client: &Client) -> Result<(), String> {
    let mut missing = Vec::new();
    for _ in 0..READ_PROBES {
        let reply = client.post_json("/api/orders", r#"{"item":"read at once","quantity":1}"#)?;
        reply.expect_status(202)?;
        let location = str_field(&reply.json()?, "location")?.to_owned();
        let read = client.get(&location)?;
        match read.status.as_u16() {
            200 => {}
            404 => missing.push(location),
            _ => return Err(format!("GET {location} right after POST's 202: {read}")),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "{} of {READ_PROBES} orders were not found (404) at the location POST /api/orders had just answered 202 with ({}): the order's `created` event is journaled by OrderActor::new, which cortex-actor calls in the actor's own task, after the handler may already have answered",
            missing.len(),
            missing.join(", ")
        ));
    }
    eprintln!(
        "showcase: {READ_PROBES} orders each readable at their location the moment POST answered 202"
    );
    Ok(())
}

fn logs_join_traces(client: &Client, log_path: &Path) -> Result<(), String> {
    let place_traced = |body: &str, trace_id: &str| -> Result<u64, String> {
        let traceparent = format!("00-{trace_id}-b7ad6b7169203331-01");
        let reply = client.send(
            "POST",
            "/api/orders",
            &[
                ("content-type", "application/json"),
                ("traceparent", &traceparent),
            ],
            Some(body.as_bytes()),
        )?;
        reply.expect_status(202)?;
        u64_field(&reply.json()?, "id")
    };
    let paid = place_traced(r#"{"item":"traced","quantity":1}"#, PAID_TRACE)?;
    let declined = place_traced(r#"{"item":"x","fail_payment":true}"#, DECLINED_TRACE)?;
    for (id, trace_id, types) in [
        (paid, PAID_TRACE, &COMPLETED),
        (declined, DECLINED_TRACE, &DECLINED),
    ] {
        finished(client, id)?;
        let log = order_log(client, id, types)?;
        for event in array_field(&log, "events")? {
            if event.get("trace_id").and_then(Value::as_str) != Some(trace_id) {
                return Err(format!(
                    "order {id} placed with trace {trace_id}: an event without that trace_id: {event}"
                ));
            }
        }
    }

    // Lines are written as they happen; give the last ones a moment.
    let deadline = Instant::now() + ARRIVE_WITHIN;
    loop {
        let text = std::fs::read_to_string(log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let mut lines = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let parsed: Value = serde_json::from_str(line).map_err(|e| {
                format!(
                    "a Hub log line is not JSON ({e}) in {}: {line}",
                    log_path.display()
                )
            })?;
            for key in ["timestamp", "level", "target"] {
                str_field(&parsed, key).map_err(|e| format!("a Hub log line: {e}"))?;
            }
            lines.push(parsed);
        }
        let access = lines.iter().find(|l| {
            l["target"] == "cortex_hub::access"
                && l["method"] == "POST"
                && l["route"] == "/api/orders"
                && l["trace_id"] == PAID_TRACE
        });
        let failed = lines
            .iter()
            .find(|l| l["message"] == "order failed" && l["order"] == declined);
        match (access, failed) {
            (Some(access), Some(failed)) => {
                if access["status"] != 202 || !access["span_id"].is_string() {
                    return Err(format!("the access-log line of order {paid}: {access}"));
                }
                if failed["trace_id"] != DECLINED_TRACE {
                    return Err(format!(
                        "order {declined} was placed with trace {DECLINED_TRACE} and its events carry it, but its actor's `order failed` log line does not (trace_id {}): the actor handler does not run in the request's OpenTelemetry context, so log lines written inside actors do not join the trace. The line: {failed}",
                        failed["trace_id"]
                    ));
                }
                eprintln!(
                    "showcase: {} JSON log lines; the access log and order {paid}'s events carry trace {PAID_TRACE}; the actor's `order failed` line and order {declined}'s events carry trace {DECLINED_TRACE}",
                    lines.len()
                );
                return Ok(());
            }
            _ if Instant::now() >= deadline => {
                return Err(format!(
                    "{} after {ARRIVE_WITHIN:?}: access-log line of POST /api/orders with trace_id {PAID_TRACE}: {}; `order failed` line of order {declined}: {}",
                    log_path.display(),
                    access.map_or_else(|| "missing".to_owned(), Value::to_string),
                    failed.map_or_else(|| "missing".to_owned(), Value::to_string),
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
