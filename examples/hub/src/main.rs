//! Starts the Cortex Hub: `cargo run --release -p cortex-hub [-- --addr HOST:PORT]`.
//!
//! Configuration: `--addr` or `CORTEX_ADDR` (default `127.0.0.1:3000`);
//! `CORTEX_METRICS_TOKEN` protects `/metrics` with a bearer token;
//! `CORTEX_HEADER_READ_TIMEOUT` (default `10s`) and `CORTEX_IDLE_TIMEOUT`
//! (default `60s`) bound slow and idle clients; `CORTEX_DRAIN_DELAY`
//! (default `5s`) and `CORTEX_SHUTDOWN_TIMEOUT` (default `20s`) shape the
//! graceful shutdown; the compute worker pool takes `CORTEX_COMPUTE_WORKERS`
//! (default: one per core), `CORTEX_COMPUTE_QUEUE` (default 4 per worker),
//! `CORTEX_COMPUTE_QUEUE_TTL` (default `5s`) and
//! `CORTEX_COMPUTE_RUN_TIMEOUT` (default `10s`; `none` turns either
//! off); the image guest's wasm pool takes `CORTEX_WASM_WORKERS` (default:
//! one per core), `CORTEX_WASM_QUEUE` (default 4 per worker),
//! `CORTEX_WASM_DEADLINE` (per call, default `2s`), `CORTEX_WASM_FUEL`
//! (metering points per call, default 10 000 000 000) and
//! `CORTEX_WASM_MAX_MEMORY` (bytes of guest memory, default 67108864;
//! `none` turns the deadline or the fuel off); `RUST_LOG`
//! sets the log filter (default `info`); `CORTEX_LOG_FORMAT=json` switches
//! to JSON log lines. Tracing follows the standard variables:
//! `OTEL_SERVICE_NAME` (default `cortex-hub`), `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (+ `OTEL_EXPORTER_OTLP_PROTOCOL`), `OTEL_TRACES_SAMPLER{,_ARG}`.

use std::net::SocketAddr;
use std::time::Duration;

use cortex::serve::shutdown_signal;
use cortex::trace::{LogFormat, Tracing, TracingGuard};
use cortex::wasm::WasmConfig;
use cortex::workers::{Shutdown, WorkerPoolConfig};
use cortex_hub::compute::ComputeConfig;
use cortex_hub::{DEFAULT_ADDR, Hub, HubConfig};

/// What the actors and the compute and wasm pools get (at the same time)
/// after the server stopped: 5 s drain + 20 s shutdown + 3 s stay inside
/// Kubernetes' default 30 s grace period.
const ACTOR_SHUTDOWN: Duration = Duration::from_secs(3);
const COMPUTE_SHUTDOWN: Duration = Duration::from_secs(3);

const USAGE: &str = "usage: cortex-hub [--addr HOST:PORT]\n\
    env: CORTEX_ADDR (default 127.0.0.1:3000), CORTEX_METRICS_TOKEN, CORTEX_HEADER_READ_TIMEOUT (10s), \
    CORTEX_IDLE_TIMEOUT (60s), CORTEX_DRAIN_DELAY (5s), \
    CORTEX_SHUTDOWN_TIMEOUT (20s), CORTEX_COMPUTE_WORKERS (one per core), \
    CORTEX_COMPUTE_QUEUE (4 per worker), CORTEX_COMPUTE_QUEUE_TTL (5s), \
    CORTEX_COMPUTE_RUN_TIMEOUT (10s), CORTEX_WASM_WORKERS (one per core), \
    CORTEX_WASM_QUEUE (4 per worker), CORTEX_WASM_DEADLINE (2s), \
    CORTEX_WASM_FUEL (10000000000), CORTEX_WASM_MAX_MEMORY (67108864 bytes), RUST_LOG, \
    CORTEX_LOG_FORMAT=json, OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let telemetry = match setup_tracing() {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("cortex-hub: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(&telemetry).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("cortex-hub: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The tracer provider and the log subscriber (trace ids on every line
/// logged while a request is handled). Dropping the guard flushes spans.
fn setup_tracing() -> Result<TracingGuard, String> {
    let mut builder = Tracing::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        builder = builder.service_name("cortex-hub");
    }
    if std::env::var("CORTEX_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder = builder.log_format(LogFormat::Json);
    }
    let guard = builder.build().map_err(|e| e.to_string())?;
    guard.install_subscriber().map_err(|e| e.to_string())?;
    Ok(guard)
}

