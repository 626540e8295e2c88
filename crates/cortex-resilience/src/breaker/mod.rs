//! Circuit breaker with resilience4j's semantics and defaults.
//!
//! One [`CircuitBreaker`] is one state object behind an `Arc`: clones, the
//! plain [`execute`](CircuitBreaker::execute) API and every service made by
//! its [`layer`](CircuitBreaker::layer) share it.
//!
//! ```
//! use cortex_resilience::{CircuitBreaker, CircuitState, ResilienceError, SlidingWindow};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let breaker = CircuitBreaker::builder("payments")
//!     .sliding_window(SlidingWindow::ConsecutiveFailures { threshold: 3 })
//!     .build()
//!     .unwrap();
//! for _ in 0..3 {
//!     let _ = breaker.execute(|| async { Err::<(), _>("downstream failed") }).await;
//! }
//! assert_eq!(breaker.state(), CircuitState::Open);
//! let rejected = breaker.execute(|| async { Ok::<_, &str>(()) }).await;
//! assert!(matches!(rejected, Err(ResilienceError::CircuitOpen { .. })));
//! # }
//! ```
//!
//! # How it stays exact under concurrency
//!
//! The state, a transition epoch and the free half-open probe slots live in
//! one `AtomicU64`. Closed-state admission is a single load; a half-open
//! probe takes its slot with a compare-and-swap on that word, so no more
//! than the permitted probes are ever admitted, and a probe that is dropped
//! unfinished gives its slot back only to the epoch it came from.
//! Transitions take a mutex, re-check the epoch and bump it, so each is
//! applied once and outcomes of calls admitted before a transition never
//! count towards the state after it.

mod config;
mod layer;
mod window;

use std::borrow::Borrow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;

pub use config::{
    CircuitBreakerConfig, CircuitBreakerEvent, CircuitBreakerStats, CircuitState, SlidingWindow,
};
pub use layer::{CircuitBreakerLayer, CircuitBreakerService, ResponseFuture};

use crate::clock::{Clock, Stopwatch, duration_nanos};
use crate::events::EventHub;
use crate::{CircuitOpen, Classify, ConfigError, DefaultClassifier, Outcome, ResilienceError};
use window::{CountWindow, FAILED, RECORDED, SLOW, Snapshot, TimeWindow};

/// Computes the open-state wait from the number of consecutive openings
/// (1 for the first), e.g. for exponential backoff.
pub type OpenWaitFn = Arc<dyn Fn(u32) -> Duration + Send + Sync>;

/// A circuit breaker. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Builds a [`CircuitBreaker`]; every setter documents its default.
#[must_use]
pub struct CircuitBreakerBuilder {
    name: Arc<str>,
    config: CircuitBreakerConfig,
    open_wait: Option<OpenWaitFn>,
    clock: Clock,
}

impl fmt::Debug for CircuitBreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerBuilder {
    /// Replaces the whole configuration (e.g. one loaded with serde).
    pub fn config(mut self, config: CircuitBreakerConfig) -> Self {
        self.config = config;
        self
    }

