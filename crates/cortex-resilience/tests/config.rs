//! Configuration: every invalid setting is a `ConfigError` naming the
//! instance and the field; configs survive a serde round trip and reject
//! what they do not understand; a `RegistryConfig` builds every kind.

use std::time::Duration;

use cortex_resilience::{
    Backoff, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, ConfigError, Jitter,
    PolicyRegistry, RateLimiter, RateLimiterConfig, RegistryConfig, RegistryError, Retry,
    RetryBudgetConfig, RetryConfig, SlidingWindow, Timeout, TimeoutConfig,
};

fn named(error: &ConfigError) -> (&'static str, &str, &'static str) {
    (error.policy, error.name.as_str(), error.field)
}

fn breaker_error(name: &str, config: CircuitBreakerConfig) -> ConfigError {
    CircuitBreaker::from_config(name, config).unwrap_err()
}

#[test]
fn every_invalid_breaker_setting_is_a_config_error_naming_the_instance_and_field() {
    let base = CircuitBreakerConfig::default;
    let cases = [
        (
            CircuitBreakerConfig {
                failure_rate_threshold: 100.5,
                ..base()
            },
            "failure_rate_threshold",
        ),
        (
            CircuitBreakerConfig {
                slow_call_rate_threshold: 0.0,
                ..base()
            },
            "slow_call_rate_threshold",
        ),
        (
            CircuitBreakerConfig {
                minimum_number_of_calls: 0,
                ..base()
            },
            "minimum_number_of_calls",
        ),
        (
            CircuitBreakerConfig {
                permitted_number_of_calls_in_half_open_state: 0,
                ..base()
            },
            "permitted_number_of_calls_in_half_open_state",
        ),
        (
            CircuitBreakerConfig {
                sliding_window: SlidingWindow::CountBased { size: 0 },
                ..base()
            },
            "sliding_window.size",
        ),
        (
            CircuitBreakerConfig {
                sliding_window: SlidingWindow::CountBased {
                    size: (1 << 24) + 1,
                },
                ..base()
            },
            "sliding_window.size",
        ),
        (
            CircuitBreakerConfig {
                sliding_window: SlidingWindow::TimeBased { seconds: 0 },
                ..base()
            },
            "sliding_window.seconds",
        ),
        (
            CircuitBreakerConfig {
                sliding_window: SlidingWindow::TimeBased { seconds: 3601 },
                ..base()
            },
            "sliding_window.seconds",
        ),
        (
            CircuitBreakerConfig {
                sliding_window: SlidingWindow::ConsecutiveFailures { threshold: 0 },
                ..base()
            },
            "sliding_window.threshold",
        ),
    ];
    for (config, field) in cases {
        let error = breaker_error("orders-db", config.clone());
        assert_eq!(
            named(&error),
            ("CircuitBreaker", "orders-db", field),
            "{config:?}"
        );
        assert!(
            error.to_string().starts_with(&format!(
                "invalid configuration of CircuitBreaker \"orders-db\": `{field}`"
            )),
            "{error}"
        );
    }
    // The largest window and the longest time window are still accepted.
    for window in [
        SlidingWindow::CountBased { size: 1 << 24 },
        SlidingWindow::TimeBased { seconds: 3600 },
    ] {
        let config = CircuitBreakerConfig {
            sliding_window: window,
            ..base()
        };
        assert!(
            CircuitBreaker::from_config("edge", config).is_ok(),
            "{window:?}"
        );
    }
}

#[test]
fn a_builder_given_a_whole_config_uses_it() {
    let config = CircuitBreakerConfig {
        failure_rate_threshold: 25.0,
        minimum_number_of_calls: 4,
        ..CircuitBreakerConfig::default()
    };
    let breaker = CircuitBreaker::builder("cfg")
        .config(config.clone())
        .build()
        .unwrap();
    assert_eq!(breaker.config(), &config);
    let breaker = CircuitBreaker::from_config("cfg", config.clone()).unwrap();
    assert_eq!(breaker.config(), &config);

    let retry_config = RetryConfig {
        max_attempts: 5,
        ..RetryConfig::default()
    };
    let retry = Retry::from_config("cfg", retry_config.clone()).unwrap();
    assert_eq!(retry.config(), &retry_config);

    let limiter_config = RateLimiterConfig {
        permits: 7,
        ..RateLimiterConfig::default()
    };
    let limiter = RateLimiter::from_config("cfg", limiter_config).unwrap();
    assert_eq!(limiter.stats().available_permissions, 7);
}

