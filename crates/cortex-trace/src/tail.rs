//! Adaptive tail sampling: keep every trace that failed or was slow, plus a
//! probability sample of the rest, decided when the trace's local root span
//! ends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// Settings of a [`TailSamplingProcessor`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TailSampling {
    slow_threshold: Duration,
    ratio: f64,
    max_buffered_spans: usize,
    max_trace_age: Duration,
    max_spans_per_second: Option<u32>,
}

impl Default for TailSampling {
    fn default() -> Self {
        Self {
            slow_threshold: Duration::from_millis(500),
            ratio: 0.1,
            max_buffered_spans: 4096,
            max_trace_age: Duration::from_secs(30),
            max_spans_per_second: None,
        }
    }
}

impl TailSampling {
    /// Keeps errors, traces slower than 500 ms, and 10 % of the rest;
    /// buffers at most 4 096 spans; gives up on a trace after 30 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Traces whose local root lasted at least this long are kept.
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow_threshold = threshold;
        self
    }

    /// The probability (0..=1) of keeping a trace that is neither failed
    /// nor slow. Decided from the trace id, so every service using the same
    /// ratio keeps the same traces.
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        self
    }

    /// The memory bound: at most this many finished spans wait for their
    /// trace's decision (a span is typically 0.5–2 KiB). Past it, the oldest
    /// undecided trace is decided early from what is known.
    pub fn max_buffered_spans(mut self, max: usize) -> Self {
        self.max_buffered_spans = max.max(1);
        self
    }

    /// Undecided traces older than this are decided early (their root may
    /// never end in this process).
    pub fn max_trace_age(mut self, age: Duration) -> Self {
        self.max_trace_age = age;
        self
    }

    /// Caps the spans forwarded per second; whole traces over the cap are
    /// dropped (and counted), failed ones included.
    pub fn max_spans_per_second(mut self, cap: u32) -> Self {
        self.max_spans_per_second = Some(cap);
        self
    }
}

/// Counters of a [`TailSamplingProcessor`]'s decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Traces forwarded because a span failed.
    pub kept_error: u64,
    /// Traces forwarded because the root was slow.
    pub kept_slow: u64,
    /// Traces forwarded by the probability sample.
    pub kept_sampled: u64,
    /// Traces dropped by the probability sample.
    pub dropped: u64,
    /// Traces decided early because the buffer was full or they were old.
    pub decided_early: u64,
    /// Traces dropped by the rate cap.
    pub rate_limited: u64,
    /// Spans waiting for a decision right now.
    pub buffered_spans: u64,
}

/// A [`SpanProcessor`] that buffers each trace's spans until its local root
/// span (the first span of the trace in this process) ends, then forwards
/// the whole trace to `next` if any span has an error status, the root took
/// at least the slow threshold, or the trace id falls in the probability
/// sample — and drops it otherwise.
///
/// The tracer provider must *record* every span for this to see them: use
/// it with the SDK's default `ParentBased(AlwaysOn)` sampler, not a ratio
/// sampler. Memory is bounded by [`TailSampling::max_buffered_spans`].
///
/// ```
/// use std::time::Duration;
/// use cortex_trace::{TailSampling, TailSamplingProcessor};
/// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};
///
/// let exporter = InMemorySpanExporter::default();
/// let processor = TailSamplingProcessor::new(
///     SimpleSpanProcessor::new(exporter.clone()),
///     TailSampling::new().slow_threshold(Duration::from_millis(250)).ratio(0.05),
/// );
/// let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
/// # let _ = provider;
/// ```
#[derive(Debug)]
pub struct TailSamplingProcessor<P> {
    next: P,
    settings: TailSampling,
    state: Mutex<TailState>,
}

#[derive(Debug, Default)]
struct TailState {
    pending: HashMap<TraceId, PendingTrace>,
    /// Undecided traces, oldest first (may hold ids already decided).
    order: VecDeque<TraceId>,
    buffered: usize,
    /// Recent decisions, for spans that end after their root.
    decided: HashMap<TraceId, bool>,
    decided_order: VecDeque<TraceId>,
    stats: TailStats,
    tokens: f64,
    refilled: Option<Instant>,
}

#[derive(Debug)]
struct PendingTrace {
    spans: Vec<SpanData>,
    failed: bool,
    first_seen: Instant,
}

/// How many past decisions are remembered for late child spans.
const REMEMBERED_DECISIONS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Error,
    Slow,
    Sampled,
    Dropped,
}

impl<P: SpanProcessor> TailSamplingProcessor<P> {
    /// Wraps `next` (typically a batch or simple processor with an exporter).
    pub fn new(next: P, settings: TailSampling) -> Self {
        Self {
            next,
            settings,
            state: Mutex::new(TailState::default()),
        }
    }

    /// The decision counters so far.
    pub fn stats(&self) -> TailStats {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        TailStats {
            buffered_spans: state.buffered as u64,
            ..state.stats
        }
    }

