//! The HTTP server span against OpenTelemetry's semantic conventions
//! (v1.23+, `docs/http/http-spans.md`): its name, and its attribute table
//! walked row by row for every Required and Conditionally Required
//! attribute, including the ones a sampler must see when the span starts.
//!
//! | attribute | level |
//! |---|---|
//! | `http.request.method` | Required |
//! | `url.path` | Required |
//! | `url.scheme` | Required |
//! | `error.type` | Cond. Required: the request ended with an error |
//! | `http.request.method_original` | Cond. Required: it differs from `http.request.method` |
//! | `http.response.status_code` | Cond. Required: one was sent |
//! | `http.route` | Cond. Required: it is available |
//! | `network.protocol.name` | Cond. Required: not `http` |
//! | `server.port` | Cond. Required: available and `server.address` set |
//! | `url.query` | Cond. Required: one was received |

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{any, get};
use bytes::Bytes;
use cortex_trace::http::HttpTraceLayer;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use opentelemetry::trace::{Link, SpanKind, Status, TraceId};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, Sampler, SamplingResult, SdkTracerProvider, ShouldSample, SpanData,
};
use tower::{Layer, ServiceExt, service_fn};

/// A span's name and attributes as a sampler saw them.
type SpanStart = (String, Vec<KeyValue>);

/// Samples everything, remembering what each span offered at its start.
#[derive(Debug, Clone, Default)]
struct RecordingSampler {
    seen: Arc<Mutex<Vec<SpanStart>>>,
}

impl ShouldSample for RecordingSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        self.seen
            .lock()
            .unwrap()
            .push((name.to_owned(), attributes.to_vec()));
        Sampler::AlwaysOn.should_sample(
            parent_context,
            trace_id,
            name,
            span_kind,
            attributes,
            links,
        )
    }
}

struct Tracing {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
    sampler: RecordingSampler,
}

fn tracing() -> Tracing {
    let exporter = InMemorySpanExporter::default();
    let sampler = RecordingSampler::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler.clone())
        .with_simple_exporter(exporter.clone())
        .build();
    Tracing {
        provider,
        exporter,
        sampler,
    }
}

fn app(layer: HttpTraceLayer) -> Router {
    Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/cache/{key}", any(|| async { "purged" }))
        .route(
            "/unavailable",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .layer(layer)
}

async fn send(app: &Router, request: Request<Body>) {
    let response = app.clone().oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
}

async fn get_path(app: &Router, path: &str) {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await;
}

fn spans(tracing: &Tracing) -> Vec<SpanData> {
    tracing.exporter.get_finished_spans().unwrap()
}

fn only_span(tracing: &Tracing) -> SpanData {
    let mut spans = spans(tracing);
    assert_eq!(spans.len(), 1, "{spans:#?}");
    spans.pop().unwrap()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn purge(uri: &str) -> Request<Body> {
    Request::builder()
        .method(Method::from_bytes(b"PURGE").unwrap())
        .uri(uri)
        .body(Body::empty())
        .unwrap()
}

/// "In other cases (when `{http.request.method}` is set to `_OTHER`),
/// `{method}` MUST be `HTTP`."
#[tokio::test]
async fn a_method_known_only_as_other_names_the_span_http() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    send(&app, purge("/cache/k1")).await;
    send(&app, purge("/no/route")).await;
    let names: Vec<String> = spans(&tracing).iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["HTTP /cache/{key}", "HTTP"]);
    for span in spans(&tracing) {
        assert_eq!(
            attribute(&span, "http.request.method"),
            Some(&Value::from("_OTHER"))
        );
    }
}

#[tokio::test]
async fn known_methods_name_the_span_with_the_route() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    get_path(&app, "/users/7").await;
    get_path(&app, "/nowhere").await;
    let names: Vec<String> = spans(&tracing).iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["GET /users/{id}", "GET"]);
}

#[tokio::test]
async fn http_request_method_and_url_path_are_always_set() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    get_path(&app, "/users/7?x=1").await;
    let span = only_span(&tracing);
    assert_eq!(
        attribute(&span, "http.request.method"),
        Some(&Value::from("GET"))
    );
    assert_eq!(attribute(&span, "url.path"), Some(&Value::from("/users/7")));
}

