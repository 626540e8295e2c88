//! The HTTP layers at the edges: methods outside the standard set, HTTP
//! versions, inner-service errors, callers that go away, and bodies that
//! outlive the response head.

use std::convert::Infallible;
use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;

use bytes::Bytes;
use cortex_trace::http::{HttpTraceLayer, PropagateLayer};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use opentelemetry::Value;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::{Layer, Service, ServiceExt, service_fn};

fn provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    (provider, exporter)
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn finished(exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    exporter.get_finished_spans().unwrap()
}

/// An inner service that answers 200 with an empty body.
fn ok_service()
-> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone {
    service_fn(|_request: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    })
}

#[tokio::test]
async fn standard_methods_name_the_span_and_unknown_ones_become_other() {
    let (provider, exporter) = provider();
    let service = HttpTraceLayer::new(&provider).layer(ok_service());
    for method in [
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
        Method::CONNECT,
    ] {
        let request = Request::builder()
            .method(method)
            .uri("/x")
            .body(())
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let purge = Method::from_bytes(b"PURGE").unwrap();
    let request = Request::builder()
        .method(purge)
        .uri("/cache")
        .body(())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();

    let names: Vec<String> = finished(&exporter)
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "CONNECT", "HTTP"
        ]
    );
    let other = finished(&exporter).pop().unwrap();
    // Semantic conventions: the bounded name, plus the original beside it.
    assert_eq!(
        attribute(&other, "http.request.method"),
        Some(&Value::from("_OTHER"))
    );
    assert_eq!(
        attribute(&other, "http.request.method_original"),
        Some(&Value::from("PURGE"))
    );
}

#[tokio::test]
async fn the_protocol_version_attribute_follows_the_request() {
    let (provider, exporter) = provider();
    let service = HttpTraceLayer::new(&provider).layer(ok_service());
    for version in [
        Version::HTTP_09,
        Version::HTTP_10,
        Version::HTTP_11,
        Version::HTTP_2,
        Version::HTTP_3,
    ] {
        let request = Request::get("/v").version(version).body(()).unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let versions: Vec<Value> = finished(&exporter)
        .iter()
        .map(|s| attribute(s, "network.protocol.version").unwrap().clone())
        .collect();
    assert_eq!(
        versions,
        ["0.9", "1.0", "1.1", "2", "3"].map(Value::from).to_vec()
    );
}

#[tokio::test]
async fn an_inner_service_error_marks_the_server_span_failed() {
    let (provider, exporter) = provider();
    let failing = service_fn(|_request: Request<()>| async {
        Err::<Response<Full<Bytes>>, _>("connection reset")
    });
    let service = HttpTraceLayer::new(&provider).layer(failing);
    let error = service
        .oneshot(Request::get("/x").body(()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error, "connection reset");

    let spans = finished(&exporter);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].status, Status::error("service error"));
    assert_eq!(
        attribute(&spans[0], "error.type"),
        Some(&Value::from("service error"))
    );
    assert_eq!(attribute(&spans[0], "http.response.status_code"), None);
}

