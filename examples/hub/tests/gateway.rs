//! The Hub's gateway on a real loopback socket: `x-request-id` generated,
//! kept or replaced and echoed; security headers on JSON, HTML, script
//! and problem responses; one access-log line per request, formatted by
//! cortex-trace's `TraceIdFormat` (JSON) into a buffer, with the route
//! template, status, request id and the incoming trace id.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use cortex::trace::{LogFormat, TraceIdFormat};
use cortex_hub::access_log::{ACCESS_LOG_TARGET, CONTENT_SECURITY_POLICY_VALUE};
use cortex_hub::{Hub, HubConfig};
use reqwest::{Client, RequestBuilder, Response, StatusCode, header};
use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

/// Every log line written in this test binary (one global subscriber: the
/// Hub's tasks run on any runtime thread).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The captured logs, installed once as the global subscriber in the
/// Hub's JSON format at `info` (the Hub's default level).
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .event_format(TraceIdFormat::new(LogFormat::Json))
            .with_writer(logs.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
        logs
    })
}

/// The access-log lines whose `request_id` is `id`.
fn access_lines(id: &str) -> Vec<Value> {
    let bytes = logs().0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON log lines"))
        .filter(|line| line["target"] == ACCESS_LOG_TARGET && line["request_id"] == id)
        .collect()
}

/// The one access-log line of request `id`.
fn access_line(id: &str) -> Value {
    let lines = access_lines(id);
    assert_eq!(lines.len(), 1, "one access-log line for {id}: {lines:?}");
    lines.into_iter().next().unwrap()
}

struct Served {
    addr: SocketAddr,
    client: Client,
}

impl Served {
    async fn start() -> Self {
        logs();
        let hub = Hub::new(HubConfig::default()).expect("the hub starts");
        let router = hub.router().expect("the hub builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            addr,
            client: Client::new(),
        }
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(format!("http://{}{path}", self.addr))
    }
}

fn request_id(response: &Response) -> &str {
    response.headers()["x-request-id"]
        .to_str()
        .expect("a text request id")
}

/// `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`: what `MakeRequestUuid` makes.
fn is_uuid_v4(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
        && groups[2].starts_with('4')
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_fresh_one_in_the_response_and_the_log() {
    let hub = Served::start().await;
    let first = hub.get("/api/echo/7").send().await.unwrap();
    let second = hub.get("/api/echo/7").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let (a, b) = (
        request_id(&first).to_owned(),
        request_id(&second).to_owned(),
    );
    assert!(is_uuid_v4(&a), "{a}");
    assert!(is_uuid_v4(&b), "{b}");
    assert_ne!(a, b);
    assert_eq!(access_line(&a)["route"], "/api/echo/{id}");
}

#[tokio::test]
async fn a_client_request_id_is_echoed_and_an_unusable_one_replaced() {
    let hub = Served::start().await;
    let sent = "client-id_1.2:3";
    let response = hub
        .get("/api/echo/1")
        .header("x-request-id", sent)
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&response), sent);
    assert_eq!(access_line(sent)["status"], 200);

    for unusable in ["has spaces", "quote\"d", &"x".repeat(129)] {
        let response = hub
            .get("/api/echo/1")
            .header("x-request-id", unusable)
            .send()
            .await
            .unwrap();
        let id = request_id(&response);
        assert!(is_uuid_v4(id), "{unusable:?} was answered with {id:?}");
        assert!(access_lines(unusable).is_empty(), "{unusable:?} was logged");
    }
}

#[tokio::test]
async fn security_headers_are_on_json_html_script_and_problem_responses() {
    let hub = Served::start().await;
    for (path, status, content_type) in [
        ("/api/echo/1", 200, "application/json"),
        ("/demo", 200, "text/html; charset=utf-8"),
        ("/demo.js", 200, "text/javascript; charset=utf-8"),
        ("/no/such/path", 404, "application/problem+json"),
        ("/metrics", 200, "text/plain; version=0.0.4; charset=utf-8"),
    ] {
        let response = hub.get(path).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY_VALUE,
            "{path}"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
    }
    let csp = CONTENT_SECURITY_POLICY_VALUE;
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
}

