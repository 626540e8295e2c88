//! Starts the Cortex Hub: `cargo run --release -p cortex-hub [-- --addr HOST:PORT]`.
//!
//! Configuration: every setting is a flag with a `CORTEX_*` environment
//! variable as fallback (the flag wins; an empty variable counts as unset);
//! `cortex-hub --help` lists them all with their defaults. `--addr` or
//! `CORTEX_ADDR` (default `127.0.0.1:3000`); `--metrics-token` or
//! `CORTEX_METRICS_TOKEN` protects `/metrics` with a bearer token;
//! `--header-read-timeout` (default `10s`) and `--idle-timeout` (default
//! `60s`) bound slow and idle clients; `--drain-delay` (default `5s`) and
//! `--shutdown-timeout` (default `20s`) shape the graceful shutdown; the
//! compute worker pool takes `--compute-workers` (default: one per core),
//! `--compute-queue` (default 4 per worker), `--compute-queue-ttl` (default
//! `5s`) and `--compute-run-timeout` (default `10s`; `none` turns either
//! off); the image guest's wasm pool takes `--wasm-workers` (default: one
//! per core), `--wasm-queue` (default 4 per worker), `--wasm-deadline` (per
//! call, default `2s`), `--wasm-fuel` (metering points per call, default
//! 10 000 000 000) and `--wasm-max-memory` (bytes of guest memory, default
//! 67108864; `none` turns the deadline or the fuel off); `--log-format
//! json` or `CORTEX_LOG_FORMAT=json` switches to JSON log lines;
//! `--request-timeout` (default `30s`) bounds a handler's answer;
//! `--max-notification-connections` (default 10 000) and
//! `--allowed-origin` (repeatable; `CORTEX_ALLOWED_ORIGINS` comma-separated)
//! bound the notification service. The
//! variables are the flags' names in upper case with a `CORTEX_` prefix
//! (`--compute-workers` is `CORTEX_COMPUTE_WORKERS`). `RUST_LOG` sets the
//! log filter (default `info`). Tracing follows the standard variables:
//! `OTEL_SERVICE_NAME` (default `cortex-hub`), `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (+ `OTEL_EXPORTER_OTLP_PROTOCOL`), `OTEL_TRACES_SAMPLER{,_ARG}`.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use cortex::serve::shutdown_signal;
use cortex::trace::{LogFormat, Tracing, TracingGuard};
use cortex::wasm::WasmConfig;
use cortex::workers::{Shutdown, WorkerPoolConfig};
use cortex_hub::compute::ComputeConfig;
use cortex_hub::notifications::NotificationsConfig;
use cortex_hub::{ClusterConfig, DEFAULT_ADDR, Hub, HubConfig};

/// What the actors and the compute and wasm pools get (at the same time)
/// after the server stopped: 5 s drain + 20 s shutdown + 3 s stay inside
/// Kubernetes' default 30 s grace period.
const ACTOR_SHUTDOWN: Duration = Duration::from_secs(3);
const COMPUTE_SHUTDOWN: Duration = Duration::from_secs(3);

/// The variables read outside the flags, for `--help`.
const AFTER_HELP: &str = "\
Environment:
  RUST_LOG                     the log filter (default `info`), e.g. `info,cortex_hub=debug`
  OTEL_SERVICE_NAME            the service name on spans (default `cortex-hub`)
  OTEL_TRACES_EXPORTER         `otlp`, `console` or `none` (default: OTLP if an endpoint is set)
  OTEL_EXPORTER_OTLP_ENDPOINT  export spans over OTLP to this endpoint
  OTEL_EXPORTER_OTLP_PROTOCOL  the OTLP protocol (`grpc` or `http/protobuf`)
  OTEL_TRACES_SAMPLER          the sampler (e.g. `parentbased_traceidratio`)
  OTEL_TRACES_SAMPLER_ARG      the sampler's argument (e.g. `0.1`)

Durations are humantime text (`250ms`, `5s`, `1m 30s`). A flag wins over its
variable; an empty variable counts as unset.";

/// The Cortex Hub: the showcase service that uses every Cortex crate.
#[derive(Debug, Parser)]
#[command(name = "cortex-hub", version, about, after_help = AFTER_HELP)]
struct Cli {
    /// The address to listen on.
    #[arg(long, env = "CORTEX_ADDR", value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    addr: SocketAddr,

