//! Registry behaviour: parallelism, timeouts, panics, caching, probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cortex_health::{
    CheckOptions, HealthCheckResult, HealthError, HealthRegistry, HealthStatus, Probe, health_fn,
};
use tokio::time::Instant;

fn sleeper(ms: u64) -> impl cortex_health::HealthCheck {
    health_fn(move || async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        HealthCheckResult::up()
    })
}

#[tokio::test(start_paused = true)]
async fn checks_run_in_parallel() {
    let health = HealthRegistry::new();
    for name in ["a", "b", "c"] {
        health.register(name, sleeper(200)).unwrap();
    }
    let start = Instant::now();
    let report = health.check_all().await;
    assert_eq!(report.status, HealthStatus::Up);
    assert_eq!(report.checks.len(), 3);
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_check_that_hangs_forever_is_down_after_its_timeout() {
    let health = HealthRegistry::new();
    health
        .register_with(
            "hangs",
            health_fn(std::future::pending::<HealthCheckResult>),
            CheckOptions::new().timeout(Duration::from_secs(2)),
        )
        .unwrap();
    health.register("fine", sleeper(1)).unwrap();
    let start = Instant::now();
    let report = health.check_all().await;
    assert_eq!(report.status, HealthStatus::Down);
    let hangs = &report.checks[0].result;
    assert_eq!(hangs.status, HealthStatus::Down);
    assert!(
        hangs
            .message
            .as_deref()
            .unwrap()
            .contains("timed out after 2s"),
        "{hangs:?}"
    );
    assert_eq!(report.checks[1].result.status, HealthStatus::Up);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_panicking_check_is_down_and_the_registry_survives() {
    let health = HealthRegistry::new();
    health
        .register(
            "panics",
            health_fn(|| async {
                if true {
                    panic!("boom");
                }
                HealthCheckResult::up()
            }),
        )
        .unwrap();
    let result = health.check("panics").await.unwrap();
    assert_eq!(result.status, HealthStatus::Down);
    assert_eq!(result.message.as_deref(), Some("check panicked: boom"));
    // Again: the registry is not poisoned.
    assert_eq!(
        health.check("panics").await.unwrap().status,
        HealthStatus::Down
    );
}

#[tokio::test]
async fn non_critical_downs_only_degrade() {
    let health = HealthRegistry::new();
    health.register("core", sleeper(0)).unwrap();
    health
        .register_with(
            "optional",
            health_fn(|| async { HealthCheckResult::down("recommendations offline") }),
            CheckOptions::new().critical(false),
        )
        .unwrap();
    assert_eq!(health.overall().await, HealthStatus::Degraded);
}

#[tokio::test]
async fn registration_errors_are_typed() {
    let health = HealthRegistry::new();
    health.register("db", sleeper(0)).unwrap();
    assert_eq!(
        health.register("db", sleeper(0)),
        Err(HealthError::Duplicate { name: "db".into() })
    );
    for bad in ["", "has space", "quote\"", &"x".repeat(129)] {
        assert!(
            matches!(
                health.register(bad, sleeper(0)),
                Err(HealthError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(
        health.check("nope").await,
        Err(HealthError::Unknown {
            name: "nope".into()
        })
    );
    assert_eq!(
        health.unregister("nope"),
        Err(HealthError::Unknown {
            name: "nope".into()
        })
    );
    health.unregister("db").unwrap();
    assert!(health.names().is_empty());
    assert_eq!(health.overall().await, HealthStatus::Up);
}

#[tokio::test(start_paused = true)]
async fn results_are_cached_for_their_ttl() {
    let health = HealthRegistry::new();
    health
        .register_with(
            "cached",
            sleeper(1),
            CheckOptions::new().cache_ttl(Duration::from_secs(10)),
        )
        .unwrap();
    health.check("cached").await.unwrap();
    health.check("cached").await.unwrap();
    health.check_all().await;
    assert_eq!(health.run_count("cached").unwrap(), 1);
    tokio::time::advance(Duration::from_secs(11)).await;
    health.check("cached").await.unwrap();
    assert_eq!(health.run_count("cached").unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_probes_share_one_run_of_a_slow_check() {
    let health = HealthRegistry::new();
    health.register("slow", sleeper(300)).unwrap();
    let mut probes = Vec::new();
    for _ in 0..1_000 {
        let health = health.clone();
        probes.push(tokio::spawn(async move { health.check_all().await.status }));
    }
    for probe in probes {
        assert_eq!(probe.await.unwrap(), HealthStatus::Up);
    }
    // Without a TTL, only callers that arrive while a run is in flight
    // share it; all 1 000 arrive within the first run's 300 ms.
    let runs = health.run_count("slow").unwrap();
    assert!(runs <= 2, "{runs} runs for 1000 probes");
}

#[tokio::test]
async fn liveness_does_not_run_dependency_checks_by_default() {
    let health = HealthRegistry::new();
    health
        .register(
            "db",
            health_fn(|| async { HealthCheckResult::down("unreachable") }),
        )
        .unwrap();
    let live = health.check_probe(Probe::Liveness).await;
    assert_eq!(live.status, HealthStatus::Up);
    assert!(live.checks.is_empty());
    assert_eq!(health.run_count("db").unwrap(), 0);
}

#[tokio::test]
async fn readiness_waits_for_startup_and_goes_down_when_draining() {
    let warmed_up = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&warmed_up);
    let health = HealthRegistry::new();
    health
        .register_with(
            "cache_warmup",
            health_fn(move || {
                let done = flag.load(Ordering::SeqCst);
                async move {
                    if done {
                        HealthCheckResult::up()
                    } else {
                        HealthCheckResult::down("warming up")
                    }
                }
            }),
            CheckOptions::new().probes([Probe::Startup]),
        )
        .unwrap();
    health.register("db", sleeper(0)).unwrap();

    let ready = health.check_probe(Probe::Readiness).await;
    assert_eq!(ready.status, HealthStatus::Down);
    assert_eq!(
        ready.output.as_deref(),
        Some("startup checks have not passed yet")
    );
    assert!(!health.is_started());

    warmed_up.store(true, Ordering::SeqCst);
    assert_eq!(
        health.check_probe(Probe::Readiness).await.status,
        HealthStatus::Up
    );
    assert!(health.is_started());
    // Startup passing once is enough, even if the startup check regresses.
    warmed_up.store(false, Ordering::SeqCst);
    assert_eq!(
        health.check_probe(Probe::Readiness).await.status,
        HealthStatus::Up
    );

    health.set_draining();
    let draining = health.check_probe(Probe::Readiness).await;
    assert_eq!(draining.status, HealthStatus::Down);
    assert!(draining.output.unwrap().contains("draining"));
    // Liveness is unaffected by draining.
    assert_eq!(
        health.check_probe(Probe::Liveness).await.status,
        HealthStatus::Up
    );
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn check_results_are_exported_as_metrics() {
    use cortex_metrics::RegisterMetrics;
    let metrics = cortex_metrics::MetricsRegistry::new();
    let health = HealthRegistry::new();
    health.register("up", sleeper(0)).unwrap();
    // Registering after checks exist, and twice, is the contract's normal case.
    health.register_metrics(&metrics).unwrap();
    health.register_metrics(&metrics).unwrap();
    health
        .register(
            "degraded",
            health_fn(|| async { HealthCheckResult::degraded("meh") }),
        )
        .unwrap();
    health.check_all().await;
    let text = metrics.encode(cortex_metrics::Format::Prometheus);
    assert!(
        text.contains("cortex_health_check_status{check=\"up\"} 1.0\n"),
        "{text}"
    );
    assert!(
        text.contains("cortex_health_check_status{check=\"degraded\"} 0.5\n"),
        "{text}"
    );
    assert!(
        text.contains("cortex_health_check_duration_seconds_count{check=\"up\"} 1\n"),
        "{text}"
    );
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn metrics_registration_reports_name_conflicts() {
    use cortex_metrics::RegisterMetrics;
    let metrics = cortex_metrics::MetricsRegistry::new();
    metrics
        .counter("cortex_health_check_status", "taken by a counter")
        .unwrap();
    let error = HealthRegistry::new()
        .register_metrics(&metrics)
        .unwrap_err();
    assert!(
        matches!(error, cortex_metrics::MetricsError::Conflict { .. }),
        "{error:?}"
    );
}
