//! Success-path overhead per call of each resilience policy against the
//! peer crates (tower-resilience, failsafe, governor and tower's own
//! layers), measured in the same run: `st` on a current-thread runtime,
//! `mt2` as two tasks on a two-worker runtime sharing one policy (the
//! number is wall time per call of both together, so contention shows).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cortex_resilience::{Bulkhead, CircuitBreaker, Pipeline, RateLimiter, Retry, Timeout};
mod common;
use common::{current_thread, two_workers};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use tower::{Layer, Service, ServiceExt, service_fn};

type Inner = tower::util::ServiceFn<fn(u64) -> Ready<Result<u64, Infallible>>>;

fn inner() -> Inner {
    service_fn(|n: u64| ready(Ok::<_, Infallible>(n)))
}

/// `iters` awaited calls inside one `block_on`, so entering the runtime
/// is not part of the per-call number.
macro_rules! single {
    ($group:expr, $name:expr, $rt:expr, $state:expr, |$s:ident| $call:expr) => {{
        let state = $state;
        $group.bench_function(concat!($name, "/st"), |b| {
            b.iter_custom(|iters| {
                #[allow(unused_mut)]
                let mut $s = state.clone();
                $rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let _ = black_box($call);
                    }
                    start.elapsed()
                })
            })
        });
    }};
}

/// Two spawned tasks on a two-worker runtime, each with its own clone of
/// the shared policy, making `iters / 2` calls each.
macro_rules! two_threads {
    ($group:expr, $name:expr, $rt:expr, $state:expr, |$s:ident| $call:expr) => {{
        let state = $state;
        $group.bench_function(concat!($name, "/mt2"), |b| {
            b.iter_custom(|iters| {
                let per_task = iters.div_ceil(2);
                $rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..2)
                        .map(|_| {
                            #[allow(unused_mut)]
                            let mut $s = state.clone();
                            tokio::spawn(async move {
                                for _ in 0..per_task {
                                    let _ = black_box($call);
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("bench task");
                    }
                    start.elapsed()
                })
            })
        });
    }};
}

/// Both variants for one implementation.
macro_rules! both {
    ($group:expr, $name:expr, $st:expr, $mt:expr, $state:expr, |$s:ident| $call:expr) => {{
        let state = $state;
        single!($group, $name, $st, state.clone(), |$s| $call);
        two_threads!($group, $name, $mt, state, |$s| $call);
    }};
}

#[derive(Clone)]
struct NeverRetry;

impl tower::retry::Policy<u64, u64, Infallible> for NeverRetry {
    type Future = Ready<()>;

    fn retry(&mut self, _: &mut u64, _: &mut Result<u64, Infallible>) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, request: &u64) -> Option<u64> {
        Some(*request)
    }
}

fn breaker(
    group: &mut BenchmarkGroup<'_, WallTime>,
    st: &tokio::runtime::Runtime,
    mt: &tokio::runtime::Runtime,
) {
    let ours = CircuitBreaker::builder("bench").build().expect("breaker");
    both!(group, "breaker/cortex-execute", st, mt, ours.clone(), |b| b
        .execute(|| async { Ok::<_, ()>(1u64) })
        .await);
    both!(
        group,
        "breaker/cortex-layer",
        st,
        mt,
        ours.layer().layer(inner()),
        |s| s.ready().await.expect("ready").call(1).await
    );
    let failsafe_breaker = failsafe::Config::new().build();
    both!(group, "breaker/failsafe", st, mt, failsafe_breaker, |b| {
        failsafe::futures::CircuitBreaker::call(&b, async { Ok::<_, ()>(1u64) }).await
    });
    let peer = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .build()
        .expect("tower-resilience breaker")
        .layer(inner());
    both!(group, "breaker/tower-resilience", st, mt, peer, |s| s
        .ready()
        .await
        .expect("ready")
        .call(1)
        .await);
}

