//! The live status page at `/`: what the Hub is doing, right now.
//!
//! - `GET /` answers the page (HTML, with `/status.css` and `/status.js`:
//!   no inline script or style, nothing from another origin, so the Hub's
//!   strict CSP holds and it works offline). A client that asks for
//!   `application/json` gets the route index instead, as `GET /api` does.
//! - `GET /api/status`: one snapshot as JSON: health of every check,
//!   every resilience policy (breaker states and failure rates, bulkhead
//!   and limiter saturation), actor counts and mailbox depth, the worker
//!   and wasm pools, order analytics, notification connections, and the
//!   request rate, 5xx rate and p50/p99 latency over the last few seconds.
//! - `GET /api/status/stream`: the same snapshot as server-sent events
//!   (`event: status`), once a second.
//!
//! The request figures come from the Hub's own `/metrics` series
//! (`http_server_request_duration_seconds`, `cortex_actor_mailbox_depth`):
//! the page shows what Prometheus would, not a second set of books. One
//! sampler task takes a snapshot a second while somebody watches, however
//! many watch, and stops when nobody does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cortex::health::{HealthRegistry, HealthStatus};
use cortex::metrics::{Format, MetricsRegistry};
use cortex::prelude::*;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::Streams;
use crate::analytics::{Analytics, histogram_quantile};
use crate::notifications::Notifier;
use crate::routes::IndexedRouter;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("status.js");
const STYLE: &str = include_str!("status.css");
const ICON: &str = include_str!("favicon.svg");

/// How often the stream sends a snapshot.
const INTERVAL: Duration = Duration::from_secs(1);

/// How far back the request rate and latency look.
const WINDOW: Duration = Duration::from_secs(10);

/// The series the request figures come from.
const DURATION: &str = "http_server_request_duration_seconds";

/// What the page reads: every live handle of the Hub it shows.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub(crate) metrics: MetricsRegistry,
    pub(crate) health: HealthRegistry,
    pub(crate) policies: PolicyRegistry,
    pub(crate) actors: ActorSystem,
    pub(crate) compute: WorkerPool,
    pub(crate) images: WasmPool,
    pub(crate) hostile: WasmPool,
    pub(crate) analytics: Analytics,
    pub(crate) notifier: Notifier,
    pub(crate) streams: Streams,
}

/// The status feed: the sources, the recent request samples, and the
/// latest snapshot for every stream. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct StatusFeed {
    inner: Arc<FeedInner>,
}

#[derive(Debug)]
struct FeedInner {
    sources: Sources,
    started: Instant,
    samples: Mutex<VecDeque<Sample>>,
    latest: watch::Sender<Arc<str>>,
    sampling: AtomicBool,
}

/// The request series at one moment.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    requests: u64,
    server_errors: u64,
    /// Upper bounds and cumulative counts of the duration histogram,
    /// summed over every route, method and status.
    bounds: Vec<f64>,
    cumulative: Vec<u64>,
    mailbox_depth: u64,
}

impl StatusFeed {
    pub(crate) fn new(sources: Sources) -> Self {
        Self {
            inner: Arc::new(FeedInner {
                sources,
                started: Instant::now(),
                samples: Mutex::default(),
                // Empty until the sampler has taken its first snapshot.
                latest: watch::Sender::new(Arc::from("")),
                sampling: AtomicBool::new(false),
            }),
        }
    }

    /// The page's assets and the status routes (`/` and `/api` are added
    /// by the Hub once every route is known: see [`page_or_index`]).
    pub(crate) fn routes(&self) -> IndexedRouter {
        IndexedRouter::new()
            .route(
                "/status.js",
                "the status page's script",
                get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
            )
            .route(
                "/favicon.svg",
                "the status page's icon (so browsers do not ask for a missing /favicon.ico)",
                get(|| async { asset("image/svg+xml", ICON) }),
            )
            .route(
                "/status.css",
                "the status page's style sheet",
                get(|| async { asset("text/css; charset=utf-8", STYLE) }),
            )
            .route(
                "/api/status",
                "a snapshot of everything the status page shows, as JSON",
                get(snapshot),
            )
            .route(
                "/api/status/stream",
                "the status snapshot as server-sent events (event: status), once a second",
                get(stream),
            )
            .map(|router: Router<StatusFeed>| router.with_state(self.clone()))
    }

