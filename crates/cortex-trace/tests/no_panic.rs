//! Property tests: no header content panics the propagator, and what it
//! accepts round-trips.

use cortex_trace::{
    HeaderExtractor, HeaderInjector, TraceContextPropagator, Traceparent, parse_tracestate,
};
use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use proptest::prelude::*;

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    // Everything a HeaderValue can hold: visible ASCII, space, tab, obs-text.
    proptest::collection::vec(
        prop_oneof![
            0x20u8..0x7f,
            Just(b'\t'),
            0x80u8..=0xff,
            Just(b'-'),
            Just(b'0'),
            Just(b'f')
        ],
        0..120,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn no_header_combination_panics(
        parents in proptest::collection::vec(header_bytes(), 0..3),
        states in proptest::collection::vec(header_bytes(), 0..4),
    ) {
        let mut headers = HeaderMap::new();
        for value in &parents {
            headers.append("traceparent", HeaderValue::from_bytes(value).unwrap());
        }
        for value in &states {
            headers.append("tracestate", HeaderValue::from_bytes(value).unwrap());
        }
        let propagator = TraceContextPropagator::new();
        let cx = propagator.extract(&HeaderExtractor(&headers));
        let mut out = HeaderMap::new();
        propagator.inject_context(&cx, &mut HeaderInjector(&mut out));
        if cx.span().span_context().is_valid() {
            let reparsed = Traceparent::parse(out["traceparent"].to_str().unwrap()).unwrap();
            prop_assert_eq!(reparsed.trace_id, cx.span().span_context().trace_id());
        } else {
            prop_assert!(out.is_empty());
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let _ = Traceparent::parse(&text);
        let _ = parse_tracestate(&[&text]);
    }

    #[test]
    fn valid_traceparents_round_trip(
        trace_id in 1u128..,
        parent_id in 1u64..,
        flags in 0u8..4,
    ) {
        let header = format!("00-{trace_id:032x}-{parent_id:016x}-{flags:02x}");
        let parsed = Traceparent::parse(&header).unwrap();
        prop_assert_eq!(parsed.to_header(), header);
    }
}

#[test]
fn oversized_headers_are_rejected_quickly() {
    let huge = format!("00-{}", "a".repeat(16 * 1024));
    assert!(Traceparent::parse(&huge).is_err());
    let many = (0..2_000)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    assert!(parse_tracestate(&[&many]).is_err());
}