fn bulkhead(
    group: &mut BenchmarkGroup<'_, WallTime>,
    st: &tokio::runtime::Runtime,
    mt: &tokio::runtime::Runtime,
) {
    let ours = Bulkhead::builder("bench").build().expect("bulkhead");
    both!(
        group,
        "bulkhead/cortex-execute",
        st,
        mt,
        ours.clone(),
        |b| b.execute(|| async { Ok::<_, ()>(1u64) }).await
    );
    both!(
        group,
        "bulkhead/cortex-layer",
        st,
        mt,
        ours.layer().layer(inner()),
        |s| s.ready().await.expect("ready").call(1).await
    );
    let tower_limit = tower::limit::ConcurrencyLimitLayer::new(25).layer(inner());
    both!(
        group,
        "bulkhead/tower-concurrency-limit",
        st,
        mt,
        tower_limit,
        |s| s.ready().await.expect("ready").call(1).await
    );
    let peer = tower_resilience::bulkhead::BulkheadLayer::builder()
        .max_concurrent_calls(25)
        .build()
        .expect("tower-resilience bulkhead")
        .layer(inner());
    both!(group, "bulkhead/tower-resilience", st, mt, peer, |s| s
        .ready()
        .await
        .expect("ready")
        .call(1)
        .await);
}

fn timeout(
    group: &mut BenchmarkGroup<'_, WallTime>,
    st: &tokio::runtime::Runtime,
    mt: &tokio::runtime::Runtime,
) {
    let ours = Timeout::builder("bench")
        .timeout_duration(Duration::from_secs(10))
        .build()
        .expect("timeout");
    both!(
        group,
        "timeout/cortex-layer",
        st,
        mt,
        ours.layer().layer(inner()),
        |s| s.ready().await.expect("ready").call(1).await
    );
    let tower_timeout = tower::timeout::TimeoutLayer::new(Duration::from_secs(10)).layer(inner());
    both!(group, "timeout/tower", st, mt, tower_timeout, |s| s
        .ready()
        .await
        .expect("ready")
        .call(1)
        .await);
    let peer = tower_resilience::timelimiter::TimeLimiterLayer::builder()
        .timeout_duration(Duration::from_secs(10))
        .build()
        .layer(inner());
    both!(group, "timeout/tower-resilience", st, mt, peer, |s| s
        .ready()
        .await
        .expect("ready")
        .call(1)
        .await);
}

fn retry(
    group: &mut BenchmarkGroup<'_, WallTime>,
    st: &tokio::runtime::Runtime,
    mt: &tokio::runtime::Runtime,
) {
    let ours = Retry::builder("bench").build().expect("retry");
    both!(group, "retry/cortex-execute", st, mt, ours.clone(), |r| r
        .execute(|| async { Ok::<_, ()>(1u64) })
        .await);
    both!(
        group,
        "retry/cortex-layer",
        st,
        mt,
        ours.layer().layer(inner()),
        |s| s.ready().await.expect("ready").call(1).await
    );
    let tower_retry = tower::retry::RetryLayer::new(NeverRetry).layer(inner());
    both!(group, "retry/tower", st, mt, tower_retry, |s| s
        .ready()
        .await
        .expect("ready")
        .call(1)
        .await);
    let peer = tower_resilience::retry::RetryLayer::<u64, u64, Infallible>::builder()
        .max_attempts(3)
        .build()
        .layer(inner());
    both!(group, "retry/tower-resilience", st, mt, peer, |s| s
        .ready()
        .await
        .expect("ready")
        .call(1)
        .await);
}

