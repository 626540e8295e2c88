//! `cortex-loadtest`: the servers `cargo xtask loadtest` drives.
//!
//! `cortex-loadtest serve <variant>` serves `GET /api/echo/{id}` (a small
//! JSON answer, the Hub's echo handler) and `GET /api/big.json` (1 MiB of
//! JSON) on `127.0.0.1:0` under one named stack of layers, prints
//! `listening on <addr>` and serves until it is killed. `cortex-loadtest
//! list` prints the variants. Each variant is the same routes and handlers
//! with one difference, so the ratio of its throughput to `bare`'s is the
//! cost of that difference alone.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::{Parser, Subcommand};
use cortex::prelude::*;
use cortex::resilience::{Backoff, Pipeline};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde_json::{Value, json};

/// Every variant, in the order reports list them, with what it adds.
const VARIANTS: &[(&str, &str)] = &[
    ("bare", "axum 0.8 alone: the baseline"),
    (
        "noop-layer",
        "an identity `Router::layer`: what axum charges for any layer",
    ),
    ("metrics", "cortex HttpMetricsLayer"),
    (
        "trace-unsampled",
        "cortex HttpTraceLayer, sampler always_off",
    ),
    (
        "trace-sampled",
        "cortex HttpTraceLayer, sampler always_on (no exporter)",
    ),
    (
        "tower-http-trace",
        "peer: tower-http TraceLayer (default classifier, no subscriber)",
    ),
    (
        "compression",
        "cortex CompressionLayer; the small answer is skipped (too small)",
    ),
    (
        "tower-http-compression",
        "peer: tower-http CompressionLayer (gzip, br, zstd, deflate)",
    ),
    (
        "decompression",
        "cortex DecompressionLayer (a GET has no body)",
    ),
    ("bulkhead", "cortex Bulkhead http_layer (room to spare)"),
    ("timeout", "cortex Timeout http_layer (30 s)"),
    ("retry", "cortex Retry http_layer (never needed)"),
    ("breaker", "cortex CircuitBreaker http_layer (closed)"),
    (
        "ratelimit",
        "cortex RateLimiter http_layer (limit never reached)",
    ),
    (
        "pipeline",
        "cortex standard pipeline http_layer: bulkhead, timeout, retry, breaker, attempt timeout",
    ),
    (
        "facade",
        "the facade's default stack: Cortex::builder() metrics + trace (sampled) + compression",
    ),
    (
        "hub",
        "the Cortex Hub's full router and gateway (trace, access log, metrics, compression, decompression, request timeout, security headers) with its log subscriber",
    ),
    (
        "hub-no-access-log",
        "the Hub as above with its access log off (`cortex_hub::access=off`): what the log line costs",
    ),
];

#[derive(Debug, Parser)]
#[command(name = "cortex-loadtest", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one variant on 127.0.0.1:0 until killed, or until SIGTERM or
    /// Ctrl-C, after which it exits normally (so a profiler running it
    /// writes its report).
    Serve {
        /// The variant (see `list`).
        variant: String,
        /// Also write the address to this file once listening (the
        /// harness sends stdout, where the Hub logs, to /dev/null).
        #[arg(long)]
        addr_file: Option<std::path::PathBuf>,
    },
    /// Print the variants, one per line: name, tab, what it adds.
    List,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::List => {
            for (name, about) in VARIANTS {
                println!("{name}\t{about}");
            }
            Ok(())
        }
        Command::Serve { variant, addr_file } => {
            if !VARIANTS.iter().any(|(name, _)| *name == variant) {
                return Err(
                    format!("unknown variant {variant:?}; see `cortex-loadtest list`").into(),
                );
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve(&variant, addr_file))
        }
    }
}

async fn echo(Path(id): Path<String>) -> axum::Json<Value> {
    axum::Json(json!({ "id": id }))
}

/// About 1 MiB of JSON, made once.
fn big_json() -> &'static str {
    static BIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIG.get_or_init(|| {
        let items: Vec<Value> = (0..9_000)
            .map(|i| json!({ "id": i, "name": format!("item-{i}"), "tags": ["cortex", "load", "test"], "price": i as f64 * 1.25 }))
            .collect();
        serde_json::to_string(&json!({ "items": items })).unwrap_or_default()
    })
}

async fn big() -> impl IntoResponse {
    ([("content-type", "application/json")], big_json())
}

fn routes() -> Router {
    Router::new()
        .route("/api/echo/{id}", get(echo))
        .route("/api/big.json", get(big))
}