    /// Protects `/metrics` with this bearer token (default: open).
    #[arg(
        long,
        env = "CORTEX_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    metrics_token: Option<String>,

    /// How long a client may take to send the request headers [default: 10s].
    #[arg(long, env = "CORTEX_HEADER_READ_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    header_read_timeout: Option<Duration>,

    /// How long an idle keep-alive connection stays open [default: 60s].
    #[arg(long, env = "CORTEX_IDLE_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    idle_timeout: Option<Duration>,

    /// How long serving goes on after SIGTERM while readiness fails [default: 5s].
    #[arg(long, env = "CORTEX_DRAIN_DELAY", value_name = "DURATION", value_parser = duration)]
    drain_delay: Option<Duration>,

    /// How long in-flight requests get once the listener closed [default: 20s].
    #[arg(long, env = "CORTEX_SHUTDOWN_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    shutdown_timeout: Option<Duration>,

    /// The compute pool's worker threads [default: one per core].
    #[arg(long, env = "CORTEX_COMPUTE_WORKERS", value_name = "N")]
    compute_workers: Option<NonZeroUsize>,

    /// The compute pool's queue places [default: 4 per worker].
    #[arg(long, env = "CORTEX_COMPUTE_QUEUE", value_name = "N")]
    compute_queue: Option<NonZeroUsize>,

    /// How long a compute job may wait in the queue, or `none` [default: 5s].
    #[arg(long, env = "CORTEX_COMPUTE_QUEUE_TTL", value_name = "DURATION|none", value_parser = limit_duration)]
    compute_queue_ttl: Option<Limit<Duration>>,

    /// How long a compute job may run, or `none` [default: 10s].
    #[arg(long, env = "CORTEX_COMPUTE_RUN_TIMEOUT", value_name = "DURATION|none", value_parser = limit_duration)]
    compute_run_timeout: Option<Limit<Duration>>,

    /// The image guest's wasm worker threads [default: one per core].
    #[arg(long, env = "CORTEX_WASM_WORKERS", value_name = "N")]
    wasm_workers: Option<NonZeroUsize>,

    /// The image guest's queue places [default: 4 per worker].
    #[arg(long, env = "CORTEX_WASM_QUEUE", value_name = "N")]
    wasm_queue: Option<NonZeroUsize>,

    /// The image guest's deadline per call, or `none` [default: 2s].
    #[arg(long, env = "CORTEX_WASM_DEADLINE", value_name = "DURATION|none", value_parser = limit_duration)]
    wasm_deadline: Option<Limit<Duration>>,

    /// The image guest's metering points per call, or `none` [default: 10_000_000_000].
    #[arg(long, env = "CORTEX_WASM_FUEL", value_name = "POINTS|none", value_parser = limit_number)]
    wasm_fuel: Option<Limit<u64>>,

    /// The image guest's memory cap in bytes [default: 67108864].
    #[arg(long, env = "CORTEX_WASM_MAX_MEMORY", value_name = "BYTES", value_parser = memory)]
    wasm_max_memory: Option<u64>,

    /// How long a handler may take before the client gets 504 [default: 30s].
    #[arg(long, env = "CORTEX_REQUEST_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    request_timeout: Option<Duration>,

    /// Notification connections at once, WebSocket and SSE [default: 10000].
    #[arg(long, env = "CORTEX_MAX_NOTIFICATION_CONNECTIONS", value_name = "N")]
    max_notification_connections: Option<NonZeroUsize>,

    /// Another origin whose pages may open notification connections
    /// (repeat, or comma-separate in the variable) [default: the Hub's own only].
    #[arg(
        long = "allowed-origin",
        env = "CORTEX_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,

    /// This replica's name, in logs and status [default: hub].
    #[arg(long, env = "CORTEX_NODE_NAME", value_name = "NAME")]
    node_name: Option<String>,

    /// How many replicas share the limits; without Redis each falls back
    /// to the limit ÷ N [default: 1].
    #[arg(long, env = "CORTEX_REPLICAS", value_name = "N")]
    replicas: Option<NonZeroU32>,

    /// The Redis that holds limits shared by every replica
    /// (`redis://host:port/`) [default: none, limits are per process].
    #[arg(long, env = "CORTEX_REDIS_URL", value_name = "URL")]
    redis_url: Option<String>,