#[tokio::test]
async fn a_caller_that_goes_away_before_the_response_ends_the_span_as_cancelled() {
    let (provider, exporter) = provider();
    let never = service_fn(|_request: Request<()>| async {
        std::future::pending::<()>().await;
        Ok::<Response<Full<Bytes>>, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let mut service = HttpTraceLayer::new(&provider).layer(never);
    let mut future = Box::pin(service.call(Request::get("/slow").body(()).unwrap()));
    // Poll once so the request is in flight, then drop it: the client left.
    poll_fn(|cx| {
        assert!(future.as_mut().poll(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    assert!(finished(&exporter).is_empty(), "the span is still open");
    drop(future);

    let spans = finished(&exporter);
    assert_eq!(spans.len(), 1);
    assert_eq!(
        attribute(&spans[0], "error.type"),
        Some(&Value::from("cancelled"))
    );
    // Cancellation is not a server failure.
    assert_eq!(spans[0].status, Status::Unset);
}

#[tokio::test]
async fn the_server_span_stays_open_until_a_streamed_body_ends() {
    let (provider, exporter) = provider();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    let rx = std::sync::Mutex::new(Some(rx));
    let streaming = service_fn(move |_request: Request<()>| {
        let rx = rx.lock().unwrap().take().unwrap();
        async move { Ok::<_, Infallible>(Response::new(ChannelBody(rx))) }
    });
    let service = HttpTraceLayer::new(&provider).layer(streaming);
    let response = service
        .oneshot(Request::get("/events").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = pin!(response.into_body());
    assert!(!http_body::Body::is_end_stream(&*body));

    tx.send(Bytes::from_static(b"one")).await.unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "one");
    assert!(
        finished(&exporter).is_empty(),
        "the head went out but the body has not ended"
    );

    drop(tx);
    assert!(body.frame().await.is_none());
    let spans = finished(&exporter);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].status, Status::Unset);
    assert_eq!(
        attribute(&spans[0], "http.response.status_code"),
        Some(&Value::from(200_i64))
    );
}

/// A response body fed frame by frame through a channel: it ends when the
/// sender is dropped.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|data| data.map(|data| Ok(http_body::Frame::data(data))))
    }
}

#[tokio::test]
async fn client_spans_mark_4xx_responses_as_errors() {
    let (provider, exporter) = provider();
    let downstream = service_fn(|_request: Request<()>| async {
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::NOT_FOUND;
        Ok::<_, Infallible>(response)
    });
    let client = PropagateLayer::new(&provider).layer(downstream);
    let response = client
        .oneshot(
            Request::get("http://api.internal/missing")
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let spans = finished(&exporter);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].span_kind, SpanKind::Client);
    // Client spans: a 4xx is a failed call (unlike server spans).
    assert_eq!(spans[0].status, Status::error(""));
    assert_eq!(
        attribute(&spans[0], "error.type"),
        Some(&Value::from("404"))
    );
    assert_eq!(
        attribute(&spans[0], "server.address"),
        Some(&Value::from("api.internal"))
    );
}

#[tokio::test]
async fn client_spans_record_transport_errors() {
    let (provider, exporter) = provider();
    let unreachable =
        service_fn(|_request: Request<()>| async { Err::<Response<()>, _>("connection refused") });
    let client = PropagateLayer::new(&provider).layer(unreachable);
    let error = client
        .oneshot(Request::get("http://down.internal/").body(()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error, "connection refused");

    let spans = finished(&exporter);
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].status, Status::error("transport error"));
    assert_eq!(
        attribute(&spans[0], "error.type"),
        Some(&Value::from("transport"))
    );
}

#[tokio::test]
async fn a_client_call_dropped_in_flight_ends_its_span_as_cancelled() {
    let (provider, exporter) = provider();
    let never = service_fn(|_request: Request<()>| async {
        std::future::pending::<()>().await;
        Ok::<Response<()>, Infallible>(Response::new(()))
    });
    let mut client = PropagateLayer::new(&provider).layer(never);
    let future = client.call(Request::get("http://slow.internal/").body(()).unwrap());
    drop(future);

    let spans = finished(&exporter);
    assert_eq!(spans.len(), 1);
    assert_eq!(
        attribute(&spans[0], "error.type"),
        Some(&Value::from("cancelled"))
    );
}

#[tokio::test]
async fn a_relative_client_uri_has_no_url_or_server_attributes() {
    let (provider, exporter) = provider();
    let downstream =
        service_fn(|_request: Request<()>| async { Ok::<_, Infallible>(Response::new(())) });
    let client = PropagateLayer::new(&provider).layer(downstream);
    client
        .oneshot(Request::get("/relative").body(()).unwrap())
        .await
        .unwrap();
    let spans = finished(&exporter);
    assert_eq!(attribute(&spans[0], "url.full"), None);
    assert_eq!(attribute(&spans[0], "server.address"), None);
    assert_eq!(attribute(&spans[0], "server.port"), None);
    assert_eq!(spans[0].status, Status::Unset);
}