fn provider(sampler: Sampler) -> SdkTracerProvider {
    SdkTracerProvider::builder().with_sampler(sampler).build()
}

/// What must live as long as a variant serves (the Hub's handles and its
/// tracing guard).
type KeepAlive = Option<Box<dyn std::any::Any>>;

/// The variant's router, and what must live as long as it serves.
fn app(variant: &str) -> Result<(Router, KeepAlive), Box<dyn std::error::Error>> {
    let plain = routes();
    let router = match variant {
        "bare" => plain,
        "noop-layer" => plain.layer(tower_layer::Identity::new()),
        "metrics" => plain.layer(HttpMetricsLayer::new(&MetricsRegistry::new())?),
        "trace-unsampled" => plain.layer(HttpTraceLayer::new(&provider(Sampler::AlwaysOff))),
        "trace-sampled" => plain.layer(HttpTraceLayer::new(&provider(Sampler::AlwaysOn))),
        "tower-http-trace" => plain.layer(tower_http::trace::TraceLayer::new_for_http()),
        "compression" => plain.layer(CompressionLayer::new()),
        "tower-http-compression" => plain.layer(tower_http::compression::CompressionLayer::new()),
        "decompression" => plain.layer(DecompressionLayer::new()),
        "bulkhead" => plain.layer(
            Bulkhead::builder("loadtest")
                .max_concurrent_calls(100_000)
                .build()?
                .http_layer(),
        ),
        "timeout" => plain.layer(
            Timeout::builder("loadtest")
                .timeout_duration(Duration::from_secs(30))
                .build()?
                .http_layer(),
        ),
        "retry" => plain.layer(
            Retry::builder("loadtest")
                .max_attempts(3)
                .build()?
                .http_layer(),
        ),
        "breaker" => plain.layer(CircuitBreaker::builder("loadtest").build()?.http_layer()),
        "ratelimit" => plain.layer(
            RateLimiter::builder("loadtest")
                .permits(100_000_000, Duration::from_secs(1))
                .burst(100_000_000)
                .build()?
                .http_layer(),
        ),
        "pipeline" => plain.layer(
            Pipeline::builder()
                .bulkhead(
                    Bulkhead::builder("loadtest")
                        .max_concurrent_calls(100_000)
                        .build()?,
                )
                .timeout(
                    Timeout::builder("loadtest-total")
                        .timeout_duration(Duration::from_secs(30))
                        .build()?,
                )
                .retry(
                    Retry::builder("loadtest")
                        .max_attempts(3)
                        .backoff(Backoff::Fixed {
                            delay: Duration::from_millis(10),
                        })
                        .build()?,
                )
                .circuit_breaker(CircuitBreaker::builder("loadtest").build()?)
                .attempt_timeout(
                    Timeout::builder("loadtest-attempt")
                        .timeout_duration(Duration::from_secs(10))
                        .build()?,
                )
                .build_http()
                .http_layer(),
        ),
        "facade" => Cortex::builder()
            .metrics(MetricsRegistry::new())
            .trace(HttpTraceLayer::new(&provider(Sampler::AlwaysOn)))
            .compression(CompressionLayer::new())
            .mount(plain)?,
        "hub" | "hub-no-access-log" => {
            // As `cortex-hub` runs: its log subscriber installed (lines go
            // to stdout, which the harness sends to /dev/null).
            let mut tracing = cortex::trace::Tracing::builder().service_name("cortex-hub");
            if variant == "hub-no-access-log" {
                tracing = tracing.log_filter(format!(
                    "info,{}=off",
                    cortex_hub::access_log::ACCESS_LOG_TARGET
                ));
            }
            let guard = tracing.build()?;
            guard.install_subscriber()?;
            let hub = cortex_hub::Hub::new(cortex_hub::HubConfig::default())?
                .with_tracer_provider(guard.provider().clone());
            let router = hub.router()?;
            return Ok((router, Some(Box::new((guard, hub)))));
        }
        other => return Err(format!("unknown variant {other:?}").into()),
    };
    Ok((router, None))
}

async fn serve(
    variant: &str,
    addr_file: Option<std::path::PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (router, _keep) = app(variant)?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    if let Some(path) = addr_file {
        // Written whole, then renamed: the harness never reads half.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, addr.to_string())?;
        std::fs::rename(partial, path)?;
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(stop_signal())
        .await?;
    Ok(())
}

/// SIGTERM or Ctrl-C. Registered once at start, so no variant pays for it
/// per request.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
