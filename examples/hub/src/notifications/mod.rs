//! `/api/notifications`: order events pushed to clients in rooms, over a
//! WebSocket or server-sent events.
//!
//! A client joins rooms: `orders` (every order's events), an order id
//! (`42`: that order's events), `alerts` (failed orders and circuit
//! breaker transitions). [`Notifier`] consumes the actor system's event
//! bus (`order.*` and `alert.*`) and fans each event out to the
//! connections in its rooms, once per connection however many of its
//! rooms match. Messages are JSON text:
//!
//! ```text
//! {"type":"order","event":{"order_id":42,"seq":1,"type":"created",...}}
//! {"type":"alert","alert":{"kind":"breaker","name":"payments","from":"closed","to":"open"}}
//! ```
//!
//! - `GET /api/notifications/ws?rooms=orders,42`: a WebSocket. The client
//!   may also send `{"op":"join","room":"7"}`, `{"op":"leave","room":"7"}`
//!   and `{"op":"ping"}`; each is answered (`joined`, `left`, `pong`,
//!   or `error` with a message).
//! - `GET /api/notifications/sse?rooms=orders,42`: the same messages as
//!   server-sent events (`event: order` / `event: alert`), for clients
//!   that cannot speak WebSocket; rooms are fixed at connect.
//!
//! Hostile and slow clients are bounded ([`NotificationsConfig`]):
//!
//! - at most `max_connections` connections (503 problem+json past it) and
//!   `max_rooms` rooms per connection;
//! - a browser's `Origin` must be the Hub's own host (or listed in
//!   `allowed_origins`), else 403 problem+json — a page elsewhere cannot
//!   ride a visitor's connection;
//! - each connection has a bounded send queue (`queue` messages): a client
//!   that does not keep up is closed (WebSocket close code 1008, reason
//!   `slow consumer`) rather than let the Hub buffer for it; a WebSocket
//!   write that takes longer than `write_timeout` drops the socket;
//! - messages from a client go through the keyed rate limiter
//!   `notifications` (per connection, see `/resilience`): over the limit a
//!   message is refused with an `error` reply, and a client still sending
//!   after `max_refusals` refusals is closed (1008, `rate limited`);
//!   frames are at most `max_message_bytes`;
//! - the server pings every `ping_interval`; a WebSocket that sends
//!   nothing (not even a pong) for `idle_timeout` is closed (1001,
//!   `idle`); SSE streams carry a keep-alive comment instead;
//! - on shutdown ([`Streams::close`](crate::Streams::close)) every
//!   connection is closed (1001, `server shutting down`).
//!
//! Series: `cortex_hub_websocket_connections`, `cortex_hub_sse_connections`,
//! `cortex_hub_notification_messages_total{transport,outcome}` (`sent`,
//! `dropped`), `cortex_hub_notification_closes_total{transport,reason}` and
//! `cortex_hub_websocket_received_total{outcome}` (`accepted`,
//! `rate_limited`, `invalid`).

pub(crate) mod sse;
pub(crate) mod ws;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cortex::actor::EventBus;
use cortex::metrics::{CounterFamily, Gauge, MetricsError, MetricsRegistry};
use cortex::resilience::{
    CircuitBreaker, CircuitBreakerEvent, CircuitState, KeyedRateLimiter, PolicyRegistry,
    RateLimiter, RegistryError,
};
use problem_details::{ProblemDetails, ProblemType};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{Notify, mpsc};

use crate::Streams;
use crate::orders::{OrderEvent, OrderEventKind};
use crate::routes::IndexedRouter;

/// The rate limiter of client messages, in `/resilience`.
pub const NOTIFICATIONS_LIMITER: &str = "notifications";

