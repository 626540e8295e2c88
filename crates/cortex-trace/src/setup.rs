//! Tracer setup: provider, sampler, exporter and log subscriber in one
//! builder, configured by code or by the standard `OTEL_*` variables.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_sdk::Resource;
#[cfg(feature = "otlp")]
use opentelemetry_sdk::trace::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, SimpleSpanProcessor, SpanExporter, SpanProcessor,
};

use crate::TraceError;
use crate::export::{CountingExporter, MemoryExporter, StdoutExporter};
use crate::logs::{LogFormat, TraceIdFormat};
use crate::tail::{TailSampling, TailSamplingProcessor};

/// Where spans go.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Exporter {
    /// Nowhere: spans are sampled and propagated, then dropped.
    None,
    /// One JSON line per span on stdout (a local debugging aid).
    Stdout,
    /// Into a [`MemoryExporter`], for tests.
    Memory(MemoryExporter),
    /// OTLP over gRPC, e.g. `http://localhost:4317`. Needs a tokio runtime
    /// when [`TracingBuilder::build`] runs.
    #[cfg(feature = "otlp")]
    OtlpGrpc {
        /// The collector's endpoint.
        endpoint: String,
    },
    /// OTLP over HTTP/protobuf, e.g. `http://localhost:4318` (plain HTTP).
    /// Works with or without a runtime.
    #[cfg(feature = "otlp")]
    OtlpHttp {
        /// The collector's base endpoint (`/v1/traces` is appended).
        endpoint: String,
    },
}

/// Which spans are recorded, as `OTEL_TRACES_SAMPLER` names them.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Sampling {
    /// Every span.
    AlwaysOn,
    /// No span.
    AlwaysOff,
    /// A fraction of traces, by trace id.
    TraceIdRatio(f64),
    /// Follow the caller's decision; root spans always on (the default).
    ParentBasedAlwaysOn,
    /// Follow the caller's decision; root spans off.
    ParentBasedAlwaysOff,
    /// Follow the caller's decision; root spans by ratio.
    ParentBasedTraceIdRatio(f64),
}