async fn run(telemetry: &TracingGuard) -> Result<(), String> {
    let addr = listen_addr(std::env::args().skip(1), std::env::var("CORTEX_ADDR").ok())?;
    let defaults = HubConfig::default();
    let config = HubConfig {
        addr,
        metrics_token: std::env::var("CORTEX_METRICS_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        header_read_timeout: duration_var(
            "CORTEX_HEADER_READ_TIMEOUT",
            defaults.header_read_timeout,
        )?,
        idle_timeout: duration_var("CORTEX_IDLE_TIMEOUT", defaults.idle_timeout)?,
        drain_delay: duration_var("CORTEX_DRAIN_DELAY", defaults.drain_delay)?,
        shutdown_timeout: duration_var("CORTEX_SHUTDOWN_TIMEOUT", defaults.shutdown_timeout)?,
        compute: compute_config(defaults.compute.clone())?,
        ..defaults
    };
    let hub = Hub::new(config)
        .map_err(|e| format!("building the hub: {e}"))?
        .with_tracer_provider(telemetry.provider().clone());
    let router = hub.router().map_err(|e| format!("building the app: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("cortex-hub listening on http://{local}");
    // On SIGTERM: readiness fails at once while serving goes on for the
    // drain delay (load balancers see the 503), then the listener closes
    // and in-flight requests get the shutdown timeout.
    let served = hub
        .server
        .clone()
        .serve(listener, router, shutdown_signal())
        .await;
    tracing::info!(report = ?served, "server stopped");
    // The server has drained, so nothing submits any more: let order
    // actors and compute jobs finish what they hold, side by side, inside
    // what is left of Kubernetes' 30 s grace period.
    let graceful = Shutdown::Graceful {
        timeout: COMPUTE_SHUTDOWN,
    };
    let (actors, compute, images, hostile) = tokio::join!(
        hub.actors.shutdown(ACTOR_SHUTDOWN),
        hub.compute.shutdown(graceful),
        hub.images.shutdown(graceful),
        hub.hostile.shutdown(graceful),
    );
    tracing::info!(?actors, ?compute, ?images, ?hostile, "cortex-hub stopped");
    Ok(())
}

/// The compute settings, with the `CORTEX_COMPUTE_*` and `CORTEX_WASM_*`
/// variables applied.
fn compute_config(defaults: ComputeConfig) -> Result<ComputeConfig, String> {
    let pool = defaults.pool;
    let wasm_pool = defaults.wasm_pool;
    let wasm = defaults.wasm;
    Ok(ComputeConfig {
        pool: WorkerPoolConfig {
            workers: count_var("CORTEX_COMPUTE_WORKERS", pool.workers)?,
            queue_capacity: count_var("CORTEX_COMPUTE_QUEUE", pool.queue_capacity)?,
            queue_ttl: optional_duration_var("CORTEX_COMPUTE_QUEUE_TTL", pool.queue_ttl)?,
            run_timeout: optional_duration_var("CORTEX_COMPUTE_RUN_TIMEOUT", pool.run_timeout)?,
            ..pool
        },
        wasm_pool: WorkerPoolConfig {
            workers: count_var("CORTEX_WASM_WORKERS", wasm_pool.workers)?,
            queue_capacity: count_var("CORTEX_WASM_QUEUE", wasm_pool.queue_capacity)?,
            ..wasm_pool
        },
        wasm: WasmConfig {
            deadline: optional_duration_var("CORTEX_WASM_DEADLINE", wasm.deadline)?,
            fuel: optional_number_var("CORTEX_WASM_FUEL", wasm.fuel)?,
            max_memory_bytes: optional_number_var(
                "CORTEX_WASM_MAX_MEMORY",
                Some(wasm.max_memory_bytes),
            )?
            .ok_or("CORTEX_WASM_MAX_MEMORY=none: the guest's memory needs a cap")?,
            ..wasm
        },
        ..defaults
    })
}

/// A number of at least 1 from the environment, `none` for no limit, or
/// `default`.
fn optional_number_var(name: &str, default: Option<u64>) -> Result<Option<u64>, String> {
    match std::env::var(name) {
        Ok(value) if value.eq_ignore_ascii_case("none") => Ok(None),
        Ok(value) if !value.is_empty() => match value.replace('_', "").parse::<u64>() {
            Ok(number) if number >= 1 => Ok(Some(number)),
            Ok(_) => Err(format!("{name}={value:?}: must be at least 1 (or `none`)")),
            Err(e) => Err(format!("{name}={value:?}: {e}")),
        },
        _ => Ok(default),
    }
}

/// A count of at least 1 from the environment, or `default`.
fn count_var(name: &str, default: Option<usize>) -> Result<Option<usize>, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => match value.parse::<usize>() {
            Ok(count) if count >= 1 => Ok(Some(count)),
            Ok(_) => Err(format!("{name}={value:?}: must be at least 1")),
            Err(e) => Err(format!("{name}={value:?}: {e}")),
        },
        _ => Ok(default),
    }
}

