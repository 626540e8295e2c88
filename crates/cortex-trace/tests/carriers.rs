//! The `http::HeaderMap` carriers and the propagator's injection, as other
//! OpenTelemetry code (a composite propagator, baggage) drives them.

use cortex_trace::{
    HeaderExtractor, HeaderInjector, TRACEPARENT, TRACESTATE, TraceContextPropagator,
};
use http::{HeaderMap, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

#[test]
fn the_propagator_declares_exactly_the_two_w3c_fields() {
    let propagator = TraceContextPropagator::default();
    let fields: Vec<&str> = propagator.fields().collect();
    assert_eq!(fields, [TRACEPARENT, TRACESTATE]);
}

#[test]
fn injection_writes_tracestate_only_when_the_context_has_one() {
    let state =
        TraceState::from_key_value([("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")])
            .unwrap();
    let remote = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
        SpanId::from_hex("00f067aa0ba902b7").unwrap(),
        TraceFlags::SAMPLED,
        true,
        state,
    );
    let cx = Context::new().with_remote_span_context(remote.clone());
    let mut headers = HeaderMap::new();
    // A stale value from an earlier hop is replaced, not appended to.
    headers.insert("tracestate", HeaderValue::from_static("stale=1"));
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut headers));
    assert_eq!(
        headers["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert_eq!(headers.get_all("tracestate").iter().count(), 1);
    assert_eq!(
        headers["tracestate"],
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    );

    let bare = SpanContext::new(
        remote.trace_id(),
        remote.span_id(),
        TraceFlags::default(),
        true,
        TraceState::NONE,
    );
    let mut headers = HeaderMap::new();
    TraceContextPropagator::new().inject_context(
        &Context::new().with_remote_span_context(bare),
        &mut HeaderInjector(&mut headers),
    );
    assert_eq!(
        headers["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    );
    assert!(headers.get("tracestate").is_none());
}

#[test]
fn the_extractor_reads_the_first_value_and_lists_every_name() {
    let mut headers = HeaderMap::new();
    headers.append("baggage", HeaderValue::from_static("user=alice"));
    headers.append("baggage", HeaderValue::from_static("tier=gold"));
    headers.insert("x-raw", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
    let extractor = HeaderExtractor(&headers);
    assert_eq!(extractor.get("Baggage"), Some("user=alice"));
    assert_eq!(
        extractor.get_all("baggage"),
        Some(vec!["user=alice", "tier=gold"])
    );
    assert_eq!(extractor.get("absent"), None);
    assert_eq!(extractor.get_all("absent"), None);
    // Not visible ASCII: reported as a value no grammar accepts, not skipped.
    assert_eq!(extractor.get("x-raw"), Some("\u{fffd}"));
    let mut keys = extractor.keys();
    keys.sort_unstable();
    assert_eq!(keys, ["baggage", "x-raw"]);
}

#[test]
fn the_injector_writes_other_propagators_headers_and_skips_what_http_cannot_carry() {
    let mut headers = HeaderMap::new();
    let mut injector = HeaderInjector(&mut headers);
    injector.set("baggage", "user=alice".to_owned());
    injector.set("Not A Header Name", "x".to_owned());
    injector.set("x-bad-value", "line\nbreak".to_owned());
    assert_eq!(headers.len(), 1);
    assert_eq!(headers["baggage"], "user=alice");
}
