//! The tail sampler's bookkeeping: its decision counters, traces decided
//! early because they grew old, and late children of decided traces.

use std::sync::Arc;
use std::time::Duration;

use cortex_trace::{TailSampling, TailSamplingProcessor, TailStats};
use opentelemetry::Context;
use opentelemetry::trace::{Span as _, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor, Span, SpanData, SpanProcessor,
};

type Tail = TailSamplingProcessor<SimpleSpanProcessor<InMemorySpanExporter>>;

/// Hands the provider a processor while the test keeps a handle on it, to
/// read its stats.
#[derive(Debug)]
struct Shared(Arc<Tail>);

impl SpanProcessor for Shared {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.0.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        self.0.on_end(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
}

fn setup(settings: TailSampling) -> (SdkTracerProvider, Arc<Tail>, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let tail = Arc::new(TailSamplingProcessor::new(
        SimpleSpanProcessor::new(exporter.clone()),
        settings,
    ));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Shared(Arc::clone(&tail)))
        .build();
    (provider, tail, exporter)
}

#[test]
fn stats_count_each_kind_of_decision() {
    let (provider, tail, _exporter) = setup(
        TailSampling::new()
            .ratio(0.0)
            .slow_threshold(Duration::from_millis(20)),
    );
    let tracer = provider.tracer("t");
    tracer.start("fast").end();
    tracer.start("fast").end();
    let mut failed = tracer.start("failed");
    failed.set_status(Status::error("boom"));
    failed.end();
    let slow = tracer.start("slow");
    std::thread::sleep(Duration::from_millis(25));
    drop(slow);

    assert_eq!(
        tail.stats(),
        TailStats {
            kept_error: 1,
            kept_slow: 1,
            dropped: 2,
            ..TailStats::default()
        }
    );
}

#[test]
fn spans_waiting_for_their_root_are_counted_as_buffered() {
    let (provider, tail, exporter) = setup(TailSampling::new().ratio(1.0));
    let tracer = provider.tracer("t");
    let root = Context::current_with_span(tracer.start("root"));
    tracer.start_with_context("child a", &root).end();
    tracer.start_with_context("child b", &root).end();
    assert_eq!(tail.stats().buffered_spans, 2);
    assert!(exporter.get_finished_spans().unwrap().is_empty());

    root.span().end();
    assert_eq!(tail.stats().buffered_spans, 0);
    assert_eq!(tail.stats().kept_sampled, 1);
    assert_eq!(exporter.get_finished_spans().unwrap().len(), 3);
}

#[test]
fn a_trace_older_than_the_maximum_age_is_decided_early() {
    let (provider, tail, exporter) = setup(
        TailSampling::new()
            .ratio(0.0)
            .max_trace_age(Duration::from_millis(10)),
    );
    let tracer = provider.tracer("t");
    // A root that never ends here (say, it lives in a long-running task),
    // with a failed child.
    let stuck = Context::current_with_span(tracer.start("stuck root"));
    let mut child = tracer.start_with_context("failed child", &stuck);
    child.set_status(Status::error("timeout"));
    child.end();
    std::thread::sleep(Duration::from_millis(20));
    // Any later span lets the sampler notice the old trace.
    tracer.start("unrelated").end();

    let stats = tail.stats();
    assert_eq!(stats.decided_early, 1);
    assert_eq!(stats.kept_error, 1);
    let names: Vec<String> = exporter
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["failed child"]);

    // The root, ending at last, follows its trace's decision.
    stuck.span().end();
    assert_eq!(exporter.get_finished_spans().unwrap().len(), 2);
    assert_eq!(tail.stats().buffered_spans, 0);
}

#[test]
fn late_children_of_a_dropped_trace_are_dropped_too() {
    let (provider, tail, exporter) = setup(TailSampling::new().ratio(0.0));
    let tracer = provider.tracer("t");
    let root = Context::current_with_span(tracer.start("root"));
    let late = tracer.start_with_context("late child", &root);
    root.span().end();
    assert_eq!(tail.stats().dropped, 1);
    drop(late);
    assert!(exporter.get_finished_spans().unwrap().is_empty());
    assert_eq!(tail.stats().buffered_spans, 0);
}

#[test]
fn ratio_settings_outside_zero_to_one_are_clamped() {
    // NaN keeps nothing; above 1 keeps everything.
    let (provider, _tail, exporter) = setup(TailSampling::new().ratio(f64::NAN));
    for _ in 0..20 {
        provider.tracer("t").start("root").end();
    }
    assert!(exporter.get_finished_spans().unwrap().is_empty());

    let (provider, _tail, exporter) = setup(TailSampling::new().ratio(7.0));
    for _ in 0..20 {
        provider.tracer("t").start("root").end();
    }
    assert_eq!(exporter.get_finished_spans().unwrap().len(), 20);
}