    /// How long a rate-limit check may wait for Redis before the local
    /// fallback decides [default: 20ms].
    #[arg(long, env = "CORTEX_REDIS_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    redis_timeout: Option<Duration>,

    /// The NATS server (run with JetStream, `-js`) that joins replicas:
    /// orders, their events and actors across nodes (`nats://host:4222`)
    /// [default: none, everything stays in this process].
    #[arg(long, env = "CORTEX_NATS_URL", value_name = "URL")]
    nats_url: Option<String>,

    /// The namespace replicas of one service share in NATS: letters,
    /// digits, `-`, `_` [default: hub].
    #[arg(long, env = "CORTEX_NAMESPACE", value_name = "NAME")]
    namespace: Option<String>,

    /// How long a replica that stopped answering keeps its unfinished
    /// orders before another takes them over [default: 10s].
    #[arg(long, env = "CORTEX_NODE_TTL", value_name = "DURATION", value_parser = duration)]
    node_ttl: Option<Duration>,

    /// How log lines look.
    #[arg(long, env = "CORTEX_LOG_FORMAT", value_enum, ignore_case = true, default_value_t = LogFormatArg::Pretty)]
    log_format: LogFormatArg,
}

/// `--log-format`: cortex-trace's [`LogFormat`] as a clap value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormatArg {
    /// Human-readable lines with trace and span ids.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(format: LogFormatArg) -> Self {
        match format {
            LogFormatArg::Pretty => Self::Pretty,
            LogFormatArg::Json => Self::Json,
        }
    }
}

/// A limit that `none` turns off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit<T> {
    /// `none`: no limit.
    Off,
    /// This limit.
    At(T),
}

impl<T> Limit<T> {
    /// The limit, `None` for off, or `default` if not given.
    fn or(setting: Option<Self>, default: Option<T>) -> Option<T> {
        match setting {
            None => default,
            Some(Self::Off) => None,
            Some(Self::At(limit)) => Some(limit),
        }
    }
}

/// A humantime duration (`5s`, `1500ms`).
fn duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|e| e.to_string())
}

/// A positive duration, or `none`.
fn limit_duration(value: &str) -> Result<Limit<Duration>, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(Limit::Off);
    }
    match duration(value)? {
        d if d.is_zero() => Err("must be positive (or `none`)".to_owned()),
        d => Ok(Limit::At(d)),
    }
}

/// A number of at least 1, `_` allowed as a separator (`10_000`).
fn number(value: &str) -> Result<u64, String> {
    match value.replace('_', "").parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A memory cap in bytes: a number of at least 1, never `none`.
fn memory(value: &str) -> Result<u64, String> {
    if value.eq_ignore_ascii_case("none") {
        return Err("the guest's memory needs a cap".to_owned());
    }
    number(value)
}

/// A number of at least 1, or `none`.
fn limit_number(value: &str) -> Result<Limit<u64>, String> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(Limit::Off);
    }
    number(value).map(Limit::At)
}

