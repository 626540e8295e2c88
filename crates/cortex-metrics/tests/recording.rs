//! Recording as applications do it: in-flight guards that survive panics,
//! gauges moved by arbitrary amounts, and generated bucket layouts.

use cortex_metrics::{Buckets, Format, MetricsRegistry};

#[test]
fn an_in_flight_guard_decrements_even_when_the_work_panics() {
    let registry = MetricsRegistry::new();
    let in_flight = registry.gauge("jobs_in_flight", "Jobs running.").unwrap();
    let outer = in_flight.inc_guard();
    let panicked = std::panic::catch_unwind(|| {
        let _job = in_flight.inc_guard();
        assert_eq!(in_flight.get(), 2);
        panic!("job failed");
    });
    assert!(panicked.is_err());
    assert_eq!(in_flight.get(), 1, "the unwound job is no longer counted");
    drop(outer);
    assert_eq!(in_flight.get(), 0);
}

#[test]
fn gauges_move_by_arbitrary_amounts_in_both_directions() {
    let registry = MetricsRegistry::new();
    let queued = registry.gauge("queue_depth", "Queued jobs.").unwrap();
    queued.inc_by(10);
    queued.dec_by(15);
    assert_eq!(queued.get(), -5);
    let level = registry.gauge_f64("tank_level", "Litres.").unwrap();
    level.inc_by(2.5);
    level.dec_by(0.75);
    assert_eq!(level.get(), 1.75);
    let text = registry.encode(Format::Prometheus);
    assert!(text.contains("queue_depth -5\n"), "{text}");
    assert!(text.contains("tank_level 1.75\n"), "{text}");
}

#[test]
fn exponential_buckets_multiply_from_the_start_and_reach_the_histogram() {
    let buckets = Buckets::exponential(100.0, 10.0, 4).unwrap();
    assert_eq!(buckets.bounds(), [100.0, 1_000.0, 10_000.0, 100_000.0]);
    for (start, factor) in [(-1.0, 2.0), (1.0, 1.0), (f64::NAN, 2.0), (1.0, f64::NAN)] {
        assert!(
            Buckets::exponential(start, factor, 3).is_err(),
            "{start} {factor}"
        );
    }
    let registry = MetricsRegistry::new();
    let sizes = registry
        .histogram("payload_bytes", "Payload sizes.", buckets.bounds())
        .unwrap();
    assert_eq!(sizes.buckets().bounds(), buckets.bounds());
    sizes.observe(5_000.0);
    let text = registry.encode(Format::Prometheus);
    assert!(
        text.contains("payload_bytes_bucket{le=\"1000\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("payload_bytes_bucket{le=\"10000\"} 1\n"),
        "{text}"
    );
}
