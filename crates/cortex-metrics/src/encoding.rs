//! Text exposition: Prometheus 0.0.4 and OpenMetrics 1.0.0, and the
//! `Accept`-header negotiation between them ([`negotiate`]).
//!
//! Both formats are written by one small writer so that escaping and number
//! formatting are identical and tested once: label values escape `\`, `"`
//! and newline; `HELP` text escapes `\` and newline (and `"` in
//! OpenMetrics, whose grammar requires it); sample values print as `NaN`,
//! `+Inf`, `-Inf` or a shortest round-trip decimal; `le` bounds print as
//! canonical numbers ([`number`]). A label whose value is empty is left
//! out: both formats define it as the same thing as no label, and it lets a
//! family carry a label only on the series that have one (`error_type` on
//! failed requests).

mod negotiate;
mod number;

use std::fmt::Write as _;

use crate::metric::MetricType;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    #[default]
    Prometheus,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` a response in this format must carry.
    pub const fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The labels of one series, borrowed from its family.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum LabelSet<'a> {
    /// No labels.
    Empty,
    /// Parallel name and value slices.
    Pairs {
        /// Label names.
        names: &'a [Box<str>],
        /// Label values, same length as `names`.
        values: &'a [Box<str>],
    },
    /// The cardinality guard's overflow series: `otel_metric_overflow="true"`.
    Overflow,
    /// Borrowed name and value slices, as collectors produce them.
    Borrowed {
        /// Label names.
        names: &'a [&'a str],
        /// Label values, same length as `names`.
        values: &'a [&'a str],
    },
}

/// Writes families and samples in one format.
#[doc(hidden)]
#[derive(Debug)]
pub struct MetricWriter<'a> {
    out: &'a mut String,
    format: Format,
}

impl<'a> MetricWriter<'a> {
    pub(crate) fn new(out: &'a mut String, format: Format) -> Self {
        Self { out, format }
    }

    /// The format being written.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// `# HELP` and `# TYPE` for a family. `name` is the base name (a
    /// counter's without `_total`).
    pub(crate) fn family_header(&mut self, name: &str, help: &str, metric_type: MetricType) {
        let suffix = match (metric_type, self.format) {
            (MetricType::Counter, Format::Prometheus) => "_total",
            _ => "",
        };
        if !help.is_empty() {
            self.out.push_str("# HELP ");
            self.out.push_str(name);
            self.out.push_str(suffix);
            self.out.push(' ');
            escape_help(self.out, help, self.format);
            self.out.push('\n');
        }
        self.out.push_str("# TYPE ");
        self.out.push_str(name);
        self.out.push_str(suffix);
        self.out.push(' ');
        self.out.push_str(metric_type.as_str());
        self.out.push('\n');
    }

    pub(crate) fn sample_u64(
        &mut self,
        name: &str,
        suffix: &str,
        labels: LabelSet<'_>,
        extra: Option<(&str, f64)>,
        value: u64,
    ) {
        self.sample_start(name, suffix, labels, extra);
        let _ = write!(self.out, "{value}");
        self.out.push('\n');
    }

    /// A bucket sample with an OpenMetrics exemplar
    /// (`... 3 # {trace_id="...",span_id="..."} 0.042 1700000000.123`).
    /// Prometheus text has no exemplars, so there it is a plain sample.
    pub(crate) fn bucket_sample(
        &mut self,
        name: &str,
        labels: LabelSet<'_>,
        le: f64,
        value: u64,
        exemplar: Option<&crate::histogram::StoredExemplar>,
    ) {
        self.sample_start(name, "_bucket", labels, Some(("le", le)));
        let _ = write!(self.out, "{value}");
        if let (Format::OpenMetrics, Some(exemplar)) = (self.format, exemplar) {
            let _ = write!(
                self.out,
                " # {{trace_id=\"{:032x}\",span_id=\"{:016x}\"}} ",
                exemplar.trace_id, exemplar.span_id
            );
            write_f64(self.out, exemplar.value);
            self.out.push(' ');
            write_f64(self.out, exemplar.timestamp);
        }
        self.out.push('\n');
    }

    pub(crate) fn sample_i64(
        &mut self,
        name: &str,
        suffix: &str,
        labels: LabelSet<'_>,
        value: i64,
    ) {
        self.sample_start(name, suffix, labels, None);
        let _ = write!(self.out, "{value}");
        self.out.push('\n');
    }

    pub(crate) fn sample_f64(
        &mut self,
        name: &str,
        suffix: &str,
        labels: LabelSet<'_>,
        extra: Option<(&str, f64)>,
        value: f64,
    ) {
        self.sample_start(name, suffix, labels, extra);
        write_f64(self.out, value);
        self.out.push('\n');
    }

    /// A float sample without extra labels (the shape gauges need).
    pub(crate) fn sample_f64_plain(
        &mut self,
        name: &str,
        suffix: &str,
        labels: LabelSet<'_>,
        value: f64,
    ) {
        self.sample_f64(name, suffix, labels, None, value);
    }

    /// The OpenMetrics terminator; nothing for Prometheus text.
    pub(crate) fn finish(&mut self) {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
    }

    /// The name, labels and separating space of a sample. `extra` is the
    /// `le` (or `quantile`) label, written as a canonical number.
    fn sample_start(
        &mut self,
        name: &str,
        suffix: &str,
        labels: LabelSet<'_>,
        extra: Option<(&str, f64)>,
    ) {
        self.out.push_str(name);
        self.out.push_str(suffix);
        let mut first = true;
        let mut open = |out: &mut String| {
            out.push(if first { '{' } else { ',' });
            first = false;
        };
        match labels {
            LabelSet::Empty => {}
            LabelSet::Pairs { names, values } => {
                for (label, value) in names.iter().zip(values) {
                    if !value.is_empty() {
                        open(self.out);
                        write_label(self.out, label, value);
                    }
                }
            }
            LabelSet::Borrowed { names, values } => {
                for (label, value) in names.iter().zip(values) {
                    if !value.is_empty() {
                        open(self.out);
                        write_label(self.out, label, value);
                    }
                }
            }
            LabelSet::Overflow => {
                open(self.out);
                self.out.push_str(crate::family::OVERFLOW_LABEL);
                self.out.push_str("=\"true\"");
            }
        }
        if let Some((label, value)) = extra {
            open(self.out);
            self.out.push_str(label);
            self.out.push_str("=\"");
            number::write_canonical(self.out, value, self.format);
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        self.out.push(' ');
    }
}

