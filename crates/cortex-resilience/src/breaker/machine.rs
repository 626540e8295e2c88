//! The breaker's state machine: admission by one load (closed) or one
//! compare-and-swap (half-open probes) on the packed word, outcomes
//! recorded into the window or the probe tally, and transitions applied
//! once each under a mutex that re-checks the epoch.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;

use super::builder::OpenWaitFn;
use super::config::{CircuitBreakerConfig, SlidingWindow};
use super::permit::{Permit, RawPermit};
use super::state::{CircuitState, ONE_SLOT, epoch_of, era_of, pack, slots_of, state_of};
use super::stats::{CircuitBreakerEvent, CircuitBreakerStats};
use super::window::{CountWindow, FAILED, RECORDED, SLOW, Snapshot, TimeWindow};
use crate::clock::{Clock, Stopwatch, duration_nanos};
use crate::events::EventHub;
use crate::{CircuitOpen, Outcome};

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
    /// The automatic Open → HalfOpen timer of the current opening, if
    /// any; every transition cancels it (as resilience4j cancels its
    /// scheduled future), so none outlives the state it was for.
    half_open_timer: Option<AbortHandle>,
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

/// The state every clone of a breaker, its permits and its services share.
pub(crate) struct Shared {
    this: Weak<Shared>,
    pub(super) name: Arc<str>,
    pub(super) config: CircuitBreakerConfig,
    slow_nanos: u64,
    minimum_calls: u64,
    open_wait: Option<OpenWaitFn>,
    stopwatch: Stopwatch,
    pub(super) word: AtomicU64,
    /// Nanoseconds since `origin` when the open state ends.
    open_until: AtomicU64,
    /// Nanoseconds since `origin` when half-open began.
    half_open_since: AtomicU64,
    window: Window,
    transition: Mutex<TransitionState>,
    counters: Counters,
    pub(super) events: EventHub<CircuitBreakerEvent>,
}

impl Shared {
    /// A closed breaker.
    pub(super) fn new(
        name: Arc<str>,
        config: CircuitBreakerConfig,
        open_wait: Option<OpenWaitFn>,
        clock: &Clock,
    ) -> Arc<Self> {
        let window = match config.sliding_window {
            SlidingWindow::CountBased { size } => Window::Count(CountWindow::new(size)),
            SlidingWindow::TimeBased { seconds } => Window::Time(TimeWindow::new(seconds)),
            SlidingWindow::ConsecutiveFailures { threshold } => Window::Consecutive {
                threshold,
                failures: AtomicU32::new(0),
            },
        };
        let minimum_calls = match config.sliding_window {
            SlidingWindow::CountBased { size } => config.minimum_number_of_calls.min(size),
            _ => config.minimum_number_of_calls,
        };
        Arc::new_cyclic(|this| Self {
            this: this.clone(),
            name,
            slow_nanos: duration_nanos(config.slow_call_duration_threshold),
            minimum_calls: u64::from(minimum_calls),
            config,
            open_wait,
            stopwatch: clock.stopwatch(),
            word: AtomicU64::new(pack(CircuitState::Closed, 0, 0)),
            open_until: AtomicU64::new(0),
            half_open_since: AtomicU64::new(0),
            window,
            transition: Mutex::new(TransitionState::default()),
            counters: Counters::default(),
            events: EventHub::default(),
        })
    }

    /// The current state.
    #[inline]
    pub(super) fn state(&self) -> CircuitState {
        state_of(self.word.load(Ordering::Acquire))
    }

    /// A snapshot of the state, the window and the counters.
    pub(super) fn stats(&self) -> CircuitBreakerStats {
        let snapshot = self.snapshot();
        let rates_known = snapshot.calls >= self.minimum_calls
            && !matches!(self.window, Window::Consecutive { .. });
        let counters = &self.counters;
        CircuitBreakerStats {
            name: self.name.to_string(),
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

    /// Back to closed with an empty window and the open backoff restarted.
    pub(super) fn reset(&self) {
        let mut transition = self.lock_transition();
        transition.consecutive_opens = 0;
        let word = self.word.load(Ordering::Acquire);
        self.enter(&mut transition, word, CircuitState::Closed);
        drop(transition);
        self.events.emit(|| CircuitBreakerEvent::Reset);
    }

    /// A permit owning a reference to the state, for `'static` futures.
    #[inline]
    pub(crate) fn acquire_owned(self: &Arc<Self>) -> Result<Permit<Arc<Self>>, CircuitOpen> {
        let raw = self.admit()?;
        Ok(Permit::new(Arc::clone(self), raw))
    }

    #[inline]
    fn now(&self) -> u64 {
        self.stopwatch.nanos()
    }

    /// A permit borrowing the state, for `execute`.
    #[inline]
    pub(super) fn acquire_borrowed(&self) -> Result<Permit<&Self>, CircuitOpen> {
        let raw = self.admit()?;
        Ok(Permit::new(self, raw))
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
                    let taken = word - ONE_SLOT;
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
    pub(super) fn release(&self, raw: RawPermit) {
        if state_of(raw.word) != CircuitState::HalfOpen {
            return;
        }
        let mut word = self.word.load(Ordering::Acquire);
        while era_of(word) == era_of(raw.word) {
            match self.word.compare_exchange_weak(
                word,
                word + ONE_SLOT,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(current) => word = current,
            }
        }
    }

    pub(super) fn complete(&self, raw: RawPermit, outcome: Outcome) {
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

    pub(super) fn force(&self, to: CircuitState) {
        let mut transition = self.lock_transition();
        let current = self.word.load(Ordering::Acquire);
        self.enter(&mut transition, current, to);
    }

    /// Enters `to` from `current`; the caller holds the transition lock.
    fn enter(&self, transition: &mut TransitionState, current: u64, to: CircuitState) -> u64 {
        let from = state_of(current);
        let epoch = epoch_of(current) + 1;
        let now = self.now();
        let mut slots = 0;
        if let Some(timer) = transition.half_open_timer.take() {
            // Harmless when it already fired, or when it is the caller.
            timer.abort();
        }
        let mut half_open_at = None;
        match to {
            CircuitState::Open => {
                transition.consecutive_opens = transition.consecutive_opens.saturating_add(1);
                let wait = match &self.open_wait {
                    Some(wait) => wait(transition.consecutive_opens),
                    None => self.config.wait_duration_in_open_state,
                };
                self.open_until
                    .store(now.saturating_add(duration_nanos(wait)), Ordering::Release);
                // The deadline is fixed now, as the breaker opens, not when
                // a timer task first runs: a busy runtime (or a paused test
                // clock) may get to that task late.
                if self.config.automatic_transition_from_open_to_half_open {
                    half_open_at = tokio::time::Instant::now().checked_add(wait);
                }
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
        if let Some(deadline) = half_open_at {
            transition.half_open_timer = self.schedule_half_open(word, deadline);
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

    /// Moves the opening `open_word` to half-open at `deadline`, on a
    /// task of the current runtime (none outside a runtime: the next call
    /// after the wait moves it instead).
    fn schedule_half_open(
        &self,
        open_word: u64,
        deadline: tokio::time::Instant,
    ) -> Option<AbortHandle> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        // The task holds only a weak reference: a dropped breaker leaves no
        // timer behind doing anything.
        let weak = self.this.clone();
        let task = runtime.spawn(async move {
            tokio::time::sleep_until(deadline).await;
            if let Some(shared) = weak.upgrade() {
                shared.transition(open_word, CircuitState::HalfOpen);
            }
        });
        Some(task.abort_handle())
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
