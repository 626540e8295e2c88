//! Aggregated results and their IETF `application/health+json` rendering.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::check::{HealthCheckResult, HealthStatus};

/// One check's result inside a [`HealthReport`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// The check's name.
    pub name: String,
    /// Whether its Down makes the whole Down (else Degraded).
    pub critical: bool,
    /// What it returned.
    pub result: HealthCheckResult,
    /// When that result was produced (cached results keep their time).
    pub checked_at: SystemTime,
}

impl CheckReport {
    /// The status this check contributes to the aggregate.
    pub fn effective_status(&self) -> HealthStatus {
        match self.result.status {
            HealthStatus::Down if !self.critical => HealthStatus::Degraded,
            status => status,
        }
    }
}

/// The aggregate of several checks: Down > Degraded > Up, an empty set
/// being Up.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The aggregate status.
    pub status: HealthStatus,
    /// A note on the aggregate (draining, startup pending), never secret.
    pub output: Option<String>,
    /// Every check, in registration order.
    pub checks: Vec<CheckReport>,
}

impl HealthReport {
    pub(crate) fn from_checks(checks: Vec<CheckReport>) -> Self {
        let status = checks
            .iter()
            .map(CheckReport::effective_status)
            .max()
            .unwrap_or(HealthStatus::Up);
        Self {
            status,
            output: None,
            checks,
        }
    }

    pub(crate) fn failed(output: &str) -> Self {
        Self {
            status: HealthStatus::Down,
            output: Some(output.to_owned()),
            checks: Vec::new(),
        }
    }

    /// 200 for Up and Degraded, 503 for Down.
    pub fn http_status(&self) -> http::StatusCode {
        match self.status {
            HealthStatus::Up | HealthStatus::Degraded => http::StatusCode::OK,
            HealthStatus::Down => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The body of the IETF health-check draft (`status` pass/warn/fail,
    /// `checks` keyed by name, `time`, `output`). Messages and details are
    /// included only when `with_details` is set.
    pub fn to_json(&self, with_details: bool) -> Value {
        let mut checks = Map::new();
        for check in &self.checks {
            let mut entry = Map::new();
            entry.insert("status".into(), check.result.status.as_ietf().into());
            entry.insert("componentType".into(), "component".into());
            entry.insert("time".into(), rfc3339(check.checked_at).into());
            entry.insert("critical".into(), check.critical.into());
            entry.insert(
                "durationSeconds".into(),
                json!(check.result.duration.as_secs_f64()),
            );
            if with_details {
                if let Some(message) = &check.result.message {
                    entry.insert("output".into(), message.clone().into());
                }
                if !check.result.details.is_null() {
                    entry.insert("details".into(), check.result.details.clone());
                }
            }
            checks.insert(check.name.clone(), Value::Array(vec![Value::Object(entry)]));
        }
        let mut body = Map::new();
        body.insert("status".into(), self.status.as_ietf().into());
        if let Some(output) = &self.output {
            body.insert("output".into(), output.clone().into());
        }
        body.insert("time".into(), rfc3339(SystemTime::now()).into());
        body.insert("checks".into(), Value::Object(checks));
        Value::Object(body)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` (UTC). Times outside 1970..=9999, which
/// humantime refuses to format, are clamped: a probe never panics on a
/// badly set clock.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    humantime::format_rfc3339_seconds(time.clamp(UNIX_EPOCH, last)).to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap_day), "2000-02-29T00:00:00Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_795_337_523);
        assert_eq!(rfc3339(later), "2026-11-22T08:52:03Z");
    }

    #[test]
    fn rfc3339_clamps_instead_of_panicking_outside_its_range() {
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339(before_epoch), "1970-01-01T00:00:00Z");
        let year_10000 = UNIX_EPOCH + Duration::from_secs(253_402_300_800);
        assert_eq!(rfc3339(year_10000), "9999-12-31T23:59:59Z");
    }

    fn check(status: HealthStatus, critical: bool) -> CheckReport {
        let mut result = HealthCheckResult::up();
        result.status = status;
        CheckReport {
            name: format!("{status:?}-{critical}"),
            critical,
            result,
            checked_at: UNIX_EPOCH,
        }
    }

    #[test]
    fn aggregation_is_the_worst_status_with_non_critical_downs_degrading() {
        let report = |checks| HealthReport::from_checks(checks).status;
        assert_eq!(report(vec![]), HealthStatus::Up);
        assert_eq!(
            report(vec![
                check(HealthStatus::Up, true),
                check(HealthStatus::Degraded, true)
            ]),
            HealthStatus::Degraded
        );
        assert_eq!(
            report(vec![
                check(HealthStatus::Up, true),
                check(HealthStatus::Down, false)
            ]),
            HealthStatus::Degraded
        );
        assert_eq!(
            report(vec![
                check(HealthStatus::Down, true),
                check(HealthStatus::Degraded, true)
            ]),
            HealthStatus::Down
        );
    }

    #[test]
    fn details_are_rendered_only_when_allowed() {
        let mut down = check(HealthStatus::Down, true);
        down.result = HealthCheckResult::down("db at 10.0.0.7 refused")
            .with_details(json!({"host": "10.0.0.7"}));
        let report = HealthReport::from_checks(vec![down]);
        let hidden = report.to_json(false).to_string();
        assert!(!hidden.contains("10.0.0.7"), "{hidden}");
        assert!(hidden.contains("\"status\":\"fail\""), "{hidden}");
        let shown = report.to_json(true).to_string();
        assert!(
            shown.contains("refused") && shown.contains("\"host\""),
            "{shown}"
        );
    }
}