/// `label="value"`, escaped.
fn write_label(out: &mut String, label: &str, value: &str) {
    out.push_str(label);
    out.push_str("=\"");
    escape_label_value(out, value);
    out.push('"');
}

/// Escapes `\`, `"` and newline, the three characters the label-value
/// grammar of both formats reserves.
pub(crate) fn escape_label_value(out: &mut String, value: &str) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, help: &str, format: Format) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == Format::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A sample value: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that
/// round-trips, with a `.0` on integral values. OpenMetrics allows any
/// rendering outside `le` and `quantile` ("Numbers"), and a plain decimal
/// keeps timestamps free of the exponent form the spec advises against.
pub(crate) fn write_f64(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let start = out.len();
        let _ = write!(out, "{value}");
        if !out[start..].contains(['.', 'e', 'E']) {
            out.push_str(".0");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &str) -> String {
        let mut out = String::new();
        escape_label_value(&mut out, value);
        out
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(escaped("plain"), "plain");
        assert_eq!(escaped(r#"a"b"#), r#"a\"b"#);
        assert_eq!(escaped(r"C:\dir"), r"C:\\dir");
        assert_eq!(escaped("line\nbreak"), r"line\nbreak");
        assert_eq!(escaped("ünïcödé\t"), "ünïcödé\t");
    }

    #[test]
    fn help_escaping_differs_only_in_quotes() {
        let mut text = String::new();
        escape_help(&mut text, "say \"hi\"\\\n", Format::Prometheus);
        assert_eq!(text, r#"say "hi"\\\n"#);
        let mut om = String::new();
        escape_help(&mut om, "say \"hi\"\\\n", Format::OpenMetrics);
        assert_eq!(om, r#"say \"hi\"\\\n"#);
    }

    #[test]
    fn sample_values_keep_a_point_and_round_trip() {
        let cases = [
            (1.0, "1.0"),
            (0.005, "0.005"),
            (-2.5, "-2.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1e300, "1e300"),
        ];
        for (value, text) in cases {
            let mut out = String::new();
            write_f64(&mut out, value);
            let expected = if value == 1e300 {
                out.clone()
            } else {
                text.to_owned()
            };
            assert_eq!(out, expected, "{value}");
            if value.is_finite() {
                assert_eq!(out.parse::<f64>().unwrap(), value);
            }
        }
    }

    #[test]
    fn negotiation_honours_quality_values() {
        let om = Some("application/openmetrics-text; version=1.0.0");
        assert_eq!(Format::negotiate(om), Some(Format::OpenMetrics));
        let prefers_text = Some("application/openmetrics-text;q=0.3,text/plain;q=0.9");
        assert_eq!(Format::negotiate(prefers_text), Some(Format::Prometheus));
        let refuses_om = Some("application/openmetrics-text;q=0, */*;q=0.1");
        assert_eq!(Format::negotiate(refuses_om), Some(Format::Prometheus));
        let case = Some("Application/OpenMetrics-Text");
        assert_eq!(Format::negotiate(case), Some(Format::OpenMetrics));
        for garbage in [
            "",
            ",,,",
            ";;q=",
            "application/openmetrics-text;q=abc",
            "\u{0}",
        ] {
            assert_eq!(
                Format::negotiate(Some(garbage)),
                Some(Format::Prometheus),
                "{garbage:?}"
            );
        }
    }
}
