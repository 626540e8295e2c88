//! A collector's bad output is skipped sample by sample or family by
//! family, never written into the exposition where it would break a
//! scraper's parse of the whole page.

use cortex_metrics::{Collector, CollectorOutput, Format, MetricsRegistry};

/// Writes a mix of good and bad families.
struct Sloppy;

impl Collector for Sloppy {
    fn collect(&self, out: &mut CollectorOutput<'_, '_>) {
        out.gauge_family(
            "pool_connections",
            "Connections by state.",
            &["state"],
            [
                (&["idle"][..], 3.0),
                // Two values for one label name: skipped.
                (&["busy", "extra"][..], 9.0),
                // None: skipped.
                (&[][..], 7.0),
                (&["busy"][..], 2.0),
            ],
        );
        out.counter_family(
            "pool-requests",
            "An invalid metric name.",
            &["kind"],
            [(&["ok"][..], 1.0)],
        );
        out.gauge_family(
            "pool_waiters",
            "An invalid label name.",
            &["wait time"],
            [(&["long"][..], 1.0)],
        );
        out.counter_family(
            "pool_errors_total",
            "A reserved label name.",
            &["__kind"],
            [(&["x"][..], 1.0)],
        );
        out.gauge("9lives", "A name starting with a digit.", 9.0);
    }
}

#[test]
fn samples_with_the_wrong_number_of_label_values_are_skipped() {
    let registry = MetricsRegistry::new();
    registry.register_collector(Sloppy);
    let text = registry.encode(Format::Prometheus);
    let samples: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("pool_connections{"))
        .collect();
    assert_eq!(
        samples,
        [
            r#"pool_connections{state="idle"} 3.0"#,
            r#"pool_connections{state="busy"} 2.0"#
        ]
    );
}

#[test]
fn families_with_invalid_metric_or_label_names_are_left_out_whole() {
    let registry = MetricsRegistry::new();
    registry.register_collector(Sloppy);
    for format in [Format::Prometheus, Format::OpenMetrics] {
        let text = registry.encode(format);
        for absent in ["pool-requests", "pool_waiters", "pool_errors", "9lives"] {
            assert!(!text.contains(absent), "{absent} leaked into\n{text}");
        }
        assert!(text.contains("# TYPE pool_connections gauge"), "{text}");
    }
}