/// The bounds of the notification service. The defaults are the Hub's.
#[derive(Debug, Clone)]
pub struct NotificationsConfig {
    /// Connections at once, WebSocket and SSE together (default 10 000).
    pub max_connections: usize,
    /// Rooms one connection may be in (default 32).
    pub max_rooms: usize,
    /// Messages queued for one connection before it counts as a slow
    /// consumer and is closed (default 64).
    pub queue: usize,
    /// How long one WebSocket write may take before the socket is dropped
    /// (default 5 s).
    pub write_timeout: Duration,
    /// How often the server pings (default 15 s).
    pub ping_interval: Duration,
    /// How long a WebSocket may stay silent, pongs included, before it is
    /// closed (default 45 s).
    pub idle_timeout: Duration,
    /// Messages a client may send per second (default 10), ...
    pub messages_per_second: u32,
    /// ... in bursts of up to this many (default 20).
    pub burst: u32,
    /// Refused messages after which a client is closed (default 20).
    pub max_refusals: u32,
    /// The largest frame a client may send, in bytes (default 4 KiB).
    pub max_message_bytes: usize,
    /// Origins allowed besides the Hub's own host, e.g.
    /// `https://status.example.com` (default none).
    pub allowed_origins: Vec<String>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_rooms: 32,
            queue: 64,
            write_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            messages_per_second: 10,
            burst: 20,
            max_refusals: 20,
            max_message_bytes: 4 * 1024,
            allowed_origins: Vec::new(),
        }
    }
}

/// How a connection is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    WebSocket,
    Sse,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Self::WebSocket => "ws",
            Self::Sse => "sse",
        }
    }
}

/// Why a connection ended: the `reason` label and the close frame's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The client closed it, or went away.
    Client,
    /// Its send queue was full.
    SlowConsumer,
    /// A write took longer than the write timeout.
    WriteTimeout,
    /// It sent nothing for the idle timeout.
    Idle,
    /// It kept sending past the rate limit.
    RateLimited,
    /// It sent a frame over the size limit or broke the protocol.
    ProtocolError,
    /// The Hub is shutting down.
    Shutdown,
}

impl CloseReason {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::SlowConsumer => "slow_consumer",
            Self::WriteTimeout => "write_timeout",
            Self::Idle => "idle",
            Self::RateLimited => "rate_limited",
            Self::ProtocolError => "protocol_error",
            Self::Shutdown => "shutdown",
        }
    }

    /// What the close frame (or the SSE `close` event) says.
    pub(crate) fn words(self) -> &'static str {
        match self {
            Self::Client => "bye",
            Self::SlowConsumer => "slow consumer",
            Self::WriteTimeout => "write timeout",
            Self::Idle => "idle",
            Self::RateLimited => "rate limited",
            Self::ProtocolError => "protocol error",
            Self::Shutdown => "server shutting down",
        }
    }
}

/// A circuit breaker's state change, published on the bus as
/// `alert.breaker`.
#[derive(Debug, Clone, Serialize)]
pub struct BreakerAlert {
    /// Always `breaker`.
    pub kind: &'static str,
    /// The breaker.
    pub name: String,
    /// The state left (`closed`, `open`, `half_open`, …).
    pub from: String,
    /// The state entered.
    pub to: String,
}

/// The notification service: connections, their rooms, and the bus
/// consumer that feeds them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: NotificationsConfig,
    rooms: Mutex<Rooms>,
    next_id: AtomicU64,
    limiter: KeyedRateLimiter<u64>,
    streams: Streams,
    metrics: NotificationMetrics,
}

#[derive(Debug, Default)]
struct Rooms {
    members: HashMap<String, HashSet<u64>>,
    connections: HashMap<u64, Connection>,
}

#[derive(Debug)]
struct Connection {
    rooms: HashSet<String>,
    sender: mpsc::Sender<Outgoing>,
    kicked: Arc<Kick>,
    transport: Transport,
}

/// A queued message: its kind (`order`, `alert`: the SSE event name) and
/// its JSON text, shared by every connection it goes to.
pub(crate) type Outgoing = (&'static str, Arc<str>);

/// How the fan-out tells a connection's task it must close.
#[derive(Debug, Default)]
pub(crate) struct Kick {
    reason: Mutex<Option<CloseReason>>,
    notify: Notify,
}

impl Kick {
    fn kick(&self, reason: CloseReason) {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(reason);
        }
        drop(slot);
        self.notify.notify_one();
    }

    /// Resolves with the reason once the connection is kicked.
    pub(crate) async fn kicked(&self) -> CloseReason {
        loop {
            let notified = self.notify.notified();
            if let Some(reason) = *self.reason.lock().unwrap_or_else(PoisonError::into_inner) {
                return reason;
            }
            notified.await;
        }
    }
}

