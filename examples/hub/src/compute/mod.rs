//! `/api/compute`: CPU-bound jobs on a worker pool of OS threads, beside
//! the async server rather than on it.
//!
//! Each request becomes one job on the Hub's `compute` pool
//! ([`WorkerPool`], mounted through the facade so its `cortex_worker_*`
//! series are in `/metrics` and its `workers:compute` check in `/health`):
//!
//! - `POST /api/compute/hash?rounds=N`: the FNV-1a 64 digest of the body
//!   repeated N times ([`hash`]);
//! - `POST /api/compute/blur`: a box blur of a grayscale image, sent as
//!   pixels or generated from a seed ([`blur`]);
//! - `GET /api/compute/stats`: the pool's [`WorkerPoolStats`] as JSON.
//!
//! Beside it, WebAssembly guests on cortex-wasm pools ([`wasm`]): RGBA
//! image filters (`POST /api/compute/image`) on the `image` pool and a
//! hostile-guest demo (`POST /api/compute/hostile`) on the tightly
//! limited `hostile` pool, each mounted through the facade (`wasm:image`,
//! `wasm:hostile` in `/health`, `cortex_wasm_*` in `/metrics`).
//!
//! Jobs are handed over with `try_submit`, never waited for: a full queue
//! answers `429 Too Many Requests` at once, a pool that is shutting down
//! `503`, both problem+json with `Retry-After`. A job that waited past the
//! queue TTL or ran past the run timeout answers 504. A client that hangs
//! up cancels its job: a queued job never runs, a running one sees its
//! cancellation token. Input is bounded before anything is queued: the
//! body size (413), and the work a request may ask for (422 naming the
//! field); unreadable input is 400 (or 415 without a JSON content type).

pub mod blur;
pub mod hash;
mod problem;
pub mod wasm;

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cortex::wasm::{WasmConfig, WasmPool};
use cortex::workers::{JobError, WorkerPool, WorkerPoolConfig, WorkerPoolStats};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::orders::FieldError;
use crate::routes::IndexedRouter;
use blur::Image;
use problem::Problem;

/// The pool's name: its `pool` label in `/metrics`, its `workers:compute`
/// health check, its threads' names.
pub const POOL: &str = "compute";
/// The most rounds a hash may ask for.
pub const MAX_ROUNDS: u64 = 1_000_000;
/// The most bytes a hash may process: `rounds × body length` (256 MiB,
/// about a quarter of a second on one core of a release build).
pub const MAX_HASH_WORK: u64 = 256 * 1024 * 1024;
/// The widest and tallest image a blur takes ...
pub const MAX_SIDE: usize = 4096;
/// ... and the most pixels (4 MiP).
pub const MAX_PIXELS: usize = 4 * 1024 * 1024;
/// The largest blur radius.
pub const MAX_RADIUS: usize = 64;
/// The most blur passes.
pub const MAX_PASSES: u32 = 8;

