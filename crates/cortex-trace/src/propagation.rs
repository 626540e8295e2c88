//! A W3C Trace Context propagator for OpenTelemetry, and `http::HeaderMap`
//! carriers that see every value of a header.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};

use crate::traceparent::{Traceparent, TraceparentError};
use crate::tracestate::parse_tracestate;

/// The `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header name.
pub const TRACESTATE: &str = "tracestate";

/// W3C Trace Context (Level 2) as an OpenTelemetry
/// [`TextMapPropagator`].
///
/// Unlike the SDK's stock propagator it reads **every** value of a header
/// through [`Extractor::get_all`], so a duplicated `traceparent` is
/// rejected and several `tracestate` headers are combined in order. An
/// invalid `traceparent` leaves the context unchanged (the server starts a
/// new trace) and drops `tracestate`; an invalid `tracestate` is dropped on
/// its own. The `sampled` and Level-2 `random` flags are preserved.
///
/// ```
/// use cortex_trace::{HeaderExtractor, HeaderInjector, TraceContextPropagator};
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
///
/// let mut incoming = http::HeaderMap::new();
/// incoming.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".parse().unwrap());
/// incoming.append("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
/// incoming.append("tracestate", "rojo=00f067aa0ba902b7".parse().unwrap());
///
/// let propagator = TraceContextPropagator::new();
/// let cx = propagator.extract(&HeaderExtractor(&incoming));
/// let remote = cx.span().span_context().clone();
/// assert!(remote.is_remote() && remote.is_sampled());
/// assert_eq!(remote.trace_state().header(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
///
/// let mut outgoing = http::HeaderMap::new();
/// propagator.inject_context(&cx, &mut HeaderInjector(&mut outgoing));
/// assert_eq!(outgoing["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
/// ```
#[derive(Debug, Clone)]
pub struct TraceContextPropagator {
    fields: [String; 2],
}

impl Default for TraceContextPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceContextPropagator {
    /// The propagator.
    pub fn new() -> Self {
        Self {
            fields: [TRACEPARENT.to_owned(), TRACESTATE.to_owned()],
        }
    }

    /// The remote span context in `extractor`, or why there is none.
    pub fn extract_span_context(
        &self,
        extractor: &dyn Extractor,
    ) -> Result<SpanContext, TraceparentError> {
        let parents = extractor.get_all(TRACEPARENT).unwrap_or_default();
        let parent = Traceparent::parse_all(&parents)?;
        let states = extractor.get_all(TRACESTATE).unwrap_or_default();
        // A bad tracestate costs only the tracestate, never the trace.
        let state = parse_tracestate(&states).unwrap_or(TraceState::NONE);
        Ok(SpanContext::new(
            parent.trace_id,
            parent.parent_id,
            parent.flags,
            true,
            state,
        ))
    }
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let context = span.span_context();
        if !context.is_valid() {
            return;
        }
        let parent = Traceparent {
            version: 0,
            trace_id: context.trace_id(),
            parent_id: context.span_id(),
            flags: context.trace_flags(),
        };
        injector.set(TRACEPARENT, parent.to_header());
        let state = context.trace_state().header();
        if !state.is_empty() {
            injector.set(TRACESTATE, state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match self.extract_span_context(extractor) {
            Ok(remote) => cx.with_remote_span_context(remote),
            Err(_) => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// Reads an [`http::HeaderMap`] for a propagator: names are
/// case-insensitive and **all** values of a header are visible.
///
/// A value that is not visible ASCII is reported as an invalid marker
/// rather than skipped, so that it still counts as a (bad) value: a
/// duplicated `traceparent` must not pass because one copy was unreadable.
#[derive(Debug, Clone, Copy)]
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

/// What an unreadable header value turns into; invalid in every grammar.
const UNREADABLE: &str = "\u{fffd}";

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|value| value.to_str().unwrap_or(UNREADABLE))
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .map(|value| value.to_str().unwrap_or(UNREADABLE))
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Writes propagation headers into an [`http::HeaderMap`], replacing
/// existing values. Names or values HTTP cannot carry are skipped.
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The two names this crate writes skip header-name parsing.
        let name = match key {
            TRACEPARENT => Ok(HeaderName::from_static(TRACEPARENT)),
            TRACESTATE => Ok(HeaderName::from_static(TRACESTATE)),
            other => HeaderName::from_bytes(other.as_bytes()),
        };
        if let (Ok(name), Ok(value)) = (name, HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn extract(pairs: &[(&str, &[u8])]) -> Result<SpanContext, TraceparentError> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        TraceContextPropagator::new().extract_span_context(&HeaderExtractor(&headers))
    }

    #[test]
    fn header_names_are_case_insensitive() {
        let context =
            extract(&[("TraceParent", PARENT.as_bytes()), ("TRACESTATE", b"a=1")]).unwrap();
        assert_eq!(context.trace_state().header(), "a=1");
    }

    #[test]
    fn duplicated_traceparent_starts_a_new_trace_even_if_one_copy_is_unreadable() {
        assert_eq!(
            extract(&[
                ("traceparent", PARENT.as_bytes()),
                ("traceparent", PARENT.as_bytes())
            ]),
            Err(TraceparentError::Duplicated)
        );
        assert_eq!(
            extract(&[
                ("traceparent", PARENT.as_bytes()),
                ("traceparent", b"\xff\xfe")
            ]),
            Err(TraceparentError::Duplicated)
        );
    }

    #[test]
    fn an_invalid_tracestate_is_dropped_but_the_trace_continues() {
        let context =
            extract(&[("traceparent", PARENT.as_bytes()), ("tracestate", b"Bad=1")]).unwrap();
        assert!(context.is_valid());
        assert_eq!(context.trace_state().header(), "");
    }

    #[test]
    fn an_invalid_traceparent_leaves_the_context_alone() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("00-garbage"));
        headers.insert("tracestate", HeaderValue::from_static("a=1"));
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        assert!(!cx.span().span_context().is_valid());
        assert!(!cx.has_active_span());
    }

    #[test]
    fn injects_nothing_without_a_valid_span() {
        let mut headers = HeaderMap::new();
        TraceContextPropagator::new()
            .inject_context(&Context::new(), &mut HeaderInjector(&mut headers));
        assert!(headers.is_empty());
    }
}
