//! Compression metrics (feature `metrics`).

use cortex_metrics::{Counter, CounterFamily, MetricsError, MetricsRegistry};

use crate::Encoding;

/// Counters shared by every clone of a layer.
#[derive(Debug, Clone)]
pub(crate) struct CompressionMetrics {
    bytes: CounterFamily<2>,
    responses: CounterFamily<1>,
}

/// Byte counters of one compressed response.
#[derive(Debug, Clone)]
pub(crate) struct ByteCounters {
    pub(crate) uncompressed: Counter,
    pub(crate) compressed: Counter,
}

impl CompressionMetrics {
    pub(crate) fn new(registry: &MetricsRegistry) -> Result<Self, MetricsError> {
        Ok(Self {
            bytes: registry.counter_family(
                "cortex_compression_bytes_total",
                "Response bytes before (direction=in) and after (direction=out) compression.",
                ["encoding", "direction"],
            )?,
            responses: registry.counter_family(
                "cortex_compression_responses_total",
                "Responses by compression decision: the encoding used, or why none was.",
                ["decision"],
            )?,
        })
    }

    pub(crate) fn decision(&self, decision: &str) {
        self.responses.with_labels([decision]).inc();
    }

    pub(crate) fn bytes(&self, encoding: Encoding) -> ByteCounters {
        ByteCounters {
            uncompressed: self.bytes.with_labels([encoding.as_str(), "in"]),
            compressed: self.bytes.with_labels([encoding.as_str(), "out"]),
        }
    }
}