#[test]
fn a_retry_builder_keeps_jitter_and_the_retry_after_cap() {
    let retry = Retry::builder("jittery")
        .jitter(Jitter::Full)
        .max_retry_after(Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(retry.config().jitter, Jitter::Full);
    assert_eq!(retry.config().max_retry_after, Duration::from_secs(5));
}

#[test]
fn every_invalid_retry_setting_is_a_config_error_naming_the_instance_and_field() {
    let exponential = |multiplier: f64, initial: u64, max: u64| RetryConfig {
        backoff: Backoff::Exponential {
            initial: Duration::from_millis(initial),
            multiplier,
            max: Duration::from_millis(max),
        },
        ..RetryConfig::default()
    };
    let cases = [
        (exponential(0.5, 100, 1_000), "backoff.multiplier"),
        (exponential(f64::INFINITY, 100, 1_000), "backoff.multiplier"),
        (exponential(f64::NAN, 100, 1_000), "backoff.multiplier"),
        (exponential(2.0, 1_000, 100), "backoff.max"),
        (
            RetryConfig {
                jitter: Jitter::Proportional { factor: 1.5 },
                ..RetryConfig::default()
            },
            "jitter.factor",
        ),
        (
            RetryConfig {
                jitter: Jitter::Proportional { factor: -0.1 },
                ..RetryConfig::default()
            },
            "jitter.factor",
        ),
    ];
    for (config, field) in cases {
        let error = Retry::from_config("payments", config.clone()).unwrap_err();
        assert_eq!(named(&error), ("Retry", "payments", field), "{config:?}");
    }
    // The boundaries themselves are valid.
    assert!(Retry::from_config("ok", exponential(1.0, 100, 100)).is_ok());
    let full_proportion = RetryConfig {
        jitter: Jitter::Proportional { factor: 1.0 },
        ..RetryConfig::default()
    };
    assert!(Retry::from_config("ok", full_proportion).is_ok());
}

#[test]
fn every_invalid_rate_limiter_setting_is_a_config_error_naming_the_instance_and_field() {
    let cases = [
        (
            RateLimiterConfig {
                period: Duration::ZERO,
                ..RateLimiterConfig::default()
            },
            "period",
        ),
        (
            RateLimiterConfig {
                burst: Some(0),
                ..RateLimiterConfig::default()
            },
            "burst",
        ),
    ];
    for (config, field) in cases {
        let error = RateLimiter::from_config("api", config.clone()).unwrap_err();
        assert_eq!(named(&error), ("RateLimiter", "api", field), "{config:?}");
        let keyed = RateLimiter::builder("per-user")
            .config(config)
            .build_keyed::<String>()
            .unwrap_err();
        assert_eq!(named(&keyed), ("RateLimiter", "per-user", field));
    }
}

#[test]
fn configs_survive_a_serde_round_trip() {
    let breaker = CircuitBreakerConfig {
        slow_call_duration_threshold: Duration::from_millis(1500),
        wait_duration_in_open_state: Duration::from_secs(30),
        max_wait_duration_in_half_open_state: Duration::from_micros(250),
        sliding_window: SlidingWindow::TimeBased { seconds: 60 },
        ..CircuitBreakerConfig::default()
    };
    let json = serde_json::to_value(&breaker).unwrap();
    // Durations are written in the largest unit that keeps them exact.
    assert_eq!(json["slow_call_duration_threshold"], "1500ms");
    assert_eq!(json["wait_duration_in_open_state"], "30s");
    assert_eq!(json["max_wait_duration_in_half_open_state"], "250us");
    assert_eq!(json["sliding_window"]["type"], "time_based");
    let back: CircuitBreakerConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, breaker);

    let retry = RetryConfig {
        backoff: Backoff::Exponential {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(2),
        },
        jitter: Jitter::Proportional { factor: 0.25 },
        budget: None,
        ..RetryConfig::default()
    };
    let back: RetryConfig = serde_json::from_str(&serde_json::to_string(&retry).unwrap()).unwrap();
    assert_eq!(back, retry);

    for max_wait in [None, Some(Duration::from_millis(20))] {
        let bulkhead = BulkheadConfig {
            max_concurrent_calls: 3,
            max_queue: 2,
            max_wait,
        };
        let json = serde_json::to_value(&bulkhead).unwrap();
        let back: BulkheadConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, bulkhead);
    }

    let limiter = RateLimiterConfig {
        burst: Some(10),
        max_wait: Duration::from_millis(5),
        ..RateLimiterConfig::default()
    };
    let back: RateLimiterConfig =
        serde_json::from_str(&serde_json::to_string(&limiter).unwrap()).unwrap();
    assert_eq!(back, limiter);
}

