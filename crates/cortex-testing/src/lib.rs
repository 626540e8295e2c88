//! Test support shared by the Cortex crates (never a dependency of a
//! library, only of tests).
//!
//! [`cost`] counts what a tower HTTP service allocates per request: a few
//! uncounted warm-up requests, then [`REQUESTS`] counted ones on a
//! current-thread runtime ([`runtime`]), each cloning the service (as a
//! server does), calling it and reading the body to its end. Each crate's
//! `tests/allocations.rs` measures a route with and without its layer and
//! asserts the difference ([`report`]), a count rather than a time, so a
//! regression fails CI on any machine.
//!
//! ```
//! use bytes::Bytes;
//! use cortex_testing::{cost, runtime};
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tower::service_fn;
//!
//! let rt = runtime();
//! let service = service_fn(|_: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
//! });
//! let spent = cost(&rt, &service, || Request::new(()), |_| {});
//! // A response with a static body allocates nothing but its header map.
//! assert!(spent.per_request() <= 1, "{spent:?}");
//! ```

use std::fmt::Debug;

pub use allocation_counter::{AllocationInfo, measure};
use http::{Request, Response};
use http_body_util::BodyExt;
use tokio::runtime::Runtime;
use tower::{Service, ServiceExt};

/// Requests made before counting: lazy statics, callsite and label
/// interning, the first series, buffers that grow once.
pub const WARM_UP: u64 = 10;
/// Requests counted.
pub const REQUESTS: u64 = 100;

/// What `REQUESTS` requests through one stack allocated, response bodies
/// read to the end and dropped.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Allocations made by all counted requests together.
    pub allocations: u64,
    /// Bytes allocated by all counted requests together.
    pub bytes: u64,
}

impl Cost {
    /// Allocations per request.
    pub fn per_request(self) -> i64 {
        i64::try_from(self.allocations / REQUESTS).unwrap()
    }

    /// Bytes allocated per request.
    pub fn bytes_per_request(self) -> i64 {
        i64::try_from(self.bytes / REQUESTS).unwrap()
    }
}

/// One thread, no worker threads: everything a request does is counted on
/// the test's thread.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Counts what `REQUESTS` requests through `service` allocate, after
/// `WARM_UP` uncounted ones; every counted request must allocate exactly as
/// many times as the others.
pub fn cost<S, ReqB, ResB>(
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
pub fn counted<S, ReqB, ResB>(
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

/// One request through `service`: `check` on the response, then its body
/// read to the end and dropped (what [`counted`] measures, uncounted).
pub async fn serve<S, ReqB, ResB>(
    service: S,
    request: Request<ReqB>,
    check: &impl Fn(&Response<ResB>),
) where
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
pub fn report(layer: &str, without: Cost, with: Cost) -> i64 {
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
