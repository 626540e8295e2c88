//! HTTP adapter edge cases: the bulkhead's 503 problem and its queue over
//! HTTP, request bodies that break off while being buffered for replay,
//! and how the keyed limiter's extractors pick a key (client address with
//! and without `ConnectInfo`, a missing header, the matched route).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::{get, put};
use bytes::Bytes;
use cortex_resilience::{
    Backoff, Bulkhead, ClientIp, Clock, GlobalKey, HeaderKey, KeyExtractor, Pipeline,
    PolicyRejection, RateLimiter, Retry, RouteKey,
};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn problem(response: Response<impl http_body::Body<Error: std::fmt::Debug>>) -> Value {
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn a_full_bulkhead_answers_503_problem_json_without_retry_after() {
    let bulkhead = Bulkhead::builder("db")
        .max_concurrent_calls(1)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(bulkhead.http_layer());
    let held = bulkhead.try_acquire().unwrap();
    let response = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get(header::RETRY_AFTER).is_none());
    assert_eq!(
        response.extensions().get::<PolicyRejection>(),
        Some(&PolicyRejection::BulkheadFull)
    );
    let body = problem(response).await;
    assert_eq!(body["status"], 503);
    assert_eq!(body["policy"], "bulkhead");
    assert_eq!(bulkhead.stats().rejected_total, 1);

    drop(held);
    let response = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_with_a_queue_holds_a_request_until_a_permit_frees() {
    let bulkhead = Bulkhead::builder("db")
        .max_concurrent_calls(1)
        .max_queue(1)
        .max_wait(Duration::from_secs(5))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(bulkhead.http_layer());
    let held = bulkhead.try_acquire().unwrap();
    let queued = tokio::spawn(
        app.clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap()),
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(bulkhead.stats().queued, 1);
    assert!(!queued.is_finished());
    drop(held);
    let response = queued.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // A queued request whose wait runs out is rejected like a full one.
    let held = bulkhead.try_acquire().unwrap();
    let response = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(held);
}

/// A request body that yields some data and then fails, like a client
/// that disconnects mid-upload.
struct BreaksOff {
    sent: bool,
}

impl From<Bytes> for BreaksOff {
    fn from(_: Bytes) -> Self {
        Self { sent: false }
    }
}

impl http_body::Body for BreaksOff {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.sent {
            return Poll::Ready(Some(Err(std::io::Error::other("connection reset"))));
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{\"partial\"")))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(64)
    }
}

fn counting_service(
    calls: &Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<BreaksOff>,
    Response = Response<String>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    let calls = Arc::clone(calls);
    tower::service_fn(move |_: Request<BreaksOff>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, std::convert::Infallible>(Response::new("stored".to_owned())) }
    })
}

fn broken_put() -> Request<BreaksOff> {
    Request::put("/orders/1")
        .body(BreaksOff { sent: false })
        .unwrap()
}

