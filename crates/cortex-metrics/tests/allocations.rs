//! Heap allocations per request of `HttpMetricsLayer` (#16): a count, not
//! a time, so a regression fails CI on any machine, however loaded.
//!
//! The route is measured without the layer and with it, in the same test;
//! the assertion is on the difference (the layer's own cost), so an axum
//! or hyper upgrade that changes the baseline does not break it. Counts are
//! per thread (`allocation_counter`) on a current-thread runtime, so other
//! tests running at the same time are not counted.
//!
//! `cargo test -p cortex-metrics --test allocations -- --nocapture` prints
//! the numbers.

use std::fmt::Debug;

use allocation_counter::AllocationInfo;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use cortex_metrics::MetricsRegistry;
use cortex_metrics::http::HttpMetricsLayer;
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::runtime::Runtime;
use tower::{Service, ServiceExt};

/// `HttpMetricsLayer`'s allocations per request, over what the same route
/// allocates without it. All three are axum's, for any `Router::layer`
/// whose service wraps the response body: the layered route's boxed
/// service cloned per request (32 B), the layered future boxed, and the
/// wrapped body boxed into `axum::body::Body`. The layer itself allocates
/// nothing per request: its guard and the cloned `MatchedPath` (an
/// `Arc<str>`) live in the future and body, and the series of a label set
/// already seen are found, not created. Lowering it is welcome; raising it
/// needs a reason.
const HTTP_METRICS_LAYER: i64 = 3;

#[test]
fn http_metrics_layer() {
    let rt = runtime();
    let registry = MetricsRegistry::new();
    let bare = served(routes());
    let layered = served(routes().layer(HttpMetricsLayer::new(&registry).unwrap()));
    let request = || Request::get("/api/echo/42").body(Body::empty()).unwrap();
    let without = cost(&rt, &bare, request, ok);
    let with = cost(&rt, &layered, request, ok);
    let layer = report("HttpMetricsLayer", without, with);
    assert_eq!(
        layer, HTTP_METRICS_LAYER,
        "HttpMetricsLayer allocations per request"
    );
    // The layer did record: warm-up and counted requests alike.
    let text = registry.encode(cortex_metrics::Format::Prometheus);
    let count = format!(
        "http_server_request_duration_seconds_count{{http_request_method=\"GET\",http_route=\"/api/echo/{{id}}\",http_response_status_code=\"200\",url_scheme=\"http\"}} {}\n",
        WARM_UP + REQUESTS
    );
    assert!(text.contains(&count), "{text}");
}

/// One route answering a small JSON body, from a static string: the
/// handler itself allocates nothing.
fn routes() -> Router {
    Router::new().route(
        "/api/echo/{id}",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"id":"42"}"#,
            )
        }),
    )
}

/// `router` as `axum::serve` runs it: `into_make_service` calls
/// `with_state(())`, which turns each handler into its route once; a
/// router called without it does that again on every request.
fn served(router: Router) -> Router {
    router.with_state(())
}

fn ok<B>(response: &Response<B>) {
    assert_eq!(response.status(), StatusCode::OK);
}

// The harness below is the same in every crate's tests/allocations.rs.

/// Requests made before counting: lazy statics, callsite and label
/// interning, the first series, buffers that grow once.
const WARM_UP: u64 = 10;
/// Requests counted.
const REQUESTS: u64 = 100;

/// What `REQUESTS` requests through one stack allocated, response bodies
/// read to the end and dropped.
#[derive(Debug, Clone, Copy)]
struct Cost {
    allocations: u64,
    bytes: u64,
}

impl Cost {
    fn per_request(self) -> i64 {
        i64::try_from(self.allocations / REQUESTS).unwrap()
    }

    fn bytes_per_request(self) -> i64 {
        i64::try_from(self.bytes / REQUESTS).unwrap()
    }
}

/// One thread, no worker threads: everything a request does is counted on
/// the test's thread.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Counts what `REQUESTS` requests through `service` allocate, after
/// `WARM_UP` uncounted ones; every counted request must allocate exactly as
/// many times as the others.
fn cost<S, ReqB, ResB>(
    rt: &Runtime,
    service: &S,
    request: impl Fn() -> Request<ReqB>,
    check: impl Fn(&Response<ResB>),
) -> Cost
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    S::Error: Debug,
    ResB: http_body::Body,
    ResB::Error: Debug,
{
    let counted = counted(rt, service, request, check, || {});
    let counts: Vec<u64> = counted.iter().map(|info| info.count_total).collect();
    assert!(
        counts.iter().all(|&count| count == counts[0]),
        "allocations varied between requests: {counts:?}"
    );
    Cost {
        allocations: counts.iter().sum(),
        bytes: counted.iter().map(|info| info.bytes_total).sum(),
    }
}

/// What each of `REQUESTS` requests through `service` allocated, after
/// `WARM_UP` uncounted ones, with `between` (uncounted) before each.
/// Building the request is not counted; cloning the service (as a server
/// does per request), calling it, `check`, reading the body to its end and
/// dropping it all are.
fn counted<S, ReqB, ResB>(
    rt: &Runtime,
    service: &S,
    request: impl Fn() -> Request<ReqB>,
    check: impl Fn(&Response<ResB>),
    mut between: impl FnMut(),
) -> Vec<AllocationInfo>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone,
    S::Error: Debug,
    ResB: http_body::Body,
    ResB::Error: Debug,
{
    for _ in 0..WARM_UP {
        rt.block_on(serve(service.clone(), request(), &check));
    }
    (0..REQUESTS)
        .map(|_| {
            between();
            let request = request();
            allocation_counter::measure(|| {
                rt.block_on(serve(service.clone(), request, &check));
            })
        })
        .collect()
}

async fn serve<S, ReqB, ResB>(service: S, request: Request<ReqB>, check: &impl Fn(&Response<ResB>))
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Debug,
    ResB: http_body::Body,
    ResB::Error: Debug,
{
    let response = service.oneshot(request).await.unwrap();
    check(&response);
    let body = response.into_body().collect().await.unwrap();
    drop(std::hint::black_box(body));
}

/// Prints both costs and returns the layer's own allocations per request.
fn report(layer: &str, without: Cost, with: Cost) -> i64 {
    let allocations = with.per_request() - without.per_request();
    let bytes = with.bytes_per_request() - without.bytes_per_request();
    println!(
        "{layer}: without {} allocations ({} B), with {} ({} B): the layer {allocations} ({bytes} B) per request",
        without.per_request(),
        without.bytes_per_request(),
        with.per_request(),
        with.bytes_per_request(),
    );
    allocations
}
