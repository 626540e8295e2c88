//! Bounded multi-thread stress tests of the cardinality guard.

use cortex_metrics::{Format, MetricsRegistry};

#[test]
fn concurrent_writers_never_exceed_the_cap_and_every_redirect_is_counted() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 5_000;
    const CAP: usize = 1_000;
    let registry = MetricsRegistry::builder()
        .max_series_per_family(CAP)
        .build();
    let family = registry.counter_family("stress", "", ["id"]).unwrap();
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let family = family.clone();
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    family.with_labels([&format!("{thread}-{i}")]).inc();
                }
            });
        }
    });
    assert_eq!(family.len(), CAP);
    let text = registry.encode(Format::Prometheus);
    let redirected = THREADS * PER_THREAD - CAP;
    assert!(
        text.contains(&format!(
            "cortex_metrics_overflow_total{{metric=\"stress\"}} {redirected}\n"
        )),
        "{}",
        text.lines()
            .filter(|l| l.contains("overflow"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(text.contains(&format!(
        "stress_total{{otel_metric_overflow=\"true\"}} {redirected}\n"
    )));
    // Nothing lost: every increment landed in a series or the overflow.
    let total: u64 = text
        .lines()
        .filter(|l| l.starts_with("stress_total"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, (THREADS * PER_THREAD) as u64);
}

#[test]
fn a_million_distinct_label_values_keep_the_family_at_its_cap() {
    let registry = MetricsRegistry::new();
    let family = registry.counter_family("scanner", "", ["path"]).unwrap();
    let mut path = String::new();
    for i in 0..1_000_000u32 {
        use std::fmt::Write;
        path.clear();
        let _ = write!(path, "/random/{i:x}");
        family.with_labels([&path]).inc();
    }
    assert_eq!(family.len(), cortex_metrics::DEFAULT_MAX_SERIES);
    let exposition = registry.encode(Format::Prometheus);
    assert_eq!(
        exposition
            .lines()
            .filter(|l| l.starts_with("scanner_total"))
            .count(),
        10_001
    );
}
