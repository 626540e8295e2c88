//! Heap allocations per request of cortex-resilience's HTTP layers (#16):
//! a count, not a time, so a regression fails CI on any machine, however
//! loaded.
//!
//! Each stack is a policy's `http_layer()` (the pipeline's, the response
//! cache's `layer()`) around a `service_fn` answering a small JSON body,
//! measured without the layer and with it in the same test; the assertion
//! is on the difference (the layer's own cost). No policy ever rejects
//! here: this is the cost of the path every request takes. Counts are per
//! thread (`allocation_counter`) on a current-thread runtime, so other
//! tests running at the same time are not counted.
//!
//! `cargo test -p cortex-resilience --test allocations -- --nocapture`
//! prints the numbers.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::{Ready, ready};
use std::time::Duration;

use bytes::Bytes;
use cortex_resilience::{
    Backoff, Bulkhead, CircuitBreaker, Pipeline, RateLimiter, ResponseCache, Retry, Timeout,
};
use cortex_testing::{
    AllocationInfo, Cost, REQUESTS, WARM_UP, cost, counted, report, runtime, serve,
};
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use tower::{Layer, Service, service_fn};

// Allocations per request of each layer over the bare service. Lowering
// any of them is welcome; raising one needs a reason.

/// `Bulkhead::http_layer()`, room to spare: none.
const BULKHEAD: i64 = 0;
/// `Timeout::http_layer()`, 30 s, never reached: none (tokio's `Sleep`
/// lives in the future).
const TIMEOUT: i64 = 0;
/// `Retry::http_layer()`, three attempts, never needed: the retry
/// predicate's `Vec<StatusCode>` cloned twice, with the service (a server
/// clones it per request, as this test does) and in `call`
/// (`src/retry/service.rs`, `self.predicate.clone()`); the boxed future
/// (`Box::pin` there, about 2 KB); the request's URI cloned for replay (a
/// URI parsed from a `&str`, as here, is a `Bytes` that allocates when it
/// is first shared).
const RETRY: i64 = 4;
/// `CircuitBreaker::http_layer()`, closed: none.
const CIRCUIT_BREAKER: i64 = 0;
/// `RateLimiter::http_layer()`, limit never reached: the three
/// `RateLimit-*` headers added to every success
/// (`src/http/rejection.rs`, `insert_rate_limit_headers`), one allocation
/// each for its value (the names are constants). Was 9: names copied from
/// a `&str` and `HeaderValue::from(u64)`'s two allocations per value.
const RATE_LIMITER: i64 = 3;
/// The standard pipeline's `build_http().http_layer()`: bulkhead, total
/// timeout, retry, breaker, attempt timeout. As `Retry` (the same four:
/// `src/pipeline/service.rs` boxes one future for the whole pipeline).
const PIPELINE: i64 = 4;
/// `ResponseCache::layer()` answering a HIT (counted per hit), over the
/// bare service rendering the response itself (which a HIT never calls).
/// The boxed lookup future (`src/cache/service.rs`, about 5.8 KB); the
/// key, `format!`ed then made an `Arc<str>` (`src/cache/response.rs`,
/// `HttpKey::primary`: three); ten in http-cache-semantics'
/// `before_request`, which builds a whole response head (headers copied,
/// `Age` and `Date` formatted, the map grown twice) that the lookup
/// (`src/cache/lookup.rs`, `BeforeRequest::Fresh(_)`) throws away; then
/// the stored headers cloned (two), `Age` (two) and `X-Cache` inserted
/// (one growth) by `CachedResponse::respond`.
const RESPONSE_CACHE_HIT: i64 = 17;

#[test]
fn bulkhead_http_layer() {
    let policy = Bulkhead::builder("alloc")
        .max_concurrent_calls(1_000)
        .build()
        .unwrap();
    assert_layer_cost("Bulkhead", policy.http_layer(), BULKHEAD);
}

#[test]
fn timeout_http_layer() {
    let policy = Timeout::builder("alloc")
        .timeout_duration(Duration::from_secs(30))
        .build()
        .unwrap();
    assert_layer_cost("Timeout", policy.http_layer(), TIMEOUT);
}

#[test]
fn retry_http_layer() {
    let policy = Retry::builder("alloc").max_attempts(3).build().unwrap();
    assert_layer_cost("Retry", policy.http_layer(), RETRY);
}

#[test]
fn circuit_breaker_http_layer() {
    let policy = CircuitBreaker::builder("alloc").build().unwrap();
    assert_layer_cost("CircuitBreaker", policy.http_layer(), CIRCUIT_BREAKER);
}

#[test]
fn rate_limiter_http_layer() {
    let policy = RateLimiter::builder("alloc")
        .permits(100_000_000, Duration::from_secs(1))
        .burst(100_000_000)
        .build()
        .unwrap();
    assert_layer_cost("RateLimiter", policy.http_layer(), RATE_LIMITER);
}