    /// Failure percentage that opens the breaker. Default 50.
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Slow-call percentage that opens the breaker. Default 100.
    pub fn slow_call_rate_threshold(mut self, percent: f64) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }

    /// Calls at least this long are slow. Default 60 s.
    pub fn slow_call_duration_threshold(mut self, threshold: Duration) -> Self {
        self.config.slow_call_duration_threshold = threshold;
        self
    }

    /// Calls needed before rates count. Default 100.
    pub fn minimum_number_of_calls(mut self, calls: u32) -> Self {
        self.config.minimum_number_of_calls = calls;
        self
    }

    /// The sliding window. Default count-based, 100 calls.
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.sliding_window = window;
        self
    }

    /// Fixed wait in the open state. Default 60 s.
    pub fn wait_duration_in_open_state(mut self, wait: Duration) -> Self {
        self.config.wait_duration_in_open_state = wait;
        self.open_wait = None;
        self
    }

    /// A wait computed from the number of consecutive openings (1, 2, ...),
    /// reset when the breaker closes; overrides the fixed wait.
    pub fn wait_duration_in_open_state_fn(
        mut self,
        wait: impl Fn(u32) -> Duration + Send + Sync + 'static,
    ) -> Self {
        self.open_wait = Some(Arc::new(wait));
        self
    }

    /// Probe calls in half-open. Default 10.
    pub fn permitted_number_of_calls_in_half_open_state(mut self, calls: u32) -> Self {
        self.config.permitted_number_of_calls_in_half_open_state = calls;
        self
    }

    /// Longest stay in half-open; zero means no limit. Default 0.
    pub fn max_wait_duration_in_half_open_state(mut self, wait: Duration) -> Self {
        self.config.max_wait_duration_in_half_open_state = wait;
        self
    }

    /// Leave the open state on a timer. Default false. Needs a tokio
    /// runtime when the breaker opens; without one the transition happens
    /// on the next call, as when this is off.
    pub fn automatic_transition_from_open_to_half_open(mut self, automatic: bool) -> Self {
        self.config.automatic_transition_from_open_to_half_open = automatic;
        self
    }

    /// The clock. Default [`Clock::system`]; tests with paused tokio time
    /// pass [`Clock::tokio`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configuration and builds the breaker.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        self.config.validate(&self.name)?;
        let window = match self.config.sliding_window {
            SlidingWindow::CountBased { size } => Window::Count(CountWindow::new(size)),
            SlidingWindow::TimeBased { seconds } => Window::Time(TimeWindow::new(seconds)),
            SlidingWindow::ConsecutiveFailures { threshold } => Window::Consecutive {
                threshold,
                failures: AtomicU32::new(0),
            },
        };
        let minimum_calls = match self.config.sliding_window {
            SlidingWindow::CountBased { size } => self.config.minimum_number_of_calls.min(size),
            _ => self.config.minimum_number_of_calls,
        };
        Ok(CircuitBreaker {
            shared: Arc::new_cyclic(|this| Shared {
                this: this.clone(),
                name: self.name,
                slow_nanos: duration_nanos(self.config.slow_call_duration_threshold),
                minimum_calls: u64::from(minimum_calls),
                config: self.config,
                open_wait: self.open_wait,
                stopwatch: self.clock.stopwatch(),
                word: AtomicU64::new(pack(CircuitState::Closed, 0, 0)),
                open_until: AtomicU64::new(0),
                half_open_since: AtomicU64::new(0),
                window,
                transition: Mutex::new(TransitionState::default()),
                counters: Counters::default(),
                events: EventHub::default(),
            }),
        })
    }
}

/// The state word: bits 0..3 state, 3..32 epoch, 32..64 free probe slots.
const EPOCH_SHIFT: u32 = 3;
const EPOCH_MASK: u64 = (1 << 29) - 1;
const SLOTS_SHIFT: u32 = 32;

fn pack(state: CircuitState, epoch: u64, slots: u32) -> u64 {
    state.to_bits() | ((epoch & EPOCH_MASK) << EPOCH_SHIFT) | (u64::from(slots) << SLOTS_SHIFT)
}

fn state_of(word: u64) -> CircuitState {
    CircuitState::from_bits(word)
}

/// State and epoch, without the slots: what identifies "the same state".
fn era_of(word: u64) -> u64 {
    word & ((1 << SLOTS_SHIFT) - 1)
}

fn slots_of(word: u64) -> u32 {
    // The top 32 bits.
    #[allow(clippy::cast_possible_truncation)]
    let slots = (word >> SLOTS_SHIFT) as u32;
    slots
}

enum Window {
    Count(CountWindow),
    Time(TimeWindow),
    Consecutive { threshold: u32, failures: AtomicU32 },
}

#[derive(Default)]
struct TransitionState {
    /// Openings since the breaker last closed, for the wait function.
    consecutive_opens: u32,
    /// Half-open probe results of the current epoch.
    probes: Snapshot,
    /// MetricsOnly: whether the "exceeded" events already fired.
    exceeded_reported: bool,
}