#[derive(Debug, Clone)]
struct NotificationMetrics {
    websocket_connections: Gauge,
    sse_connections: Gauge,
    messages: CounterFamily<2>,
    closes: CounterFamily<2>,
    received: CounterFamily<1>,
}

/// A connection's place in the notifier: its id, its queue, its kick.
/// Dropping it leaves every room and counts the connection closed.
#[derive(Debug)]
pub(crate) struct Membership {
    id: u64,
    transport: Transport,
    pub(crate) receiver: mpsc::Receiver<Outgoing>,
    pub(crate) kicked: Arc<Kick>,
    notifier: Notifier,
    close_reason: CloseReason,
}

/// Why a connection was refused before it started.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Past `max_connections`, or shutting down.
    Unavailable(String),
    /// A foreign `Origin`.
    Forbidden(String),
    /// A bad room list.
    BadRooms(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, detail) = match self {
            Self::Unavailable(detail) => (StatusCode::SERVICE_UNAVAILABLE, detail),
            Self::Forbidden(detail) => (StatusCode::FORBIDDEN, detail),
            Self::BadRooms(detail) => (StatusCode::UNPROCESSABLE_ENTITY, detail),
        };
        let retry = status == StatusCode::SERVICE_UNAVAILABLE;
        let mut response = ProblemDetails::from_status_code(status)
            .with_type(ProblemType::default())
            .with_detail(detail)
            .into_response();
        if retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

impl Notifier {
    /// Registers the series and the `notifications` limiter, and consumes
    /// `order.*` and `alert.*` from `bus`.
    pub fn start(
        config: NotificationsConfig,
        registry: &MetricsRegistry,
        policies: &PolicyRegistry,
        bus: &EventBus,
        streams: Streams,
    ) -> Result<Self, NotifierError> {
        let limiter = RateLimiter::builder(NOTIFICATIONS_LIMITER)
            .permits(config.messages_per_second.max(1), Duration::from_secs(1))
            .burst(config.burst.max(1))
            .max_keys(config.max_connections.max(1))
            .build_keyed::<u64>()
            .map_err(|error| NotifierError::Resilience(error.into()))?;
        policies.register_keyed_rate_limiter(limiter.clone())?;
        let metrics = NotificationMetrics {
            websocket_connections: registry.gauge(
                "cortex_hub_websocket_connections",
                "Open notification WebSockets.",
            )?,
            sse_connections: registry.gauge(
                "cortex_hub_sse_connections",
                "Open notification server-sent-event streams.",
            )?,
            messages: registry.counter_family(
                "cortex_hub_notification_messages_total",
                "Notification messages by transport: sent to a client, or dropped because its queue was full.",
                ["transport", "outcome"],
            )?,
            closes: registry.counter_family(
                "cortex_hub_notification_closes_total",
                "Notification connections closed, by transport and reason.",
                ["transport", "reason"],
            )?,
            received: registry.counter_family(
                "cortex_hub_websocket_received_total",
                "Messages received from WebSocket clients, by outcome.",
                ["outcome"],
            )?,
        };
        for transport in ["ws", "sse"] {
            for outcome in ["sent", "dropped"] {
                let _ = metrics.messages.with_labels([transport, outcome]);
            }
        }
        let notifier = Self {
            inner: Arc::new(Inner {
                config,
                rooms: Mutex::default(),
                next_id: AtomicU64::new(1),
                limiter,
                streams,
                metrics,
            }),
        };
        let orders = notifier.clone();
        bus.subscribe_fn::<OrderEvent, _>("order.*", move |_, event| orders.order_event(event))
            .map_err(|error| NotifierError::Bus(error.to_string()))?;
        let alerts = notifier.clone();
        bus.subscribe_fn::<BreakerAlert, _>("alert.*", move |_, alert| {
            alerts.publish(
                &["alerts"],
                "alert",
                &json!({ "type": "alert", "alert": alert }),
            );
        })
        .map_err(|error| NotifierError::Bus(error.to_string()))?;
        Ok(notifier)
    }

    /// Publishes `breaker`'s state changes on `bus` as `alert.breaker`.
    pub fn watch_breaker(breaker: &CircuitBreaker, bus: &EventBus) {
        let bus = bus.clone();
        let name = breaker.name().to_owned();
        breaker.on_event(move |event| {
            if let CircuitBreakerEvent::StateTransition { from, to } = event {
                let alert = BreakerAlert {
                    kind: "breaker",
                    name: name.clone(),
                    from: state_name(*from),
                    to: state_name(*to),
                };
                // A callback cannot wait; the Hub's subscribers never
                // make a publish wait anyway.
                let _ = bus.try_publish("alert.breaker", alert);
            }
        });
    }

