//! Metric and label name validation (the Prometheus data model grammar).

use crate::MetricsError;

/// Checks `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn validate_metric_name(name: &str) -> Result<(), MetricsError> {
    let invalid = |reason| MetricsError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(invalid("metric names must not be empty")),
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        Some(_) => return Err(invalid("metric names must start with [a-zA-Z_:]")),
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
        return Err(invalid("metric names may only contain [a-zA-Z0-9_:]"));
    }
    if name.starts_with("__") {
        return Err(invalid("names starting with `__` are reserved"));
    }
    Ok(())
}

/// Checks `[a-zA-Z_][a-zA-Z0-9_]*` and the reserved `__` prefix.
pub(crate) fn validate_label_name(name: &str) -> Result<(), MetricsError> {
    let invalid = |reason| MetricsError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(invalid("label names must not be empty")),
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        Some(_) => return Err(invalid("label names must start with [a-zA-Z_]")),
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(invalid("label names may only contain [a-zA-Z0-9_]"));
    }
    if name.starts_with("__") {
        return Err(invalid("label names starting with `__` are reserved"));
    }
    if name == crate::family::OVERFLOW_LABEL {
        return Err(invalid(
            "`otel_metric_overflow` is reserved for the cardinality guard",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_prometheus_names() {
        for name in ["a", "http_requests", "ns:sub:metric_total", "_x", "A1"] {
            assert_eq!(validate_metric_name(name), Ok(()), "{name}");
        }
        for name in ["method", "_route", "status_code2"] {
            assert_eq!(validate_label_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn rejects_bad_names_with_a_reason() {
        for name in ["", "1abc", "a-b", "a b", "é", "__reserved", "a\n"] {
            assert!(
                matches!(
                    validate_metric_name(name),
                    Err(MetricsError::InvalidName { .. })
                ),
                "{name:?}"
            );
        }
        for name in ["", "a:b", "9", "__name__", "x-y", "otel_metric_overflow"] {
            assert!(
                matches!(
                    validate_label_name(name),
                    Err(MetricsError::InvalidName { .. })
                ),
                "{name:?}"
            );
        }
    }
}
