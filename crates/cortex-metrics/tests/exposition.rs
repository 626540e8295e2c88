//! Property tests: whatever the label values, help text, names or `Accept`
//! header, nothing panics and the exposition stays well-formed with every
//! value recoverable.

use cortex_metrics::{Format, MetricsError, MetricsRegistry};
use proptest::prelude::*;

/// Parses one sample line strictly: `name{k="v",...} value`, undoing the
/// three escapes. Returns the label pairs.
fn parse_labels(line: &str) -> Result<Vec<(String, String)>, String> {
    let open = line.find('{').ok_or("no labels")?;
    let mut labels = Vec::new();
    let mut rest = &line[open + 1..];
    loop {
        let eq = rest.find("=\"").ok_or("no =\"")?;
        let key = rest[..eq].to_owned();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                (_, '\n') => return Err("raw newline".into()),
                (_, c) => value.push(c),
            }
        };
        labels.push((key, value));
        rest = &rest[eq + 2 + end + 1..];
        match rest.chars().next() {
            Some(',') => rest = &rest[1..],
            Some('}') => return Ok(labels),
            other => return Err(format!("unexpected {other:?}")),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_label_value_round_trips_through_both_formats(
        values in proptest::collection::vec(any::<String>(), 1..8),
        help in any::<String>(),
    ) {
        let registry = MetricsRegistry::new();
        let family = registry.counter_family("prop", &help, ["v"]).unwrap();
        for value in &values {
            family.with_labels([value]).inc();
        }
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let text = registry.encode(format);
            let mut seen = Vec::new();
            for line in text.lines() {
                if let Some(help_text) = line.strip_prefix("# HELP prop") {
                    // HELP is one line whatever the help contains.
                    prop_assert!(!help_text.contains('\n'));
                }
                if line.starts_with("prop_total{") {
                    let labels = parse_labels(line).map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
                    prop_assert_eq!(labels.len(), 1);
                    seen.push(labels[0].1.clone());
                } else if line.starts_with("prop_total ") {
                    // An empty value is written as no label: the same
                    // series in both formats.
                    seen.push(String::new());
                }
            }
            let mut expected = values.clone();
            expected.sort();
            expected.dedup();
            seen.sort();
            prop_assert_eq!(seen, expected);
        }
    }

    #[test]
    fn negotiation_never_panics(accept in any::<String>()) {
        let format = Format::negotiate(Some(&accept));
        prop_assert!(matches!(format, None | Some(Format::Prometheus | Format::OpenMetrics)));
    }

    #[test]
    fn any_name_is_accepted_or_a_typed_error(name in any::<String>(), label in any::<String>()) {
        let registry = MetricsRegistry::new();
        match registry.gauge_family(&name, "help", [label.as_str()]) {
            Ok(family) => {
                let valid_start = |c: char| c.is_ascii_alphabetic() || c == '_';
                prop_assert!(name.starts_with(|c: char| valid_start(c) || c == ':'));
                prop_assert!(label.starts_with(valid_start));
                family.with_labels(["x"]).set(1);
                let expected = format!("{name}{{{label}=\"x\"}} 1");
                prop_assert!(registry.encode(Format::Prometheus).contains(&expected));
            }
            Err(MetricsError::InvalidName { .. }) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_the_count(
        observations in proptest::collection::vec(any::<f64>(), 0..64),
    ) {
        let registry = MetricsRegistry::new();
        let h = registry.histogram("prop_hist", "", cortex_metrics::DEFAULT_BUCKETS).unwrap();
        for v in &observations {
            h.observe(*v);
        }
        let cumulative = h.cumulative_counts();
        prop_assert!(cumulative.windows(2).all(|w| w[0] <= w[1]));
        prop_assert_eq!(*cumulative.last().unwrap(), observations.len() as u64);
        prop_assert!(!h.sum().is_nan() || observations.iter().any(|v| v.is_infinite()));
    }
}