fn rate_limiter(
    group: &mut BenchmarkGroup<'_, WallTime>,
    st: &tokio::runtime::Runtime,
    mt: &tokio::runtime::Runtime,
) {
    let ours = RateLimiter::builder("bench")
        .permits(u32::MAX, Duration::from_secs(1))
        .build()
        .expect("limiter");
    both!(
        group,
        "ratelimiter/cortex-check",
        st,
        mt,
        ours.clone(),
        |l| l.check()
    );
    both!(
        group,
        "ratelimiter/cortex-try-acquire",
        st,
        mt,
        ours.clone(),
        |l| l.try_acquire()
    );
    both!(
        group,
        "ratelimiter/cortex-layer",
        st,
        mt,
        ours.layer().layer(inner()),
        |s| s.ready().await.expect("ready").call(1).await
    );
    let governor = Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(
        NonZeroU32::MAX,
    )));
    both!(group, "ratelimiter/governor-check", st, mt, governor, |g| g
        .check());
    let peer = tower_resilience::ratelimiter::RateLimiterLayer::builder()
        .limit_for_period(usize::MAX / 2)
        .refresh_period(Duration::from_secs(1))
        .build()
        .expect("tower-resilience limiter")
        .layer(inner());
    both!(group, "ratelimiter/tower-resilience", st, mt, peer, |s| s
        .ready()
        .await
        .expect("ready")
        .call(1)
        .await);
}

fn pipeline(
    group: &mut BenchmarkGroup<'_, WallTime>,
    st: &tokio::runtime::Runtime,
    mt: &tokio::runtime::Runtime,
) {
    let ours = Pipeline::builder()
        .rate_limiter(
            RateLimiter::builder("bench")
                .permits(u32::MAX, Duration::from_secs(1))
                .build()
                .expect("limiter"),
        )
        .bulkhead(Bulkhead::builder("bench").build().expect("bulkhead"))
        .timeout(
            Timeout::builder("total")
                .timeout_duration(Duration::from_secs(10))
                .build()
                .expect("timeout"),
        )
        .retry(Retry::builder("bench").build().expect("retry"))
        .circuit_breaker(CircuitBreaker::builder("bench").build().expect("breaker"))
        .attempt_timeout(
            Timeout::builder("attempt")
                .timeout_duration(Duration::from_secs(5))
                .build()
                .expect("timeout"),
        )
        .build();
    let execute = Arc::new(ours.clone());
    both!(group, "pipeline/cortex-execute", st, mt, execute, |p| {
        cortex_resilience::PolicyExt::execute(&*p, || async { Ok::<_, ()>(1u64) }).await
    });
    both!(
        group,
        "pipeline/cortex-layer",
        st,
        mt,
        ours.layer().layer(inner()),
        |s| s.ready().await.expect("ready").call(1).await
    );
    let peer = tower::ServiceBuilder::new()
        .layer(
            tower_resilience::ratelimiter::RateLimiterLayer::builder()
                .limit_for_period(usize::MAX / 2)
                .refresh_period(Duration::from_secs(1))
                .build()
                .expect("limiter"),
        )
        .layer(
            tower_resilience::bulkhead::BulkheadLayer::builder()
                .max_concurrent_calls(25)
                .build()
                .expect("bulkhead"),
        )
        .layer(
            tower_resilience::timelimiter::TimeLimiterLayer::builder()
                .timeout_duration(Duration::from_secs(10))
                .build(),
        )
        .layer(
            tower_resilience::retry::RetryLayer::builder()
                .max_attempts(3)
                .build(),
        )
        .layer(
            tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
                .build()
                .expect("breaker"),
        )
        .layer(
            tower_resilience::timelimiter::TimeLimiterLayer::builder()
                .timeout_duration(Duration::from_secs(5))
                .build(),
        )
        .service(inner());
    both!(group, "pipeline/tower-resilience", st, mt, peer, |s| s
        .ready()
        .await
        .expect("ready")
        .call(1)
        .await);
}

fn resilience(c: &mut Criterion) {
    let st = current_thread();
    let mt = two_workers();
    let mut group = c.benchmark_group("resilience");
    breaker(&mut group, &st, &mt);
    bulkhead(&mut group, &st, &mt);
    timeout(&mut group, &st, &mt);
    retry(&mut group, &st, &mt);
    rate_limiter(&mut group, &st, &mt);
    pipeline(&mut group, &st, &mt);
    group.finish();
}

criterion_group!(benches, resilience);
criterion_main!(benches);
