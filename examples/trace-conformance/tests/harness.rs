//! The service's side of the harness protocol (calls in order before the
//! reply, bodies forwarded, a fresh parent per call, unreachable callbacks
//! tolerated). The suite's own cases are in `w3c_suite/`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use http::HeaderMap;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>, String)>>>;

async fn spawn(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn callback_server() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/callback",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, body: String| async move {
                    let get = |name: &str| {
                        let values: Vec<&str> = headers
                            .get_all(name)
                            .iter()
                            .filter_map(|v| v.to_str().ok())
                            .collect();
                        (!values.is_empty()).then(|| values.join(","))
                    };
                    seen.lock()
                        .unwrap()
                        .push((get("traceparent"), get("tracestate"), body));
                    "ok"
                },
            ),
        )
        .with_state(Arc::clone(&seen));
    (spawn(app).await, seen)
}

async fn post_test(service: SocketAddr, extra_headers: &str, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(service).await.unwrap();
    let request = format!(
        "POST /test HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

fn steps(callback: SocketAddr) -> String {
    format!(
        r#"[{{"url": "http://{callback}/callback", "arguments": [1]}},
            {{"url": "http://{callback}/callback", "arguments": [{{"url": "x", "arguments": []}}]}}]"#
    )
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn continues_the_trace_with_a_fresh_parent_per_call() {
    let provider = SdkTracerProvider::builder().build();
    let service = spawn(trace_conformance::app(&provider)).await;
    let (callback, seen) = callback_server().await;

    let headers = format!(
        "traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-03\r\ntracestate: foo=1\r\ntracestate: bar=2\r\n"
    );
    let response = post_test(service, &headers, &steps(callback)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "both calls made before the reply, in order");
    let mut parents = Vec::new();
    for (traceparent, tracestate, _) in &seen {
        let traceparent = traceparent.as_deref().unwrap();
        let fields: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(fields[0], "00");
        assert_eq!(fields[1], TRACE_ID, "same trace");
        assert_ne!(fields[2], "00f067aa0ba902b7", "a new parent id");
        assert_eq!(fields[3], "03", "sampled and random flags preserved");
        assert_eq!(tracestate.as_deref(), Some("foo=1,bar=2"));
        parents.push(fields[2].to_owned());
    }
    assert_ne!(parents[0], parents[1], "a fresh parent id per call");
    assert_eq!(seen[0].2, "[1]");
    assert_eq!(seen[1].2, r#"[{"arguments":[],"url":"x"}]"#);
}

#[tokio::test]
async fn unsampled_traces_stay_unsampled() {
    let provider = SdkTracerProvider::builder().build();
    let service = spawn(trace_conformance::app(&provider)).await;
    let (callback, seen) = callback_server().await;
    let headers = format!("traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-00\r\n");
    post_test(service, &headers, &steps(callback)).await;
    for (traceparent, _, _) in seen.lock().unwrap().iter() {
        let traceparent = traceparent.as_deref().unwrap();
        assert!(
            traceparent.starts_with(&format!("00-{TRACE_ID}-")),
            "{traceparent}"
        );
        assert!(traceparent.ends_with("-00"), "{traceparent}");
    }
}

#[tokio::test]
async fn invalid_or_duplicated_traceparents_start_a_new_trace_without_tracestate() {
    let provider = SdkTracerProvider::builder().build();
    let service = spawn(trace_conformance::app(&provider)).await;
    for headers in [
        format!(
            "traceparent: 00-{TRACE_ID}-00f067aa0ba902b7-01\r\ntraceparent: 00-{TRACE_ID}-00f067aa0ba902b7-01\r\ntracestate: foo=1\r\n"
        ),
        format!("traceparent: ff-{TRACE_ID}-00f067aa0ba902b7-01\r\ntracestate: foo=1\r\n"),
        format!(
            "traceparent: 00-{}-00f067aa0ba902b7-01\r\ntracestate: foo=1\r\n",
            TRACE_ID.to_uppercase()
        ),
    ] {
        let (callback, seen) = callback_server().await;
        post_test(service, &headers, &steps(callback)).await;
        for (traceparent, tracestate, _) in seen.lock().unwrap().iter() {
            let traceparent = traceparent.as_deref().unwrap();
            assert!(
                !traceparent.contains(TRACE_ID),
                "{headers:?} -> {traceparent}"
            );
            assert_eq!(tracestate, &None, "{headers:?}");
        }
    }
}

#[tokio::test]
async fn an_unreachable_callback_does_not_fail_the_test_request() {
    let provider = SdkTracerProvider::builder().build();
    let service = spawn(trace_conformance::app(&provider)).await;
    let body =
        r#"[{"url": "http://127.0.0.1:9/nothing-listens", "arguments": []}, {"url": "not a url"}]"#;
    let response = post_test(service, "", body).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
