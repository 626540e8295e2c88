//! A W3C Trace Context propagator for OpenTelemetry, the trace context a
//! request arrived with, and `http::HeaderMap` carriers that see every
//! value of a header.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};

use crate::traceparent::{RANDOM_FLAG, Traceparent, TraceparentError};
use crate::tracestate::{Tracestate, parse_tracestate};

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
/// its own.
///
/// What arrived is kept in the context as an [`IncomingTraceContext`], and
/// injection sends it on as the spec says rather than as the SDK holds it:
///
/// - `tracestate` is Cortex's own [`Tracestate`] (Level 2 grammar,
///   duplicates kept), re-emitted as received; changes a sampler made to
///   the SDK's `TraceState` are applied to it by the spec's rules (updated
///   keys move to the front, at most 32 members). The SDK's `SpanContext`
///   gets the part of the list its Level 1 `TraceState` accepts.
/// - The `random` flag (Level 2 §"Random Trace ID Flag") of a continued
///   trace is sent exactly as received, whatever the SDK did with the
///   span's flags. A trace started in this process is sent with `random`
///   set, since the SDK's trace ids are random; see
///   [`with_random_trace_ids`](Self::with_random_trace_ids).
///
/// ```
/// use cortex_trace::{HeaderExtractor, HeaderInjector, TraceContextPropagator};
/// use opentelemetry::propagation::TextMapPropagator;
/// use opentelemetry::trace::TraceContextExt;
///
/// let mut incoming = http::HeaderMap::new();
/// incoming.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".parse().unwrap());
/// incoming.append("tracestate", "congo=t61rcWkgMzE,foo@=1".parse().unwrap());
/// incoming.append("tracestate", "rojo=00f067aa0ba902b7".parse().unwrap());
///
/// let propagator = TraceContextPropagator::new();
/// let cx = propagator.extract(&HeaderExtractor(&incoming));
/// let remote = cx.span().span_context().clone();
/// assert!(remote.is_remote() && remote.is_sampled());
///
/// let mut outgoing = http::HeaderMap::new();
/// propagator.inject_context(&cx, &mut HeaderInjector(&mut outgoing));
/// assert_eq!(outgoing["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
/// assert_eq!(outgoing["tracestate"], "congo=t61rcWkgMzE,foo@=1,rojo=00f067aa0ba902b7");
/// ```
#[derive(Debug, Clone)]
pub struct TraceContextPropagator {
    fields: [String; 2],
    random_trace_ids: bool,
}

impl Default for TraceContextPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceContextPropagator {
    /// The propagator; it takes locally started traces to have random ids.
    pub fn new() -> Self {
        Self {
            fields: [TRACEPARENT.to_owned(), TRACESTATE.to_owned()],
            random_trace_ids: true,
        }
    }

    /// Whether the trace ids this process generates are random (default
    /// `true`: the SDK's default id generator is). When they are, traces
    /// started here are sent with the Level 2 `random` flag; turn this off
    /// for an id generator whose ids are not random. Continued traces keep
    /// the flag they arrived with either way.
    pub fn with_random_trace_ids(mut self, random: bool) -> Self {
        self.random_trace_ids = random;
        self
    }

    /// What `extractor` carries, validated, or why it starts no trace.
    pub fn extract_incoming(
        &self,
        extractor: &dyn Extractor,
    ) -> Result<IncomingTraceContext, TraceparentError> {
        let parents = extractor.get_all(TRACEPARENT).unwrap_or_default();
        let traceparent = Traceparent::parse_all(&parents)?;
        let states = extractor.get_all(TRACESTATE).unwrap_or_default();
        // A bad tracestate costs only the tracestate, never the trace.
        let tracestate = parse_tracestate(&states).unwrap_or_default();
        Ok(IncomingTraceContext::new(traceparent, tracestate))
    }

    /// The remote span context in `extractor`, or why there is none.
    pub fn extract_span_context(
        &self,
        extractor: &dyn Extractor,
    ) -> Result<SpanContext, TraceparentError> {
        self.extract_incoming(extractor)
            .map(|incoming| incoming.span_context())
    }