    /// The routes: `/api/notifications/ws` and `/api/notifications/sse`.
    pub(crate) fn routes(&self) -> IndexedRouter {
        IndexedRouter::new()
            .route(
                "/api/notifications/ws",
                "?rooms=orders,42,alerts: a WebSocket of order events and alerts; send {\"op\":\"join\"|\"leave\",\"room\"} or {\"op\":\"ping\"}",
                get(ws::upgrade),
            )
            .route(
                "/api/notifications/sse",
                "?rooms=orders,42,alerts: the same messages as server-sent events",
                get(sse::stream),
            )
            .map(|router: axum::Router<Notifier>| router.with_state(self.clone()))
    }

    /// Open connections, WebSocket and SSE.
    pub fn connections(&self) -> usize {
        self.lock().connections.len()
    }

    /// Counts for the status page.
    pub fn stats(&self) -> serde_json::Value {
        let metrics = &self.inner.metrics;
        let count = |transport, outcome| metrics.messages.with_labels([transport, outcome]).get();
        let rooms = self.lock();
        json!({
            "websocket_connections": metrics.websocket_connections.get(),
            "sse_connections": metrics.sse_connections.get(),
            "rooms": rooms.members.len(),
            "sent": count("ws", "sent") + count("sse", "sent"),
            "dropped": count("ws", "dropped") + count("sse", "dropped"),
        })
    }

    pub(crate) fn config(&self) -> &NotificationsConfig {
        &self.inner.config
    }

    pub(crate) fn streams(&self) -> &Streams {
        &self.inner.streams
    }

