use std::sync::Arc;

use http::{HeaderMap, StatusCode};

use tower_layer::Layer;

use super::config::{Config, DEFAULT_MIN_SIZE};
use super::service::Compression;
use crate::codec::Levels;
use crate::encoding::Encoding;

/// Compresses response bodies as they stream; see the [crate docs](crate).
///
/// All clones share one configuration.
#[derive(Debug, Clone)]
pub struct CompressionLayer {
    pub(crate) config: Arc<Config>,
}

impl Default for CompressionLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CompressionLayer {
    /// br > zstd > gzip > deflate at default levels, bodies of 1 KiB and up.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                preference: vec![
                    Encoding::Brotli,
                    Encoding::Zstd,
                    Encoding::Gzip,
                    Encoding::Deflate,
                ],
                levels: Levels::default(),
                min_size: DEFAULT_MIN_SIZE,
                allowed_types: None,
                skip_rules: Vec::new(),
                #[cfg(feature = "metrics")]
                metrics: Arc::default(),
            }),
        }
    }

    /// The codings to offer, most preferred first (used when the client's
    /// q-values tie). Codings left out, or whose cargo feature is off, are
    /// never produced.
    #[must_use]
    pub fn preference(mut self, encodings: impl IntoIterator<Item = Encoding>) -> Self {
        let mut preference: Vec<Encoding> = Vec::new();
        for encoding in encodings {
            if encoding.is_enabled() && !preference.contains(&encoding) {
                preference.push(encoding);
            }
        }
        Arc::make_mut(&mut self.config).preference = preference;
        self
    }

    /// Compression levels per coding.
    #[must_use]
    pub fn levels(mut self, levels: Levels) -> Self {
        Arc::make_mut(&mut self.config).levels = levels;
        self
    }

    /// Bodies known (by `Content-Length` or an exact size hint) to be
    /// smaller than this are sent as they are; unknown sizes are compressed.
    #[must_use]
    pub fn min_size(mut self, bytes: u64) -> Self {
        Arc::make_mut(&mut self.config).min_size = bytes;
        self
    }
}

impl CompressionLayer {
    /// Compresses only these media types (an allow-list replacing the
    /// built-in deny-list of already-compressed types). Entries match the
    /// type's essence exactly (`application/json`) or by prefix when they
    /// end in `/` or `/*` (`text/`, `text/*`).
    ///
    /// ```
    /// use cortex_compress::CompressionLayer;
    ///
    /// let layer = CompressionLayer::new().only_content_types(["text/*", "application/json"]);
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn only_content_types<I, T>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let types = types
            .into_iter()
            .map(|t| t.into().trim().trim_end_matches('*').to_ascii_lowercase())
            .collect();
        Arc::make_mut(&mut self.config).allowed_types = Some(types);
        self
    }

    /// Adds a rule that sends matching responses uncompressed (a deny-list
    /// closure over the status and headers), on top of the built-in ones.
    ///
    /// ```
    /// use cortex_compress::CompressionLayer;
    ///
    /// // Leave downloads alone.
    /// let layer = CompressionLayer::new().skip_when(|_status, headers| {
    ///     headers.contains_key(http::header::CONTENT_DISPOSITION)
    /// });
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn skip_when<F>(mut self, rule: F) -> Self
    where
        F: Fn(StatusCode, &HeaderMap) -> bool + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.config)
            .skip_rules
            .push(Arc::new(rule));
        self
    }
}

/// Counts into `registry`: `cortex_compression_bytes_total{encoding,
/// direction}` (bytes in and out of the compressor) and
/// `cortex_compression_responses_total{decision}` (the encoding used, or
/// `identity` when the client accepts none, or the skip reason: `head`,
/// `status`, `too_small`, `already_encoded`, `range`, `no_transform`,
/// `content_type`, `rule`; the first that holds, in that order). Every clone of the layer and every service it
/// built counts from then on, wherever it was registered in the order.
///
/// ```
/// use cortex_compress::CompressionLayer;
/// use cortex_metrics::{MetricsRegistry, RegisterMetrics};
///
/// let metrics = MetricsRegistry::new();
/// let layer = CompressionLayer::new();
/// layer.register_metrics(&metrics)?;
/// # Ok::<(), cortex_metrics::MetricsError>(())
/// ```
#[cfg(feature = "metrics")]
impl cortex_metrics::RegisterMetrics for CompressionLayer {
    fn register_metrics(
        &self,
        registry: &cortex_metrics::MetricsRegistry,
    ) -> Result<(), cortex_metrics::MetricsError> {
        // Validated against every registry (conflicts surface); recording
        // binds to the first, as the contract says.
        let metrics = crate::metrics::CompressionMetrics::new(registry)?;
        let _ = self.config.metrics.set(metrics);
        Ok(())
    }
}

impl<S> Layer<S> for CompressionLayer {
    type Service = Compression<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Compression {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}