    /// The flags and `tracestate` to send for `span` in `cx`.
    fn outgoing(&self, cx: &Context, span: &SpanContext) -> (TraceFlags, Tracestate) {
        let sampled = span.trace_flags().to_u8() & TraceFlags::SAMPLED.to_u8();
        let incoming = IncomingTraceContext::from_context(cx)
            .filter(|incoming| incoming.traceparent.trace_id == span.trace_id());
        match incoming {
            // Continuing: the flag MUST be what arrived; the SDK resets it
            // on spans it does not sample.
            Some(incoming) => (
                TraceFlags::new(sampled | incoming.random_flag()),
                incoming.outgoing_tracestate(span.trace_state()),
            ),
            None => {
                let random = span.trace_flags().to_u8() & RANDOM_FLAG != 0
                    // A local span with no incoming context for its trace:
                    // the trace was started here.
                    || (!span.is_remote() && self.random_trace_ids);
                let random = if random { RANDOM_FLAG } else { 0 };
                (
                    TraceFlags::new(sampled | random),
                    Tracestate::from_trace_state(span.trace_state()),
                )
            }
        }
    }
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let context = span.span_context();
        if !context.is_valid() {
            return;
        }
        let (flags, tracestate) = self.outgoing(cx, context);
        let parent = Traceparent {
            version: 0,
            trace_id: context.trace_id(),
            parent_id: context.span_id(),
            flags,
        };
        injector.set(TRACEPARENT, parent.to_header());
        if !tracestate.is_empty() {
            injector.set(TRACESTATE, tracestate.to_string());
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match self.extract_incoming(extractor) {
            Ok(incoming) => cx
                .with_remote_span_context(incoming.span_context())
                .with_value(incoming),
            Err(_) => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// The W3C trace context a request arrived with, validated and kept as
/// received. [`TraceContextPropagator`] puts it in the OpenTelemetry
/// [`Context`] it extracts, where every span started from that context
/// (and so every outgoing call) can find it.
///
/// It is the source of truth for what is sent on: the `tracestate` list
/// (including members the SDK's `TraceState` refuses) and the `random`
/// flag (which the SDK drops on spans it does not sample).
///
/// ```
/// use cortex_trace::{HeaderExtractor, IncomingTraceContext, TraceContextPropagator};
/// use opentelemetry::propagation::TextMapPropagator;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02".parse().unwrap());
/// headers.insert("tracestate", "tenant@vendor-with-14=1,foo@=2".parse().unwrap());
/// let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
///
/// let incoming = IncomingTraceContext::from_context(&cx).unwrap();
/// assert_eq!(incoming.tracestate().get("foo@"), Some("2"));
/// assert_eq!(incoming.traceparent().flags.to_u8(), 0x02);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTraceContext {
    traceparent: Traceparent,
    tracestate: Tracestate,
    /// What the remote `SpanContext` was given: `tracestate` as far as the
    /// SDK's `TraceState` takes it. A span whose state differs was changed
    /// (by a sampler) and the change is carried over.
    sdk_tracestate: TraceState,
}

impl IncomingTraceContext {
    fn new(traceparent: Traceparent, tracestate: Tracestate) -> Self {
        let sdk_tracestate = tracestate.to_trace_state();
        Self {
            traceparent,
            tracestate,
            sdk_tracestate,
        }
    }

    /// The one in `cx`, if a [`TraceContextPropagator`] extracted one.
    pub fn from_context(cx: &Context) -> Option<&Self> {
        cx.get::<Self>()
    }

    /// The `traceparent` received.
    pub fn traceparent(&self) -> &Traceparent {
        &self.traceparent
    }

    /// The `tracestate` received (empty if absent or invalid).
    pub fn tracestate(&self) -> &Tracestate {
        &self.tracestate
    }

    /// The remote parent as the SDK sees it: ids, `sampled` and `random`
    /// flags, and the SDK's view of `tracestate`.
    pub fn span_context(&self) -> SpanContext {
        SpanContext::new(
            self.traceparent.trace_id,
            self.traceparent.parent_id,
            self.traceparent.flags,
            true,
            self.sdk_tracestate.clone(),
        )
    }

    fn random_flag(&self) -> u8 {
        self.traceparent.flags.to_u8() & RANDOM_FLAG
    }

    /// The list to send for a span of this trace whose SDK state is
    /// `current`. Unchanged: the list as received. Changed (an SDK
    /// `insert`/`delete` moves or drops keys): deleted keys are removed and
    /// the inserted or updated ones — the front of `current` before its
    /// untouched tail — are inserted, which moves them to the front.
    fn outgoing_tracestate(&self, current: &TraceState) -> Tracestate {
        if *current == self.sdk_tracestate {
            return self.tracestate.clone();
        }
        let mut out = self.tracestate.clone();
        for (key, _) in &self.sdk_tracestate {
            if current.get(key).is_none() {
                out.remove(key);
            }
        }
        let untouched: Vec<(&str, &str)> = (&self.sdk_tracestate)
            .into_iter()
            .filter(|(key, value)| current.get(key) == Some(*value))
            .collect();
        let current: Vec<(&str, &str)> = current.into_iter().collect();
        let tail = current
            .iter()
            .rev()
            .zip(untouched.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        for (key, value) in current[..current.len() - tail].iter().rev() {
            // Only keys and values the SDK accepted reach here; those the
            // Level 2 grammar still refuses (a trailing blank) are skipped.
            let _ = out.insert(key, value);
        }
        out
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