#[tokio::test]
async fn http_request_method_original_only_when_the_method_became_other() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    send(&app, purge("/cache/k")).await;
    get_path(&app, "/cache/k").await;
    let spans = spans(&tracing);
    assert_eq!(
        attribute(&spans[0], "http.request.method_original"),
        Some(&Value::from("PURGE"))
    );
    assert_eq!(attribute(&spans[1], "http.request.method_original"), None);
}

#[tokio::test]
async fn url_scheme_is_http_on_a_plain_listener_and_https_on_a_tls_one() {
    let tracing = tracing();
    get_path(&app(HttpTraceLayer::new(&tracing.provider)), "/users/1").await;
    get_path(
        &app(HttpTraceLayer::new(&tracing.provider).served_over_tls(true)),
        "/users/1",
    )
    .await;
    let schemes: Vec<Option<Value>> = spans(&tracing)
        .iter()
        .map(|s| attribute(s, "url.scheme").cloned())
        .collect();
    assert_eq!(
        schemes,
        [Some(Value::from("http")), Some(Value::from("https"))]
    );
}

#[tokio::test]
async fn url_scheme_is_the_original_clients_when_known() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    let requests = [
        Request::get("/users/1")
            .header("x-forwarded-proto", "https")
            .body(Body::empty())
            .unwrap(),
        Request::get("/users/1")
            .header("forwarded", "for=192.0.2.60;proto=https")
            .body(Body::empty())
            .unwrap(),
        Request::get("https://example.com/users/1")
            .body(Body::empty())
            .unwrap(),
        Request::get("/users/1")
            .header("x-forwarded-proto", "gopher")
            .body(Body::empty())
            .unwrap(),
    ];
    for request in requests {
        send(&app, request).await;
    }
    let schemes: Vec<Value> = spans(&tracing)
        .iter()
        .map(|s| attribute(s, "url.scheme").cloned().unwrap())
        .collect();
    assert_eq!(
        schemes,
        ["https", "https", "https", "http"].map(Value::from)
    );
}

#[tokio::test]
async fn url_query_is_set_if_and_only_if_the_request_had_one() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    get_path(&app, "/users/7?s=1&t=2").await;
    get_path(&app, "/users/7").await;
    let spans = spans(&tracing);
    assert_eq!(
        attribute(&spans[0], "url.query"),
        Some(&Value::from("s=1&t=2"))
    );
    assert_eq!(attribute(&spans[1], "url.query"), None);
}

/// "Query string values for the following keys SHOULD be redacted by
/// default and replaced by the value `REDACTED`", keys kept:
/// `q=OpenTelemetry&sig=REDACTED`.
#[tokio::test]
async fn url_query_redacts_signed_url_credentials() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    get_path(
        &app,
        "/users/7?q=OpenTelemetry&sig=s3cr3t&AWSAccessKeyId=AKIA&Signature=abc&X-Goog-Signature=def",
    )
    .await;
    let span = only_span(&tracing);
    assert_eq!(
        attribute(&span, "url.query"),
        Some(&Value::from(
            "q=OpenTelemetry&sig=REDACTED&AWSAccessKeyId=REDACTED&Signature=REDACTED&X-Goog-Signature=REDACTED"
        ))
    );
}

#[tokio::test]
async fn http_route_is_set_only_when_a_route_matched() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    get_path(&app, "/users/7").await;
    get_path(&app, "/nowhere").await;
    let spans = spans(&tracing);
    assert_eq!(
        attribute(&spans[0], "http.route"),
        Some(&Value::from("/users/{id}"))
    );
    assert_eq!(attribute(&spans[1], "http.route"), None);
}

