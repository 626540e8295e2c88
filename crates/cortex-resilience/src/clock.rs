//! Where policies read the time.
//!
//! Every policy measures time in nanoseconds since its own creation, read
//! from a [`Clock`]. The default clock is tokio's, so tests under
//! `#[tokio::test(start_paused = true)]` drive open-state waits, windows
//! and backoffs with `tokio::time::advance` instead of sleeping. A
//! [`ManualClock`] does the same without a runtime (model tests, benches).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A source of monotonic time for policies. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::{Clock, ManualClock};
///
/// let manual = ManualClock::new();
/// let clock = Clock::manual(&manual);
/// let start = clock.now();
/// manual.advance(Duration::from_secs(5));
/// assert_eq!(clock.now() - start, Duration::from_secs(5));
/// ```
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<ManualInner>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.manual.is_some() {
            "Clock::Manual"
        } else {
            "Clock::Tokio"
        })
    }
}

impl Clock {
    /// tokio's clock (`tokio::time::Instant::now`), which honours paused
    /// time in tests. The default.
    pub fn tokio() -> Self {
        Self { manual: None }
    }

    /// A clock that only moves when `manual` is advanced.
    pub fn manual(manual: &ManualClock) -> Self {
        Self {
            manual: Some(Arc::clone(&manual.inner)),
        }
    }

    /// The current instant.
    #[inline]
    pub fn now(&self) -> Instant {
        match &self.manual {
            None => Instant::now(),
            Some(manual) => {
                manual.origin + Duration::from_nanos(manual.offset.load(Ordering::Acquire))
            }
        }
    }

    /// Nanoseconds since `origin`, saturating at zero.
    #[inline]
    pub(crate) fn nanos_since(&self, origin: Instant) -> u64 {
        duration_nanos(self.now().saturating_duration_since(origin))
    }
}

/// A clock for tests that advances only when told to.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    origin: Instant,
    offset: AtomicU64,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock standing at the moment of creation.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(ManualInner {
                origin: Instant::now(),
                offset: AtomicU64::new(0),
            }),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.inner
            .offset
            .fetch_add(duration_nanos(by), Ordering::AcqRel);
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (584 years).
#[inline]
pub(crate) fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
