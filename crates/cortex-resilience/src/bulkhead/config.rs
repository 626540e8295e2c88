//! Bulkhead settings, stats and events.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Bulkhead settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadConfig {
    /// Calls running at once. 25.
    pub max_concurrent_calls: u32,
    /// Calls waiting for a permit; 0 rejects at once when full. 0.
    pub max_queue: u32,
    /// Longest a queued call waits before it is rejected; `None` waits
    /// until a permit frees (or the caller gives up). `None`.
    #[serde(with = "crate::duration::option")]
    pub max_wait: Option<Duration>,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 25,
            max_queue: 0,
            max_wait: None,
        }
    }
}

/// A snapshot of a bulkhead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkheadStats {
    /// The bulkhead's name.
    pub name: String,
    /// Configured concurrency.
    pub max_concurrent_calls: u32,
    /// Calls holding a permit.
    pub in_flight: u64,
    /// Calls waiting in the queue.
    pub queued: u64,
    /// Free permits.
    pub available_permits: u64,
    /// Rejected calls since creation.
    pub rejected_total: u64,
}

/// Something that happened in a bulkhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkheadEvent {
    /// A call got a permit.
    CallPermitted,
    /// A call was rejected.
    CallRejected,
    /// A call returned its permit.
    CallFinished,
}
