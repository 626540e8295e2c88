//! Where policies read the time.
//!
//! Every policy measures time in nanoseconds since its own creation, read
//! from a [`Clock`]. The default, [`Clock::system`], reads the CPU's
//! time-stamp counter through `quanta` (about 10 ns a read, against
//! 20-25 ns for `Instant::now`), which matters on a path that reads it
//! twice per call. [`Clock::tokio`] reads tokio's clock instead, so tests
//! under `#[tokio::test(start_paused = true)]` drive open-state waits,
//! windows and budgets with `tokio::time::advance`; a [`ManualClock`]
//! does the same without a runtime (model tests, benches).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A source of monotonic time for policies. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use cortex_resilience::{CircuitBreaker, Clock, ManualClock};
///
/// let manual = ManualClock::new();
/// let clock = Clock::manual(&manual);
/// let start = clock.now();
/// manual.advance(Duration::from_secs(5));
/// assert_eq!(clock.now() - start, Duration::from_secs(5));
///
/// // Policies take a clock from their builder; tests with paused tokio
/// // time pass `Clock::tokio()`.
/// let breaker = CircuitBreaker::builder("payments").clock(clock).build().unwrap();
/// # drop(breaker);
/// ```
#[derive(Clone, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Default)]
enum Source {
    #[default]
    System,
    Tokio,
    Manual(Arc<ManualInner>),
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.source {
            Source::System => "Clock::System",
            Source::Tokio => "Clock::Tokio",
            Source::Manual(_) => "Clock::Manual",
        })
    }
}

impl Clock {
    /// The machine's monotonic clock, read through the time-stamp counter
    /// where it is reliable (`quanta`), else `Instant::now`. The default.
    pub fn system() -> Self {
        Self {
            source: Source::System,
        }
    }

    /// tokio's clock (`tokio::time::Instant::now`), which honours paused
    /// time in tests.
    pub fn tokio() -> Self {
        Self {
            source: Source::Tokio,
        }
    }

    /// A clock that only moves when `manual` is advanced.
    pub fn manual(manual: &ManualClock) -> Self {
        Self {
            source: Source::Manual(Arc::clone(&manual.inner)),
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        match &self.source {
            Source::System | Source::Tokio => Instant::now(),
            Source::Manual(manual) => manual.now(),
        }
    }

    /// Starts a stopwatch at the current time.
    pub(crate) fn stopwatch(&self) -> Stopwatch {
        let origin = match &self.source {
            Source::System => Origin::System(quanta::Instant::now()),
            Source::Tokio => Origin::Tokio(Instant::now()),
            Source::Manual(manual) => Origin::Manual {
                clock: Arc::clone(manual),
                at: manual.offset.load(Ordering::Acquire),
            },
        };
        Stopwatch { origin }
    }
}

/// Nanoseconds elapsed since a policy was created, from its clock.
#[derive(Debug)]
pub(crate) struct Stopwatch {
    origin: Origin,
}

#[derive(Debug)]
enum Origin {
    System(quanta::Instant),
    Tokio(Instant),
    Manual { clock: Arc<ManualInner>, at: u64 },
}

impl Stopwatch {
    /// Nanoseconds since the stopwatch started; never goes backwards
    /// below zero.
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        match &self.origin {
            Origin::System(origin) => {
                duration_nanos(quanta::Instant::now().saturating_duration_since(*origin))
            }
            Origin::Tokio(origin) => {
                duration_nanos(Instant::now().saturating_duration_since(*origin))
            }
            Origin::Manual { clock, at } => {
                clock.offset.load(Ordering::Acquire).saturating_sub(*at)
            }
        }
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

impl ManualInner {
    fn now(&self) -> Instant {
        self.origin + Duration::from_nanos(self.offset.load(Ordering::Acquire))
    }
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