/// A duration from the environment, `none` for no limit, or `default`.
fn optional_duration_var(
    name: &str,
    default: Option<Duration>,
) -> Result<Option<Duration>, String> {
    match std::env::var(name) {
        Ok(value) if value.eq_ignore_ascii_case("none") => Ok(None),
        Ok(value) if !value.is_empty() => match humantime::parse_duration(&value) {
            Ok(duration) if !duration.is_zero() => Ok(Some(duration)),
            Ok(_) => Err(format!("{name}={value:?}: must be positive (or `none`)")),
            Err(e) => Err(format!("{name}={value:?}: {e}")),
        },
        _ => Ok(default),
    }
}

/// `--addr` wins over `CORTEX_ADDR`, which wins over the default.
fn listen_addr(
    mut args: impl Iterator<Item = String>,
    env: Option<String>,
) -> Result<SocketAddr, String> {
    let mut addr = env.filter(|a| !a.is_empty());
    while let Some(arg) = args.next() {
        if arg == "--addr" {
            addr = Some(
                args.next()
                    .ok_or_else(|| format!("--addr needs a value\n{USAGE}"))?,
            );
        } else if let Some(value) = arg.strip_prefix("--addr=") {
            addr = Some(value.to_owned());
        } else if arg == "--help" || arg == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        } else {
            return Err(format!("unknown argument {arg:?}\n{USAGE}"));
        }
    }
    let addr = addr.unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    addr.parse()
        .map_err(|e| format!("invalid address {addr:?}: {e}"))
}

/// A duration from the environment (`5s`, `1500ms`), or `default`.
fn duration_var(name: &str, default: Duration) -> Result<Duration, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => {
            humantime::parse_duration(&value).map_err(|e| format!("{name}={value:?}: {e}"))
        }
        _ => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn addr_flag_beats_env_which_beats_default() {
        assert_eq!(
            listen_addr(args(&[]), None).unwrap().to_string(),
            DEFAULT_ADDR
        );
        let env = Some("127.0.0.1:4000".to_owned());
        assert_eq!(listen_addr(args(&[]), env.clone()).unwrap().port(), 4000);
        assert_eq!(
            listen_addr(args(&["--addr", "127.0.0.1:5000"]), env)
                .unwrap()
                .port(),
            5000
        );
        assert_eq!(
            listen_addr(args(&["--addr=127.0.0.1:0"]), None)
                .unwrap()
                .port(),
            0
        );
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(listen_addr(args(&["--addr"]), None).is_err());
        assert!(listen_addr(args(&["--addr", "nope"]), None).is_err());
        assert!(listen_addr(args(&["--bogus"]), None).is_err());
    }
}