    fn in_sample(&self, trace_id: TraceId) -> bool {
        // The low 64 bits of a W3C trace id are random (Level 2), so this
        // matches other services' trace-id-ratio decisions.
        let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or_default());
        (low >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - self.settings.ratio
            || self.settings.ratio >= 1.0
    }

    fn verdict(&self, failed: bool, root_duration: Option<Duration>, trace_id: TraceId) -> Verdict {
        if failed {
            Verdict::Error
        } else if root_duration.is_some_and(|d| d >= self.settings.slow_threshold) {
            Verdict::Slow
        } else if self.in_sample(trace_id) {
            Verdict::Sampled
        } else {
            Verdict::Dropped
        }
    }

    /// Records the verdict and returns the spans to forward.
    fn conclude(
        &self,
        state: &mut TailState,
        trace_id: TraceId,
        spans: Vec<SpanData>,
        verdict: Verdict,
    ) -> Vec<SpanData> {
        let mut keep = verdict != Verdict::Dropped;
        if keep && !self.take_tokens(state, spans.len()) {
            keep = false;
            state.stats.rate_limited += 1;
        } else {
            match verdict {
                Verdict::Error => state.stats.kept_error += 1,
                Verdict::Slow => state.stats.kept_slow += 1,
                Verdict::Sampled => state.stats.kept_sampled += 1,
                Verdict::Dropped => state.stats.dropped += 1,
            }
        }
        state.decided.insert(trace_id, keep);
        state.decided_order.push_back(trace_id);
        while state.decided_order.len() > REMEMBERED_DECISIONS {
            if let Some(old) = state.decided_order.pop_front() {
                state.decided.remove(&old);
            }
        }
        if keep { spans } else { Vec::new() }
    }

    fn take_tokens(&self, state: &mut TailState, spans: usize) -> bool {
        let Some(cap) = self.settings.max_spans_per_second else {
            return true;
        };
        let now = Instant::now();
        let cap = f64::from(cap);
        let elapsed = state
            .refilled
            .map_or(1.0, |at| now.duration_since(at).as_secs_f64());
        state.tokens = elapsed.mul_add(cap, state.tokens).min(cap);
        state.refilled = Some(now);
        if state.tokens >= spans as f64 {
            state.tokens -= spans as f64;
            true
        } else {
            false
        }
    }

    /// Decides early the oldest traces while the buffer is over its bound or
    /// they are older than the maximum age.
    fn evict(&self, state: &mut TailState, forward: &mut Vec<SpanData>) {
        while let Some(&oldest) = state.order.front() {
            let Some(trace) = state.pending.get(&oldest) else {
                state.order.pop_front();
                continue;
            };
            let over_bound = state.buffered > self.settings.max_buffered_spans;
            let too_old = trace.first_seen.elapsed() > self.settings.max_trace_age;
            if !over_bound && !too_old {
                break;
            }
            state.order.pop_front();
            if let Some(trace) = state.pending.remove(&oldest) {
                state.buffered -= trace.spans.len();
                state.stats.decided_early += 1;
                let verdict = self.verdict(trace.failed, None, oldest);
                forward.extend(self.conclude(state, oldest, trace.spans, verdict));
            }
        }
    }

    fn drain_all(&self) {
        let mut forward = Vec::new();
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let pending: Vec<(TraceId, PendingTrace)> = state.pending.drain().collect();
            state.order.clear();
            state.buffered = 0;
            for (trace_id, trace) in pending {
                state.stats.decided_early += 1;
                let verdict = self.verdict(trace.failed, None, trace_id);
                let spans = self.conclude(&mut state, trace_id, trace.spans, verdict);
                forward.extend(spans);
            }
        }
        for span in forward {
            self.next.on_end(span);
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for TailSamplingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.next.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let trace_id = span.span_context.trace_id();
        let is_local_root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        let failed = matches!(span.status, Status::Error { .. });
        let mut forward = Vec::new();
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(&keep) = state.decided.get(&trace_id) {
                // A late child of a decided trace follows its trace.
                if keep {
                    forward.push(span);
                }
            } else {
                let duration = span
                    .end_time
                    .duration_since(span.start_time)
                    .unwrap_or_default();
                let trace = state
                    .pending
                    .entry(trace_id)
                    .or_insert_with(|| PendingTrace {
                        spans: Vec::new(),
                        failed: false,
                        first_seen: Instant::now(),
                    });
                let new_trace = trace.spans.is_empty();
                trace.failed |= failed;
                trace.spans.push(span);
                state.buffered += 1;
                if new_trace {
                    state.order.push_back(trace_id);
                }
                if is_local_root && let Some(trace) = state.pending.remove(&trace_id) {
                    state.buffered -= trace.spans.len();
                    let verdict = self.verdict(trace.failed, Some(duration), trace_id);
                    forward = self.conclude(&mut state, trace_id, trace.spans, verdict);
                }
                self.evict(&mut state, &mut forward);
            }
        }
        // Outside the lock: the next processor may export synchronously.
        for span in forward {
            self.next.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.drain_all();
        self.next.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.drain_all();
        self.next.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.next.set_resource(resource);
    }
}
