//! `le` label values as canonical numbers: OpenMetrics 1.0's rules, checked
//! against the spec's own examples, and Prometheus' client_golang rendering
//! in the 0.0.4 text format. A bucket bound is a label value compared as a
//! string, so the same bound must read the same from every exporter or its
//! series never join.

use cortex_metrics::http::BODY_SIZE_BUCKETS;
use cortex_metrics::{DEFAULT_BUCKETS, Format, MetricsRegistry};

/// The `le` values of histogram `name`, in exposition order.
fn le_values(text: &str, name: &str) -> Vec<String> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// A registry with one histogram `h` over `bounds`, encoded.
fn encode_bounds(bounds: &[f64], format: Format) -> String {
    let registry = MetricsRegistry::new();
    registry
        .histogram("h", "Bounds.", bounds)
        .unwrap()
        .observe(1.0);
    registry.encode(format)
}

/// OpenMetrics 1.0, "Histogram": "the value of the "le" label MUST follow
/// the rules for Canonical Numbers", and its example's twelve buckets
/// ("a wide and atypical but valid variety").
#[test]
fn the_openmetrics_histogram_example_renders_its_le_values_exactly() {
    let bounds = [
        0.0, 1e-05, 0.0001, 0.1, 1.0, 10.0, 100_000.0, 1e+06, 1e+23, 1.1e+23,
    ];
    let text = encode_bounds(&bounds, Format::OpenMetrics);
    assert_eq!(
        le_values(&text, "h"),
        [
            "0.0", "1e-05", "0.0001", "0.1", "1.0", "10.0", "100000.0", "1e+06", "1e+23",
            "1.1e+23", "+Inf"
        ],
        "{text}"
    );
}

/// OpenMetrics 1.0, "Considerations: Canonical Numbers": "Exposers SHOULD
/// produce output for the values 0.0 up to 10.0 in 0.001 increments in line
/// with the following examples", and likewise for powers of ten.
#[test]
fn the_openmetrics_canonical_number_examples_round_trip_as_written() {
    for examples in [
        "0.0 0.001 0.002 0.01 0.1 0.9 0.95 0.99 0.999 1.0 1.7 10.0",
        "1e-10 1e-09 1e-05 0.0001 0.1 1.0 100000.0 1e+06 1e+10",
    ] {
        let written: Vec<&str> = examples.split(' ').collect();
        let bounds: Vec<f64> = written.iter().map(|v| v.parse().unwrap()).collect();
        let text = encode_bounds(&bounds, Format::OpenMetrics);
        let mut expected = written.clone();
        expected.push("+Inf");
        assert_eq!(le_values(&text, "h"), expected, "{text}");
    }
}

/// Every value of the spec's first range, 0.0 to 10.0 by 0.001, in the
/// shape the examples show: the shortest decimal, `.0` when integral.
#[test]
fn every_thousandth_up_to_ten_is_a_plain_decimal_in_openmetrics() {
    let bounds: Vec<f64> = (0..=10_000).map(|i| f64::from(i) / 1000.0).collect();
    let text = encode_bounds(&bounds, Format::OpenMetrics);
    let values = le_values(&text, "h");
    assert_eq!(values.len(), bounds.len() + 1);
    for (bound, value) in bounds.iter().zip(&values) {
        let shortest = format!("{bound}");
        let expected = if shortest.contains('.') {
            shortest
        } else {
            format!("{shortest}.0")
        };
        assert_eq!(value, &expected);
    }
}

/// What client_golang writes in the 0.0.4 text format: the bare
/// `strconv.FormatFloat(le, 'g', -1, 64)` (`writeFloat` in
/// `expfmt/text_create.go`), for its own `DefBuckets`, for the
/// OpenTelemetry duration buckets and for `ExponentialBuckets(64, 4, 11)`.
#[test]
fn prometheus_text_le_values_match_client_golang() {
    let cases: [(&[f64], &[&str]); 3] = [
        (
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
            &[
                "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
                "+Inf",
            ],
        ),
        (
            DEFAULT_BUCKETS,
            &[
                "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1",
                "2.5", "5", "7.5", "10", "+Inf",
            ],
        ),
        (
            BODY_SIZE_BUCKETS,
            &[
                "64",
                "256",
                "1024",
                "4096",
                "16384",
                "65536",
                "262144",
                "1.048576e+06",
                "4.194304e+06",
                "1.6777216e+07",
                "6.7108864e+07",
                "+Inf",
            ],
        ),
    ];
    for (bounds, expected) in cases {
        let text = encode_bounds(bounds, Format::Prometheus);
        assert_eq!(le_values(&text, "h"), expected, "{text}");
    }
}

/// `FormatFloat(v, 'g', -1, 64)` at the edges of its fixed/exponent switch
/// (exponent below -4 or at least 6) and of the float range.
#[test]
fn prometheus_text_switches_to_exponents_where_go_does() {
    let table: &[(f64, &str)] = &[
        (1e-10, "1e-10"),
        (1e-05, "1e-05"),
        (1.5e-05, "1.5e-05"),
        (0.0001, "0.0001"),
        (0.00012345, "0.00012345"),
        (0.3, "0.3"),
        (1.7, "1.7"),
        (100_000.0, "100000"),
        (999_999.0, "999999"),
        (1e+06, "1e+06"),
        (1_234_567.0, "1.234567e+06"),
        (123_456_789.0, "1.23456789e+08"),
        (1e+21, "1e+21"),
        (1e+100, "1e+100"),
        (f64::MAX, "1.7976931348623157e+308"),
    ];
    let bounds: Vec<f64> = table.iter().map(|(v, _)| *v).collect();
    let text = encode_bounds(&bounds, Format::Prometheus);
    let mut expected: Vec<&str> = table.iter().map(|(_, t)| *t).collect();
    expected.push("+Inf");
    assert_eq!(le_values(&text, "h"), expected, "{text}");
}

/// The same bounds in OpenMetrics differ only by the `.0` of integral
/// fixed-point values.
#[test]
fn openmetrics_differs_from_prometheus_text_only_by_point_zero() {
    let text = le_values(&encode_bounds(BODY_SIZE_BUCKETS, Format::Prometheus), "h");
    let om = le_values(&encode_bounds(BODY_SIZE_BUCKETS, Format::OpenMetrics), "h");
    for (text, om) in text.iter().zip(&om) {
        if text.contains(['.', 'e']) || text == "+Inf" {
            assert_eq!(om, text);
        } else {
            assert_eq!(om, &format!("{text}.0"));
        }
    }
}

/// "Arbitrary integer and floating point rendering of numbers MUST NOT be
/// used for "quantile" and "le" label values ... They MAY be used anywhere
/// else": sample values keep their plain decimal, which every parser reads.
#[test]
fn sample_values_keep_a_plain_decimal() {
    let registry = MetricsRegistry::new();
    registry
        .gauge_f64("big", "A large float.")
        .unwrap()
        .set(1e6);
    let om = registry.encode(Format::OpenMetrics);
    assert!(om.contains("\nbig 1000000.0\n"), "{om}");
}
