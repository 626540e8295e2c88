//! The server-sent-event transport: the same messages as the WebSocket, as
//! `event: order` / `event: alert`, for clients that cannot speak it.
//!
//! The stream starts with `event: welcome` and ends with `event: close`
//! (`data: {"reason": ...}`) when the connection is kicked or the Hub shuts
//! down. A slow consumer leaves its rooms at once, so its queue stops
//! growing; its socket closes once the client reads the close event or
//! goes away (a write cannot be timed out from inside a response body).

use std::convert::Infallible;
use std::pin::Pin;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde_json::json;

use super::ws::Connect;
use super::{CloseReason, Membership, Notifier, Transport};

struct Open {
    membership: Membership,
    notifier: Notifier,
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
    welcomed: bool,
}

/// The same messages as the WebSocket, as server-sent events.
///
/// `event: welcome` first, then `event: order` and `event: alert` (the
/// WebSocket's JSON as `data`), keep-alive comments, and `event: close`
/// (`data: {"reason"}`) when the connection is closed.
#[utoipa::path(
    get,
    path = "/api/notifications/sse",
    tag = "notifications",
    operation_id = "notification_events",
    params(Connect),
    responses(
        (status = 200, description = "the event stream (rooms fixed at connect)", body = String, content_type = "text/event-stream"),
        (status = 403, description = "a browser `Origin` other than the Hub's own (or an allowed one)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "a bad room list: a name that is not 1 to 64 of a-z, 0-9, `_` and `-`, or more rooms than a connection may join (32 by default)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "too many connections, or shutting down", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds"))),
    ),
)]
pub(crate) async fn stream(
    State(notifier): State<Notifier>,
    headers: HeaderMap,
    Query(connect): Query<Connect>,
) -> Response {
    let membership = match notifier.connect(Transport::Sse, &headers, connect.rooms.as_deref()) {
        Ok(membership) => membership,
        Err(refusal) => return refusal.into_response(),
    };
    let keep_alive = KeepAlive::new().interval(notifier.config().ping_interval);
    let open = Open {
        membership,
        closed: Box::pin(notifier.streams().closed()),
        notifier,
        welcomed: false,
    };
    Sse::new(events(open))
        .keep_alive(keep_alive)
        .into_response()
}

fn close_event(reason: CloseReason) -> Event {
    Event::default()
        .event("close")
        .data(json!({ "reason": reason.words() }).to_string())
}

fn events(open: Open) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    futures_util::stream::unfold(Some(open), |open| async move {
        let mut open = open?;
        if !open.welcomed {
            open.welcomed = true;
            let welcome = json!({ "type": "welcome", "connection": open.membership.id() });
            let event = Event::default().event("welcome").data(welcome.to_string());
            return Some((Ok(event), Some(open)));
        }
        let reason = tokio::select! {
            biased;
            () = &mut open.closed => CloseReason::Shutdown,
            kicked = open.membership.kicked.kicked() => kicked,
            queued = open.membership.receiver.recv() => match queued {
                Some((kind, message)) => {
                    open.notifier.count_sent(Transport::Sse);
                    let event = Event::default().event(kind).data(message.as_ref());
                    return Some((Ok(event), Some(open)));
                }
                None => CloseReason::SlowConsumer,
            },
        };
        open.membership.set_close_reason(reason);
        // The last event; the membership drops with `open` after it.
        Some((Ok(close_event(reason)), None))
    })
}