    /// A snapshot now, sampling the request series if the last sample is
    /// older than half the interval.
    pub(crate) async fn snapshot(&self) -> Value {
        let sources = &self.inner.sources;
        let requests = self.requests();
        let health = sources.health.check_all().await;
        let checks: Vec<Value> = health
            .checks
            .iter()
            .map(|check| {
                json!({
                    "name": check.name,
                    "status": status_name(check.effective_status()),
                    "critical": check.critical,
                    "output": check.result.message,
                })
            })
            .collect();
        json!({
            "service": "cortex-hub",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": self.inner.started.elapsed().as_secs(),
            "health": { "status": status_name(health.status), "checks": checks },
            "http": requests,
            "resilience": sources.policies.all_stats(),
            "actors": {
                "system": actor_stats(&sources.actors),
                "mailbox_depth": self.lock_samples().back().map_or(0, |sample| sample.mailbox_depth),
            },
            "workers": sources.compute.stats(),
            "wasm": { "image": sources.images.stats(), "hostile": sources.hostile.stats() },
            "orders": sources.analytics.snapshot(),
            "notifications": sources.notifier.stats(),
        })
    }

    fn lock_samples(&self) -> MutexGuard<'_, VecDeque<Sample>> {
        self.inner
            .samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Request rate, 5xx rate and latency quantiles over the samples of
    /// the last [`WINDOW`], taking a new sample if due.
    fn requests(&self) -> Value {
        let now = Instant::now();
        let mut samples = self.lock_samples();
        let due = samples
            .back()
            .is_none_or(|last| now.duration_since(last.at) >= INTERVAL / 2);
        if due {
            let scrape = self.inner.sources.metrics.encode(Format::Prometheus);
            samples.push_back(Sample::parse(&scrape, now));
            while samples
                .front()
                .is_some_and(|first| now.duration_since(first.at) > WINDOW)
                && samples.len() > 2
            {
                samples.pop_front();
            }
        }
        let (Some(first), Some(last)) = (samples.front(), samples.back()) else {
            return Value::Null;
        };
        let seconds = last.at.duration_since(first.at).as_secs_f64();
        let requests = last.requests.saturating_sub(first.requests);
        let errors = last.server_errors.saturating_sub(first.server_errors);
        let rate = |count: u64| (seconds > 0.0).then(|| count as f64 / seconds);
        let cumulative: Vec<u64> = if first.bounds == last.bounds {
            last.cumulative
                .iter()
                .zip(&first.cumulative)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect()
        } else {
            last.cumulative.clone()
        };
        let millis = |q| histogram_quantile(q, &last.bounds, &cumulative).map(|s| s * 1000.0);
        json!({
            "window_seconds": seconds,
            "requests_total": last.requests,
            "requests_per_second": rate(requests),
            "server_errors_per_second": rate(errors),
            "p50_ms": millis(0.5),
            "p99_ms": millis(0.99),
        })
    }

    /// The latest snapshot as text, starting the sampler if nobody was
    /// watching.
    fn watch(&self) -> watch::Receiver<Arc<str>> {
        let receiver = self.inner.latest.subscribe();
        if !self.inner.sampling.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().sample());
        }
        receiver
    }

    /// Takes a snapshot a second while anybody watches.
    async fn sample(self) {
        let closed = self.inner.sources.streams.closed();
        tokio::pin!(closed);
        loop {
            if self.inner.latest.receiver_count() == 0 {
                self.inner.sampling.store(false, Ordering::Release);
                // A watcher that came between the count and the store
                // found the sampler running: take the job back.
                if self.inner.latest.receiver_count() == 0
                    || self.inner.sampling.swap(true, Ordering::AcqRel)
                {
                    return;
                }
            }
            let snapshot = self.snapshot().await;
            self.inner
                .latest
                .send_replace(Arc::from(snapshot.to_string()));
            tokio::select! {
                () = &mut closed => return,
                () = tokio::time::sleep(INTERVAL) => {}
            }
        }
    }
}

impl Sample {
    /// The request series out of a Prometheus text scrape.
    fn parse(scrape: &str, at: Instant) -> Self {
        let mut bounds: Vec<f64> = Vec::new();
        let mut cumulative: Vec<u64> = Vec::new();
        let mut requests = 0;
        let mut server_errors = 0;
        let mut mailbox_depth = 0;
        for line in scrape.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            let count = value as u64;
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            if name == "cortex_actor_mailbox_depth" {
                mailbox_depth += count;
            } else if name.strip_prefix(DURATION) == Some("_count") {
                requests += count;
                if label(labels, "http_response_status_code").is_some_and(|s| s.starts_with('5')) {
                    server_errors += count;
                }
            } else if name.strip_prefix(DURATION) == Some("_bucket") {
                let bound = match label(labels, "le") {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => le.parse().unwrap_or(f64::INFINITY),
                    None => continue,
                };
                match bounds.iter().position(|b| *b == bound) {
                    Some(index) => cumulative[index] += count,
                    None => {
                        bounds.push(bound);
                        cumulative.push(count);
                    }
                }
            }
        }
        // Bounds come in order within a series, and every series has the
        // same ones; sort anyway, the counts with them.
        let mut pairs: Vec<(f64, u64)> = bounds.into_iter().zip(cumulative).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (mut bounds, cumulative): (Vec<f64>, Vec<u64>) = pairs.into_iter().unzip();
        // `histogram_quantile` takes the finite bounds; +Inf is the last
        // count.
        bounds.retain(|b| b.is_finite());
        Self {
            at,
            requests,
            server_errors,
            bounds,
            cumulative,
            mailbox_depth,
        }
    }
}