impl Cli {
    /// The command, without the env fallback of any variable that is set
    /// but empty (as before clap: an empty variable means the default).
    fn command_from_env() -> clap::Command {
        Self::command().mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.is_empty());
            if empty { arg.env(None) } else { arg }
        })
    }

    /// Parses `args` (the program name first) and the environment.
    fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Self::command_from_env();
        let mut matches = command.try_get_matches_from_mut(args)?;
        Self::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
    }

    /// The Hub's settings: the given ones over [`HubConfig::default`].
    fn hub_config(&self) -> HubConfig {
        let defaults = HubConfig::default();
        HubConfig {
            addr: self.addr,
            metrics_token: self.metrics_token.clone().filter(|t| !t.is_empty()),
            header_read_timeout: self
                .header_read_timeout
                .unwrap_or(defaults.header_read_timeout),
            idle_timeout: self.idle_timeout.unwrap_or(defaults.idle_timeout),
            drain_delay: self.drain_delay.unwrap_or(defaults.drain_delay),
            shutdown_timeout: self.shutdown_timeout.unwrap_or(defaults.shutdown_timeout),
            compute: self.compute_config(defaults.compute.clone()),
            request_timeout: self.request_timeout.unwrap_or(defaults.request_timeout),
            notifications: NotificationsConfig {
                max_connections: self
                    .max_notification_connections
                    .map_or(defaults.notifications.max_connections, NonZeroUsize::get),
                allowed_origins: self
                    .allowed_origins
                    .iter()
                    .filter(|origin| !origin.is_empty())
                    .cloned()
                    .collect(),
                ..defaults.notifications.clone()
            },
            cluster: ClusterConfig {
                node_name: self
                    .node_name
                    .clone()
                    .filter(|name| !name.is_empty())
                    .unwrap_or(defaults.cluster.node_name.clone()),
                replicas: self
                    .replicas
                    .map_or(defaults.cluster.replicas, NonZeroU32::get),
                redis_url: self.redis_url.clone().filter(|url| !url.is_empty()),
                redis_timeout: self.redis_timeout.unwrap_or(defaults.cluster.redis_timeout),
                nats_url: self.nats_url.clone().filter(|url| !url.is_empty()),
                namespace: self
                    .namespace
                    .clone()
                    .filter(|namespace| !namespace.is_empty())
                    .unwrap_or(defaults.cluster.namespace.clone()),
                node_ttl: self.node_ttl.unwrap_or(defaults.cluster.node_ttl),
            },
            ..defaults
        }
    }

    /// The compute settings, with the `--compute-*` and `--wasm-*` flags
    /// applied.
    fn compute_config(&self, defaults: ComputeConfig) -> ComputeConfig {
        let pool = defaults.pool;
        let wasm_pool = defaults.wasm_pool;
        let wasm = defaults.wasm;
        let count = |n: Option<NonZeroUsize>, default| n.map(NonZeroUsize::get).or(default);
        ComputeConfig {
            pool: WorkerPoolConfig {
                workers: count(self.compute_workers, pool.workers),
                queue_capacity: count(self.compute_queue, pool.queue_capacity),
                queue_ttl: Limit::or(self.compute_queue_ttl, pool.queue_ttl),
                run_timeout: Limit::or(self.compute_run_timeout, pool.run_timeout),
                ..pool
            },
            wasm_pool: WorkerPoolConfig {
                workers: count(self.wasm_workers, wasm_pool.workers),
                queue_capacity: count(self.wasm_queue, wasm_pool.queue_capacity),
                ..wasm_pool
            },
            wasm: WasmConfig {
                deadline: Limit::or(self.wasm_deadline, wasm.deadline),
                fuel: Limit::or(self.wasm_fuel, wasm.fuel),
                max_memory_bytes: self.wasm_max_memory.unwrap_or(wasm.max_memory_bytes),
                ..wasm
            },
            ..defaults
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Bad flags or variables: clap's message and exit code 2.
    let cli = Cli::try_parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let telemetry = match setup_tracing(cli.log_format.into()) {
        Ok(guard) => guard,
        Err(message) => {
            eprintln!("cortex-hub: {message}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match run(cli.hub_config(), &telemetry).await {
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
fn setup_tracing(log_format: LogFormat) -> Result<TracingGuard, String> {
    let mut builder = Tracing::builder().log_format(log_format);
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        builder = builder.service_name("cortex-hub");
    }
    let guard = builder.build().map_err(|e| e.to_string())?;
    guard.install_subscriber().map_err(|e| e.to_string())?;
    Ok(guard)
}

/// How long leaving the cluster may wait for bridged events to be stored.
const CLUSTER_LEAVE: Duration = Duration::from_secs(5);

async fn run(config: HubConfig, telemetry: &TracingGuard) -> Result<(), String> {
    let addr = config.addr;
    let node = config.cluster.node_name.clone();
    let shared_limits = config.cluster.redis_url.is_some();
    let hub = Hub::new(config)
        .map_err(|e| format!("building the hub: {e}"))?
        .with_tracer_provider(telemetry.provider().clone())
        .join_cluster()
        .await
        .map_err(|e| format!("building the hub: {e}"))?;
    let clustered = hub.cluster.is_some();
    let router = hub.router().map_err(|e| format!("building the app: {e}"))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        node,
        shared_limits,
        clustered,
        "cortex-hub listening on http://{local}"
    );
    // On SIGTERM: readiness fails at once while serving goes on for the
    // drain delay (load balancers see the 503), then the listener closes
    // and in-flight requests get the shutdown timeout.
    let served = hub
        .server
        .clone()
        .serve(listener, router, {
            let streams = hub.streams.clone();
            async move {
                shutdown_signal().await;
                // WebSockets and event streams never finish by themselves:
                // end them now (clients reconnect elsewhere) so they do not
                // hold the drain up to its timeout.
                streams.close();
            }
        })
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
    // Events the order actors published while finishing go out before the
    // process does: JetStream has them once this returns true.
    if let Some(cluster) = &hub.cluster {
        let flushed = cluster.leave(CLUSTER_LEAVE).await;
        tracing::info!(flushed, "left the cluster");
    }
    tracing::info!(?actors, ?compute, ?images, ?hostile, "cortex-hub stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_args(std::iter::once("cortex-hub").chain(args.iter().copied()))
    }

    #[test]
    fn the_cluster_flags_set_the_cluster_config() {
        let config = parse(&[]).unwrap().hub_config();
        assert_eq!(config.cluster.nats_url, None);
        assert_eq!(config.cluster.namespace, "hub");
        assert_eq!(config.cluster.node_ttl, Duration::from_secs(10));
        let config = parse(&[
            "--nats-url",
            "nats://127.0.0.1:4222",
            "--namespace",
            "shop",
            "--node-ttl",
            "3s",
            "--node-name",
            "node-2",
        ])
        .unwrap()
        .hub_config();
        assert_eq!(
            config.cluster.nats_url.as_deref(),
            Some("nats://127.0.0.1:4222")
        );
        assert_eq!(config.cluster.namespace, "shop");
        assert_eq!(config.cluster.node_ttl, Duration::from_secs(3));
        assert_eq!(config.cluster.node_name, "node-2");
        // An empty URL (a blank variable) is no URL.
        let config = parse(&["--nats-url", ""]).unwrap().hub_config();
        assert_eq!(config.cluster.nats_url, None);
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_flags_give_the_hub_defaults() {
        // Run without CORTEX_* in the test environment: nothing sets them.
        let config = parse(&[]).unwrap().hub_config();
        let defaults = HubConfig::default();
        assert_eq!(config.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(config.metrics_token, None);
        assert_eq!(config.header_read_timeout, defaults.header_read_timeout);
        assert_eq!(config.idle_timeout, defaults.idle_timeout);
        assert_eq!(config.drain_delay, defaults.drain_delay);
        assert_eq!(config.shutdown_timeout, defaults.shutdown_timeout);
        assert_eq!(config.compute.pool, defaults.compute.pool);
        assert_eq!(config.compute.wasm_pool, defaults.compute.wasm_pool);
        assert_eq!(config.compute.wasm.deadline, defaults.compute.wasm.deadline);
        assert_eq!(config.compute.wasm.fuel, defaults.compute.wasm.fuel);
        assert_eq!(
            config.compute.wasm.max_memory_bytes,
            defaults.compute.wasm.max_memory_bytes
        );
        assert_eq!(config.request_timeout, defaults.request_timeout);
        assert_eq!(
            config.notifications.max_connections,
            defaults.notifications.max_connections
        );
        assert!(config.notifications.allowed_origins.is_empty());
        assert_eq!(parse(&[]).unwrap().log_format, LogFormatArg::Pretty);
    }

    #[test]
    fn flags_set_every_setting() {
        let cli = parse(&[
            "--addr=127.0.0.1:0",
            "--metrics-token",
            "secret",
            "--header-read-timeout",
            "3s",
            "--idle-timeout",
            "1m",
            "--drain-delay",
            "500ms",
            "--shutdown-timeout",
            "7s",
            "--compute-workers",
            "2",
            "--compute-queue",
            "3",
            "--compute-queue-ttl",
            "none",
            "--compute-run-timeout",
            "NONE",
            "--wasm-workers",
            "1",
            "--wasm-queue",
            "5",
            "--wasm-deadline",
            "none",
            "--wasm-fuel",
            "1_000",
            "--wasm-max-memory",
            "1048576",
            "--request-timeout",
            "2s",
            "--max-notification-connections",
            "9",
            "--allowed-origin",
            "https://a.example",
            "--allowed-origin",
            "https://b.example",
            "--log-format",
            "JSON",
        ])
        .unwrap();
        assert_eq!(cli.log_format, LogFormatArg::Json);
        let config = cli.hub_config();
        assert_eq!(config.addr.port(), 0);
        assert_eq!(config.metrics_token.as_deref(), Some("secret"));
        assert_eq!(config.header_read_timeout, Duration::from_secs(3));
        assert_eq!(config.idle_timeout, Duration::from_secs(60));
        assert_eq!(config.drain_delay, Duration::from_millis(500));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(7));
        assert_eq!(config.request_timeout, Duration::from_secs(2));
        assert_eq!(config.notifications.max_connections, 9);
        assert_eq!(
            config.notifications.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        let compute = config.compute;
        assert_eq!(compute.pool.workers, Some(2));
        assert_eq!(compute.pool.queue_capacity, Some(3));
        assert_eq!(compute.pool.queue_ttl, None);
        assert_eq!(compute.pool.run_timeout, None);
        assert_eq!(compute.wasm_pool.workers, Some(1));
        assert_eq!(compute.wasm_pool.queue_capacity, Some(5));
        assert_eq!(compute.wasm.deadline, None);
        assert_eq!(compute.wasm.fuel, Some(1000));
        assert_eq!(compute.wasm.max_memory_bytes, 1_048_576);
    }

    #[test]
    fn bad_values_are_clap_errors() {
        for args in [
            &["--addr"][..],
            &["--addr", "nope"],
            &["--bogus"],
            &["--idle-timeout", "soon"],
            &["--compute-run-timeout", "0s"],
            &["--compute-workers", "0"],
            &["--wasm-fuel", "0"],
            &["--wasm-max-memory", "none"],
            &["--log-format", "xml"],
        ] {
            let error = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} parsed"));
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
        let error = parse(&["--drain-delay", "5 parsecs"]).unwrap_err();
        assert!(error.to_string().contains("--drain-delay"), "{error}");
    }

    /// Set in the child process of [`flags_beat_env_which_beats_default`].
    const CHILD: &str = "CORTEX_HUB_CLI_TEST_CHILD";

    /// The environment cannot be changed in-process (`set_var` is unsafe),
    /// so this test runs [`env_child`] in a child with the variables set.
    #[test]
    fn flags_beat_env_which_beats_default() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["tests::env_child", "--exact", "--nocapture"])
            .env(CHILD, "1")
            .env("CORTEX_ADDR", "127.0.0.1:4000")
            .env("CORTEX_IDLE_TIMEOUT", "9s")
            .env("CORTEX_DRAIN_DELAY", "")
            .env("CORTEX_COMPUTE_RUN_TIMEOUT", "none")
            .env("CORTEX_WASM_FUEL", "none")
            .env("CORTEX_COMPUTE_WORKERS", "3")
            .env("CORTEX_LOG_FORMAT", "json")
            .env("CORTEX_METRICS_TOKEN", "hush")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.contains("1 passed"), "{stdout}");
    }

    #[test]
    fn env_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let config = parse(&[]).unwrap().hub_config();
        assert_eq!(config.addr.port(), 4000);
        assert_eq!(config.idle_timeout, Duration::from_secs(9));
        // Empty counts as unset.
        assert_eq!(config.drain_delay, HubConfig::default().drain_delay);
        assert_eq!(config.compute.pool.run_timeout, None);
        assert_eq!(config.compute.wasm.fuel, None);
        assert_eq!(config.compute.pool.workers, Some(3));
        assert_eq!(config.metrics_token.as_deref(), Some("hush"));
        assert_eq!(parse(&[]).unwrap().log_format, LogFormatArg::Json);

        let cli = parse(&[
            "--addr",
            "127.0.0.1:5000",
            "--idle-timeout=2s",
            "--compute-run-timeout",
            "4s",
            "--compute-workers",
            "1",
            "--log-format",
            "pretty",
        ])
        .unwrap();
        assert_eq!(cli.log_format, LogFormatArg::Pretty);
        let config = cli.hub_config();
        assert_eq!(config.addr.port(), 5000);
        assert_eq!(config.idle_timeout, Duration::from_secs(2));
        assert_eq!(
            config.compute.pool.run_timeout,
            Some(Duration::from_secs(4))
        );
        assert_eq!(config.compute.pool.workers, Some(1));

        // The token's value stays out of `--help`.
        let help = Cli::command_from_env().render_long_help().to_string();
        assert!(help.contains("CORTEX_METRICS_TOKEN"), "{help}");
        assert!(!help.contains("hush"), "{help}");
        // The long help documents the variables outside the flags.
        assert!(help.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{help}");
    }
}
