//! The Hub served on a real loopback socket, spoken to by a real HTTP
//! client; JSON answers are read as typed values, not searched as text.

use std::net::SocketAddr;
use std::time::Duration;

use cortex_hub::{Hub, HubConfig};
use reqwest::{Client, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;

/// A served Hub: its handles and a client bound to its address.
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

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }
}

#[derive(Debug, Deserialize)]
struct Index {
    service: String,
    routes: Vec<Route>,
}

#[derive(Debug, Deserialize)]
struct Route {
    path: String,
    about: String,
}

/// A path template with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
}

#[tokio::test]
async fn the_index_lists_exactly_what_is_served_and_documented() {
    let hub = Served::start(HubConfig::default()).await;
    let (status, index) = hub.get_json("/api").await;
    assert_eq!(status, StatusCode::OK);
    let index: Index = serde_json::from_value(index).unwrap();
    // `/` is the same index for a client that asks for JSON.
    let response = hub
        .client
        .get(hub.url("/"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    let same: Index = response.json().await.unwrap();
    assert_eq!(same.routes.len(), index.routes.len());
    assert_eq!(index.service, "cortex-hub");
    let docs = include_str!("../src/lib.rs");
    for route in &index.routes {
        assert!(!route.about.is_empty(), "{route:?}");
        // Every indexed route is routed: a handler's answer (even a 404
        // with a reason, or a method or parameter error) is fine; the
        // router's fallback ("no route matches") is not ...
        let response = hub.get(&concrete(&route.path)).await;
        // A stream never ends: its answer starting is enough.
        if response.headers().get(header::CONTENT_TYPE)
            == Some(&header::HeaderValue::from_static("text/event-stream"))
        {
            assert_eq!(response.status(), StatusCode::OK, "{route:?}");
            continue;
        }
        let body = response.bytes().await.unwrap();
        assert!(
            !String::from_utf8_lossy(&body).contains("no route matches"),
            "{route:?}"
        );
        // ... and is in the crate docs' route table.
        assert!(
            docs.contains(&route.path),
            "{} is not documented",
            route.path
        );
    }
    for path in [
        "/",
        "/api",
        "/api/status",
        "/api/status/stream",
        "/api/analytics",
        "/api/notifications/ws",
        "/api/notifications/sse",
        "/api/orders/{id}/events",
        "/metrics",
        "/health",
        "/readyz",
        "/resilience",
        "/api/orders",
        "/api/compute/hash",
        "/api/compute/blur",
        "/api/compute/stats",
    ] {
        assert!(
            index.routes.iter().any(|route| route.path == path),
            "{path} missing from {index:?}"
        );
    }
}

#[tokio::test]
async fn serves_demo_routes_and_their_metrics() {
    let hub = Served::start(HubConfig::default()).await;
    let (status, echo) = hub.get_json("/api/echo/42").await;
    assert_eq!(
        (status, echo),
        (StatusCode::OK, serde_json::json!({ "id": "42" }))
    );
    hub.get("/api/echo/hello").await;
    let (_, work) = hub.get_json("/api/work?ms=1").await;
    assert_eq!(work["slept_ms"], 1);
    assert_eq!(hub.get("/nope").await.status(), StatusCode::NOT_FOUND);

    let response = hub.get("/metrics").await;
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let metrics = response.text().await.unwrap();
    for expected in [
        r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/api/echo/{id}",http_response_status_code="200",url_scheme="http"} 2"#,
        r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="unmatched",http_response_status_code="404",url_scheme="http"} 1"#,
        r#"hub_echo_requests_total{kind="numeric"} 1"#,
        r#"hub_echo_requests_total{kind="text"} 1"#,
        "process_resident_memory_bytes ",
        "hub_work_duration_seconds_count 1\n",
        "hub_work_in_progress 0\n",
    ] {
        assert!(metrics.contains(expected), "missing {expected}\n{metrics}");
    }
    let response = hub
        .client
        .get(hub.url("/metrics"))
        .header(header::ACCEPT, "application/openmetrics-text")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let om = response.text().await.unwrap();
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(
        om.contains(" # {trace_id=\""),
        "traced requests leave exemplars: {om}"
    );
}

#[tokio::test]
async fn serves_health_probes_with_details_on_request() {
    let hub = Served::start(HubConfig::default()).await;
    let response = hub.get("/health").await;
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/health+json"
    );
    let all: Value = response.json().await.unwrap();
    for check in [
        "uptime",
        "memory",
        "disk",
        "work_queue",
        "actors",
        "resilience",
    ] {
        assert!(all["checks"].get(check).is_some(), "missing {check}: {all}");
    }
    assert!(
        all["checks"]["work_queue"][0].get("details").is_none(),
        "details are hidden by default: {all}"
    );
    let (_, verbose) = hub.get_json("/health?verbose").await;
    assert_eq!(
        verbose["checks"]["work_queue"][0]["details"]["in_progress"], 0,
        "{verbose}"
    );
    for probe in [
        "/livez",
        "/readyz",
        "/health/live",
        "/health/ready",
        "/health/startup",
    ] {
        assert_eq!(hub.get(probe).await.status(), StatusCode::OK, "{probe}");
    }
    hub.hub.health.set_draining();
    assert_eq!(
        hub.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(hub.get("/livez").await.status(), StatusCode::OK);
    let metrics = hub.metrics().await;
    assert!(
        metrics.contains("cortex_health_check_status{check=\"uptime\"} 1.0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn continues_an_incoming_trace() {
    let hub = Served::start(HubConfig::default()).await;
    let traced: Value = hub
        .client
        .get(hub.url("/api/trace"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("tracestate", "congo=t61rcWkgMzE")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(traced["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(traced["span_id"], "00f067aa0ba902b7", "a fresh span id");
    assert_eq!(traced["tracestate"], "congo=t61rcWkgMzE");
    let fresh: Value = hub
        .client
        .get(hub.url("/api/trace"))
        .header("traceparent", "garbage")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let trace_id = fresh["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32, "{fresh}");
    assert_ne!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[tokio::test]
async fn large_responses_are_compressed_when_accepted() {
    use std::io::Read;
    let hub = Served::start(HubConfig::default()).await;
    let plain = hub.get("/api/big.json").await;
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    // The client does not decode (no compression features): these are the
    // bytes on the wire.
    let response = hub
        .client
        .get(hub.url("/api/big.json"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    assert!(
        response.headers()[header::VARY]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("accept-encoding")
    );
    let wire = response.bytes().await.unwrap();
    let mut decoded = String::new();
    flate2::read::GzDecoder::new(&wire[..])
        .read_to_string(&mut decoded)
        .unwrap();
    let json: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(
        json["items"].as_array().unwrap().len(),
        cortex_hub::compression::BIG_JSON_ITEMS
    );
    assert!(
        wire.len() < decoded.len() / 4,
        "{} of {}",
        wire.len(),
        decoded.len()
    );
}

#[tokio::test]
async fn metrics_token_protects_the_endpoint() {
    let hub = Served::start(HubConfig {
        metrics_token: Some("hub-secret".to_owned()),
        ..HubConfig::default()
    })
    .await;
    let refused = hub.get("/metrics").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().contains_key(header::WWW_AUTHENTICATE));
    let ok = hub
        .client
        .get(hub.url("/metrics"))
        .bearer_auth("hub-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn compressed_uploads_are_decoded_and_bombs_refused() {
    use std::io::Write;
    let hub = Served::start(HubConfig::default()).await;
    let gzip = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    };
    let upload = |body: Vec<u8>| {
        hub.client
            .post(hub.url("/api/upload"))
            .header(header::CONTENT_ENCODING, "gzip")
            .body(body)
            .send()
    };
    let small = upload(gzip(&vec![b'a'; 100_000])).await.unwrap();
    assert_eq!(small.status(), StatusCode::OK);
    let small: Value = small.json().await.unwrap();
    assert_eq!(small["bytes"], 100_000);
    let bomb = upload(gzip(&vec![0u8; 64 * 1024 * 1024])).await.unwrap();
    assert_eq!(bomb.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let unknown = hub
        .client
        .post(hub.url("/api/upload"))
        .header(header::CONTENT_ENCODING, "compress")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(unknown.headers().contains_key(header::ACCEPT_ENCODING));
}

#[tokio::test]
async fn flaky_downstream_opens_the_breaker_and_reports_it() {
    let hub = Served::start(HubConfig::default()).await;
    let put = |query: &'static str| {
        hub.client
            .put(hub.url(&format!("/api/flaky/config?{query}")))
            .send()
    };
    assert_eq!(
        put("rate=2").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let healthy = hub.get("/api/flaky").await;
    assert_eq!(healthy.status(), StatusCode::OK);
    assert!(healthy.headers().contains_key("ratelimit-remaining"));
    assert_eq!(put("rate=1").await.unwrap().status(), StatusCode::OK);
    let mut opened = false;
    for _ in 0..8 {
        let response = hub.get("/api/flaky").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let body = response.text().await.unwrap();
        if body.contains("circuit breaker is open") {
            // The breaker's wait in the open state (10 s).
            assert_eq!(retry_after.unwrap(), "10");
            opened = true;
            break;
        }
    }
    assert!(opened, "the breaker never opened");
    let (_, stats) = hub.get_json("/resilience").await;
    let breaker = stats["circuit_breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|breaker| breaker["name"] == cortex_hub::flaky::BREAKER)
        .unwrap_or_else(|| panic!("no flaky breaker in {stats}"));
    assert_eq!(breaker["state"], "open", "{stats}");
    let metrics = hub.metrics().await;
    assert!(
        metrics.contains(r#"cortex_circuitbreaker_state{name="flaky-downstream",state="open"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"cortex_retry_calls_total{name="flaky-downstream",kind="failed_with_retry"}"#
        )
    );
    let (_, health) = hub.get_json("/health?verbose").await;
    assert_eq!(
        health["checks"]["resilience"][0]["status"], "warn",
        "{health}"
    );
}

/// Polls an order until it leaves pending/processing (bounded: 2 s).
async fn finished_order(hub: &Served, id: u64) -> Value {
    for _ in 0..200 {
        let (_, order) = hub.get_json(&format!("/api/orders/{id}")).await;
        if order["state"] == "completed" || order["state"] == "failed" {
            return order;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("order {id} never finished");
}

#[tokio::test]
async fn orders_are_actors_with_a_state_machine_events_and_metrics() {
    let hub = Served::start(HubConfig::default()).await;
    let post = |body: &'static str| {
        hub.client
            .post(hub.url("/api/orders"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };

    let created = post(r#"{"item":"book","quantity":2}"#).await.unwrap();
    assert_eq!(created.status(), StatusCode::ACCEPTED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["state"], "pending");
    let paid = finished_order(&hub, 1).await;
    assert_eq!(paid["state"], "completed", "{paid}");
    assert_eq!(paid["payment_attempts"], 1, "{paid}");

    let declined = post(r#"{"item":"lamp","fail_payment":true}"#)
        .await
        .unwrap();
    assert_eq!(declined.status(), StatusCode::ACCEPTED);
    let failed = finished_order(&hub, 2).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(
        failed["payment_attempts"], 1,
        "a decline is not retried: {failed}"
    );
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("payment declined"),
        "{failed}"
    );

    assert_eq!(
        hub.get("/api/orders/999").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        hub.get("/api/orders/abc").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(r#"{"item":"  "}"#).await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(post("{").await.unwrap().status(), StatusCode::BAD_REQUEST);

    let (_, summary) = hub.get_json("/api/orders").await;
    let events = &summary["events"];
    assert_eq!(
        (
            &events["created"],
            &events["processing"],
            &events["completed"],
            &events["failed"]
        ),
        (&2.into(), &2.into(), &1.into(), &1.into()),
        "{summary}"
    );
    assert_eq!(summary["payment_calls"], 2, "{summary}");
    let metrics = hub.metrics().await;
    assert!(
        metrics.contains(r#"cortex_actor_live{actor="OrderActor"} 0"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"cortex_circuitbreaker_state{name="payments",state="closed"} 1"#),
        "{metrics}"
    );
    // The payment timeouts are registered too, so they are observable.
    assert!(metrics.contains(r#"name="payments-attempt""#), "{metrics}");
    let (_, health) = hub.get_json("/health?verbose").await;
    assert!(health["checks"].get("actors").is_some(), "{health}");

    let report = hub.hub.actors.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.drained, 0, "{report:?}");
    assert_eq!(hub.get("/api/orders/1").await.status(), StatusCode::OK);
}
