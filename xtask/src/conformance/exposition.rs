//! A scrape as the outside tools read it: `promtool check metrics` on the
//! Prometheus 0.0.4 text, and Python's `prometheus_client` parsers (the
//! OpenMetrics one and the classic text one) turning either format into
//! families that the checks then inspect value by value.
//!
//! Python prints what it parsed as JSON; nothing here parses exposition
//! text itself, so a mistake in our encoder cannot be hidden by the same
//! mistake in a checker of ours.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// An exposition format and the Python parser that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `text/plain; version=0.0.4`, read by `prometheus_client.parser`.
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`, read by
    /// `prometheus_client.openmetrics.parser`.
    OpenMetrics,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PrometheusText => "prometheus-text",
            Self::OpenMetrics => "openmetrics",
        })
    }
}

/// Parses `argv[2]` with the parser for `argv[1]` and prints its families
/// as JSON; non-finite values become the strings `NaN`, `+Inf`, `-Inf`
/// (JSON has no such numbers).
const PYTHON_PARSE: &str = r#"
import json, math, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

fmt, path = sys.argv[1], sys.argv[2]
parse = parse_om if fmt == "openmetrics" else parse_text

def number(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v

families = []
for family in parse(open(path, encoding="utf-8").read()):
    samples = []
    for s in family.samples:
        exemplar = None
        if getattr(s, "exemplar", None) is not None:
            exemplar = {"labels": s.exemplar.labels, "value": number(s.exemplar.value)}
        samples.append({"name": s.name, "labels": s.labels, "value": number(s.value), "exemplar": exemplar})
    families.append({"name": family.name, "type": family.type, "help": family.documentation, "samples": samples})
json.dump(families, sys.stdout)
"#;

/// Every family of one scrape, in exposition order.
#[derive(Debug)]
pub(crate) struct Exposition {
    /// Which parser read it.
    pub(crate) format: Format,
    /// The families.
    pub(crate) families: Vec<Family>,
}

/// One metric family: `name` without `_total` for counters, as both
/// parsers report it.
#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) name: String,
    /// `counter`, `gauge`, `histogram`, ...
    pub(crate) kind: String,
    pub(crate) help: String,
    pub(crate) samples: Vec<Sample>,
}

/// One sample line.
#[derive(Debug)]
pub(crate) struct Sample {
    /// The sample's own name (`foo_total`, `foo_bucket`, ...).
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
    /// The labels of its exemplar (OpenMetrics only).
    pub(crate) exemplar: Option<BTreeMap<String, String>>,
}

impl Exposition {
    /// Runs the Python parser for `format` on the file at `path`.
    pub(crate) fn parse(format: Format, path: &Path) -> Result<Self, String> {
        let output = Command::new("python3")
            .args(["-c", PYTHON_PARSE, &format.to_string()])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "the Python {format} parser rejected {} ({}):\n{}",
                path.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let parsed: Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("python {format}: unreadable output ({e})"))?;
        let families = parsed
            .as_array()
            .ok_or_else(|| format!("python {format}: not a list of families"))?
            .iter()
            .map(Family::from_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("python {format}: {e}"))?;
        let samples: usize = families.iter().map(|f| f.samples.len()).sum();
        eprintln!(
            "python {format}: parsed {} families, {samples} samples from {}",
            families.len(),
            path.display()
        );
        Ok(Self { format, families })
    }

    /// The family called `name`.
    pub(crate) fn family(&self, name: &str) -> Result<&Family, String> {
        self.families
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("{}: no family {name}", self.format))
    }

    /// The samples called `name` whose labels include every pair of
    /// `labels`.
    pub(crate) fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.families
            .iter()
            .flat_map(|f| &f.samples)
            .filter(move |s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).is_some_and(|l| l == v))
            })
    }

    /// The value of the one sample called `name` whose labels include
    /// every pair of `labels`; an error if there is none or several.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
        let found: Vec<&Sample> = self.samples(name, labels).collect();
        match found.as_slice() {
            [one] => Ok(one.value),
            [] => Err(format!("{}: no sample {name}{labels:?}", self.format)),
            many => Err(format!(
                "{}: {} samples match {name}{labels:?}: {many:?}",
                self.format,
                many.len()
            )),
        }
    }

    /// Fails unless the sample `name{labels}` satisfies `expected`,
    /// described as `what`.
    pub(crate) fn expect(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        what: &str,
        expected: impl Fn(f64) -> bool,
    ) -> Result<(), String> {
        let value = self.value(name, labels)?;
        if expected(value) {
            Ok(())
        } else {
            Err(format!(
                "{}: {name}{labels:?} is {value}, expected {what}",
                self.format
            ))
        }
    }
}

impl Family {
    fn from_json(family: &Value) -> Result<Self, String> {
        let samples = family["samples"]
            .as_array()
            .ok_or_else(|| format!("a family without samples: {family}"))?
            .iter()
            .map(Sample::from_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name: string(&family["name"], family)?,
            kind: string(&family["type"], family)?,
            help: string(&family["help"], family)?,
            samples,
        })
    }
}

impl Sample {
    fn from_json(sample: &Value) -> Result<Self, String> {
        let exemplar = match &sample["exemplar"] {
            Value::Null => None,
            exemplar => Some(labels(&exemplar["labels"], sample)?),
        };
        Ok(Self {
            name: string(&sample["name"], sample)?,
            labels: labels(&sample["labels"], sample)?,
            value: number(&sample["value"], sample)?,
            exemplar,
        })
    }
}

fn string(value: &Value, context: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a string, got {value} in {context}"))
}

fn number(value: &Value, context: &Value) -> Result<f64, String> {
    match value {
        Value::String(s) if s == "NaN" => Ok(f64::NAN),
        Value::String(s) if s == "+Inf" => Ok(f64::INFINITY),
        Value::String(s) if s == "-Inf" => Ok(f64::NEG_INFINITY),
        other => other
            .as_f64()
            .ok_or_else(|| format!("expected a number, got {other} in {context}")),
    }
}

fn labels(value: &Value, context: &Value) -> Result<BTreeMap<String, String>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("expected labels, got {value} in {context}"))?
        .iter()
        .map(|(k, v)| Ok((k.clone(), string(v, context)?)))
        .collect()
}

/// `promtool check metrics` on the Prometheus text at `path`: it must
/// pass and report nothing (not even lint findings).
pub(crate) fn promtool_check(path: &Path) -> Result<(), String> {
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).map_err(|e| e.to_string())?)
        .output()
        .map_err(|e| format!("cannot run promtool: {e}"))?;
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
    if !promtool.status.success() || !findings.trim().is_empty() {
        return Err(format!(
            "promtool check metrics {} failed ({}):\n{findings}",
            path.display(),
            promtool.status
        ));
    }
    eprintln!("promtool check metrics {}: no problems", path.display());
    Ok(())
}
