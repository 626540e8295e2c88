//! Aggregated results and their IETF `application/health+json` rendering.

use std::collections::BTreeMap;
use std::sync::Arc;
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

/// The service-level fields of the draft (§3: `version`, `releaseId`,
/// `serviceId`, `description`, `notes`, `links`), set once on the registry
/// builder. They describe the service, not its internals, and the app
/// chooses to publish them, so every response carries them whatever the
/// details policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServiceInfo {
    pub(crate) version: Option<String>,
    pub(crate) release_id: Option<String>,
    pub(crate) service_id: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) notes: Vec<String>,
    /// Link relation (`about`, or a URI for a custom one) to URI.
    pub(crate) links: BTreeMap<String, String>,
}

impl ServiceInfo {
    fn write_to(&self, body: &mut Map<String, Value>) {
        let fields = [
            ("version", &self.version),
            ("releaseId", &self.release_id),
            ("serviceId", &self.service_id),
            ("description", &self.description),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                body.insert(key.into(), value.clone().into());
            }
        }
        if !self.notes.is_empty() {
            body.insert("notes".into(), self.notes.clone().into());
        }
        if !self.links.is_empty() {
            let links = self
                .links
                .iter()
                .map(|(rel, href)| (rel.clone(), Value::from(href.clone())))
                .collect();
            body.insert("links".into(), Value::Object(links));
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
    /// The registry's service-level fields, rendered at the top level.
    pub(crate) service: Arc<ServiceInfo>,
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
            service: Arc::default(),
        }
    }

    pub(crate) fn failed(output: &str) -> Self {
        Self {
            status: HealthStatus::Down,
            output: Some(output.to_owned()),
            checks: Vec::new(),
            service: Arc::default(),
        }
    }

    pub(crate) fn with_service(mut self, service: Arc<ServiceInfo>) -> Self {
        self.service = service;
        self
    }

    /// 200 for Up and Degraded, 503 for Down.
    pub fn http_status(&self) -> http::StatusCode {
        match self.status {
            HealthStatus::Up | HealthStatus::Degraded => http::StatusCode::OK,
            HealthStatus::Down => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The body of the IETF health-check draft: `status` pass/warn/fail,
    /// the registry's `version`, `releaseId`, `serviceId`, `description`,
    /// `notes` and `links`, `output`, `time`, and `checks` keyed by name,
    /// each a one-entry list.
    ///
    /// An entry always has `status`, `componentType`, `time`, and Cortex's
    /// own `critical` and `durationSeconds` (the draft allows extra keys).
    /// The fields that can leak internals (`output`, `details`,
    /// `componentId`, `observedValue`, `observedUnit`) are included only
    /// when `with_details` is set.
    pub fn to_json(&self, with_details: bool) -> Value {
        let mut checks = Map::new();
        for check in &self.checks {
            let entry = check_entry(check, with_details);
            checks.insert(check.name.clone(), Value::Array(vec![Value::Object(entry)]));
        }
        let mut body = Map::new();
        body.insert("status".into(), self.status.as_ietf().into());
        self.service.write_to(&mut body);
        if let Some(output) = &self.output {
            body.insert("output".into(), output.clone().into());
        }
        body.insert("time".into(), rfc3339(SystemTime::now()).into());
        body.insert("checks".into(), Value::Object(checks));
        Value::Object(body)
    }
}

/// One check's entry in `checks`. The split between always-shown and
/// detail fields is documented on [`HealthReport::to_json`].
fn check_entry(check: &CheckReport, with_details: bool) -> Map<String, Value> {
    let result = &check.result;
    let mut entry = Map::new();
    entry.insert("status".into(), result.status.as_ietf().into());
    let component_type = result.component_type.as_deref().unwrap_or("component");
    entry.insert("componentType".into(), component_type.into());
    let time = result.time.unwrap_or(check.checked_at);
    entry.insert("time".into(), rfc3339(time).into());
    entry.insert("critical".into(), check.critical.into());
    entry.insert(
        "durationSeconds".into(),
        json!(result.duration.as_secs_f64()),
    );
    if with_details {
        if let Some(id) = &result.component_id {
            entry.insert("componentId".into(), id.clone().into());
        }
        if let Some(value) = &result.observed_value {
            entry.insert("observedValue".into(), value.clone());
        }
        if let Some(unit) = &result.observed_unit {
            entry.insert("observedUnit".into(), unit.clone().into());
        }
        if let Some(message) = &result.message {
            entry.insert("output".into(), message.clone().into());
        }
        if !result.details.is_null() {
            entry.insert("details".into(), result.details.clone());
        }
    }
    entry
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