/// The compute service's settings. The defaults are the Hub's.
#[derive(Debug, Clone)]
pub struct ComputeConfig {
    /// The worker pool: by default one worker per core, 4 queued jobs per
    /// worker, a 5 s queue TTL and a 10 s run timeout.
    pub pool: WorkerPoolConfig,
    /// The largest request body, in bytes (default 1 MiB); larger ones get
    /// 413 before they are read in full.
    pub max_body_bytes: usize,
    /// The image guest's limits (`/api/compute/image`): by default
    /// 10 000 000 000 metering points, a 2 s deadline and a 64 MiB memory
    /// cap per call ([`wasm::default_image_limits`]).
    pub wasm: WasmConfig,
    /// The `image` wasm pool's worker threads: by default one per core, 4
    /// queued calls per worker, a 5 s queue TTL, a 10 s run timeout.
    pub wasm_pool: WorkerPoolConfig,
    /// The largest image body, in bytes (default 4 MiB).
    pub max_image_bytes: usize,
    /// The hostile guest's limits (`/api/compute/hostile`): by default a
    /// 100 ms deadline, 20 000 000 000 metering points and a 1 MiB memory
    /// cap ([`wasm::default_hostile_limits`]).
    pub hostile: WasmConfig,
    /// The `hostile` wasm pool's worker threads: by default 1 worker and 2
    /// queue places.
    pub hostile_pool: WorkerPoolConfig,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        Self {
            pool: WorkerPoolConfig {
                queue_ttl: Some(Duration::from_secs(5)),
                run_timeout: Some(Duration::from_secs(10)),
                thread_name: format!("hub-{POOL}"),
                ..WorkerPoolConfig::default()
            },
            max_body_bytes: 1024 * 1024,
            wasm: wasm::default_image_limits(),
            wasm_pool: wasm::default_image_pool(),
            max_image_bytes: wasm::MAX_IMAGE_BYTES,
            hostile: wasm::default_hostile_limits(),
            hostile_pool: wasm::default_hostile_pool(),
        }
    }
}

impl ComputeConfig {
    /// Starts the pool these settings describe, named [`POOL`].
    pub fn build_pool(&self) -> Result<WorkerPool, cortex::workers::WorkersError> {
        WorkerPool::builder(POOL).config(self.pool.clone()).build()
    }

    /// Compiles the image and hostile guests and starts their pools, named
    /// [`wasm::IMAGE_POOL`] and [`wasm::HOSTILE_POOL`].
    pub fn build_wasm_pools(&self) -> Result<(WasmPool, WasmPool), cortex::wasm::WasmError> {
        wasm::build_pools(self)
    }
}

#[derive(Clone)]
struct ComputeState {
    pool: WorkerPool,
}

/// The compute routes over `pool`, bounded by `config`.
pub(crate) fn routes(config: &ComputeConfig, pool: &WorkerPool) -> IndexedRouter {
    let state = ComputeState { pool: pool.clone() };
    let body_limit = DefaultBodyLimit::max(config.max_body_bytes);
    IndexedRouter::new()
        .route(
            "/api/compute/hash",
            "POST ?rounds=N (1 to 1 000 000, rounds × body bytes at most 256 MiB) with any body: the FNV-1a 64 of the body repeated N times, on the compute worker pool",
            post(hash).layer(body_limit),
        )
        .route(
            "/api/compute/blur",
            "POST {\"width\", \"height\", \"radius\", \"passes\", \"seed\" | \"pixels\"}: a box blur of a grayscale image on the compute worker pool",
            post(blur).layer(body_limit),
        )
        .route(
            "/api/compute/stats",
            "the compute worker pool's stats (workers, queue, outcomes) as JSON",
            get(stats),
        )
        .map(|router| router.with_state(state))
}

/// The WebAssembly routes over the `image` and `hostile` pools.
pub(crate) fn wasm_routes(
    config: &ComputeConfig,
    images: &WasmPool,
    hostile: &WasmPool,
) -> IndexedRouter {
    wasm::routes(config, images, hostile)
}