#[test]
fn standard_pipeline_http_layer() {
    let pipeline = Pipeline::builder()
        .bulkhead(
            Bulkhead::builder("alloc")
                .max_concurrent_calls(1_000)
                .build()
                .unwrap(),
        )
        .timeout(
            Timeout::builder("alloc-total")
                .timeout_duration(Duration::from_secs(30))
                .build()
                .unwrap(),
        )
        .retry(
            Retry::builder("alloc")
                .max_attempts(3)
                .backoff(Backoff::Fixed {
                    delay: Duration::from_millis(10),
                })
                .build()
                .unwrap(),
        )
        .circuit_breaker(CircuitBreaker::builder("alloc").build().unwrap())
        .attempt_timeout(
            Timeout::builder("alloc-attempt")
                .timeout_duration(Duration::from_secs(10))
                .build()
                .unwrap(),
        )
        .build_http()
        .http_layer();
    assert_layer_cost("Pipeline (standard)", pipeline, PIPELINE);
}

#[test]
fn response_cache_hit() {
    let rt = runtime();
    let cache = ResponseCache::builder("alloc").build().unwrap();
    let bare = json_service();
    let layered = cache.layer().layer(json_service());
    let without = cost(&rt, &bare, get, ok);
    // The one MISS, before the warm-up: every request after it is a HIT.
    rt.block_on(serve(layered.clone(), get(), &|response| {
        assert_eq!(response.headers()["x-cache"], "MISS");
    }));
    let hit = |response: &Response<_>| {
        ok(response);
        assert_eq!(response.headers()["x-cache"], "HIT");
    };
    // moka applies its read log on the read that finds 64 reads pending or
    // 300 ms gone since the last time (about 190 allocations, once). Run
    // it between requests, uncounted, so each counted HIT is a HIT alone;
    // a machine stalled for 300 ms between the two can still trigger it,
    // so a few requests above the rest are tolerated, never below.
    let hits = counted(&rt, &layered, get, hit, || {
        rt.block_on(cache.run_pending_tasks());
    });
    let counts: Vec<u64> = hits.iter().map(|info| info.count_total).collect();
    let fewest = *counts.iter().min().unwrap();
    let typical: Vec<&AllocationInfo> = hits.iter().filter(|i| i.count_total == fewest).collect();
    assert!(
        typical.len() >= hits.len() - 3,
        "allocations varied between HITs: {counts:?}"
    );
    let with = Cost {
        allocations: fewest * REQUESTS,
        bytes: typical.iter().map(|info| info.bytes_total).sum::<u64>() * REQUESTS
            / typical.len() as u64,
    };
    let layer = report("ResponseCache (HIT)", without, with);
    // For the record: the same HITs with moka's maintenance where it falls.
    let amortized: u64 = counted(&rt, &layered, get, hit, || {})
        .iter()
        .map(|info| info.count_total)
        .sum();
    println!(
        "ResponseCache (HIT), moka's maintenance included: {:.1} allocations per HIT",
        amortized as f64 / REQUESTS as f64
    );
    let stats = cache.stats();
    assert_eq!(
        (stats.misses, stats.hits),
        (1, 2 * (WARM_UP + REQUESTS)),
        "one MISS, then only HITs"
    );
    assert_eq!(
        layer, RESPONSE_CACHE_HIT,
        "ResponseCache allocations per HIT"
    );
}

/// Counts the service alone and under `layer`, prints both and asserts the
/// layer's own allocations per request.
fn assert_layer_cost<L, ResB>(name: &str, layer: L, expected: i64)
where
    L: Layer<JsonService>,
    L::Service: Service<Request<Full<Bytes>>, Response = Response<ResB>> + Clone,
    <L::Service as Service<Request<Full<Bytes>>>>::Error: Debug,
    ResB: http_body::Body,
    ResB::Error: Debug,
{
    let rt = runtime();
    let bare = json_service();
    let layered = layer.layer(json_service());
    let without = cost(&rt, &bare, get, ok);
    let with = cost(&rt, &layered, get, ok);
    let allocations = report(name, without, with);
    assert_eq!(allocations, expected, "{name} allocations per request");
}

type Handler = fn(Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>>;
type JsonService = tower::util::ServiceFn<Handler>;

fn json_service() -> JsonService {
    service_fn(answer as Handler)
}

/// A small JSON body, from a static string, cacheable for an hour: the
/// handler allocates only its response's header map.
fn answer(_: Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>> {
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"id":"42"}"#)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=3600"),
    );
    ready(Ok(response))
}

fn get() -> Request<Full<Bytes>> {
    Request::get("/api/echo/42").body(Full::default()).unwrap()
}

fn ok<B>(response: &Response<B>) {
    assert_eq!(response.status(), StatusCode::OK);
}