#[tokio::test]
async fn http_response_status_code_only_when_a_response_was_sent() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    get_path(&app, "/teapot").await;
    let hang = HttpTraceLayer::new(&tracing.provider).layer(service_fn(|_: Request<()>| {
        std::future::pending::<Result<Response<Body>, Infallible>>()
    }));
    let pending = tokio::time::timeout(
        Duration::from_millis(20),
        hang.oneshot(Request::get("/hang").body(()).unwrap()),
    )
    .await;
    assert!(pending.is_err());
    let spans = spans(&tracing);
    assert_eq!(
        attribute(&spans[0], "http.response.status_code"),
        Some(&Value::from(418_i64))
    );
    assert_eq!(attribute(&spans[1], "http.response.status_code"), None);
    assert_eq!(
        attribute(&spans[1], "error.type"),
        Some(&Value::from("cancelled"))
    );
}

#[tokio::test]
async fn error_type_is_the_status_code_of_a_5xx_and_absent_for_4xx_and_2xx() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    get_path(&app, "/unavailable").await;
    get_path(&app, "/teapot").await;
    get_path(&app, "/nowhere").await;
    get_path(&app, "/users/1").await;
    let spans = spans(&tracing);
    assert_eq!(
        attribute(&spans[0], "error.type"),
        Some(&Value::from("503"))
    );
    assert!(matches!(spans[0].status, Status::Error { .. }));
    for span in &spans[1..] {
        assert_eq!(attribute(span, "error.type"), None, "{}", span.name);
        assert_eq!(span.status, Status::Unset, "{}", span.name);
    }
}

/// A body that sends one chunk, then fails.
struct FailingBody {
    sent: bool,
}

impl http_body::Body for FailingBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.sent {
            Poll::Ready(Some(Err(std::io::Error::other("disk gone"))))
        } else {
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"partial")))))
        }
    }
}

/// "Span Status MUST be left unset if HTTP status code was in the 1xx, 2xx
/// or 3xx ranges, unless there was another error (e.g., network error
/// receiving the response body ...)".
#[tokio::test]
async fn error_type_marks_a_response_body_that_fails_after_a_200() {
    let tracing = tracing();
    let service =
        HttpTraceLayer::new(&tracing.provider).layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(FailingBody { sent: false }))
        }));
    let response = service
        .oneshot(Request::get("/download").body(()).unwrap())
        .await
        .unwrap();
    assert!(response.into_body().collect().await.is_err());
    let span = only_span(&tracing);
    assert_eq!(
        attribute(&span, "http.response.status_code"),
        Some(&Value::from(200_i64))
    );
    assert_eq!(
        attribute(&span, "error.type"),
        Some(&Value::from("response body error"))
    );
    assert!(matches!(span.status, Status::Error { .. }));
}

/// `network.protocol.name` is required only when it is not `http`, and
/// `server.port` only beside `server.address`, which is not recorded.
#[tokio::test]
async fn network_protocol_name_and_server_port_are_left_out() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    get_path(&app, "/users/1").await;
    let span = only_span(&tracing);
    for key in ["network.protocol.name", "server.address", "server.port"] {
        assert_eq!(attribute(&span, key), None, "{key}");
    }
}

/// "The following attributes can be important for making sampling
/// decisions and SHOULD be provided at span creation time": the sampler
/// sees them, and the span name, before the handler runs.
#[tokio::test]
async fn the_sampler_sees_method_path_query_and_scheme_at_span_start() {
    let tracing = tracing();
    let app = app(HttpTraceLayer::new(&tracing.provider));
    let request = Request::get("/users/7?s=1")
        .header("user-agent", "curl/8.5")
        .body(Body::empty())
        .unwrap();
    send(&app, request).await;
    let seen = tracing.sampler.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (name, attributes) = &seen[0];
    assert_eq!(name, "GET /users/{id}");
    let at_start = |key: &str| {
        attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    for (key, value) in [
        ("http.request.method", Value::from("GET")),
        ("url.path", Value::from("/users/7")),
        ("url.query", Value::from("s=1")),
        ("url.scheme", Value::from("http")),
        ("http.route", Value::from("/users/{id}")),
        ("user_agent.original", Value::from("curl/8.5")),
    ] {
        assert_eq!(at_start(key), Some(value), "{key}");
    }
}
