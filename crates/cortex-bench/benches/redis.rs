//! A shared rate-limit check on Redis: cortex-resilience's
//! `DistributedRateLimiter::check` vs the same GCRA script called raw
//! (`redis::Script`, EVALSHA) on a connection manager of its own, against
//! the same loopback `redis-server`, one check at a time (a round trip
//! each), same run. The limit is never reached, so every check is the
//! allowed path; keys are distinct per contender.
//!
//! Needs `CORTEX_BENCH_REDIS_URL`: `cargo xtask bench` starts a
//! `redis-server` on a free loopback port and sets it. Without it the
//! bench measures nothing and says so.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use cortex_resilience::{DistributedRateLimiter, RedisFallback};

/// The script the limiter runs, for the raw contender.
const GCRA: &str = include_str!("../../cortex-resilience/src/ratelimit/gcra.lua");

fn redis_check(c: &mut Criterion) {
    let Ok(url) = std::env::var("CORTEX_BENCH_REDIS_URL") else {
        eprintln!("redis bench: CORTEX_BENCH_REDIS_URL is not set; nothing measured");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A limit never reached: 10^9 a second, burst 10^9.
    let limiter = runtime.block_on(async {
        DistributedRateLimiter::builder("bench")
            .redis_url(url.clone())
            .permits(1_000_000_000, Duration::from_secs(1))
            .burst(1_000_000_000)
            .timeout(Duration::from_secs(1))
            .fallback(RedisFallback::Deny)
            .build()
            .unwrap()
    });
    let decision = runtime.block_on(limiter.check(b"cortex"));
    assert!(decision.allowed, "the limiter reached Redis and allowed");
    assert!(limiter.backend_available());

    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = runtime
        .block_on(client.get_connection_manager())
        .unwrap();
    let script = redis::Script::new(GCRA);
    assert_eq!(runtime.block_on(raw_check(&script, &mut connection)).0, 1);

    let mut group = c.benchmark_group("redis_rate_limit_check");
    group.bench_function("cortex", |b| {
        b.iter(|| black_box(runtime.block_on(limiter.check(b"cortex"))))
    });
    group.bench_function("raw-evalsha", |b| {
        b.iter(|| black_box(runtime.block_on(raw_check(&script, &mut connection))))
    });
    group.finish();
    assert_eq!(limiter.stats().fallback_decisions_total, 0, "every check reached Redis");
}

/// The script with the arguments the limiter sends: interval 1 µs, the
/// burst, cost 1.
async fn raw_check(
    script: &redis::Script,
    connection: &mut redis::aio::ConnectionManager,
) -> (i64, i64, i64, i64) {
    script
        .key("cortex:rl:raw:bench")
        .arg(1_u64)
        .arg(1_000_000_000_u32)
        .arg(1_u32)
        .invoke_async(connection)
        .await
        .unwrap()
}

criterion_group!(benches, redis_check);
criterion_main!(benches);
