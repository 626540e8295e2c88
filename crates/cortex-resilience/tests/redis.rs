//! The distributed rate limiter against a real Redis: the GCRA numbers,
//! one budget for several replicas, exact accounting under concurrency,
//! the script reloaded after `SCRIPT FLUSH`, key expiry, and recovery
//! after an outage. Every test is ignored by default; with a redis-server
//! running,
//!
//! ```text
//! CORTEX_TEST_REDIS_URL=redis://127.0.0.1:6379 \
//!     cargo test -p cortex-resilience --features redis --test redis -- --ignored
//! ```

#![cfg(feature = "redis")]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cortex_resilience::redis::aio::MultiplexedConnection;
use cortex_resilience::redis::{Client, ConnectionAddr, Script};
use cortex_resilience::{DistributedRateLimiter, DistributedRateLimiterBuilder, RedisFallback};
use support::{LogCount, closed_port_url};
use tokio::net::{TcpListener, TcpStream};

const NEEDS_REDIS: &str = "needs redis-server; cargo xtask cluster runs them";

fn redis_url() -> String {
    std::env::var("CORTEX_TEST_REDIS_URL")
        .unwrap_or_else(|_| panic!("set CORTEX_TEST_REDIS_URL to run these tests ({NEEDS_REDIS})"))
}

/// A name no earlier run used, so keys left in Redis never meet a test.
fn unique(test: &str) -> String {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = RUN.fetch_add(1, Ordering::Relaxed);
    format!("{test}-{}-{nanos}-{n}", std::process::id())
}

/// A limiter on the test Redis that refuses when Redis does not answer,
/// with a budget generous enough for a loaded CI machine: the tests then
/// assert that no check fell back.
fn builder(name: &str) -> DistributedRateLimiterBuilder {
    DistributedRateLimiter::builder(name)
        .redis_url(redis_url())
        .timeout(Duration::from_secs(2))
        .fallback(RedisFallback::Deny)
}

async fn admin() -> MultiplexedConnection {
    Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn assert_redis_decided(limiter: &DistributedRateLimiter) {
    let stats = limiter.stats();
    assert_eq!(stats.backend_errors.total(), 0, "{stats:?}");
    assert_eq!(stats.fallback_decisions_total, 0, "{stats:?}");
    assert!(limiter.backend_available());
}

#[tokio::test]
#[ignore = "needs redis-server; cargo xtask cluster runs them"]
async fn gcra_numbers_match_the_local_limiter() {
    // 10 per second, burst 3: T = 100 ms, as gcra.rs's own unit test.
    let limiter = builder(&unique("numbers"))
        .permits(10, Duration::from_secs(1))
        .burst(3)
        .build()
        .unwrap();
    let started = Instant::now();
    for (expected_remaining, expected_reset_ms) in [(2, 100), (1, 200), (0, 300)] {
        let decision = limiter.check(b"k").await;
        assert!(decision.allowed, "{decision:?}");
        assert_eq!(decision.limit, 3);
        assert_eq!(decision.remaining, expected_remaining);
        // Reset is TAT - now rounded up to ms: time passed between checks
        // only makes it smaller.
        assert!(decision.reset <= Duration::from_millis(expected_reset_ms));
        assert!(
            decision.reset + started.elapsed() + Duration::from_millis(1)
                >= Duration::from_millis(expected_reset_ms)
        );
    }
    let refused = limiter.check(b"k").await;
    let elapsed = started.elapsed();
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    assert!(
        refused.retry_after <= Duration::from_millis(100),
        "{refused:?}"
    );
    assert!(
        refused.retry_after + elapsed + Duration::from_millis(1) >= Duration::from_millis(100),
        "{refused:?} after {elapsed:?}"
    );
    tokio::time::sleep(refused.retry_after).await;
    assert!(
        limiter.check(b"k").await.allowed,
        "one permit back after retry_after"
    );
    // Heavier than a whole burst: never allowed.
    assert!(!limiter.check_n(b"other", 4).await.allowed);
    assert_redis_decided(&limiter);
    let stats = limiter.stats();
    assert_eq!((stats.permitted_total, stats.rejected_total), (4, 2));
}

#[tokio::test]
#[ignore = "needs redis-server; cargo xtask cluster runs them"]
async fn two_replicas_share_one_budget() {
    let name = unique("replicas");
    // Two limiters with their own connections: two processes, as far as
    // Redis can tell.
    let replica = || {
        builder(&name)
            .permits(5, Duration::from_secs(3600))
            .build()
            .unwrap()
    };
    let (a, b) = (replica(), replica());
    let mut allowed = 0;
    for _ in 0..10 {
        allowed += usize::from(a.check(b"tenant").await.allowed);
        allowed += usize::from(b.check(b"tenant").await.allowed);
    }
    assert_eq!(allowed, 5, "one budget of 5, not 5 each");
    assert_eq!(a.stats().permitted_total + b.stats().permitted_total, 5);
    assert_redis_decided(&a);
    assert_redis_decided(&b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; cargo xtask cluster runs them"]
async fn concurrent_checks_on_one_key_allow_exactly_the_burst() {
    let name = unique("stress");
    // A slow rate: no permit comes back during the test.
    let replicas: Vec<DistributedRateLimiter> = (0..2)
        .map(|_| {
            builder(&name)
                .permits(100, Duration::from_secs(3600))
                .build()
                .unwrap()
        })
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let limiter = replicas[task % 2].clone();
        tasks.spawn(async move {
            let mut allowed = 0_u32;
            for _ in 0..50 {
                allowed += u32::from(limiter.check(b"hot").await.allowed);
            }
            allowed
        });
    }
    let mut allowed = 0;
    while let Some(count) = tasks.join_next().await {
        allowed += count.unwrap();
    }
    assert_eq!(allowed, 100, "400 checks against a burst of 100");
    for limiter in &replicas {
        assert_redis_decided(limiter);
    }
    let refused: u64 = replicas.iter().map(|l| l.stats().rejected_total).sum();
    assert_eq!(refused, 300);
}

#[tokio::test]
#[ignore = "needs redis-server; cargo xtask cluster runs them"]
async fn the_script_is_loaded_again_after_script_flush() {
    let limiter = builder(&unique("noscript"))
        .permits(100, Duration::from_secs(1))
        .build()
        .unwrap();
    assert!(limiter.check(b"k").await.allowed);
    let sha = Script::new(include_str!("../src/ratelimit/gcra.lua"))
        .get_hash()
        .to_owned();
    let mut admin = admin().await;
    let exists = |admin: &mut MultiplexedConnection| {
        let mut admin = admin.clone();
        let sha = sha.clone();
        async move {
            let cached: Vec<bool> = cortex_resilience::redis::cmd("SCRIPT")
                .arg("EXISTS")
                .arg(&sha)
                .query_async(&mut admin)
                .await
                .unwrap();
            cached[0]
        }
    };
    assert!(exists(&mut admin).await);
    // What a Redis restart or a failover to a fresh replica does.
    let () = cortex_resilience::redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert!(!exists(&mut admin).await);
    assert!(
        limiter.check(b"k").await.allowed,
        "NOSCRIPT, load, EVALSHA again"
    );
    assert!(exists(&mut admin).await);
    assert_redis_decided(&limiter);
}

#[tokio::test]
#[ignore = "needs redis-server; cargo xtask cluster runs them"]
async fn keys_expire_when_their_budget_is_full_again() {
    let name = unique("expiry");
    let limiter = builder(&name)
        .permits(10, Duration::from_secs(1))
        .burst(3)
        .build()
        .unwrap();
    let mut admin = admin().await;
    // The key layout other tools (and other versions) rely on.
    let key = format!("cortex:rl:{name}:alice");
    let pttl = |admin: &mut MultiplexedConnection| {
        let mut admin = admin.clone();
        let key = key.clone();
        async move {
            let pttl: i64 = cortex_resilience::redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut admin)
                .await
                .unwrap();
            pttl
        }
    };
    // A cost of 0 only looks: nothing is written.
    assert!(limiter.check_n(b"alice", 0).await.allowed);
    assert_eq!(pttl(&mut admin).await, -2, "no key");
    limiter.check(b"alice").await;
    let ttl = pttl(&mut admin).await;
    assert!(
        (1..=100).contains(&ttl),
        "one permit: expires within T, {ttl}"
    );
    limiter.check(b"alice").await;
    let ttl = pttl(&mut admin).await;
    assert!((101..=200).contains(&ttl), "two permits: within 2T, {ttl}");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        pttl(&mut admin).await,
        -2,
        "gone once the burst is full again"
    );
    assert_redis_decided(&limiter);
}