#[derive(Default)]
struct Counters {
    successful: AtomicU64,
    failed: AtomicU64,
    slow_successful: AtomicU64,
    slow_failed: AtomicU64,
    ignored: AtomicU64,
    not_permitted: AtomicU64,
}

pub(crate) struct Shared {
    this: std::sync::Weak<Shared>,
    name: Arc<str>,
    config: CircuitBreakerConfig,
    slow_nanos: u64,
    minimum_calls: u64,
    open_wait: Option<OpenWaitFn>,
    stopwatch: Stopwatch,
    word: AtomicU64,
    /// Nanoseconds since `origin` when the open state ends.
    open_until: AtomicU64,
    /// Nanoseconds since `origin` when half-open began.
    half_open_since: AtomicU64,
    window: Window,
    transition: Mutex<TransitionState>,
    counters: Counters,
    events: EventHub<CircuitBreakerEvent>,
}

/// Permission for one call, from [`CircuitBreaker::try_acquire_permission`].
/// Report the call's outcome with [`record`](Self::record); dropping the
/// permit unreported frees a half-open probe slot and records nothing (a
/// drop while panicking counts as a failure).
pub struct CallPermit {
    permit: Permit<Arc<Shared>>,
}

impl fmt::Debug for CallPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallPermit")
            .field("admitted_in", &state_of(self.permit.raw.word))
            .finish_non_exhaustive()
    }
}

impl CallPermit {
    /// Records the call's outcome, consuming the permit.
    pub fn record(self, outcome: Outcome) {
        self.permit.record(outcome);
    }
}

/// A permit borrowing (`execute`) or owning (layer futures) the state.
pub(crate) struct Permit<B: Borrow<Shared>> {
    shared: B,
    raw: RawPermit,
    done: bool,
}

#[derive(Clone, Copy)]
struct RawPermit {
    /// The state word when admitted.
    word: u64,
    /// Nanoseconds since origin at admission.
    start: u64,
}

impl<B: Borrow<Shared>> Permit<B> {
    pub(crate) fn record(mut self, outcome: Outcome) {
        self.done = true;
        self.shared.borrow().complete(self.raw, outcome);
    }
}

impl<B: Borrow<Shared>> Drop for Permit<B> {
    fn drop(&mut self) {
        if !self.done {
            let shared = self.shared.borrow();
            if std::thread::panicking() {
                shared.complete(self.raw, Outcome::Failure);
            } else {
                shared.release(self.raw);
            }
        }
    }
}

