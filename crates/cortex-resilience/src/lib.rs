//! Resilience policies for tower services and plain async code.
//!
//! TODO crate docs
pub mod breaker;
mod classify;
mod clock;
mod duration;
mod error;
mod events;
pub mod http;

pub use breaker::{
    CallPermit, CircuitBreaker, CircuitBreakerBuilder, CircuitBreakerConfig, CircuitBreakerEvent,
    CircuitBreakerLayer, CircuitBreakerService, CircuitBreakerStats, CircuitState, OpenWaitFn,
    SlidingWindow,
};
pub use classify::{Classify, DefaultClassifier, HttpClassifier, Outcome};
pub use clock::{Clock, ManualClock};
pub use error::{ConfigError, ResilienceError};
pub use events::EVENT_CHANNEL_CAPACITY;
pub mod bulkhead;
pub mod timeout;
pub use bulkhead::{Bulkhead, BulkheadBuilder, BulkheadConfig, BulkheadEvent, BulkheadPermit, BulkheadStats};
pub use timeout::Timeout;
pub mod retry;
pub use retry::{Backoff, DefaultRetryPredicate, Jitter, Retry, RetryBuilder, RetryBudgetConfig, RetryConfig, RetryDecision, RetryEvent, RetryStats, ShouldRetry, HttpRetryPredicate};
mod future;
pub mod ratelimit;
pub use future::RejectableFuture;
pub use ratelimit::{ClientIp, GlobalKey, HeaderKey, KeyExtractor, KeyedRateLimiter, RateLimitDecision, RateLimitLayer, RateLimiter, RateLimiterBuilder, RateLimiterConfig, RateLimiterStats, RouteKey};
