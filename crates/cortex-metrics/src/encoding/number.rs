//! Canonical numbers for `le` and `quantile` label values.
//!
//! A bucket bound is a label value, and label values are compared as
//! strings: `le="1e+06"` from a Go service and `le="1000000.0"` from this
//! one are two different series that never join. OpenMetrics 1.0 therefore
//! requires ("Considerations: Canonical Numbers", and the Histogram
//! section) the rendering of Go's `strconv.FormatFloat(v, 'g', -1, 64)` —
//! the shortest digits that round-trip, exponent form when the decimal
//! exponent is below -4 or at least 6 — with `.0` appended when that has
//! neither a point nor an exponent. Prometheus text 0.0.4 has no such rule,
//! but Prometheus' own client_golang writes bounds with the bare
//! `FormatFloat` (`le="0.005"`, `le="1"`, `le="1e+06"`), so that is what
//! Cortex writes there, for the same reason.

use std::fmt::{self, Write as _};

use super::Format;

/// Writes `value` as a canonical `le`/`quantile` label value in `format`.
pub(crate) fn write_canonical(out: &mut String, value: f64, format: Format) {
    let start = out.len();
    write_go_float(out, value);
    let written = &out[start..];
    if format == Format::OpenMetrics && value.is_finite() && !written.contains(['.', 'e']) {
        out.push_str(".0");
    }
}

/// Go's `strconv.FormatFloat(value, 'g', -1, 64)`, with client_golang's
/// spellings of the special values (`NaN`, `+Inf`, `-Inf`) and of zero
/// (`0`, whatever its sign).
pub(crate) fn write_go_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if value == 0.0 {
        out.push('0');
        return;
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Go's
    // shortest mode (both pick the closest of the shortest candidates), as
    // `d.ddd` and an unpadded exponent: only the layout differs.
    let mut scientific = StackBuffer::default();
    if write!(scientific, "{value:e}").is_err() {
        // Cannot happen (24 bytes at most); fall back to something valid.
        let _ = write!(out, "{value:e}");
        return;
    }
    let text = scientific.as_str();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let Some((mantissa, exponent)) = text.split_once('e') else {
        out.push_str(text);
        return;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        out.push_str(text);
        return;
    };
    let (lead, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if negative {
        out.push('-');
    }
    // `%g` in shortest mode: exponent form outside [1e-4, 1e6).
    if !(-4..6).contains(&exponent) {
        out.push_str(lead);
        if !fraction.is_empty() {
            out.push('.');
            out.push_str(fraction);
        }
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push('0');
        }
        let _ = write!(out, "{magnitude}");
        return;
    }
    // Fixed form: the digits with the point after `exponent + 1` of them,
    // zero-padded on whichever side needs it.
    let digits = lead.bytes().chain(fraction.bytes());
    let count = lead.len() + fraction.len();
    let point = exponent + 1;
    if point <= 0 {
        out.push_str("0.");
        for _ in point..0 {
            out.push('0');
        }
        digits.for_each(|d| out.push(char::from(d)));
    } else {
        let point = point.unsigned_abs() as usize;
        for (i, d) in digits.enumerate() {
            if i == point {
                out.push('.');
            }
            out.push(char::from(d));
        }
        for _ in count..point {
            out.push('0');
        }
    }
}

/// Room for the longest `{:e}` of an `f64` (`-2.2250738585072014e-308`).
#[derive(Default)]
struct StackBuffer {
    bytes: [u8; 32],
    len: usize,
}

impl StackBuffer {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for StackBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(value: f64) -> String {
        let mut out = String::new();
        write_go_float(&mut out, value);
        out
    }

    fn canonical(value: f64) -> String {
        let mut out = String::new();
        write_canonical(&mut out, value, Format::OpenMetrics);
        out
    }

    /// `strconv.FormatFloat(v, 'g', -1, 64)` as Go prints it, and
    /// client_golang's special cases.
    #[test]
    fn matches_go_format_float_g_shortest() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.0, "-1"),
            (0.0, "0"),
            (-0.0, "0"),
            (0.005, "0.005"),
            (2.5, "2.5"),
            (10.0, "10"),
            (100_000.0, "100000"),
            (999_999.0, "999999"),
            (1e6, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (123_456_789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.000_123_45, "0.00012345"),
            (1e-5, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (1e-10, "1e-10"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (1e-100, "1e-100"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (-2.5e-7, "-2.5e-07"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for &(value, text) in cases {
            assert_eq!(go(value), text, "{value:?}");
            if value.is_finite() {
                assert_eq!(go(value).parse::<f64>().unwrap(), value, "{text}");
            }
        }
    }

    #[test]
    fn openmetrics_appends_point_zero_only_without_point_or_exponent() {
        assert_eq!(canonical(1.0), "1.0");
        assert_eq!(canonical(0.0), "0.0");
        assert_eq!(canonical(100_000.0), "100000.0");
        assert_eq!(canonical(1e6), "1e+06");
        assert_eq!(canonical(0.25), "0.25");
        assert_eq!(canonical(f64::INFINITY), "+Inf");
    }

    #[test]
    fn every_rendering_round_trips() {
        let mut value = 1e-12_f64;
        while value < 1e12 {
            for v in [value, value * 1.5, value / 3.0, -value] {
                let text = canonical(v);
                assert_eq!(text.parse::<f64>().unwrap(), v, "{text}");
            }
            value *= 7.0;
        }
    }
}
