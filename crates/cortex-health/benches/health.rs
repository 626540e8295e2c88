//! `check_all` over 10 cached checks, and one uncached run:
//! `cargo bench -p cortex-health`.

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
    let cached = registry(Duration::from_secs(3600));
    c.bench_function("check_all_10_cached", |b| {
        b.iter(|| runtime.block_on(async { black_box(cached.check_all().await) }))
    });
    let uncached = registry(Duration::ZERO);
    c.bench_function("check_all_10_uncached", |b| {
        b.iter(|| runtime.block_on(async { black_box(uncached.check_all().await) }))
    });
}

criterion_group!(benches, check_all);
criterion_main!(benches);
