//! `HealthRegistry::check_all` over 10 checks, cached and uncached. No peer
//! crate offers the same (parallel, isolated, cached) semantics, so these
//! are absolute numbers.

use std::hint::black_box;
use std::time::Duration;

use cortex_health::{CheckOptions, HealthCheckResult, HealthRegistry, health_fn};
use criterion::{Criterion, criterion_group, criterion_main};

fn registry(cache_ttl: Duration) -> HealthRegistry {
    let health = HealthRegistry::new();
    for i in 0..10 {
        health
            .register_with(
                &format!("check_{i}"),
                health_fn(|| async { HealthCheckResult::up() }),
                CheckOptions::new().cache_ttl(cache_ttl),
            )
            .unwrap();
    }
    health
}

fn check_all(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("health_check_all_10");
    let cached = registry(Duration::from_secs(3600));
    group.bench_function("cached", |b| {
        b.iter(|| runtime.block_on(async { black_box(cached.check_all().await) }))
    });
    let uncached = registry(Duration::ZERO);
    group.bench_function("uncached", |b| {
        b.iter(|| runtime.block_on(async { black_box(uncached.check_all().await) }))
    });
    group.finish();
}

criterion_group!(benches, check_all);
criterion_main!(benches);