/// The value of label `name` in a Prometheus label set `a="1",b="2"}`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

fn status_name(status: HealthStatus) -> &'static str {
    match status {
        HealthStatus::Up => "UP",
        HealthStatus::Degraded => "DEGRADED",
        HealthStatus::Down => "DOWN",
    }
}

fn actor_stats(actors: &ActorSystem) -> Value {
    let stats = actors.stats();
    json!({
        "actors": stats.actors,
        "messages": stats.messages,
        "failures": stats.failures,
        "restarts": stats.restarts,
        "dead_letters": stats.dead_letters,
    })
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// The page for browsers; the JSON index for a client that prefers JSON.
pub(crate) fn page_or_index(headers: &HeaderMap, index: &Value) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/json") && !accept.contains("text/html") {
        return Json(index.clone()).into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::VARY, HeaderValue::from_static("accept")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        PAGE,
    )
        .into_response()
}

/// Everything the status page shows, as JSON.
#[utoipa::path(
    get,
    path = "/api/status",
    tag = "status",
    operation_id = "status_snapshot",
    responses((
        status = 200,
        description = "`{\"service\", \"version\", \"uptime_seconds\", \"health\", \"http\", \"resilience\", \"actors\", \"workers\", \"wasm\", \"orders\", \"notifications\"}`",
        body = Object,
    )),
)]
async fn snapshot(State(feed): State<StatusFeed>) -> Json<Value> {
    Json(feed.snapshot().await)
}

/// The status snapshot as server-sent events, once a second.
#[utoipa::path(
    get,
    path = "/api/status/stream",
    tag = "status",
    operation_id = "status_stream",
    responses((status = 200, description = "`event: status` with the `/api/status` JSON as `data`, once a second", body = String, content_type = "text/event-stream")),
)]
async fn stream(State(feed): State<StatusFeed>) -> Response {
    let receiver = feed.watch();
    let closed = Box::pin(feed.inner.sources.streams.closed());
    let events = futures_util::stream::unfold(
        (receiver, closed, true),
        |(mut receiver, mut closed, mut first)| async move {
            loop {
                if !first {
                    tokio::select! {
                        biased;
                        () = &mut closed => return None,
                        changed = receiver.changed() => changed.ok()?,
                    }
                }
                first = false;
                let text = Arc::clone(&receiver.borrow_and_update());
                if text.is_empty() {
                    continue;
                }
                let event = Event::default().event("status").data(text.as_ref());
                return Some((
                    Ok::<_, std::convert::Infallible>(event),
                    (receiver, closed, false),
                ));
            }
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_series_are_summed_over_routes_from_a_scrape() {
        let scrape = "\
# TYPE http_server_request_duration_seconds histogram
http_server_request_duration_seconds_bucket{http_route=\"/a\",http_response_status_code=\"200\",le=\"0.1\"} 3
http_server_request_duration_seconds_bucket{http_route=\"/a\",http_response_status_code=\"200\",le=\"+Inf\"} 4
http_server_request_duration_seconds_count{http_route=\"/a\",http_response_status_code=\"200\"} 4
http_server_request_duration_seconds_bucket{http_route=\"/b\",http_response_status_code=\"503\",le=\"0.1\"} 1
http_server_request_duration_seconds_bucket{http_route=\"/b\",http_response_status_code=\"503\",le=\"+Inf\"} 1
http_server_request_duration_seconds_count{http_route=\"/b\",http_response_status_code=\"503\"} 1
cortex_actor_mailbox_depth{actor_type=\"x\"} 7
";
        let sample = Sample::parse(scrape, Instant::now());
        assert_eq!(sample.requests, 5);
        assert_eq!(sample.server_errors, 1);
        assert_eq!(sample.bounds, [0.1]);
        assert_eq!(sample.cumulative, [4, 5]);
        assert_eq!(sample.mailbox_depth, 7);
    }
}
