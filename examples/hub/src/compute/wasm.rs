//! `/api/compute/image` and `/api/compute/hostile`: WebAssembly guests on
//! cortex-wasm pools, each an instance per worker thread of its own
//! cortex-workers pool, mounted through the facade (`CortexBuilder::wasm`)
//! so their `cortex_wasm_*` and `cortex_worker_*` series are in `/metrics`
//! and their `wasm:image` and `wasm:hostile` checks in `/health`.
//!
//! - `POST /api/compute/image?filter=grayscale|invert|blur&width=W&radius=R`
//!   runs the committed Rust image guest (`crates/cortex-wasm/guests/image.wasm`)
//!   over a raw RGBA body and answers the filtered bytes. The query and
//!   the body's shape are checked before anything is queued (422 naming
//!   the field, 400 for an unreadable query, 413 past the body limit).
//! - `POST /api/compute/hostile?kind=loop|hog|trap` runs a misbehaving
//!   guest (`crates/cortex-wasm/guests/wat/hostile.wat`) on a separate,
//!   tightly limited pool: an endless loop is stopped at its deadline
//!   (504, or 422 `exhausted` should its fuel run out first), a memory hog
//!   at its cap (422 `memory_limit`), a trap is a trap (422 `trap`). Each
//!   answer is cortex-wasm's problem+json with a `reason`; the failed
//!   instance is dropped and replaced, so the pool and the Hub stay
//!   healthy.
//! - `GET /api/compute/wasm/stats`: both pools' [`WasmPoolStats`].
//!
//! A full queue answers 429 problem+json with `Retry-After` at once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cortex::wasm::{WasmConfig, WasmEngine, WasmError, WasmPool, WasmPoolStats};
use cortex::workers::{WorkerPool, WorkerPoolConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::problem::Problem;
use super::{ComputeConfig, MAX_RADIUS, MAX_SIDE};
use crate::orders::FieldError;
use crate::routes::IndexedRouter;

/// The image pool's name: its `pool` label in `/metrics`, its
/// `wasm:image` health check.
pub const IMAGE_POOL: &str = "image";
/// The hostile-guest pool's name (`wasm:hostile`).
pub const HOSTILE_POOL: &str = "hostile";
/// The committed Rust image guest: `grayscale`, `invert` and `blur` over
/// RGBA bytes (see `crates/cortex-wasm/guests/README.md`).
pub const IMAGE_GUEST: &[u8] = include_bytes!("../../../../crates/cortex-wasm/guests/image.wasm");
/// Hostile and faulty guests in WAT: `spin` (an endless loop), `hog`
/// (grows memory until a grow fails, then traps), `trap`, ...
pub const HOSTILE_GUEST: &str =
    include_str!("../../../../crates/cortex-wasm/guests/wat/hostile.wat");
/// The largest image body by default, in bytes (4 MiB: a 1024 × 1024
/// RGBA image).
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// The filters `?filter=` takes.
pub const FILTERS: [&str; 3] = ["grayscale", "invert", "blur"];
/// The hostile guests `?kind=` takes, and the export each one calls.
pub const HOSTILE_KINDS: [(&str, &str); 3] = [("loop", "spin"), ("hog", "hog"), ("trap", "trap")];

/// The image guest's default limits: 10 000 000 000 metering points (the
/// largest image's blur needs under a tenth of that), a 2 s deadline, a
/// 64 MiB memory cap (a 4 MiB image needs about 14).
pub fn default_image_limits() -> WasmConfig {
    WasmConfig {
        fuel: Some(10_000_000_000),
        deadline: Some(std::time::Duration::from_secs(2)),
        max_memory_bytes: 64 * 1024 * 1024,
        ..WasmConfig::default()
    }
}

/// The hostile guest's default limits: a 100 ms deadline, 20 000 000 000
/// metering points as a backstop (an endless loop spends that in about a
/// second, so the deadline comes first), a 1 MiB memory cap.
pub fn default_hostile_limits() -> WasmConfig {
    WasmConfig {
        fuel: Some(20_000_000_000),
        deadline: Some(std::time::Duration::from_millis(100)),
        max_memory_bytes: 1024 * 1024,
        ..WasmConfig::default()
    }
}

/// The image pool's defaults: one worker per core, 4 queued calls per
/// worker, a 5 s queue TTL and a 10 s run timeout (a backstop behind the
/// guest's deadline).
pub fn default_image_pool() -> WorkerPoolConfig {
    WorkerPoolConfig {
        queue_ttl: Some(std::time::Duration::from_secs(5)),
        run_timeout: Some(std::time::Duration::from_secs(10)),
        thread_name: format!("hub-wasm-{IMAGE_POOL}"),
        ..WorkerPoolConfig::default()
    }
}

/// The hostile pool's defaults: one worker and 2 queue places (hostile
/// guests get a corner of the machine, never the image pool's threads),
/// a 5 s queue TTL and a 5 s run timeout.
pub fn default_hostile_pool() -> WorkerPoolConfig {
    WorkerPoolConfig {
        workers: Some(1),
        queue_capacity: Some(2),
        queue_ttl: Some(std::time::Duration::from_secs(5)),
        run_timeout: Some(std::time::Duration::from_secs(5)),
        thread_name: format!("hub-wasm-{HOSTILE_POOL}"),
        ..WorkerPoolConfig::default()
    }
}

/// The two pools, compiled and started from `config`.
pub(crate) fn build_pools(config: &ComputeConfig) -> Result<(WasmPool, WasmPool), WasmError> {
    let images = WasmEngine::builder()
        .config(config.wasm.clone())
        .build()?
        .compile(IMAGE_GUEST)?;
    let hostile = WasmEngine::builder()
        .config(config.hostile.clone())
        .build()?
        .compile(HOSTILE_GUEST)?;
    Ok((
        WasmPool::new(
            images,
            WorkerPool::builder(IMAGE_POOL).config(config.wasm_pool.clone()),
        )?,
        WasmPool::new(
            hostile,
            WorkerPool::builder(HOSTILE_POOL).config(config.hostile_pool.clone()),
        )?,
    ))
}

#[derive(Clone)]
struct WasmState {
    images: WasmPool,
    hostile: WasmPool,
}

/// The wasm routes over `images` and `hostile`, bounded by `config`.
pub(crate) fn routes(
    config: &ComputeConfig,
    images: &WasmPool,
    hostile: &WasmPool,
) -> IndexedRouter {
    let state = WasmState {
        images: images.clone(),
        hostile: hostile.clone(),
    };
    IndexedRouter::new()
        .route(
            "/api/compute/image",
            "POST ?filter=grayscale|invert|blur (&width=W&radius=R for blur) with a raw RGBA body (4 MiB at most): the filtered RGBA bytes, computed by a WebAssembly guest on the `image` wasm pool",
            post(image).layer(DefaultBodyLimit::max(config.max_image_bytes)),
        )
        .route(
            "/api/compute/hostile",
            "POST ?kind=loop|hog|trap: a misbehaving WebAssembly guest on the tightly limited `hostile` pool, stopped and answered as problem+json (504 deadline, 422 memory_limit, 422 trap) while the Hub stays healthy",
            post(hostile_guest),
        )
        .route(
            "/api/compute/wasm/stats",
            "the wasm pools' stats (calls, failures by kind, instances made and replaced, their worker pools) as JSON",
            get(stats),
        )
        .map(|router| router.with_state(state))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ImageParams {
    /// `grayscale`, `invert` or `blur`.
    #[param(pattern = "^(grayscale|invert|blur)$")]
    filter: Option<String>,
    /// The image's width in pixels (1 to 4 096): `blur` needs it.
    #[param(minimum = 1, maximum = 4096)]
    width: Option<usize>,
    /// The blur's radius (1 to 64, default 1).
    #[param(minimum = 1, maximum = 64)]
    radius: Option<usize>,
}

/// A checked image request: the guest export and its extra arguments.
#[derive(Debug, PartialEq, Eq)]
struct ImageCall {
    export: &'static str,
    extra: Vec<i32>,
}

/// The query and the body's shape, checked before anything is queued.
fn image_call(params: &ImageParams, bytes: usize) -> Result<ImageCall, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut field = |field, message: String| errors.push(FieldError { field, message });
    let filter = params
        .filter
        .as_deref()
        .and_then(|name| FILTERS.iter().copied().find(|known| *known == name));
    if filter.is_none() {
        field("filter", format!("must be one of {}", FILTERS.join(", ")));
    }
    if bytes == 0 || !bytes.is_multiple_of(4) {
        field(
            "body",
            format!("must be RGBA pixels: a positive multiple of 4 bytes, not {bytes}"),
        );
    }
    let mut extra = Vec::new();
    if filter == Some("blur") {
        match params.width {
            Some(width) if (1..=MAX_SIDE).contains(&width) => {
                if !bytes.is_multiple_of(4 * width) {
                    field(
                        "width",
                        format!("{bytes} body bytes are not whole rows of {width} RGBA pixels"),
                    );
                }
                extra.push(i32::try_from(width).unwrap_or(i32::MAX));
            }
            _ => field(
                "width",
                format!("blur needs the image's width, between 1 and {MAX_SIDE} pixels"),
            ),
        }
        let radius = params.radius.unwrap_or(1);
        if !(1..=MAX_RADIUS).contains(&radius) {
            field("radius", format!("must be between 1 and {MAX_RADIUS}"));
        }
        extra.push(i32::try_from(radius).unwrap_or(i32::MAX));
    }
    match filter {
        Some(export) if errors.is_empty() => Ok(ImageCall { export, extra }),
        _ => Err(errors),
    }
}

/// A raw RGBA image filtered by a WebAssembly guest on the `image` pool.
#[utoipa::path(
    post,
    path = "/api/compute/image",
    tag = "compute",
    params(ImageParams),
    request_body(content(("application/octet-stream")), description = "RGBA pixels, whole pixels (a multiple of 4 bytes), 4 MiB at most"),
    responses(
        (status = 200, description = "the filtered RGBA bytes", content(("application/octet-stream"))),
        (status = 400, description = "an unreadable query", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "the body is over 4 MiB", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "a bad query or body shape (`errors`), or the guest failed on the input (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "the pool's queue is full (`reason: overloaded`)", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 500, description = "the guest or the pool failed otherwise (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "the pool refused the call, e.g. shutting down (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 504, description = "the guest ran past its deadline (`reason: timed_out`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
async fn image(
    State(state): State<WasmState>,
    params: Result<Query<ImageParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Response> {
    let Query(params) = params.map_err(|rejection| {
        Problem::unreadable(rejection.status(), rejection.body_text()).into_response()
    })?;
    let body = body.map_err(|rejection| {
        Problem::unreadable(rejection.status(), rejection.body_text()).into_response()
    })?;
    let ImageCall { export, extra } = image_call(&params, body.len())
        .map_err(|errors| Problem::invalid(errors).into_response())?;
    let filtered = if extra.is_empty() {
        state.images.call_bytes(export, body.into()).await
    } else {
        state
            .images
            .call_bytes_with(export, body.into(), extra)
            .await
    }
    .map_err(IntoResponse::into_response)?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        filtered,
    )
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HostileParams {
    /// `loop` (an endless loop), `hog` (grows memory until refused) or
    /// `trap`.
    #[param(pattern = "^(loop|hog|trap)$")]
    kind: Option<String>,
}

/// A misbehaving guest on the tightly limited `hostile` pool, stopped and
/// answered as problem+json while the Hub stays healthy.
#[utoipa::path(
    post,
    path = "/api/compute/hostile",
    tag = "compute",
    params(HostileParams),
    responses(
        (status = 200, description = "`{\"kind\", \"outcome\": \"returned\"}`: the guest returned (none of them does)", body = Object),
        (status = 400, description = "an unreadable query", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "an unknown `kind` (`errors`), or the guest stopped: `reason` `memory_limit`, `trap` or `exhausted` (fuel)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "the pool's queue is full (`reason: overloaded`)", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 500, description = "the guest or the pool failed otherwise (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "the pool refused the call, e.g. shutting down (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 504, description = "the endless loop stopped at its deadline (`reason: timed_out`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
async fn hostile_guest(
    State(state): State<WasmState>,
    params: Result<Query<HostileParams>, QueryRejection>,
) -> Result<Json<Value>, Response> {
    let Query(params) = params.map_err(|rejection| {
        Problem::unreadable(rejection.status(), rejection.body_text()).into_response()
    })?;
    let Some((kind, export)) = params.kind.as_deref().and_then(|kind| {
        HOSTILE_KINDS
            .iter()
            .copied()
            .find(|(known, _)| *known == kind)
    }) else {
        let kinds: Vec<&str> = HOSTILE_KINDS.iter().map(|(kind, _)| *kind).collect();
        return Err(Problem::invalid(vec![FieldError {
            field: "kind",
            message: format!("must be one of {}", kinds.join(", ")),
        }])
        .into_response());
    };
    state
        .hostile
        .call(move |instance| instance.call(export, &[]).map(drop))
        .await
        .map_err(IntoResponse::into_response)?;
    // None of them returns; should one, say so.
    Ok(Json(json!({ "kind": kind, "outcome": "returned" })))
}

/// `GET /api/compute/wasm/stats`.
#[derive(Debug, Serialize)]
struct Stats {
    image: WasmPoolStats,
    hostile: WasmPoolStats,
}

/// Both wasm pools' stats.
#[utoipa::path(
    get,
    path = "/api/compute/wasm/stats",
    tag = "compute",
    operation_id = "wasm_stats",
    responses((status = 200, description = "`{\"image\", \"hostile\"}`, each cortex-wasm's `WasmPoolStats`: calls, failures by kind, instances made and replaced, its worker pool", body = Object)),
)]
async fn stats(State(state): State<WasmState>) -> Json<Value> {
    Json(json!(Stats {
        image: state.images.stats(),
        hostile: state.hostile.stats(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(filter: &str, width: Option<usize>, radius: Option<usize>) -> ImageParams {
        ImageParams {
            filter: Some(filter.to_owned()),
            width,
            radius,
        }
    }

    fn fields(result: Result<ImageCall, Vec<FieldError>>) -> Vec<&'static str> {
        result
            .unwrap_err()
            .iter()
            .map(|error| error.field)
            .collect()
    }

    #[test]
    fn image_requests_are_checked_before_they_are_queued() {
        assert_eq!(
            image_call(&params("grayscale", None, None), 8),
            Ok(ImageCall {
                export: "grayscale",
                extra: vec![]
            })
        );
        assert_eq!(
            image_call(&params("blur", Some(2), None), 16),
            Ok(ImageCall {
                export: "blur",
                extra: vec![2, 1]
            })
        );
        assert_eq!(
            fields(image_call(&params("sepia", None, None), 8)),
            ["filter"]
        );
        let missing = ImageParams {
            filter: None,
            width: None,
            radius: None,
        };
        assert_eq!(fields(image_call(&missing, 8)), ["filter"]);
        assert_eq!(
            fields(image_call(&params("invert", None, None), 0)),
            ["body"]
        );
        assert_eq!(
            fields(image_call(&params("invert", None, None), 6)),
            ["body"]
        );
        assert_eq!(
            fields(image_call(&params("blur", None, None), 8)),
            ["width"]
        );
        assert_eq!(
            fields(image_call(&params("blur", Some(3), None), 8)),
            ["width"]
        );
        assert_eq!(
            fields(image_call(&params("blur", Some(5000), None), 8)),
            ["width"]
        );
        assert_eq!(
            fields(image_call(&params("blur", Some(1), Some(0)), 8)),
            ["radius"]
        );
        assert_eq!(
            fields(image_call(&params("blur", Some(1), Some(65)), 8)),
            ["radius"]
        );
    }
}