    /// Checks `headers`' `Origin` and `rooms`, takes a connection slot and
    /// joins the rooms.
    pub(crate) fn connect(
        &self,
        transport: Transport,
        headers: &HeaderMap,
        rooms: Option<&str>,
    ) -> Result<Membership, Refusal> {
        self.check_origin(headers)?;
        let rooms = parse_rooms(rooms, self.inner.config.max_rooms)?;
        if self.inner.streams.is_closed() {
            return Err(Refusal::Unavailable("the Hub is shutting down".to_owned()));
        }
        let (sender, receiver) = mpsc::channel(self.inner.config.queue.max(1));
        let kicked = Arc::new(Kick::default());
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut state = self.lock();
            if state.connections.len() >= self.inner.config.max_connections {
                return Err(Refusal::Unavailable(format!(
                    "{} notification connections are open, the most the Hub allows",
                    self.inner.config.max_connections
                )));
            }
            for room in &rooms {
                state.members.entry(room.clone()).or_default().insert(id);
            }
            state.connections.insert(
                id,
                Connection {
                    rooms: rooms.into_iter().collect(),
                    sender,
                    kicked: Arc::clone(&kicked),
                    transport,
                },
            );
        }
        self.gauge(transport).inc();
        Ok(Membership {
            id,
            transport,
            receiver,
            kicked,
            notifier: self.clone(),
            close_reason: CloseReason::Client,
        })
    }

    fn gauge(&self, transport: Transport) -> &Gauge {
        match transport {
            Transport::WebSocket => &self.inner.metrics.websocket_connections,
            Transport::Sse => &self.inner.metrics.sse_connections,
        }
    }

    /// A browser's `Origin` must name this host (or an allowed origin);
    /// clients that send none (curl, servers) are not browsers riding a
    /// visitor's session and pass.
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or_default();
        if self
            .inner
            .config
            .allowed_origins
            .iter()
            .any(|allowed| allowed == origin)
        {
            return Ok(());
        }
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok());
        match (origin_host, host) {
            (Some(origin_host), Some(host)) if origin_host.eq_ignore_ascii_case(host) => Ok(()),
            _ => Err(Refusal::Forbidden(format!(
                "origin {origin:?} may not open notification connections to this host"
            ))),
        }
    }

    fn order_event(&self, event: &OrderEvent) {
        let id = event.order_id.to_string();
        let message = json!({ "type": "order", "event": event });
        if matches!(event.kind, OrderEventKind::Failed { .. }) {
            self.publish(&["orders", &id, "alerts"], "order", &message);
        } else {
            self.publish(&["orders", &id], "order", &message);
        }
    }

    /// Queues `message` once for every connection in any of `rooms`; a
    /// connection whose queue is full is kicked as a slow consumer.
    fn publish(&self, rooms: &[&str], kind: &'static str, message: &serde_json::Value) {
        let mut state = self.lock();
        let mut targets: Vec<u64> = Vec::new();
        for room in rooms {
            if let Some(members) = state.members.get(*room) {
                targets.extend(members.iter().copied());
            }
        }
        if targets.is_empty() {
            return;
        }
        targets.sort_unstable();
        targets.dedup();
        let text: Arc<str> = message.to_string().into();
        let mut slow = Vec::new();
        for id in targets {
            let Some(connection) = state.connections.get(&id) else {
                continue;
            };
            if connection
                .sender
                .try_send((kind, Arc::clone(&text)))
                .is_err()
            {
                self.inner
                    .metrics
                    .messages
                    .with_labels([connection.transport.label(), "dropped"])
                    .inc();
                connection.kicked.kick(CloseReason::SlowConsumer);
                slow.push(id);
            }
        }
        // A slow consumer gets nothing more: it leaves its rooms now, so
        // its queue stops growing before its task gets to close it.
        for id in slow {
            leave_all(&mut state, id);
        }
    }

    /// Joins `room` (false past `max_rooms`).
    pub(crate) fn join(&self, id: u64, room: &str) -> bool {
        let mut state = self.lock();
        let max_rooms = self.inner.config.max_rooms;
        let Some(connection) = state.connections.get_mut(&id) else {
            return false;
        };
        if !connection.rooms.contains(room) && connection.rooms.len() >= max_rooms {
            return false;
        }
        connection.rooms.insert(room.to_owned());
        state.members.entry(room.to_owned()).or_default().insert(id);
        true
    }

    /// Leaves `room`.
    pub(crate) fn leave(&self, id: u64, room: &str) {
        let mut state = self.lock();
        if let Some(connection) = state.connections.get_mut(&id) {
            connection.rooms.remove(room);
        }
        remove_member(&mut state, room, id);
    }

    pub(crate) fn limiter(&self) -> &KeyedRateLimiter<u64> {
        &self.inner.limiter
    }

    pub(crate) fn count_received(&self, outcome: &'static str) {
        self.inner.metrics.received.with_labels([outcome]).inc();
    }

    pub(crate) fn count_sent(&self, transport: Transport) {
        self.inner
            .metrics
            .messages
            .with_labels([transport.label(), "sent"])
            .inc();
    }

    fn lock(&self) -> MutexGuard<'_, Rooms> {
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn remove_member(state: &mut Rooms, room: &str, id: u64) {
    if let Some(members) = state.members.get_mut(room) {
        members.remove(&id);
        if members.is_empty() {
            state.members.remove(room);
        }
    }
}

fn leave_all(state: &mut Rooms, id: u64) {
    let rooms = state
        .connections
        .get_mut(&id)
        .map(|connection| std::mem::take(&mut connection.rooms))
        .unwrap_or_default();
    for room in rooms {
        remove_member(state, &room, id);
    }
}

impl Membership {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Records why the connection ends (counted when it drops).
    pub(crate) fn set_close_reason(&mut self, reason: CloseReason) {
        self.close_reason = reason;
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let inner = &self.notifier.inner;
        {
            let mut state = self.notifier.lock();
            leave_all(&mut state, self.id);
            state.connections.remove(&self.id);
        }
        self.notifier.gauge(self.transport).dec();
        inner
            .metrics
            .closes
            .with_labels([self.transport.label(), self.close_reason.label()])
            .inc();
    }
}