/// Runs `work` on the pool: a refusal (429/503) or a job failure
/// (504/500/503) is the response; `None` from `work` means its token
/// fired, so the pool has already decided the outcome the caller sees.
async fn run<T>(
    pool: &WorkerPool,
    work: impl FnOnce(&cortex::workers::CancellationToken) -> Option<T> + Send + 'static,
) -> Result<T, Response>
where
    T: Send + std::fmt::Debug + 'static,
{
    let handle = pool
        .try_submit(move || work(&cortex::workers::cancellation_token()))
        .map_err(IntoResponse::into_response)?;
    match handle.cancel_on_drop().await {
        Ok(Some(value)) => Ok(value),
        // Only a fired token makes `work` give up, and then the outcome
        // was already delivered as an error; this is a fallback.
        Ok(None) => Err(JobError::Cancelled.into_response()),
        Err(error) => Err(error.into_response()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HashParams {
    /// How many times to hash the body (1 to 1 000 000, default 1;
    /// `rounds × body bytes` at most 256 MiB).
    #[param(minimum = 1, maximum = 1_000_000)]
    rounds: Option<u64>,
}

/// The FNV-1a 64 of the body repeated `rounds` times, on the compute
/// worker pool.
#[utoipa::path(
    post,
    path = "/api/compute/hash",
    tag = "compute",
    params(HashParams),
    request_body(content(("application/octet-stream")), description = "any bytes, up to 1 MiB"),
    responses(
        (status = 200, description = "`{\"algorithm\": \"fnv1a-64\", \"rounds\", \"bytes\", \"digest\"}` (16 hex digits)", body = Object),
        (status = 400, description = "an unreadable query", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "the body is over 1 MiB", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`rounds` out of bounds (`errors`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "the pool's queue is full (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 500, description = "the job panicked (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "the pool is shutting down (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 504, description = "the job waited past the queue TTL or ran past the run timeout (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
async fn hash(
    State(state): State<ComputeState>,
    params: Result<Query<HashParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, Response> {
    let Query(params) = params.map_err(|rejection| {
        Problem::unreadable(rejection.status(), rejection.body_text()).into_response()
    })?;
    let body = body.map_err(|rejection| {
        Problem::unreadable(rejection.status(), rejection.body_text()).into_response()
    })?;
    let rounds = params.rounds.unwrap_or(1);
    let mut errors = Vec::new();
    if !(1..=MAX_ROUNDS).contains(&rounds) {
        errors.push(FieldError {
            field: "rounds",
            message: format!("must be between 1 and {MAX_ROUNDS}"),
        });
    } else if rounds.saturating_mul(body.len() as u64) > MAX_HASH_WORK {
        errors.push(FieldError {
            field: "rounds",
            message: format!(
                "rounds × body bytes must be at most {MAX_HASH_WORK} ({} bytes allow at most {} rounds)",
                body.len(),
                MAX_HASH_WORK / body.len() as u64
            ),
        });
    }
    if !errors.is_empty() {
        return Err(Problem::invalid(errors).into_response());
    }
    let bytes = body.len();
    let digest = run(&state.pool, move |token| {
        hash::repeated(&body, rounds, token)
    })
    .await?;
    Ok(Json(json!({
        "algorithm": "fnv1a-64",
        "rounds": rounds,
        "bytes": bytes,
        "digest": format!("{digest:016x}"),
    })))
}

/// `POST /api/compute/blur`: exactly one of `seed` and `pixels`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BlurRequest {
    /// The image's width in pixels (1 to 4 096; `width × height` at most
    /// 4 MiP).
    #[schema(minimum = 1, maximum = 4096)]
    width: usize,
    /// The image's height in pixels (1 to 4 096).
    #[schema(minimum = 1, maximum = 4096)]
    height: usize,
    /// The box's radius (1 to 64, default 1).
    #[serde(default = "one")]
    #[schema(default = 1, minimum = 1, maximum = 64)]
    radius: usize,
    /// How many passes (1 to 8, default 1).
    #[serde(default = "one_pass")]
    #[schema(default = 1, minimum = 1, maximum = 8)]
    passes: u32,
    /// Generate the image from this seed (answers its sum and checksum).
    seed: Option<u64>,
    /// The grayscale pixels, row by row (`width × height` values; returned
    /// blurred).
    pixels: Option<Vec<u8>>,
}

fn one() -> usize {
    1
}

fn one_pass() -> u32 {
    1
}

fn blur_errors(request: &BlurRequest) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut field = |field, message: String| errors.push(FieldError { field, message });
    for (name, side) in [("width", request.width), ("height", request.height)] {
        if !(1..=MAX_SIDE).contains(&side) {
            field(name, format!("must be between 1 and {MAX_SIDE}"));
        }
    }
    let pixels = request.width.saturating_mul(request.height);
    if pixels > MAX_PIXELS {
        field(
            "width",
            format!("width × height must be at most {MAX_PIXELS} pixels"),
        );
    }
    if !(1..=MAX_RADIUS).contains(&request.radius) {
        field("radius", format!("must be between 1 and {MAX_RADIUS}"));
    }
    if !(1..=MAX_PASSES).contains(&request.passes) {
        field("passes", format!("must be between 1 and {MAX_PASSES}"));
    }
    match (&request.seed, &request.pixels) {
        (Some(_), Some(_)) | (None, None) => {
            field(
                "pixels",
                "give exactly one of `seed` and `pixels`".to_owned(),
            );
        }
        (None, Some(given)) if given.len() != pixels => {
            field(
                "pixels",
                format!(
                    "must hold width × height = {pixels} values, not {}",
                    given.len()
                ),
            );
        }
        _ => {}
    }
    errors
}

/// A box blur of a grayscale image, on the compute worker pool.
#[utoipa::path(
    post,
    path = "/api/compute/blur",
    tag = "compute",
    request_body(content = BlurRequest, description = "exactly one of `seed` and `pixels`; up to 1 MiB"),
    responses(
        (status = 200, description = "`{\"width\", \"height\", \"radius\", \"passes\", \"sum\", \"checksum\"}`, and `pixels` when they were sent", body = Object),
        (status = 400, description = "the body is not JSON", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 413, description = "the body is over 1 MiB", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 415, description = "no `Content-Type: application/json`", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "a missing, mistyped or unknown field, or values out of bounds (`errors`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 429, description = "the pool's queue is full (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 500, description = "the job panicked (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "the pool is shutting down (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds"))),
        (status = 504, description = "the job waited past the queue TTL or ran past the run timeout (`reason`)", body = crate::openapi::Problem, content_type = "application/problem+json"),
    ),
)]
async fn blur(
    State(state): State<ComputeState>,
    request: Result<Json<BlurRequest>, JsonRejection>,
) -> Result<Json<Value>, Response> {
    let Json(request) = request.map_err(|rejection| {
        Problem::unreadable(rejection.status(), rejection.body_text()).into_response()
    })?;
    let errors = blur_errors(&request);
    if !errors.is_empty() {
        return Err(Problem::invalid(errors).into_response());
    }
    let BlurRequest {
        width,
        height,
        radius,
        passes,
        seed,
        pixels,
    } = request;
    let echo = pixels.is_some();
    let blurred = run(&state.pool, move |token| {
        let image = match (pixels, seed) {
            (Some(pixels), _) => Image {
                width,
                height,
                pixels,
            },
            (None, seed) => Image::noise(width, height, seed.unwrap_or_default()),
        };
        image.box_blur(radius, passes, token)
    })
    .await?;
    let mut answer = json!({
        "width": width,
        "height": height,
        "radius": radius,
        "passes": passes,
        "sum": blurred.pixels.iter().map(|p| u64::from(*p)).sum::<u64>(),
        "checksum": format!("{:016x}", hash::fnv1a(hash::FNV_OFFSET, &blurred.pixels)),
    });
    // Pixels sent are pixels returned (the body limit bounds them); a
    // generated image is summed up only.
    if echo {
        answer["pixels"] = Value::from(blurred.pixels);
    }
    Ok(Json(answer))
}

/// The compute worker pool's stats.
#[utoipa::path(
    get,
    path = "/api/compute/stats",
    tag = "compute",
    operation_id = "compute_stats",
    responses((status = 200, description = "cortex-workers' `WorkerPoolStats`: workers, busy, queue, submitted, completed, rejected, …", body = Object)),
)]
async fn stats(State(state): State<ComputeState>) -> Json<WorkerPoolStats> {
    Json(state.pool.stats())
}
