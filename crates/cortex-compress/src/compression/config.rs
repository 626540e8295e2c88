//! The settings a compression layer, its services and their futures share.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};

use crate::codec::Levels;
use crate::encoding::Encoding;

/// The default threshold: bodies known to be smaller stay uncompressed.
pub const DEFAULT_MIN_SIZE: u64 = 1024;

/// A caller-supplied rule: `true` means "send this response as it is".
pub(crate) type SkipRule = Arc<dyn Fn(StatusCode, &HeaderMap) -> bool + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) preference: Vec<Encoding>,
    pub(crate) levels: Levels,
    pub(crate) min_size: u64,
    /// When set, only these media types (or `type/*` prefixes) compress.
    pub(crate) allowed_types: Option<Vec<String>>,
    pub(crate) skip_rules: Vec<SkipRule>,
    /// Shared through its own `Arc` so that builder calls after
    /// `register_metrics` (which copy the config) keep recording into it.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: Arc<std::sync::OnceLock<crate::metrics::CompressionMetrics>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("preference", &self.preference)
            .field("levels", &self.levels)
            .field("min_size", &self.min_size)
            .field("allowed_types", &self.allowed_types)
            .field("skip_rules", &self.skip_rules.len())
            .finish_non_exhaustive()
    }
}