impl CircuitBreaker {
    /// A builder with resilience4j's defaults.
    pub fn builder(name: impl Into<Arc<str>>) -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            name: name.into(),
            config: CircuitBreakerConfig::default(),
            open_wait: None,
            clock: Clock::system(),
        }
    }

    /// A breaker from a configuration.
    pub fn from_config(
        name: impl Into<Arc<str>>,
        config: CircuitBreakerConfig,
    ) -> Result<Self, ConfigError> {
        Self::builder(name).config(config).build()
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address of the shared state: the same for every clone.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.shared).addr()
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &CircuitBreakerConfig {
        &self.shared.config
    }

    /// The current state (an open breaker whose wait has passed still
    /// reports `Open` until the next call moves it to half-open).
    pub fn state(&self) -> CircuitState {
        state_of(self.shared.word.load(Ordering::Acquire))
    }

    /// Runs `call` if the breaker admits it, classifying `Ok` as success
    /// and `Err` as failure.
    pub async fn execute<T, E, F, Fut>(&self, call: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.execute_with(&DefaultClassifier, || async {
            call().await.map_err(ResilienceError::Inner)
        })
        .await
    }

    /// Runs `call` if the breaker admits it, classifying its result with
    /// `classifier`. Policy errors from inside `call` (a timeout, say) are
    /// classified like any other.
    pub async fn execute_with<T, E, C, F, Fut>(
        &self,
        classifier: &C,
        call: F,
    ) -> Result<T, ResilienceError<E>>
    where
        C: Classify<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ResilienceError<E>>>,
    {
        let permit = self.shared.acquire_borrowed()?;
        let result = call().await;
        permit.record(classifier.classify(&result));
        result
    }

    /// Asks for permission to make one call, for callers that cannot wrap
    /// the call in a closure. Report the outcome on the returned permit.
    pub fn try_acquire_permission(&self) -> Result<CallPermit, CircuitOpen> {
        Ok(CallPermit {
            permit: self.acquire_owned()?,
        })
    }

    /// A permit owning a reference to the state, for `'static` futures.
    #[inline]
    pub(crate) fn acquire_owned(&self) -> Result<Permit<Arc<Shared>>, CircuitOpen> {
        let raw = self.shared.admit()?;
        Ok(Permit {
            shared: Arc::clone(&self.shared),
            raw,
            done: false,
        })
    }

    /// This breaker as a [`Policy`](crate::Policy) classifying results
    /// with `classifier`, for composition.
    pub fn classified<C>(&self, classifier: C) -> crate::ClassifiedBreaker<C> {
        crate::ClassifiedBreaker {
            breaker: self.clone(),
            classifier,
        }
    }

    /// A tower layer whose services all share this breaker, classifying
    /// `Ok` as success and `Err` as failure. Use
    /// [`CircuitBreakerLayer::classify`] to change that, or
    /// [`http_layer`](Self::http_layer) for axum.
    pub fn layer(&self) -> CircuitBreakerLayer<DefaultClassifier> {
        CircuitBreakerLayer::new(self.clone(), DefaultClassifier)
    }

    /// A tower layer for HTTP services: 5xx responses count as failures
    /// and a rejection is answered with a 503 and `Retry-After` rather
    /// than an error, so it can be added to an axum `Router` directly.
    pub fn http_layer(&self) -> crate::http::HttpLayer<CircuitBreakerLayer<crate::HttpClassifier>> {
        crate::http::HttpLayer::new(CircuitBreakerLayer::new(
            self.clone(),
            crate::HttpClassifier,
        ))
    }

    /// A snapshot of the state and the window.
    pub fn stats(&self) -> CircuitBreakerStats {
        let shared = &*self.shared;
        let snapshot = shared.snapshot();
        let rates_known = snapshot.calls >= shared.minimum_calls
            && !matches!(shared.window, Window::Consecutive { .. });
        let counters = &shared.counters;
        CircuitBreakerStats {
            name: shared.name.to_string(),
            state: self.state(),
            failure_rate: rates_known.then(|| snapshot.failure_rate()),
            slow_call_rate: rates_known.then(|| snapshot.slow_rate()),
            buffered_calls: snapshot.calls,
            failed_calls: snapshot.failures,
            slow_calls: snapshot.slow,
            not_permitted_calls: counters.not_permitted.load(Ordering::Relaxed),
            successful_calls_total: counters.successful.load(Ordering::Relaxed),
            failed_calls_total: counters.failed.load(Ordering::Relaxed),
            slow_successful_calls_total: counters.slow_successful.load(Ordering::Relaxed),
            slow_failed_calls_total: counters.slow_failed.load(Ordering::Relaxed),
            ignored_calls_total: counters.ignored.load(Ordering::Relaxed),
        }
    }

    /// A broadcast receiver of this breaker's events.
    pub fn subscribe(&self) -> broadcast::Receiver<CircuitBreakerEvent> {
        self.shared.events.subscribe()
    }

    /// Calls `callback` for every event, on the thread that caused it.
    /// Keep it short: it runs inside the protected call's path.
    pub fn on_event(&self, callback: impl Fn(&CircuitBreakerEvent) + Send + Sync + 'static) {
        self.shared.events.on_event(callback);
    }

    /// Forces the closed state (with an empty window).
    pub fn transition_to_closed(&self) {
        self.shared.force(CircuitState::Closed);
    }

    /// Forces the open state (for the configured wait).
    pub fn transition_to_open(&self) {
        self.shared.force(CircuitState::Open);
    }

    /// Forces the half-open state.
    pub fn transition_to_half_open(&self) {
        self.shared.force(CircuitState::HalfOpen);
    }

    /// Disables the breaker: everything passes, nothing is recorded.
    pub fn transition_to_disabled(&self) {
        self.shared.force(CircuitState::Disabled);
    }

    /// Rejects everything until another manual transition.
    pub fn transition_to_forced_open(&self) {
        self.shared.force(CircuitState::ForcedOpen);
    }

    /// Records and reports, but never changes state on its own.
    pub fn transition_to_metrics_only(&self) {
        self.shared.force(CircuitState::MetricsOnly);
    }

    /// Back to closed with an empty window and the open backoff restarted.
    pub fn reset(&self) {
        let shared = &*self.shared;
        let mut transition = shared.lock_transition();
        transition.consecutive_opens = 0;
        let word = shared.word.load(Ordering::Acquire);
        shared.enter(&mut transition, word, CircuitState::Closed);
        drop(transition);
        shared.events.emit(|| CircuitBreakerEvent::Reset);
    }
}

