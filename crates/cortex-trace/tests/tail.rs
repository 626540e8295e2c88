//! The adaptive tail sampler, through a real SDK provider.

use std::time::Duration;

use cortex_trace::{TailSampling, TailSamplingProcessor};
use opentelemetry::trace::{Span, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SimpleSpanProcessor};

fn setup(settings: TailSampling) -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let processor =
        TailSamplingProcessor::new(SimpleSpanProcessor::new(exporter.clone()), settings);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    (provider, exporter)
}

/// A root with one child; the child optionally fails, the root optionally
/// sleeps.
fn trace(provider: &SdkTracerProvider, child_fails: bool, root_sleep: Duration) {
    let tracer = provider.tracer("test");
    let root = tracer.start("root");
    let cx = Context::current_with_span(root);
    let mut child = tracer.start_with_context("child", &cx);
    if child_fails {
        child.set_status(Status::error("db down"));
    }
    child.set_attribute(KeyValue::new("n", 1));
    child.end();
    std::thread::sleep(root_sleep);
    cx.span().end();
}

fn exported_traces(exporter: &InMemorySpanExporter) -> usize {
    let spans = exporter.get_finished_spans().unwrap();
    let mut ids: Vec<u128> = spans
        .iter()
        .map(|s| u128::from_be_bytes(s.span_context.trace_id().to_bytes()))
        .collect();
    ids.sort();
    ids.dedup();
    ids.len()
}

#[test]
fn keeps_every_failed_and_slow_trace_and_none_of_the_rest_at_ratio_zero() {
    let (provider, exporter) = setup(
        TailSampling::new()
            .ratio(0.0)
            .slow_threshold(Duration::from_millis(20)),
    );
    for _ in 0..20 {
        trace(&provider, false, Duration::ZERO);
    }
    trace(&provider, true, Duration::ZERO);
    trace(&provider, false, Duration::from_millis(30));
    assert_eq!(exported_traces(&exporter), 2);
    // Whole traces: root and child of both kept traces.
    assert_eq!(exporter.get_finished_spans().unwrap().len(), 4);
}

#[test]
fn the_probability_sample_keeps_about_the_ratio() {
    let (provider, exporter) = setup(TailSampling::new().ratio(0.25));
    for _ in 0..2_000 {
        trace(&provider, false, Duration::ZERO);
    }
    let kept = exported_traces(&exporter);
    assert!((350..=650).contains(&kept), "kept {kept} of 2000 at 25%");
}

#[test]
fn ratio_one_keeps_everything() {
    let (provider, exporter) = setup(TailSampling::new().ratio(1.0));
    for _ in 0..50 {
        trace(&provider, false, Duration::ZERO);
    }
    assert_eq!(exported_traces(&exporter), 50);
}

#[test]
fn memory_stays_bounded_when_roots_never_end() {
    let exporter = InMemorySpanExporter::default();
    let processor = TailSamplingProcessor::new(
        SimpleSpanProcessor::new(exporter.clone()),
        TailSampling::new().ratio(0.0).max_buffered_spans(100),
    );
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer("test");
    // 1 000 traces whose roots do not end (yet): only children arrive.
    let mut open_roots = Vec::new();
    for i in 0..1_000 {
        let root = tracer.start("leaked root");
        let cx = Context::current_with_span(root);
        let mut child = tracer.start_with_context("child", &cx);
        if i == 999 {
            child.set_status(Status::error("late failure"));
        }
        child.end();
        open_roots.push(cx);
    }
    // The failing trace is still exported once it is decided (on flush).
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert!(
        spans
            .iter()
            .any(|s| matches!(s.status, Status::Error { .. }))
    );
    assert!(
        spans.len() <= 2,
        "{} spans exported at ratio 0",
        spans.len()
    );
    drop(open_roots);
}

#[test]
fn the_rate_cap_drops_whole_traces() {
    let (provider, exporter) = setup(TailSampling::new().ratio(1.0).max_spans_per_second(10));
    for _ in 0..100 {
        trace(&provider, false, Duration::ZERO);
    }
    let kept = exported_traces(&exporter);
    assert!(
        (5..=7).contains(&kept),
        "kept {kept} traces under a 10 spans/s cap"
    );
    assert_eq!(exporter.get_finished_spans().unwrap().len(), kept * 2);
}

#[test]
fn concurrent_traces_lose_no_span() {
    let (provider, exporter) = setup(TailSampling::new().ratio(1.0).max_buffered_spans(10_000));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..500 {
                    trace(&provider, false, Duration::ZERO);
                }
            });
        }
    });
    assert_eq!(exported_traces(&exporter), 2_000);
    assert_eq!(exporter.get_finished_spans().unwrap().len(), 4_000);
}