impl Sampling {
    /// Parses `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`; `None` for
    /// unknown names (the spec says: warn and use the default).
    pub fn from_env_values(name: &str, arg: Option<&str>) -> Option<Self> {
        let ratio = || {
            arg.and_then(|a| a.trim().parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(1.0)
        };
        Some(match name.trim() {
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::TraceIdRatio(ratio()),
            "parentbased_always_on" => Self::ParentBasedAlwaysOn,
            "parentbased_always_off" => Self::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Self::ParentBasedTraceIdRatio(ratio()),
            _ => return None,
        })
    }

    fn to_sdk(self) -> Sampler {
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
            Self::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            Self::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            Self::ParentBasedTraceIdRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}

/// The entry point: see [`Tracing::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Tracing;

impl Tracing {
    /// A builder reading the standard variables of the process environment.
    pub fn builder() -> TracingBuilder {
        TracingBuilder::from_env(|key| std::env::var(key).ok())
    }
}

/// Builds the tracer provider and (optionally) the log subscriber.
///
/// Explicit settings win over the environment, which wins over defaults:
///
/// | setting | variable | default |
/// |---|---|---|
/// | service name | `OTEL_SERVICE_NAME` | `unknown_service` |
/// | exporter | `OTEL_TRACES_EXPORTER` (`otlp`, `console`, `none`), `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `OTEL_EXPORTER_OTLP_PROTOCOL` = `grpc` / `http/protobuf`) | OTLP when an endpoint is set, else none |
/// | sampler | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | `parentbased_always_on` |
/// | log filter | `RUST_LOG` | `info` |
///
/// Nothing global happens in `build`: the provider is yours to pass to
/// `HttpTraceLayer`. Call [`TracingGuard::install_subscriber`] to make the
/// log subscriber (with `trace_id`/`span_id` on every line) the process's.
///
/// ```
/// use cortex_trace::{Exporter, MemoryExporter, Sampling, Tracing};
///
/// let exporter = MemoryExporter::new();
/// let guard = Tracing::builder()
///     .service_name("checkout")
///     .sampling(Sampling::ParentBasedTraceIdRatio(0.25))
///     .exporter(Exporter::Memory(exporter.clone()))
///     .build()?;
/// let layer = cortex_trace::http::HttpTraceLayer::new(guard.provider());
/// # let _ = layer;
/// // Dropping the guard flushes and shuts the provider down.
/// # Ok::<(), cortex_trace::TraceError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TracingBuilder {
    service_name: Option<String>,
    exporter: Option<Exporter>,
    sampling: Option<Sampling>,
    tail: Option<TailSampling>,
    log_format: LogFormat,
    log_filter: Option<String>,
}

impl TracingBuilder {
    /// Defaults taken from `env` (a lookup such as `std::env::var`), so
    /// tests can configure without touching the process environment.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let service_name = env("OTEL_SERVICE_NAME").filter(|s| !s.trim().is_empty());
        let endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|e| !e.trim().is_empty());
        let protocol = env("OTEL_EXPORTER_OTLP_PROTOCOL");
        let exporter = match env("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
            Some("none") => Some(Exporter::None),
            Some("console") => Some(Exporter::Stdout),
            Some("otlp") => otlp_from_env(
                endpoint.unwrap_or_else(|| default_otlp_endpoint(protocol.as_deref())),
                protocol,
            ),
            Some(other) => {
                tracing::warn!(
                    exporter = other,
                    "unsupported OTEL_TRACES_EXPORTER; exporting nothing"
                );
                None
            }
            None => endpoint.and_then(|endpoint| otlp_from_env(endpoint, protocol)),
        };
        let sampling = env("OTEL_TRACES_SAMPLER").and_then(|name| {
            let arg = env("OTEL_TRACES_SAMPLER_ARG");
            let parsed = Sampling::from_env_values(&name, arg.as_deref());
            if parsed.is_none() {
                tracing::warn!(%name, "unknown OTEL_TRACES_SAMPLER; using parentbased_always_on");
            }
            parsed
        });
        Self {
            service_name,
            exporter,
            sampling,
            tail: None,
            log_format: LogFormat::Pretty,
            log_filter: env("RUST_LOG").filter(|f| !f.trim().is_empty()),
        }
    }

    /// The `service.name` resource attribute.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Where spans go.
    pub fn exporter(mut self, exporter: Exporter) -> Self {
        self.exporter = Some(exporter);
        self
    }

    /// Head sampling (decided when a span starts).
    pub fn sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = Some(sampling);
        self
    }

    /// Adds adaptive tail sampling in front of the exporter: failed and
    /// slow traces are kept, a ratio of the rest. Head sampling should
    /// then record everything (`AlwaysOn` or `ParentBasedAlwaysOn`).
    pub fn tail_sampling(mut self, settings: TailSampling) -> Self {
        self.tail = Some(settings);
        self
    }

    /// JSON or human-readable log lines (default pretty).
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.log_format = format;
        self
    }

    /// An `EnvFilter` directive such as `info,my_crate=debug`.
    pub fn log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = Some(filter.into());
        self
    }

    /// Builds the provider. Nothing is installed globally.
    pub fn build(self) -> Result<TracingGuard, TraceError> {
        let service_name = self
            .service_name
            .clone()
            .unwrap_or_else(|| "unknown_service".to_owned());
        let failures = Arc::new(AtomicU64::new(0));
        let sampler = self
            .sampling
            .unwrap_or(Sampling::ParentBasedAlwaysOn)
            .to_sdk();
        let resource = Resource::builder()
            .with_service_name(service_name.clone())
            .build();
        let mut builder = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_resource(resource);
        match self.exporter.clone().unwrap_or(Exporter::None) {
            Exporter::None => {}
            Exporter::Stdout => {
                builder = add(
                    builder,
                    SimpleSpanProcessor::new(count(StdoutExporter, &failures)),
                    &self.tail,
                );
            }
            Exporter::Memory(memory) => {
                builder = add(
                    builder,
                    SimpleSpanProcessor::new(count(memory, &failures)),
                    &self.tail,
                );
            }
            #[cfg(feature = "otlp")]
            Exporter::OtlpGrpc { endpoint } => {
                use opentelemetry_otlp::WithExportConfig;
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(TraceError::NoRuntime);
                }
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint)
                    .build()
                    .map_err(|e| TraceError::Exporter(e.to_string()))?;
                let batch = BatchSpanProcessor::builder(count(exporter, &failures)).build();
                builder = add(builder, batch, &self.tail);
            }
            #[cfg(feature = "otlp")]
            Exporter::OtlpHttp { endpoint } => {
                use opentelemetry_otlp::WithExportConfig;
                let endpoint = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(endpoint)
                    .build()
                    .map_err(|e| TraceError::Exporter(e.to_string()))?;
                let batch = BatchSpanProcessor::builder(count(exporter, &failures)).build();
                builder = add(builder, batch, &self.tail);
            }
        }
        Ok(TracingGuard {
            provider: builder.build(),
            failures,
            service_name,
            log_format: self.log_format,
            log_filter: self.log_filter.unwrap_or_else(|| "info".to_owned()),
        })
    }
}

/// The spec's defaults: 4317 for gRPC, 4318 for HTTP.
fn default_otlp_endpoint(protocol: Option<&str>) -> String {
    match protocol.map(str::trim) {
        Some("grpc") => "http://localhost:4317".to_owned(),
        _ => "http://localhost:4318".to_owned(),
    }
}

#[cfg(feature = "otlp")]
fn otlp_from_env(endpoint: String, protocol: Option<String>) -> Option<Exporter> {
    Some(match protocol.as_deref().map(str::trim) {
        Some("grpc") => Exporter::OtlpGrpc { endpoint },
        // The spec's default protocol is http/protobuf.
        _ => Exporter::OtlpHttp { endpoint },
    })
}

