use std::sync::Arc;

use tower_layer::Layer;

use crate::codec::Levels;
use crate::encoding::Encoding;
use crate::service::Compression;

/// Compresses response bodies as they stream; see the [crate docs](crate).
///
/// All clones share one configuration.
#[derive(Debug, Clone)]
pub struct CompressionLayer {
    pub(crate) config: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) preference: Vec<Encoding>,
    pub(crate) levels: Levels,
    pub(crate) min_size: u64,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Option<crate::metrics::CompressionMetrics>,
}

/// The default threshold: bodies known to be smaller stay uncompressed.
pub const DEFAULT_MIN_SIZE: u64 = 1024;

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
                #[cfg(feature = "metrics")]
                metrics: None,
            }),
        }
    }

    /// The codings to offer, most preferred first (used when the client's
    /// q-values tie). Codings left out are never produced.
    #[must_use]
    pub fn preference(mut self, encodings: impl IntoIterator<Item = Encoding>) -> Self {
        let mut preference: Vec<Encoding> = Vec::new();
        for encoding in encodings {
            if !preference.contains(&encoding) {
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
    /// Counts into `registry`: `cortex_compression_bytes_total{encoding,
    /// direction}` (bytes in and out of the compressor) and
    /// `cortex_compression_responses_total{decision}` (the encoding used, or
    /// `identity` when the client accepts none, or the skip reason:
    /// `head`, `status`, `already_encoded`, `range`, `no_transform`,
    /// `content_type`, `too_small`).
    #[cfg(feature = "metrics")]
    pub fn metrics(
        mut self,
        registry: &cortex_metrics::MetricsRegistry,
    ) -> Result<Self, cortex_metrics::MetricsError> {
        Arc::make_mut(&mut self.config).metrics =
            Some(crate::metrics::CompressionMetrics::new(registry)?);
        Ok(self)
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
