//! The showcase services over real sockets: event-sourced orders, the
//! analytics consumer, notifications over a real WebSocket client and
//! server-sent events (rooms, order, origin check, rate limit, idle and
//! shutdown closes), the status page and its feed, the request timeout.

use std::net::SocketAddr;
use std::time::Duration;

use cortex_hub::notifications::NotificationsConfig;
use cortex_hub::orders::PAYMENTS;
use cortex_hub::{Hub, HubConfig};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Client, StatusCode, header};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long any single wait in these tests may take before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

struct Served {
    hub: Hub,
    addr: SocketAddr,
    client: Client,
}

impl Served {
    async fn start(config: HubConfig) -> Self {
        let hub = Hub::new(config).expect("the hub starts");
        let router = hub.router().expect("the hub builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            hub,
            addr,
            client: Client::new(),
        }
    }

    async fn hub() -> Self {
        Self::start(HubConfig::default()).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn place(&self, body: Value) -> u64 {
        let response = self
            .client
            .post(self.url("/api/orders"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        response.json::<Value>().await.unwrap()["id"]
            .as_u64()
            .unwrap()
    }

    /// Polls order `id` until it is final.
    async fn finished(&self, id: u64) -> Value {
        tokio::time::timeout(PATIENCE, async {
            loop {
                let order = self.get_json(&format!("/api/orders/{id}")).await;
                if order["state"] == "completed" || order["state"] == "failed" {
                    return order;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the order finishes")
    }

    async fn socket(&self, query: &str) -> Socket {
        self.socket_with(query, None)
            .await
            .expect("the socket opens")
    }

    async fn socket_with(&self, query: &str, origin: Option<&str>) -> Result<Socket, WsError> {
        let mut request = format!("ws://{}/api/notifications/ws{query}", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
        let welcome = next_json(&mut socket).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        Ok(socket)
    }
}

/// The next text message as JSON (pings are answered by the client).
async fn next_json(socket: &mut Socket) -> Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    })
    .await
    .expect("a message arrives")
}

/// The close frame the server ends with: its code and reason.
async fn close_frame(socket: &mut Socket) -> (CloseCode, String) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frame.code, frame.reason.to_string());
                }
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("the server closes")
}

async fn send(socket: &mut Socket, command: Value) {
    socket
        .send(Message::Text(command.to_string().into()))
        .await
        .unwrap();
}

fn event_types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_order_is_the_fold_of_its_event_log() {
    let hub = Served::hub().await;
    let paid = hub.place(json!({ "item": "book", "quantity": 2 })).await;
    let order = hub.finished(paid).await;
    let log = hub.get_json(&format!("/api/orders/{paid}/events")).await;
    let events = log["events"].as_array().unwrap();
    assert_eq!(
        event_types(events),
        ["created", "processing", "payment_succeeded", "completed"]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert!(events.iter().all(|e| e["order_id"] == paid));
    assert_eq!(events[0]["item"], "book");
    assert_eq!(events[0]["quantity"], 2);
    assert_eq!(events[2]["attempts"], 1);
    // What GET answers is the fold of the log, field for field.
    assert_eq!(log["order"], order);
    assert_eq!(order["events"], 4);

    let declined = hub
        .place(json!({ "item": "book", "fail_payment": true }))
        .await;
    hub.finished(declined).await;
    let log = hub
        .get_json(&format!("/api/orders/{declined}/events"))
        .await;
    let events = log["events"].as_array().unwrap();
    assert_eq!(
        event_types(events),
        ["created", "processing", "payment_declined", "failed"]
    );
    assert_eq!(events[3]["kind"], "declined");
    assert_eq!(log["order"]["error"], "payment declined");

    let missing = hub
        .client
        .get(hub.url("/api/orders/424242/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}

#[tokio::test]
async fn a_sampled_request_puts_its_trace_id_on_the_order_events() {
    let hub = Served::hub().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = hub
        .client
        .post(hub.url("/api/orders"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&json!({ "item": "traced" }))
        .send()
        .await
        .unwrap();
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap();
    hub.finished(id).await;
    let log = hub.get_json(&format!("/api/orders/{id}/events")).await;
    for event in log["events"].as_array().unwrap() {
        assert_eq!(event["trace_id"], trace_id, "{event}");
    }
}

#[tokio::test]
async fn analytics_count_what_the_bus_carried() {
    let hub = Served::hub().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(hub.place(json!({ "item": "ok" })).await);
    }
    for _ in 0..2 {
        ids.push(
            hub.place(json!({ "item": "no", "fail_payment": true }))
                .await,
        );
    }
    for id in ids {
        hub.finished(id).await;
    }
    let analytics = hub.get_json("/api/analytics").await;
    assert_eq!(
        analytics["orders"],
        json!({ "created": 5, "completed": 3, "failed": 2, "active": 0 })
    );
    assert_eq!(analytics["per_minute"]["created"], 5);
    assert_eq!(analytics["failures"]["declined"], 2);
    assert_eq!(analytics["failures"]["fault"], 0);
    assert_eq!(analytics["events"]["payment_succeeded"], 3);
    assert_eq!(analytics["processing_seconds"]["completed"]["count"], 3);
    assert!(
        analytics["processing_seconds"]["completed"]["p50"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    let metrics = hub
        .client
        .get(hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "cortex_hub_order_events_total{type=\"created\"} 5",
        "cortex_hub_order_failures_total{reason=\"declined\"} 2",
        "cortex_hub_orders_active 0",
        "cortex_hub_order_processing_seconds_count{outcome=\"completed\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} missing");
    }
}

#[tokio::test]
async fn a_websocket_client_gets_its_rooms_events_in_order() {
    let hub = Served::hub().await;
    let mut all = hub.socket("?rooms=orders").await;
    // Order ids start at 1: a client in room "2" sees order 2 only.
    let mut second = hub.socket("?rooms=2").await;
    let first_id = hub.place(json!({ "item": "a" })).await;
    let second_id = hub.place(json!({ "item": "b" })).await;
    assert_eq!((first_id, second_id), (1, 2));

    let mut seen: Vec<(u64, u64, String)> = Vec::new();
    while seen.len() < 8 {
        let message = next_json(&mut all).await;
        assert_eq!(message["type"], "order", "{message}");
        let event = &message["event"];
        seen.push((
            event["order_id"].as_u64().unwrap(),
            event["seq"].as_u64().unwrap(),
            event["type"].as_str().unwrap().to_owned(),
        ));
    }
    for id in [1, 2] {
        let of_order: Vec<(u64, &str)> = seen
            .iter()
            .filter(|(order, ..)| *order == id)
            .map(|(_, seq, kind)| (*seq, kind.as_str()))
            .collect();
        assert_eq!(
            of_order,
            [
                (1, "created"),
                (2, "processing"),
                (3, "payment_succeeded"),
                (4, "completed")
            ]
        );
    }
    for seq in 1..=4 {
        let message = next_json(&mut second).await;
        assert_eq!(message["event"]["order_id"], 2, "{message}");
        assert_eq!(message["event"]["seq"], seq, "{message}");
    }

    // Commands: join, leave, ping, and a refusal for anything else.
    send(&mut second, json!({ "op": "join", "room": "alerts" })).await;
    assert_eq!(
        next_json(&mut second).await,
        json!({ "type": "joined", "room": "alerts" })
    );
    send(&mut second, json!({ "op": "ping" })).await;
    assert_eq!(next_json(&mut second).await, json!({ "type": "pong" }));
    send(&mut second, json!({ "op": "join", "room": "NOT A ROOM" })).await;
    assert_eq!(next_json(&mut second).await["type"], "error");
    send(&mut second, json!({ "op": "dance" })).await;
    assert_eq!(next_json(&mut second).await["type"], "error");
    send(&mut second, json!({ "op": "leave", "room": "alerts" })).await;
    assert_eq!(
        next_json(&mut second).await,
        json!({ "type": "left", "room": "alerts" })
    );

    let metrics = hub
        .client
        .get(hub.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cortex_hub_websocket_connections 2"),
        "{metrics}"
    );
    assert!(metrics.contains("cortex_hub_websocket_received_total{outcome=\"invalid\"} 2"));
}

#[tokio::test]
async fn breaker_transitions_reach_the_alerts_room() {
    let hub = Served::hub().await;
    let mut alerts = hub.socket("?rooms=alerts").await;
    let breaker = hub.hub.policies.circuit_breaker(PAYMENTS).unwrap();
    breaker.transition_to_forced_open();
    let message = next_json(&mut alerts).await;
    assert_eq!(
        message,
        json!({ "type": "alert", "alert": {
            "kind": "breaker", "name": "payments", "from": "closed", "to": "forced_open",
        }})
    );
    breaker.transition_to_closed();
    assert_eq!(next_json(&mut alerts).await["alert"]["to"], "closed");
}

#[tokio::test]
async fn server_sent_events_carry_the_same_messages() {
    let hub = Served::hub().await;
    let mut response = hub
        .client
        .get(hub.url("/api/notifications/sse?rooms=orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut text = String::new();
    // The welcome event first: then the subscription is in place.
    while !text.contains("event: welcome") {
        text.push_str(&String::from_utf8_lossy(&chunk(&mut response).await));
    }
    let id = hub.place(json!({ "item": "sse" })).await;
    while !text.contains("\"type\":\"completed\"") {
        text.push_str(&String::from_utf8_lossy(&chunk(&mut response).await));
    }
    let orders: Vec<Value> = text
        .split("\n\n")
        .filter(|event| event.starts_with("event: order"))
        .map(|event| {
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            serde_json::from_str(data).unwrap()
        })
        .collect();
    assert_eq!(orders.len(), 4, "{text}");
    for (seq, message) in (1..).zip(&orders) {
        assert_eq!(message["event"]["order_id"], id);
        assert_eq!(message["event"]["seq"], seq);
    }

    // Shutdown ends the stream with a reason.
    hub.hub.streams.close();
    while !text.contains("event: close") {
        text.push_str(&String::from_utf8_lossy(&chunk(&mut response).await));
    }
    assert!(text.contains("server shutting down"), "{text}");
}

async fn chunk(response: &mut reqwest::Response) -> Vec<u8> {
    tokio::time::timeout(PATIENCE, response.chunk())
        .await
        .expect("the stream goes on")
        .unwrap()
        .expect("the stream is not over")
        .to_vec()
}

#[tokio::test]
async fn a_foreign_origin_is_refused_and_the_own_host_allowed() {
    let hub = Served::hub().await;
    let refused = hub
        .socket_with("?rooms=orders", Some("http://evil.example"))
        .await
        .unwrap_err();
    match refused {
        WsError::Http(response) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        other => panic!("expected 403, got {other:?}"),
    }
    let sse = hub
        .client
        .get(hub.url("/api/notifications/sse"))
        .header(header::ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        sse.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let own = format!("http://{}", hub.addr);
    hub.socket_with("?rooms=orders", Some(&own)).await.unwrap();

    // Bad rooms are a 422 before any upgrade; a plain GET is told to upgrade.
    let bad = hub
        .client
        .get(hub.url("/api/notifications/sse?rooms=a,,b"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let plain = hub
        .client
        .get(hub.url("/api/notifications/ws"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::UPGRADE_REQUIRED);
}

#[tokio::test]
async fn a_client_that_keeps_sending_past_its_rate_is_closed() {
    let hub = Served::start(HubConfig {
        notifications: NotificationsConfig {
            messages_per_second: 1,
            burst: 1,
            max_refusals: 2,
            ..NotificationsConfig::default()
        },
        ..HubConfig::default()
    })
    .await;
    let mut socket = hub.socket("").await;
    for _ in 0..4 {
        send(&mut socket, json!({ "op": "ping" })).await;
    }
    assert_eq!(next_json(&mut socket).await["type"], "pong");
    for _ in 0..2 {
        let refused = next_json(&mut socket).await;
        assert_eq!(refused["type"], "error");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("rate limited")
        );
    }
    assert_eq!(
        close_frame(&mut socket).await,
        (CloseCode::Policy, "rate limited".to_owned())
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_as_idle_and_shutdown_closes_the_rest() {
    let hub = Served::start(HubConfig {
        notifications: NotificationsConfig {
            idle_timeout: Duration::from_millis(300),
            ..NotificationsConfig::default()
        },
        ..HubConfig::default()
    })
    .await;
    let mut silent = hub.socket("?rooms=orders").await;
    assert_eq!(
        close_frame(&mut silent).await,
        (CloseCode::Away, "idle".to_owned())
    );

    let hub = Served::hub().await;
    let mut socket = hub.socket("?rooms=orders").await;
    hub.hub.streams.close();
    assert_eq!(
        close_frame(&mut socket).await,
        (CloseCode::Away, "server shutting down".to_owned())
    );
    // And new connections are refused while shutting down.
    match hub.socket_with("", None).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn the_status_page_is_self_contained_and_its_feed_is_live() {
    let hub = Served::hub().await;
    let page = hub.client.get(hub.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script src="/status.js" defer></script>"#));
    // No inline script or style for the CSP to refuse, nothing remote.
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains("style="));
    assert!(!html.contains("http://") && !html.contains("https://"));
    for (asset, content_type) in [
        ("/status.js", "text/javascript; charset=utf-8"),
        ("/status.css", "text/css; charset=utf-8"),
    ] {
        let response = hub.client.get(hub.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], content_type);
    }

    let id = hub.place(json!({ "item": "status" })).await;
    hub.finished(id).await;
    let status = hub.get_json("/api/status").await;
    // The disk check is not critical: a full disk only degrades.
    assert_ne!(status["health"]["status"], "DOWN", "{status}");
    let breakers: Vec<&str> = status["resilience"]["circuit_breakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert!(
        breakers.contains(&"payments") && breakers.contains(&"flaky-downstream"),
        "{breakers:?}"
    );
    assert_eq!(status["orders"]["orders"]["completed"], 1);
    assert_eq!(status["workers"]["name"], "compute");
    assert!(
        status["http"]["requests_total"].as_u64().unwrap() >= 3,
        "{status}"
    );

    let mut stream = hub
        .client
        .get(hub.url("/api/status/stream"))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while text.matches("event: status").count() < 2 {
        text.push_str(&String::from_utf8_lossy(&chunk(&mut stream).await));
    }
    let first = text
        .split("\n\n")
        .find(|event| event.starts_with("event: status"))
        .unwrap();
    let data = first
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let snapshot: Value = serde_json::from_str(data).unwrap();
    assert_eq!(snapshot["service"], "cortex-hub");
    assert_eq!(snapshot["orders"]["orders"]["completed"], 1);
}

#[tokio::test]
async fn a_handler_past_the_request_timeout_gets_504_problem_json() {
    let hub = Served::start(HubConfig {
        request_timeout: Duration::from_millis(100),
        ..HubConfig::default()
    })
    .await;
    let response = hub
        .client
        .get(hub.url("/api/work?ms=2000"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    // A stream's response starts at once: the timeout does not cut it.
    let mut stream = hub
        .client
        .get(hub.url("/api/status/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!chunk(&mut stream).await.is_empty());
}

#[tokio::test]
async fn the_catalog_cache_hits_coalesces_and_answers_stale_while_the_downstream_is_down() {
    use cortex_hub::catalog::CatalogConfig;
    let hub = Served::start(HubConfig {
        catalog: CatalogConfig {
            max_age: Duration::from_secs(1),
            ..CatalogConfig::default()
        },
        ..HubConfig::default()
    })
    .await;
    let lookup = |id: u64| {
        let request = hub.client.get(hub.url(&format!("/api/catalog/{id}")));
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let cache = response
                .headers()
                .get("x-cache")
                .map(|v| v.to_str().unwrap().to_owned());
            let age = response.headers().get("age").is_some();
            (status, cache, age, response.json::<Value>().await.unwrap())
        }
    };
    let (status, cache, _, first) = lookup(1).await;
    assert_eq!((status, cache.as_deref()), (StatusCode::OK, Some("MISS")));
    let (status, cache, age, again) = lookup(1).await;
    assert_eq!(
        (status, cache.as_deref(), age),
        (StatusCode::OK, Some("HIT"), true)
    );
    assert_eq!(again["upstream_calls"], first["upstream_calls"]);

    // Twenty concurrent misses of one product: one downstream call.
    let calls = |config: Value| config["upstream_calls"].as_u64().unwrap();
    let before = calls(hub.get_json("/api/catalog/config").await);
    let answers = futures_util::future::join_all((0..20).map(|_| lookup(2))).await;
    assert_eq!(calls(hub.get_json("/api/catalog/config").await), before + 1);
    let misses = answers
        .iter()
        .filter(|(_, cache, ..)| cache.as_deref() == Some("MISS"))
        .count();
    assert_eq!(misses, 1);
    assert!(answers.iter().all(|(status, ..)| *status == StatusCode::OK));

    // The downstream goes down: a stale entry still answers, a product
    // never seen gets the downstream's 503.
    let switched = hub
        .client
        .put(hub.url("/api/catalog/config?down=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, cache, _, stale) = lookup(1).await;
    assert_eq!((status, cache.as_deref()), (StatusCode::OK, Some("STALE")));
    assert_eq!(stale["id"], 1);
    let unseen = hub
        .client
        .get(hub.url("/api/catalog/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(unseen.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        unseen.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );

    let resilience = hub.get_json("/resilience").await;
    let catalog = &resilience["caches"][0];
    assert_eq!(catalog["name"], "catalog");
    let served_from_cache =
        catalog["hits"].as_u64().unwrap() + catalog["coalesced"].as_u64().unwrap();
    assert!(served_from_cache >= 20, "{catalog}");
    assert!(catalog["stale"].as_u64().unwrap() >= 1, "{catalog}");
}

#[tokio::test]
async fn an_order_is_readable_at_its_location_as_soon_as_post_answers() {
    let hub = Served::hub().await;
    for _ in 0..50 {
        let response = hub
            .client
            .post(hub.url("/api/orders"))
            .json(&json!({ "item": "now" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let location = response.json::<Value>().await.unwrap()["location"]
            .as_str()
            .unwrap()
            .to_owned();
        let read = hub.client.get(hub.url(&location)).send().await.unwrap();
        assert_eq!(read.status(), StatusCode::OK, "{location}");
    }
}
