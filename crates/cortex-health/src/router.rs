//! The probe endpoints for axum.

use axum::Router;
use axum::extract::RawQuery;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, header};

use crate::registry::{HealthRegistry, Probe, ShowDetails};
use crate::report::HealthReport;

/// The media type of the IETF health-check draft.
pub const HEALTH_JSON: &str = "application/health+json";

/// Every probe route and the checks it runs (`None`: all of them).
const PROBE_ROUTES: [(&str, Option<Probe>); 6] = [
    ("/health", None),
    ("/health/live", Some(Probe::Liveness)),
    ("/livez", Some(Probe::Liveness)),
    ("/health/ready", Some(Probe::Readiness)),
    ("/readyz", Some(Probe::Readiness)),
    ("/health/startup", Some(Probe::Startup)),
];

impl HealthRegistry {
    /// The paths [`router`](Self::router) serves.
    pub const PATHS: [&'static str; 6] = [
        PROBE_ROUTES[0].0,
        PROBE_ROUTES[1].0,
        PROBE_ROUTES[2].0,
        PROBE_ROUTES[3].0,
        PROBE_ROUTES[4].0,
        PROBE_ROUTES[5].0,
    ];

    /// A router with the health endpoints:
    ///
    /// | route | runs |
    /// |---|---|
    /// | `GET /health` | every check |
    /// | `GET /health/live`, `GET /livez` | liveness checks |
    /// | `GET /health/ready`, `GET /readyz` | readiness (see [`HealthRegistry::check_probe`]) |
    /// | `GET /health/startup` | startup checks |
    ///
    /// Up and Degraded answer 200, Down 503, with an `application/health+json`
    /// body and `Cache-Control: no-store`. Messages and details appear only as
    /// the registry's [`ShowDetails`] allows; `?verbose` asks for them.
    ///
    /// ```
    /// use axum::Router;
    /// use cortex_health::HealthRegistry;
    ///
    /// let health = HealthRegistry::new();
    /// let app: Router = Router::new().merge(health.router());
    /// ```
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let route = |probe: Option<Probe>| {
            let registry = self.clone();
            get(move |RawQuery(query): RawQuery| {
                let registry = registry.clone();
                async move { respond(&registry, probe, query.as_deref()).await }
            })
        };
        PROBE_ROUTES
            .into_iter()
            .fold(Router::new(), |router, (path, probe)| {
                router.route(path, route(probe))
            })
    }
}

async fn respond(registry: &HealthRegistry, probe: Option<Probe>, query: Option<&str>) -> Response {
    let report: HealthReport = match probe {
        None => registry.check_all().await,
        Some(probe) => registry.check_probe(probe).await,
    };
    let with_details = match registry.show_details() {
        ShowDetails::Never => false,
        ShowDetails::WhenVerbose => asks_verbose(query),
        ShowDetails::Always => true,
    };
    let body = report.to_json(with_details).to_string();
    (
        report.http_status(),
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// `?verbose`, `?verbose=1`, `?a=b&verbose=true`; not `?verbose=0` or
/// `?verbose=false`. Parsed by hand so malformed queries cannot fail the
/// probe.
fn asks_verbose(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        query.split('&').any(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            key == "verbose" && !matches!(value, "0" | "false")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbose_flag_parsing() {
        assert!(asks_verbose(Some("verbose")));
        assert!(asks_verbose(Some("verbose=1")));
        assert!(asks_verbose(Some("x=%ZZ&verbose=true")));
        assert!(!asks_verbose(Some("verbose=0")));
        assert!(!asks_verbose(Some("verbose=false")));
        assert!(!asks_verbose(Some("verbosity=1")));
        assert!(!asks_verbose(None));
    }
}