impl Shared {
    #[inline]
    fn now(&self) -> u64 {
        self.stopwatch.nanos()
    }

    #[inline]
    fn acquire_borrowed(&self) -> Result<Permit<&Self>, CircuitOpen> {
        let raw = self.admit()?;
        Ok(Permit {
            shared: self,
            raw,
            done: false,
        })
    }

    /// Admits a call or says why not.
    #[inline]
    fn admit(&self) -> Result<RawPermit, CircuitOpen> {
        let mut word = self.word.load(Ordering::Acquire);
        loop {
            match state_of(word) {
                CircuitState::Closed | CircuitState::MetricsOnly => {
                    return Ok(RawPermit {
                        word,
                        start: self.now(),
                    });
                }
                CircuitState::Disabled => return Ok(RawPermit { word, start: 0 }),
                CircuitState::ForcedOpen => return Err(self.reject(None)),
                CircuitState::Open => {
                    let now = self.now();
                    let until = self.open_until.load(Ordering::Acquire);
                    if now < until {
                        return Err(self.reject(Some(Duration::from_nanos(until - now))));
                    }
                    word = self.transition(word, CircuitState::HalfOpen);
                }
                CircuitState::HalfOpen => {
                    let now = self.now();
                    let max_wait = duration_nanos(self.config.max_wait_duration_in_half_open_state);
                    if max_wait > 0
                        && now.saturating_sub(self.half_open_since.load(Ordering::Acquire))
                            >= max_wait
                    {
                        word = self.transition(word, CircuitState::Open);
                        continue;
                    }
                    let slots = slots_of(word);
                    if slots == 0 {
                        return Err(self.reject(None));
                    }
                    let taken = word - (1 << SLOTS_SHIFT);
                    match self.word.compare_exchange_weak(
                        word,
                        taken,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Ok(RawPermit { word, start: now }),
                        Err(current) => word = current,
                    }
                }
            }
        }
    }

    #[cold]
    fn reject(&self, retry_after: Option<Duration>) -> CircuitOpen {
        self.counters.not_permitted.fetch_add(1, Ordering::Relaxed);
        self.events.emit(|| CircuitBreakerEvent::CallNotPermitted);
        CircuitOpen { retry_after }
    }

    /// Gives an unfinished half-open probe's slot back to its epoch.
    fn release(&self, raw: RawPermit) {
        if state_of(raw.word) != CircuitState::HalfOpen {
            return;
        }
        let mut word = self.word.load(Ordering::Acquire);
        while era_of(word) == era_of(raw.word) {
            match self.word.compare_exchange_weak(
                word,
                word + (1 << SLOTS_SHIFT),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(current) => word = current,
            }
        }
    }

