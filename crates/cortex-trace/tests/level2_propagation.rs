//! Level 2 propagation through real SDK spans: the `random` flag and the
//! `tracestate` list are sent as the spec says, whatever the SDK did to
//! its own copy of them (W3C Trace Context Level 2, §"Random Trace ID Flag"
//! and §"Mutating the tracestate Field").

use cortex_trace::{
    HeaderExtractor, HeaderInjector, IncomingTraceContext, TraceContextPropagator, Traceparent,
};
use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Link, SpanKind, TraceContextExt, TraceId, TraceState, Tracer, TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    Sampler, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn incoming(flags: &str, tracestate: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        HeaderValue::from_str(&format!("00-{TRACE_ID}-00f067aa0ba902b7-{flags}")).unwrap(),
    );
    if let Some(state) = tracestate {
        headers.insert("tracestate", HeaderValue::from_str(state).unwrap());
    }
    headers
}

/// Extracts `headers` with `propagator`, starts a child span on
/// `provider`, and returns what an outgoing call from that span carries.
fn forward(
    provider: &SdkTracerProvider,
    propagator: &TraceContextPropagator,
    headers: &HeaderMap,
) -> HeaderMap {
    let parent = propagator.extract(&HeaderExtractor(headers));
    let tracer = provider.tracer("test");
    let span = tracer.start_with_context("child", &parent);
    let cx = parent.with_span(span);
    let mut out = HeaderMap::new();
    propagator.inject_context(&cx, &mut HeaderInjector(&mut out));
    out
}

fn flags(headers: &HeaderMap) -> u8 {
    let parsed = Traceparent::parse(headers["traceparent"].to_str().unwrap()).unwrap();
    parsed.flags.to_u8()
}

fn default_provider() -> SdkTracerProvider {
    SdkTracerProvider::builder().build()
}

#[test]
fn a_continued_traces_random_flag_survives_a_span_the_sdk_does_not_sample() {
    // Parent-based sampling drops the child of an unsampled parent, and the
    // SDK gives a dropped span empty flags.
    let out = forward(
        &default_provider(),
        &TraceContextPropagator::new(),
        &incoming("02", None),
    );
    assert_eq!(flags(&out), 0x02);
    let out = forward(
        &default_provider(),
        &TraceContextPropagator::new(),
        &incoming("03", None),
    );
    assert_eq!(flags(&out), 0x03);
}

#[test]
fn a_continued_trace_without_the_random_flag_never_gains_it() {
    for sent in ["00", "01"] {
        let out = forward(
            &default_provider(),
            &TraceContextPropagator::new(),
            &incoming(sent, None),
        );
        assert_eq!(flags(&out) & 0x02, 0, "sent {sent}");
        assert!(
            out["traceparent"]
                .to_str()
                .unwrap()
                .contains(&format!("-{TRACE_ID}-"))
        );
    }
}

#[test]
fn a_trace_started_here_carries_the_random_flag_unless_told_ids_are_not_random() {
    let provider = default_provider();
    for (propagator, expected) in [
        (TraceContextPropagator::new(), 0x03),
        (
            TraceContextPropagator::new().with_random_trace_ids(false),
            0x01,
        ),
    ] {
        let out = forward(&provider, &propagator, &HeaderMap::new());
        assert_eq!(flags(&out), expected);
        assert!(out.get("tracestate").is_none());
    }
}

#[test]
fn the_tracestate_is_sent_as_received_even_where_the_sdk_refuses_it() {
    // `foo@@bar`, a 14-character system id and a duplicated key: valid
    // Level 2, refused or collapsed by the SDK's TraceState.
    let received = "rojo=00f067aa0ba902b7,foo@@bar=1,t@vvvvvvvvvvvvvv=2,rojo=3,congo=t61rcWkgMzE";
    let out = forward(
        &default_provider(),
        &TraceContextPropagator::new(),
        &incoming("01", Some(received)),
    );
    assert_eq!(out["tracestate"], received);
}

#[test]
fn the_sdk_span_gets_the_part_of_the_tracestate_it_accepts() {
    let headers = incoming("01", Some("rojo=1,foo@@bar=2,congo=3"));
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
    assert_eq!(
        cx.span().span_context().trace_state().header(),
        "rojo=1,congo=3"
    );
    let kept = IncomingTraceContext::from_context(&cx).unwrap();
    assert_eq!(kept.tracestate().to_string(), "rojo=1,foo@@bar=2,congo=3");
}

/// A sampler that updates one vendor's key and deletes another's, as a
/// vendor's sampler may.
#[derive(Debug, Clone)]
struct VendorSampler;

impl ShouldSample for VendorSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        _trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .map(|cx| cx.span().span_context().trace_state().clone())
            .unwrap_or(TraceState::NONE);
        SamplingResult {
            decision: SamplingDecision::RecordAndSample,
            attributes: Vec::new(),
            trace_state: parent
                .insert("congo", "ucfJifl5GOE")
                .and_then(|state| state.delete("rojo"))
                .unwrap(),
        }
    }
}

#[test]
fn sampler_changes_are_applied_to_the_received_list_by_the_specs_rules() {
    let provider = SdkTracerProvider::builder()
        .with_sampler(VendorSampler)
        .build();
    let out = forward(
        &provider,
        &TraceContextPropagator::new(),
        &incoming("01", Some("rojo=1,foo@@bar=2,congo=t61rcWkgMzE,zed=4")),
    );
    // The updated vendor moves to the front; the deleted one is gone; what
    // the SDK never saw keeps its place.
    assert_eq!(out["tracestate"], "congo=ucfJifl5GOE,foo@@bar=2,zed=4");
}

#[test]
fn an_invalid_traceparent_starts_a_new_trace_and_drops_tracestate() {
    let mut headers = incoming("01", Some("foo=1"));
    headers.insert(
        "traceparent",
        HeaderValue::from_static("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
    );
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .build();
    let out = forward(&provider, &TraceContextPropagator::new(), &headers);
    let parsed = Traceparent::parse(out["traceparent"].to_str().unwrap()).unwrap();
    assert_ne!(parsed.trace_id, TraceId::INVALID);
    assert_ne!(parsed.trace_id.to_string(), TRACE_ID);
    assert!(out.get("tracestate").is_none());
}

#[test]
fn an_incoming_context_of_another_trace_is_not_used() {
    let propagator = TraceContextPropagator::new();
    let headers = incoming("02", Some("foo@=1"));
    let extracted = propagator.extract(&HeaderExtractor(&headers));
    // A new root span started while the old context is still current.
    let tracer = default_provider().tracer("test");
    let span = tracer
        .span_builder("root")
        .start_with_context(&tracer, &Context::new());
    let cx = extracted.with_span(span);
    let mut out = HeaderMap::new();
    propagator.inject_context(&cx, &mut HeaderInjector(&mut out));
    assert!(out.get("tracestate").is_none());
    assert_eq!(flags(&out), 0x03, "a trace started here");
}