/// A room name: `orders`, `alerts`, or an order id; at most 64 of
/// `[a-z0-9_-]`.
pub(crate) fn valid_room(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= 64
        && room
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn parse_rooms(rooms: Option<&str>, max_rooms: usize) -> Result<Vec<String>, Refusal> {
    let Some(rooms) = rooms.filter(|rooms| !rooms.is_empty()) else {
        return Ok(Vec::new());
    };
    let rooms: Vec<String> = rooms.split(',').map(str::to_owned).collect();
    if let Some(bad) = rooms.iter().find(|room| !valid_room(room)) {
        return Err(Refusal::BadRooms(format!(
            "room {bad:?} is not a room name: 1 to 64 of a-z, 0-9, '_' and '-'"
        )));
    }
    if rooms.len() > max_rooms {
        return Err(Refusal::BadRooms(format!(
            "{} rooms asked, at most {max_rooms} per connection",
            rooms.len()
        )));
    }
    Ok(rooms)
}

/// The state's name as `/resilience` and the metrics spell it
/// (`half_open`): its serde form, not a second spelling.
fn state_name(state: CircuitState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Why the notification service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifierError {
    /// A series clashes with a registered one.
    #[error("registering the notification series: {0}")]
    Metrics(#[from] MetricsError),
    /// The `notifications` limiter is invalid or already registered.
    #[error("registering the notifications rate limiter: {0}")]
    Resilience(#[from] RegistryError),
    /// A bus subscription was refused.
    #[error("subscribing to the event bus: {0}")]
    Bus(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_lists_are_checked() {
        assert_eq!(
            parse_rooms(Some("orders,42,alerts"), 32).unwrap(),
            ["orders", "42", "alerts"]
        );
        assert!(parse_rooms(Some("Orders"), 32).is_err());
        assert!(parse_rooms(Some("a,,b"), 32).is_err());
        assert!(parse_rooms(Some("a,b,c"), 2).is_err());
        assert!(parse_rooms(None, 2).unwrap().is_empty());
    }

    fn created(order_id: u64) -> OrderEvent {
        OrderEvent {
            order_id,
            seq: 1,
            at_ms: 0,
            trace_id: None,
            kind: OrderEventKind::Created {
                item: "x".into(),
                quantity: 1,
            },
        }
    }

    /// A consumer that reads nothing fills its queue, is kicked as a slow
    /// consumer and leaves its rooms at once: exactly one message dropped,
    /// never more than `queue` held for it.
    #[tokio::test]
    async fn a_slow_consumer_is_kicked_at_a_full_queue_and_gets_nothing_more() {
        let registry = MetricsRegistry::new();
        let system = cortex::actor::ActorSystem::new("notify-test");
        let notifier = Notifier::start(
            NotificationsConfig {
                queue: 4,
                ..NotificationsConfig::default()
            },
            &registry,
            &PolicyRegistry::new(),
            system.events(),
            Streams::default(),
        )
        .unwrap();
        let mut slow = notifier
            .connect(Transport::WebSocket, &HeaderMap::new(), Some("orders"))
            .unwrap();
        let mut reader = notifier
            .connect(Transport::Sse, &HeaderMap::new(), Some("orders,7"))
            .unwrap();
        for id in 1..=20 {
            let _ = system.events().try_publish("order.created", created(id));
            // The reader keeps up; the slow one never reads.
            assert_eq!(reader.receiver.try_recv().unwrap().0, "order");
        }
        assert_eq!(slow.kicked.kicked().await, CloseReason::SlowConsumer);
        assert_eq!(slow.receiver.len(), 4);
        let dropped = |transport| {
            notifier
                .inner
                .metrics
                .messages
                .with_labels([transport, "dropped"])
                .get()
        };
        assert_eq!((dropped("ws"), dropped("sse")), (1, 0));
        // Order 7 is in two of the reader's rooms: it gets it once.
        let _ = system.events().try_publish("order.created", created(7));
        assert_eq!(reader.receiver.len(), 1);
        assert_eq!(notifier.connections(), 2);
        slow.set_close_reason(CloseReason::SlowConsumer);
        drop(slow);
        assert_eq!(notifier.connections(), 1);
        assert!(registry.encode(cortex::metrics::Format::Prometheus).contains(
            "cortex_hub_notification_closes_total{transport=\"ws\",reason=\"slow_consumer\"} 1"
        ));
        assert_eq!(notifier.inner.metrics.websocket_connections.get(), 0);
    }

    #[test]
    fn breaker_states_read_as_snake_case() {
        assert_eq!(state_name(CircuitState::HalfOpen), "half_open");
        assert_eq!(state_name(CircuitState::Open), "open");
    }
}