    fn complete(&self, raw: RawPermit, outcome: Outcome) {
        let admitted_in = state_of(raw.word);
        if admitted_in == CircuitState::Disabled {
            return;
        }
        let elapsed = self.now().saturating_sub(raw.start);
        let slow = elapsed >= self.slow_nanos;
        self.count(outcome, slow, elapsed);
        let bits = match outcome {
            Outcome::Ignored => {
                self.release(raw);
                return;
            }
            Outcome::Success => RECORDED,
            Outcome::Failure => RECORDED | FAILED,
        } | if slow { SLOW } else { 0 };
        match admitted_in {
            CircuitState::Closed | CircuitState::MetricsOnly => {
                let current = self.word.load(Ordering::Acquire);
                // A call admitted before a transition does not count after it.
                if era_of(current) == era_of(raw.word) {
                    self.record_closed(current, bits);
                }
            }
            CircuitState::HalfOpen => self.record_probe(raw.word, bits),
            _ => {}
        }
    }

    #[inline]
    fn count(&self, outcome: Outcome, slow: bool, elapsed: u64) {
        let counters = &self.counters;
        let counter = match (outcome, slow) {
            (Outcome::Success, false) => &counters.successful,
            (Outcome::Success, true) => &counters.slow_successful,
            (Outcome::Failure, false) => &counters.failed,
            (Outcome::Failure, true) => &counters.slow_failed,
            (Outcome::Ignored, _) => &counters.ignored,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.events.emit(|| {
            let elapsed = Duration::from_nanos(elapsed);
            match outcome {
                Outcome::Success => CircuitBreakerEvent::Success { elapsed },
                Outcome::Failure => CircuitBreakerEvent::Error { elapsed },
                Outcome::Ignored => CircuitBreakerEvent::IgnoredError { elapsed },
            }
        });
    }

    #[inline]
    fn record_closed(&self, word: u64, bits: u8) {
        let snapshot = match &self.window {
            Window::Count(window) => window.record(bits),
            Window::Time(window) => window.record(self.now() / 1_000_000_000, bits),
            Window::Consecutive {
                threshold,
                failures,
            } => {
                if bits & FAILED == 0 {
                    if failures.load(Ordering::Relaxed) != 0 {
                        failures.store(0, Ordering::Release);
                    }
                } else if failures.fetch_add(1, Ordering::AcqRel) + 1 >= *threshold
                    && state_of(word) == CircuitState::Closed
                {
                    self.transition(word, CircuitState::Open);
                }
                return;
            }
        };
        // Thresholds are above zero, so a window without failures or slow
        // calls cannot trip: the success path skips the float math.
        if snapshot.calls < self.minimum_calls || (snapshot.failures | snapshot.slow) == 0 {
            return;
        }
        let failure_rate = snapshot.failure_rate();
        let slow_rate = snapshot.slow_rate();
        let failure_exceeded = failure_rate >= self.config.failure_rate_threshold;
        let slow_exceeded = slow_rate >= self.config.slow_call_rate_threshold;
        if failure_exceeded || slow_exceeded {
            self.exceeded(
                word,
                failure_exceeded.then_some(failure_rate),
                slow_exceeded.then_some(slow_rate),
            );
        }
    }

    #[cold]
    fn exceeded(&self, word: u64, failure_rate: Option<f64>, slow_rate: Option<f64>) {
        let emit = || {
            if let Some(failure_rate) = failure_rate {
                self.events
                    .emit(|| CircuitBreakerEvent::FailureRateExceeded { failure_rate });
            }
            if let Some(slow_call_rate) = slow_rate {
                self.events
                    .emit(|| CircuitBreakerEvent::SlowCallRateExceeded { slow_call_rate });
            }
        };
        if state_of(word) == CircuitState::MetricsOnly {
            let mut transition = self.lock_transition();
            if !transition.exceeded_reported
                && era_of(self.word.load(Ordering::Acquire)) == era_of(word)
            {
                transition.exceeded_reported = true;
                drop(transition);
                emit();
            }
            return;
        }
        if era_of(self.word.load(Ordering::Acquire)) == era_of(word) {
            emit();
            self.transition(word, CircuitState::Open);
        }
    }

    fn record_probe(&self, admitted: u64, bits: u8) {
        let mut transition = self.lock_transition();
        let word = self.word.load(Ordering::Acquire);
        if era_of(word) != era_of(admitted) {
            return;
        }
        let probes = &mut transition.probes;
        probes.calls += 1;
        probes.failures += u64::from(bits & FAILED != 0);
        probes.slow += u64::from(bits & SLOW != 0);
        if probes.calls < u64::from(self.config.permitted_number_of_calls_in_half_open_state) {
            return;
        }
        let probes = *probes;
        let failure_exceeded = probes.failure_rate() >= self.config.failure_rate_threshold;
        let slow_exceeded = probes.slow_rate() >= self.config.slow_call_rate_threshold;
        let next = if failure_exceeded || slow_exceeded {
            CircuitState::Open
        } else {
            CircuitState::Closed
        };
        self.enter(&mut transition, word, next);
    }

    fn lock_transition(&self) -> MutexGuard<'_, TransitionState> {
        // Transition bookkeeping is plain data, consistent at every await-free step.
        self.transition
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves from the state `from` (a word read earlier) to `to`, unless
    /// somebody else already moved on. Returns the word now current.
    fn transition(&self, from: u64, to: CircuitState) -> u64 {
        let mut transition = self.lock_transition();
        let current = self.word.load(Ordering::Acquire);
        if era_of(current) != era_of(from) {
            return current;
        }
        self.enter(&mut transition, current, to)
    }

    fn force(&self, to: CircuitState) {
        let mut transition = self.lock_transition();
        let current = self.word.load(Ordering::Acquire);
        self.enter(&mut transition, current, to);
    }

    /// Enters `to` from `current`; the caller holds the transition lock.
    fn enter(&self, transition: &mut TransitionState, current: u64, to: CircuitState) -> u64 {
        let from = state_of(current);
        let epoch = ((current >> EPOCH_SHIFT) & EPOCH_MASK) + 1;
        let now = self.now();
        let mut slots = 0;
        match to {
            CircuitState::Open => {
                transition.consecutive_opens = transition.consecutive_opens.saturating_add(1);
                let wait = match &self.open_wait {
                    Some(wait) => wait(transition.consecutive_opens),
                    None => self.config.wait_duration_in_open_state,
                };
                self.open_until
                    .store(now.saturating_add(duration_nanos(wait)), Ordering::Release);
            }
            CircuitState::HalfOpen => {
                slots = self.config.permitted_number_of_calls_in_half_open_state;
                transition.probes = Snapshot::default();
                self.half_open_since.store(now, Ordering::Release);
            }
            CircuitState::Closed | CircuitState::MetricsOnly => {
                if to == CircuitState::Closed {
                    transition.consecutive_opens = 0;
                }
                transition.exceeded_reported = false;
                self.reset_window();
            }
            CircuitState::Disabled | CircuitState::ForcedOpen => {}
        }
        let word = pack(to, epoch, slots);
        self.word.store(word, Ordering::Release);
        tracing::debug!(breaker = %self.name, %from, %to, "circuit breaker state transition");
        self.events
            .emit(|| CircuitBreakerEvent::StateTransition { from, to });
        if to == CircuitState::Open && self.config.automatic_transition_from_open_to_half_open {
            self.schedule_half_open(word);
        }
        word
    }

    fn reset_window(&self) {
        match &self.window {
            Window::Count(window) => window.reset(),
            Window::Time(window) => window.reset(),
            Window::Consecutive { failures, .. } => failures.store(0, Ordering::Release),
        }
    }

    fn schedule_half_open(&self, open_word: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // The task holds only a weak reference: a dropped breaker leaves no
        // timer behind doing anything.
        let weak = self.this.clone();
        let wait = Duration::from_nanos(
            self.open_until
                .load(Ordering::Acquire)
                .saturating_sub(self.now()),
        );
        runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(shared) = weak.upgrade() {
                shared.transition(open_word, CircuitState::HalfOpen);
            }
        });
    }

    fn snapshot(&self) -> Snapshot {
        match &self.window {
            Window::Count(window) => window.snapshot(),
            Window::Time(window) => window.snapshot(self.now() / 1_000_000_000),
            Window::Consecutive { failures, .. } => {
                let failures = u64::from(failures.load(Ordering::Acquire));
                Snapshot {
                    calls: failures,
                    failures,
                    slow: 0,
                }
            }
        }
    }
}