#[tokio::test]
#[ignore = "needs redis-server; cargo xtask cluster runs them"]
async fn requests_without_a_key_share_the_overflow_key() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    let name = unique("overflow");
    let limiter = builder(&name)
        .permits(1, Duration::from_secs(3600))
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(limiter.http_layer(cortex_resilience::HeaderKey::new(
            "x-api-key".parse().unwrap(),
        )));
    let anonymous = || Request::get("/").body(Body::empty()).unwrap();
    let first = app.clone().oneshot(anonymous()).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["ratelimit-remaining"], "0");
    let second = app.clone().oneshot(anonymous()).await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["retry-after"], "3600");
    let exists: bool = cortex_resilience::redis::cmd("EXISTS")
        .arg(format!("cortex:rl:{name}:~"))
        .query_async(&mut admin().await)
        .await
        .unwrap();
    assert!(exists);
    assert_redis_decided(&limiter);
}

/// Forwards every connection to `target` from `listener`: Redis, back.
async fn forward(listener: TcpListener, target: String) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut server) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}

#[tokio::test]
#[ignore = "needs redis-server; cargo xtask cluster runs them"]
async fn decisions_are_shared_again_once_redis_is_back_and_each_change_is_logged_once() {
    let logs = LogCount::default();
    let _guard = logs.install();
    let url = closed_port_url();
    let limiter = DistributedRateLimiter::builder(unique("recovery"))
        .redis_url(&url)
        .permits(1, Duration::from_secs(3600))
        .timeout(Duration::from_millis(200))
        .fallback(RedisFallback::Allow)
        .build()
        .unwrap();
    for _ in 0..3 {
        assert!(
            limiter.check(b"k").await.allowed,
            "Allow while Redis is away"
        );
    }
    assert!(!limiter.backend_available());
    assert_eq!((logs.warnings(), logs.infos()), (1, 0));

    // Redis comes back on the limiter's port.
    let ConnectionAddr::Tcp(host, port) = Client::open(redis_url())
        .unwrap()
        .get_connection_info()
        .addr()
        .clone()
    else {
        panic!("CORTEX_TEST_REDIS_URL must be a redis:// TCP URL");
    };
    let listener = TcpListener::bind(url.trim_start_matches("redis://"))
        .await
        .unwrap();
    tokio::spawn(forward(listener, format!("{host}:{port}")));
    // The manager reconnects on its own backoff; checks keep falling back
    // until it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !limiter.backend_available() {
        assert!(Instant::now() < deadline, "{:?}", limiter.stats());
        limiter.check(b"probe").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Redis decides again: one permit per hour for a fresh key.
    assert!(limiter.check(b"fresh").await.allowed);
    assert!(!limiter.check(b"fresh").await.allowed);
    assert!(limiter.backend_available());
    assert_eq!((logs.warnings(), logs.infos()), (1, 1));
}
