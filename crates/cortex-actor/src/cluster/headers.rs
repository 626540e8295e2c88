//! The headers every cluster message carries, and the W3C trace context
//! in them.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};

/// The node that published the event ...
pub(crate) const ORIGIN: &str = "Cortex-Origin";
/// ... and which process of it (so a process skips only its own events,
/// not those of an earlier process with the same node name).
pub(crate) const INCARNATION: &str = "Cortex-Incarnation";
/// The [`RemoteEvent::NAME`](super::RemoteEvent::NAME) of the payload.
pub(crate) const EVENT: &str = "Cortex-Event";
/// The [`RemoteMessage::NAME`](super::RemoteMessage::NAME) of a request.
pub(crate) const MESSAGE: &str = "Cortex-Message";
/// Why a message is a dead letter, and after how many deliveries.
pub(crate) const DEAD_REASON: &str = "Cortex-Dead-Reason";
pub(crate) const DELIVERIES: &str = "Cortex-Deliveries";
/// JetStream's de-duplication id.
pub(crate) const MSG_ID: &str = "Nats-Msg-Id";

struct NatsInjector<'a>(&'a mut HeaderMap);

impl Injector for NatsInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes `traceparent`/`tracestate`, which never
        // hold a line break; a propagator that wrote a name or value NATS
        // cannot carry is skipped rather than allowed to panic the header
        // map.
        let name_ok = !key.is_empty()
            && key
                .bytes()
                .all(|byte| byte.is_ascii_graphic() && byte != b':');
        if name_ok && !value.contains(['\r', '\n']) {
            self.0.insert(key, value);
        }
    }
}

struct NatsExtractor<'a>(&'a HeaderMap);

impl Extractor for NatsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// Writes the current OpenTelemetry context (the active span, if any) into
/// `headers` with the global propagator.
pub(crate) fn inject_trace(headers: &mut HeaderMap) {
    let cx = opentelemetry::Context::current();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut NatsInjector(headers));
    });
}

/// The context a message was sent in, to run its handling inside.
pub(crate) fn extract_trace(headers: Option<&HeaderMap>) -> opentelemetry::Context {
    match headers {
        Some(headers) => opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&NatsExtractor(headers))
        }),
        None => opentelemetry::Context::current(),
    }
}

pub(crate) fn get<'h>(headers: Option<&'h HeaderMap>, name: &str) -> Option<&'h str> {
    headers?.get(name).map(|value| value.as_str())
}