#[test]
fn durations_in_config_files_take_units_or_bare_milliseconds() {
    let timeout = |json: &str| serde_json::from_str::<TimeoutConfig>(json);
    let cases = [
        (r#"{ "timeout_duration": 250 }"#, Duration::from_millis(250)),
        (
            r#"{ "timeout_duration": "100us" }"#,
            Duration::from_micros(100),
        ),
        (r#"{ "timeout_duration": "2s" }"#, Duration::from_secs(2)),
        (
            r#"{ "timeout_duration": "1.5s" }"#,
            Duration::from_millis(1500),
        ),
        (r#"{ "timeout_duration": "5m" }"#, Duration::from_secs(300)),
        (r#"{ "timeout_duration": "1h" }"#, Duration::from_secs(3600)),
    ];
    for (json, expected) in cases {
        assert_eq!(timeout(json).unwrap().timeout_duration, expected, "{json}");
    }
    let bulkhead: BulkheadConfig = serde_json::from_str(r#"{ "max_wait": "40ms" }"#).unwrap();
    assert_eq!(bulkhead.max_wait, Some(Duration::from_millis(40)));
    let bulkhead: BulkheadConfig = serde_json::from_str(r#"{ "max_wait": null }"#).unwrap();
    assert_eq!(bulkhead.max_wait, None);
}

#[test]
fn configs_reject_unknown_fields_and_unreadable_durations() {
    let unknown = serde_json::from_str::<TimeoutConfig>(r#"{ "timeout": "1s" }"#).unwrap_err();
    assert!(unknown.to_string().contains("unknown field"), "{unknown}");
    let unknown = serde_json::from_str::<RegistryConfig>(r#"{ "breakers": {} }"#).unwrap_err();
    assert!(unknown.to_string().contains("unknown field"), "{unknown}");

    for bad in [r#""10 parsecs""#, r#""s""#, r#""fast""#, r#""-1s""#] {
        let json = format!(r#"{{ "timeout_duration": {bad} }}"#);
        let error = serde_json::from_str::<TimeoutConfig>(&json).unwrap_err();
        assert!(
            error.to_string().contains("invalid duration"),
            "{bad}: {error}"
        );
    }
    let bad_window = serde_json::from_str::<CircuitBreakerConfig>(
        r#"{ "sliding_window": { "type": "sideways", "size": 3 } }"#,
    );
    assert!(bad_window.is_err());
}

#[test]
fn a_registry_config_builds_and_registers_every_kind() {
    let config: RegistryConfig = serde_json::from_str(
        r#"{
            "circuit_breakers": { "payments": { "minimum_number_of_calls": 5 } },
            "bulkheads": { "payments": { "max_concurrent_calls": 2 } },
            "retries": { "payments": { "max_attempts": 4 } },
            "rate_limiters": { "api": { "permits": 9, "period": "1m" } },
            "timeouts": { "payments": { "timeout_duration": "2s" } }
        }"#,
    )
    .unwrap();
    let registry = PolicyRegistry::from_config(&config).unwrap();
    assert_eq!(
        registry
            .circuit_breaker("payments")
            .unwrap()
            .config()
            .minimum_number_of_calls,
        5
    );
    assert_eq!(
        registry
            .bulkhead("payments")
            .unwrap()
            .stats()
            .max_concurrent_calls,
        2
    );
    assert_eq!(registry.retry("payments").unwrap().config().max_attempts, 4);
    assert_eq!(
        registry
            .rate_limiter("api")
            .unwrap()
            .stats()
            .available_permissions,
        9
    );
    assert_eq!(
        registry
            .timeout("payments")
            .unwrap()
            .config()
            .timeout_duration,
        Duration::from_secs(2)
    );
    // Lookups are per kind: a name registered as one kind is absent as another.
    assert!(registry.rate_limiter("payments").is_none());
    assert!(registry.bulkhead("api").is_none());
    assert!(registry.retry("nobody").is_none());

    // The config round-trips through its own serialisation.
    let back: RegistryConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(back, config);
}

#[test]
fn an_invalid_entry_in_a_registry_config_names_its_instance() {
    let cases: [(&str, (&str, &str, &str)); 5] = [
        (
            r#"{ "circuit_breakers": { "cb": { "failure_rate_threshold": 0 } } }"#,
            ("CircuitBreaker", "cb", "failure_rate_threshold"),
        ),
        (
            r#"{ "bulkheads": { "bh": { "max_concurrent_calls": 0 } } }"#,
            ("Bulkhead", "bh", "max_concurrent_calls"),
        ),
        (
            r#"{ "retries": { "rt": { "max_attempts": 0 } } }"#,
            ("Retry", "rt", "max_attempts"),
        ),
        (
            r#"{ "rate_limiters": { "rl": { "permits": 0 } } }"#,
            ("RateLimiter", "rl", "permits"),
        ),
        (
            r#"{ "timeouts": { "to": { "timeout_duration": 0 } } }"#,
            ("Timeout", "to", "timeout_duration"),
        ),
    ];
    for (json, expected) in cases {
        let config: RegistryConfig = serde_json::from_str(json).unwrap();
        match PolicyRegistry::from_config(&config) {
            Err(RegistryError::Config(error)) => assert_eq!(named(&error), expected, "{json}"),
            other => panic!("{json}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn registering_a_second_policy_of_a_kind_under_one_name_is_a_duplicate() {
    let registry = PolicyRegistry::new();
    registry
        .register_retry(Retry::builder("db").build().unwrap())
        .unwrap();
    let duplicate = registry
        .register_retry(Retry::builder("db").build().unwrap())
        .unwrap_err();
    assert_eq!(
        duplicate,
        RegistryError::Duplicate {
            kind: "retry",
            name: "db".to_owned()
        }
    );
    assert_eq!(
        duplicate.to_string(),
        "a retry named \"db\" is already registered"
    );
    // Another kind may use the same name.
    registry
        .register_timeout(Timeout::builder("db").build().unwrap())
        .unwrap();

    // Global and keyed rate limiters share one namespace.
    registry
        .register_rate_limiter(RateLimiter::builder("api").build().unwrap())
        .unwrap();
    let keyed = RateLimiter::builder("api").build_keyed::<String>().unwrap();
    assert!(matches!(
        registry.register_keyed_rate_limiter(keyed),
        Err(RegistryError::Duplicate { name, .. }) if name == "api"
    ));
}

#[test]
fn a_keyed_limiter_in_the_registry_reports_its_stats_but_is_not_a_global_limiter() {
    let registry = PolicyRegistry::new();
    let keyed = RateLimiter::builder("per-user")
        .permits(1, Duration::from_secs(60))
        .build_keyed::<String>()
        .unwrap();
    registry.register_keyed_rate_limiter(keyed.clone()).unwrap();
    keyed.try_acquire(Some(&"alice".to_owned())).unwrap();
    assert!(keyed.try_acquire(Some(&"alice".to_owned())).is_err());

    assert!(registry.rate_limiter("per-user").is_none());
    let stats = registry.all_stats();
    let limiter = stats
        .rate_limiters
        .iter()
        .find(|stats| stats.name == "per-user")
        .expect("the keyed limiter's stats are listed");
    assert_eq!((limiter.permitted_total, limiter.rejected_total), (1, 1));
    assert_eq!(limiter.keys, 1);
}

#[test]
fn a_registry_lists_its_policies_by_kind_in_its_debug_output() {
    let registry = PolicyRegistry::new();
    registry
        .register_circuit_breaker(CircuitBreaker::builder("inventory").build().unwrap())
        .unwrap();
    registry
        .register_timeout(Timeout::builder("payments").build().unwrap())
        .unwrap();
    let debug = format!("{registry:?}");
    assert!(
        debug.contains("circuit_breakers: [\"inventory\"]"),
        "{debug}"
    );
    assert!(debug.contains("timeouts: [\"payments\"]"), "{debug}");
    assert!(debug.contains("bulkheads: []"), "{debug}");
}

#[test]
fn a_budget_with_a_negative_ratio_is_rejected_inside_a_registry_config_too() {
    let config = RegistryConfig {
        retries: [(
            "budgeted".to_owned(),
            RetryConfig {
                budget: Some(RetryBudgetConfig {
                    retry_ratio: -0.5,
                    ..RetryBudgetConfig::default()
                }),
                ..RetryConfig::default()
            },
        )]
        .into(),
        ..RegistryConfig::default()
    };
    let Err(RegistryError::Config(error)) = PolicyRegistry::from_config(&config) else {
        panic!("expected a config error");
    };
    assert_eq!(named(&error), ("Retry", "budgeted", "budget.retry_ratio"));
}
