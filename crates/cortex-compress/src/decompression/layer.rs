use tower_layer::Layer;

use super::service::Decompression;

/// The default maximum decompressed request body: 16 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 16 * 1024 * 1024;
/// The default maximum expansion ratio (decompressed / compressed).
pub const DEFAULT_MAX_RATIO: u64 = 100;

/// Decodes compressed request bodies within limits; see the
/// [module docs](crate::decompression).
#[derive(Debug, Clone, Copy)]
pub struct DecompressionLayer {
    pub(crate) limits: Limits,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_size: u64,
    pub(crate) max_ratio: u64,
}

impl Default for DecompressionLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl DecompressionLayer {
    /// 16 MiB and 100:1.
    pub fn new() -> Self {
        Self {
            limits: Limits {
                max_size: DEFAULT_MAX_SIZE,
                max_ratio: DEFAULT_MAX_RATIO,
            },
        }
    }

    /// The largest decompressed body accepted, in bytes.
    #[must_use]
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.limits.max_size = bytes;
        self
    }

    /// The largest expansion ratio accepted (checked past 1 MiB of output).
    #[must_use]
    pub fn max_ratio(mut self, ratio: u64) -> Self {
        self.limits.max_ratio = ratio.max(1);
        self
    }
}

impl<S> Layer<S> for DecompressionLayer {
    type Service = Decompression<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Decompression {
            inner,
            limits: self.limits,
        }
    }
}