#[cfg(not(feature = "otlp"))]
fn otlp_from_env(_endpoint: String, _protocol: Option<String>) -> Option<Exporter> {
    tracing::warn!("OTEL_EXPORTER_OTLP_ENDPOINT is set but cortex-trace was built without `otlp`");
    None
}

fn count<E: SpanExporter>(inner: E, failures: &Arc<AtomicU64>) -> CountingExporter<E> {
    CountingExporter {
        inner,
        failures: Arc::clone(failures),
    }
}

fn add<P: SpanProcessor + 'static>(
    builder: opentelemetry_sdk::trace::TracerProviderBuilder,
    processor: P,
    tail: &Option<TailSampling>,
) -> opentelemetry_sdk::trace::TracerProviderBuilder {
    match tail {
        Some(settings) => {
            builder.with_span_processor(TailSamplingProcessor::new(processor, settings.clone()))
        }
        None => builder.with_span_processor(processor),
    }
}

/// The configured provider; flushes and shuts it down when dropped.
#[derive(Debug)]
pub struct TracingGuard {
    provider: SdkTracerProvider,
    failures: Arc<AtomicU64>,
    service_name: String,
    log_format: LogFormat,
    log_filter: String,
}

impl TracingGuard {
    /// The tracer provider, for `HttpTraceLayer::new` and friends.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Failed export calls so far (each also logged as a warning).
    pub fn export_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Installs the process-wide `tracing` subscriber: the log filter, the
    /// chosen log format with `trace_id`/`span_id` on every line written
    /// inside a traced request, and a tracing-opentelemetry layer so
    /// `#[instrument]` spans join the traces. Fails if one is installed.
    pub fn install_subscriber(&self) -> Result<(), TraceError> {
        use opentelemetry::trace::TracerProvider;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;

        let filter = tracing_subscriber::EnvFilter::try_new(&self.log_filter)
            .map_err(|e| TraceError::Filter(e.to_string()))?;
        // Plain text: log lines go to files and collectors, and a
        // dependency may turn on tracing-subscriber's `ansi` feature
        // (wasmer does), which would colour the fields.
        let fmt = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .event_format(TraceIdFormat::new(self.log_format));
        let otel = tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer(self.service_name.clone()));
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .with(otel)
            .try_init()
            .map_err(|_| TraceError::SubscriberAlreadySet)
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.force_flush() {
            tracing::warn!(%error, "flushing spans at shutdown failed");
        }
        if let Err(error) = self.provider.shutdown() {
            tracing::debug!(%error, "tracer provider shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn standard_variables_configure_the_builder() {
        let builder = TracingBuilder::from_env(env(&[
            ("OTEL_SERVICE_NAME", "billing"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.3"),
            ("RUST_LOG", "debug"),
        ]));
        assert_eq!(builder.service_name.as_deref(), Some("billing"));
        assert_eq!(
            builder.sampling,
            Some(Sampling::ParentBasedTraceIdRatio(0.3))
        );
        assert_eq!(builder.log_filter.as_deref(), Some("debug"));
        assert!(builder.exporter.is_none());
    }

    #[test]
    fn bad_sampler_values_fall_back() {
        assert_eq!(Sampling::from_env_values("nonsense", None), None);
        assert_eq!(
            Sampling::from_env_values("traceidratio", Some("7")),
            Some(Sampling::TraceIdRatio(1.0))
        );
        assert_eq!(
            Sampling::from_env_values("traceidratio", Some("abc")),
            Some(Sampling::TraceIdRatio(1.0))
        );
        let builder = TracingBuilder::from_env(env(&[("OTEL_TRACES_SAMPLER", "bogus")]));
        assert_eq!(builder.sampling, None);
    }

    #[test]
    fn otel_traces_exporter_picks_console_or_none() {
        let console = TracingBuilder::from_env(env(&[("OTEL_TRACES_EXPORTER", "console")]));
        assert!(matches!(console.exporter, Some(Exporter::Stdout)));
        let none = TracingBuilder::from_env(env(&[
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ]));
        assert!(matches!(none.exporter, Some(Exporter::None)));
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn otlp_endpoint_and_protocol_pick_the_exporter() {
        let http =
            TracingBuilder::from_env(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]));
        assert!(matches!(http.exporter, Some(Exporter::OtlpHttp { .. })));
        let grpc = TracingBuilder::from_env(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]));
        assert!(matches!(grpc.exporter, Some(Exporter::OtlpGrpc { .. })));
    }

    #[cfg(feature = "otlp")]
    #[test]
    fn grpc_outside_a_runtime_is_a_typed_error_not_a_panic() {
        let result = TracingBuilder::from_env(|_| None)
            .exporter(Exporter::OtlpGrpc {
                endpoint: "http://127.0.0.1:4317".to_owned(),
            })
            .build();
        assert!(matches!(result, Err(TraceError::NoRuntime)));
    }
}