#[tokio::test]
async fn the_demo_page_has_no_inline_script_or_style() {
    let hub = Served::start().await;
    let page = hub.get("/demo").send().await.unwrap().text().await.unwrap();
    // What `script-src 'self'` and `style-src 'self'` would block.
    assert!(
        page.contains(r#"<script src="/demo.js"></script>"#),
        "{page}"
    );
    assert_eq!(page.matches("<script").count(), 1, "{page}");
    for inline in ["<style", "style=", "onload=", "onclick=", "javascript:"] {
        assert!(!page.contains(inline), "{inline} in {page}");
    }
}

#[tokio::test]
async fn each_request_is_logged_once_with_route_template_status_and_size() {
    let hub = Served::start().await;
    let response = hub
        .get("/api/echo/42?secret=shh")
        .header("x-request-id", "log-echo")
        .header(header::AUTHORIZATION, "Bearer hunter2")
        .send()
        .await
        .unwrap();
    let body = response.bytes().await.unwrap();
    let line = access_line("log-echo");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["message"], "request");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/api/echo/{id}");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], body.len());
    let duration = line["duration_ms"].as_f64().expect("a number of ms");
    assert!((0.0..10_000.0).contains(&duration), "{line}");
    // Neither the query nor the credentials reach the line.
    let text = line.to_string();
    assert!(!text.contains("shh") && !text.contains("hunter2"), "{text}");

    // Unmatched: the path (no template exists), the 404.
    hub.get("/no/such/path")
        .header("x-request-id", "log-404")
        .send()
        .await
        .unwrap();
    let line = access_line("log-404");
    assert_eq!(line["route"], "/no/such/path");
    assert_eq!(line["status"], 404);

    // The Cortex endpoints are logged too.
    hub.get("/livez")
        .header("x-request-id", "log-livez")
        .send()
        .await
        .unwrap();
    assert_eq!(access_line("log-livez")["route"], "/livez");
}

#[tokio::test]
async fn the_access_log_line_carries_the_incoming_trace_id() {
    let hub = Served::start().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let response = hub
        .get("/api/trace")
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .header("x-request-id", "log-traced")
        .send()
        .await
        .unwrap();
    let seen: Value = response.json().await.unwrap();
    let line = access_line("log-traced");
    assert_eq!(line["trace_id"], trace_id, "{line}");
    // The server span's id, as the handler saw it: not the caller's.
    assert_eq!(line["span_id"], seen["span_id"], "{line}");
    assert_ne!(line["span_id"], parent, "{line}");

    // Without a traceparent, a fresh trace: still on the line.
    hub.get("/api/echo/1")
        .header("x-request-id", "log-untraced")
        .send()
        .await
        .unwrap();
    let line = access_line("log-untraced");
    let fresh = line["trace_id"].as_str().expect("a trace id");
    assert_eq!(fresh.len(), 32, "{line}");
    assert_ne!(fresh, trace_id, "{line}");
}

#[tokio::test]
async fn log_lines_from_inside_the_order_actor_carry_the_request_trace_id() {
    let hub = Served::start().await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = hub
        .client
        .post(format!("http://{}/api/orders", hub.addr))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&serde_json::json!({ "item": "traced", "fail_payment": true }))
        .send()
        .await
        .unwrap();
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap();
    // The actor logs `order failed` when the decline is recorded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let line = loop {
        let bytes = logs().0.lock().unwrap().clone();
        let found = String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("JSON log lines"))
            .find(|line| line["message"] == "order failed" && line["order"] == id);
        if let Some(line) = found {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `order failed` line"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(line["target"], "cortex_hub::orders::actor", "{line}");
    assert_eq!(line["trace_id"], trace_id, "{line}");
}
