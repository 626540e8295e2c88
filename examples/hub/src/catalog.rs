//! `/api/catalog/{id}`: a slow product catalog behind the response cache.
//!
//! The simulated downstream takes [`CatalogConfig::latency`] per lookup
//! and can be switched off (`PUT /api/catalog/config?down=true`), when it
//! answers 503 problem+json. Its answers say `Cache-Control: public,
//! max-age=N, stale-while-revalidate=…, stale-if-error=…` (RFC 5861), and
//! the `catalog` [`ResponseCache`] in front of it (cortex-resilience,
//! registered in `/resilience` and `/metrics` as `cortex_cache_*`) does
//! what they say:
//!
//! - a fresh entry answers at once (`X-Cache: HIT`, with `Age`);
//! - N concurrent misses of one product make one downstream call;
//! - past `max-age`, a stale entry answers at once while one background
//!   call refreshes it (`X-Cache: STALE`);
//! - with the downstream down, a stale entry still answers (`STALE`)
//!   for the `stale-if-error` window instead of the 503.
//!
//! Every answer carries `upstream_calls`: the downstream's call count
//! when that answer was made, so a client can see which answers came from
//! the cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cortex::metrics::{MetricsError, MetricsRegistry, RegisterMetrics};
use cortex::resilience::{PolicyRegistry, RegistryError, ResponseCache};
use serde::Deserialize;
use serde_json::json;

use crate::problem;
use crate::routes::IndexedRouter;

/// The response cache's name in `/resilience` and `/metrics`.
pub const CATALOG_CACHE: &str = "catalog";

/// The catalog's simulated downstream and its cache directives.
#[derive(Debug, Clone)]
pub struct CatalogConfig {
    /// How long one downstream lookup takes (default 80 ms).
    pub latency: Duration,
    /// `max-age` of its answers, whole seconds (default 5 s).
    pub max_age: Duration,
    /// `stale-while-revalidate` (default 30 s).
    pub stale_while_revalidate: Duration,
    /// `stale-if-error` (default 10 min).
    pub stale_if_error: Duration,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(80),
            max_age: Duration::from_secs(5),
            stale_while_revalidate: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone)]
struct Catalog {
    config: Arc<CatalogConfig>,
    cache_control: HeaderValue,
    down: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
}

#[derive(Debug, Deserialize)]
struct Switch {
    down: Option<bool>,
}

/// Why the catalog could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The cache's settings are invalid or its name is taken.
    #[error("the catalog cache: {0}")]
    Cache(#[from] RegistryError),
    /// The cache's series clash with registered ones.
    #[error("the catalog cache's series: {0}")]
    Metrics(#[from] MetricsError),
}

/// The catalog routes, with the `catalog` cache registered in `policies`
/// (for `/resilience`) and its series in `metrics`.
pub(crate) fn routes(
    config: CatalogConfig,
    policies: &PolicyRegistry,
    metrics: &MetricsRegistry,
) -> Result<IndexedRouter, CatalogError> {
    let cache = ResponseCache::builder(CATALOG_CACHE)
        .max_entries(10_000)
        .max_bytes(16 * 1024 * 1024)
        .build()
        .map_err(RegistryError::from)?;
    policies.register_response_cache(cache.clone())?;
    cache.register_metrics(metrics)?;
    let cache_control = HeaderValue::try_from(format!(
        "public, max-age={}, stale-while-revalidate={}, stale-if-error={}",
        config.max_age.as_secs(),
        config.stale_while_revalidate.as_secs(),
        config.stale_if_error.as_secs()
    ))
    .unwrap_or(HeaderValue::from_static("no-store"));
    let catalog = Catalog {
        config: Arc::new(config),
        cache_control,
        down: Arc::new(AtomicBool::new(false)),
        calls: Arc::new(AtomicU64::new(0)),
    };
    let cached = IndexedRouter::new()
        .route(
            "/api/catalog/{id}",
            "a slow product lookup behind the response cache: X-Cache HIT|MISS|STALE, one downstream call for concurrent misses, stale answers while the downstream is down",
            get(product).layer(cache.layer()),
        )
        .map(|router: Router<Catalog>| router.with_state(catalog.clone()));
    let admin = IndexedRouter::new()
        .route(
            "/api/catalog/config",
            "GET, or PUT ?down=true|false: switch the catalog's downstream off or on",
            get(show).put(set),
        )
        .map(|router: Router<Catalog>| router.with_state(catalog));
    Ok(cached.merge(admin))
}

async fn product(State(catalog): State<Catalog>, Path(id): Path<u64>) -> Response {
    let calls = catalog.calls.fetch_add(1, Ordering::Relaxed) + 1;
    tokio::time::sleep(catalog.config.latency).await;
    if catalog.down.load(Ordering::Relaxed) {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the catalog downstream is down (PUT /api/catalog/config?down=false brings it back)"
                .to_owned(),
        );
    }
    (
        [(header::CACHE_CONTROL, catalog.cache_control.clone())],
        Json(json!({
            "id": id,
            "name": format!("product {id}"),
            "price_cents": 100 + (id % 97) * 25,
            "upstream_calls": calls,
        })),
    )
        .into_response()
}

async fn show(State(catalog): State<Catalog>) -> Json<serde_json::Value> {
    Json(json!({
        "down": catalog.down.load(Ordering::Relaxed),
        "upstream_calls": catalog.calls.load(Ordering::Relaxed),
    }))
}

async fn set(State(catalog): State<Catalog>, Query(switch): Query<Switch>) -> Response {
    let Some(down) = switch.down else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "say ?down=true or ?down=false".to_owned(),
        );
    };
    catalog.down.store(down, Ordering::Relaxed);
    Json(json!({ "down": down })).into_response()
}