fn quick_retry() -> Retry {
    Retry::builder("orders")
        .backoff(Backoff::Fixed {
            delay: Duration::from_millis(1),
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_body_that_breaks_off_while_buffered_for_retry_is_a_400_problem() {
    let calls = Arc::new(AtomicUsize::new(0));
    let retry = quick_retry().http_layer();
    let response = tower::Layer::layer(&retry, counting_service(&calls))
        .oneshot(broken_put())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = problem(response).await;
    assert_eq!(body["detail"], "request body could not be read");
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the service never saw it");
}

#[tokio::test]
async fn a_body_that_breaks_off_while_buffered_by_a_retrying_pipeline_is_a_400_problem() {
    let calls = Arc::new(AtomicUsize::new(0));
    let pipeline = Pipeline::builder().retry(quick_retry()).build_http();
    let response = tower::Layer::layer(&pipeline.http_layer(), counting_service(&calls))
        .oneshot(broken_put())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(problem(response).await["status"], 400);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_pipeline_without_retry_streams_the_body_to_the_service_unbuffered() {
    let calls = Arc::new(AtomicUsize::new(0));
    let pipeline = Pipeline::builder()
        .bulkhead(Bulkhead::builder("orders").build().unwrap())
        .build_http();
    let response = tower::Layer::layer(&pipeline.http_layer(), counting_service(&calls))
        .oneshot(broken_put())
        .await
        .unwrap();
    // Nothing buffers the body, so its failure is the service's business.
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

fn with_peer(address: &str) -> Request<()> {
    let mut request = Request::new(());
    let peer: SocketAddr = address.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

#[test]
fn client_ip_without_connect_info_or_trusted_forwarded_for_has_no_key() {
    let mut request = Request::new(());
    assert_eq!(ClientIp::new().extract(&request), None);
    // Without trusted proxies X-Forwarded-For is ignored: it can be forged.
    request
        .headers_mut()
        .insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    assert_eq!(ClientIp::new().extract(&request), None);
    assert_eq!(
        ClientIp::new().trusted_proxies(1).extract(&request),
        Some("203.0.113.9".parse().unwrap())
    );
    // A forged, unparsable hop falls back to the (absent) peer.
    request
        .headers_mut()
        .insert("x-forwarded-for", "not-an-ip".parse().unwrap());
    assert_eq!(ClientIp::new().trusted_proxies(1).extract(&request), None);
}

#[test]
fn client_ip_reads_every_x_forwarded_for_header_as_one_list() {
    let mut request = with_peer("10.0.0.1:1");
    request
        .headers_mut()
        .append("x-forwarded-for", "198.51.100.7".parse().unwrap());
    request
        .headers_mut()
        .append("x-forwarded-for", "10.1.1.1".parse().unwrap());
    assert_eq!(
        ClientIp::new().trusted_proxies(2).extract(&request),
        Some("198.51.100.7".parse().unwrap())
    );
}

#[test]
fn client_ip_keys_ipv6_clients_by_prefix_and_mapped_ipv4_as_ipv4() {
    let host = with_peer("[2001:db8:1:2:3:4:5:6]:443");
    let neighbour = with_peer("[2001:db8:1:2:ffff::1]:443");
    let default = ClientIp::new();
    assert_eq!(default.extract(&host), default.extract(&neighbour));

    let exact = ClientIp::new().ipv6_prefix(128);
    assert_eq!(
        exact.extract(&host),
        Some("2001:db8:1:2:3:4:5:6".parse().unwrap())
    );
    assert_ne!(exact.extract(&host), exact.extract(&neighbour));
    // Prefixes past 128 bits are clamped to the whole address.
    assert_eq!(
        ClientIp::new().ipv6_prefix(200).extract(&host),
        exact.extract(&host)
    );
    // A /0 prefix puts every IPv6 client in one budget.
    assert_eq!(
        ClientIp::new().ipv6_prefix(0).extract(&host),
        Some("::".parse().unwrap())
    );

    let mapped = with_peer("[::ffff:192.0.2.33]:80");
    assert_eq!(
        default.extract(&mapped),
        Some("192.0.2.33".parse().unwrap()),
        "a dual-stack socket's IPv4 client shares the IPv4 client's budget"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_ip_limiter_over_http_gives_each_peer_its_own_budget() {
    let per_client = RateLimiter::builder("per-client")
        .clock(Clock::tokio())
        .permits(1, Duration::from_secs(60))
        .build_keyed()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(per_client.http_layer(ClientIp::new()));
    let from = |peer: &str| {
        let mut request = Request::get("/").body(Body::empty()).unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    };
    let status = |response: Response<_>| response.status();
    let first = app.clone().oneshot(from("192.0.2.1:1000")).await.unwrap();
    assert_eq!(status(first), StatusCode::OK);
    // Another connection from the same address shares the budget.
    let again = app.clone().oneshot(from("192.0.2.1:2000")).await.unwrap();
    assert_eq!(status(again), StatusCode::TOO_MANY_REQUESTS);
    let other = app.clone().oneshot(from("192.0.2.2:1000")).await.unwrap();
    assert_eq!(status(other), StatusCode::OK);
    // Served without ConnectInfo, every request lands in the overflow budget.
    let anonymous = Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(
        status(app.clone().oneshot(anonymous).await.unwrap()),
        StatusCode::OK
    );
    let anonymous = Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(
        status(app.oneshot(anonymous).await.unwrap()),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(per_client.len(), 2);
}

#[test]
fn a_missing_or_binary_header_keys_as_expected() {
    let key = HeaderKey::new("x-api-key".parse().unwrap());
    assert_eq!(key.extract(&Request::new(())), None);
    let mut request = Request::new(());
    request.headers_mut().insert(
        "x-api-key",
        header::HeaderValue::from_bytes(b"k\xffy").unwrap(),
    );
    assert_eq!(key.extract(&request), Some(b"k\xffy".to_vec()));
    assert_eq!(GlobalKey.extract(&request), Some(()));
}

#[tokio::test(start_paused = true)]
async fn a_route_key_limiter_shares_one_budget_per_route_template() {
    let per_route = RateLimiter::builder("per-route")
        .clock(Clock::tokio())
        .permits(1, Duration::from_secs(60))
        .build_keyed()
        .unwrap();
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/orders", put(|| async { "order" }))
        .layer(per_route.http_layer(RouteKey));
    let get_path = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let first = app.clone().oneshot(get_path("/users/1")).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second_user = app.clone().oneshot(get_path("/users/2")).await.unwrap();
    assert_eq!(
        second_user.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "/users/1 and /users/2 are one route"
    );
    let orders = Request::put("/orders").body(Body::empty()).unwrap();
    assert_eq!(app.oneshot(orders).await.unwrap().status(), StatusCode::OK);
    assert_eq!(per_route.len(), 2);
    // Outside a router there is no matched path, so no key.
    assert_eq!(RouteKey.extract(&Request::new(())), None);
}

#[tokio::test(start_paused = true)]
async fn a_keyed_limiter_admits_a_known_key_while_its_burst_lasts_and_never_an_oversized_weight() {
    let per_key = RateLimiter::builder("burst")
        .clock(Clock::tokio())
        .permits(2, Duration::from_secs(60))
        .burst(2)
        .build_keyed::<&str>()
        .unwrap();
    assert!(per_key.is_empty());
    assert!(per_key.check(Some(&"alice")).allowed);
    let second = per_key.check(Some(&"alice"));
    assert!(second.allowed, "the burst has room for two");
    assert_eq!(second.remaining, 0);
    assert!(!per_key.check(Some(&"alice")).allowed);

    let heavy = per_key.check_n(Some(&"bob"), 3);
    assert!(!heavy.allowed, "heavier than the whole burst");
    assert_eq!(per_key.len(), 1, "a rejected new key is not stored");
    assert!(!per_key.is_empty());
    let stats = per_key.stats();
    assert_eq!((stats.permitted_total, stats.rejected_total), (2, 2));
}
