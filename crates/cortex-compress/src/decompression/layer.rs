use tower_layer::Layer;

use super::config::{DEFAULT_MAX_RATIO, DEFAULT_MAX_SIZE, Limits};
use super::service::Decompression;

/// Decodes compressed request bodies within limits; see the
/// [module docs](crate::decompression).
#[derive(Debug, Clone, Copy)]
pub struct DecompressionLayer {
    pub(crate) limits: Limits,
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

    /// The largest decompressed body accepted, in bytes; a declared
    /// `Content-Length` over it is refused with 413 before the body is read.
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
