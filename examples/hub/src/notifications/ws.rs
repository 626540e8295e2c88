//! The WebSocket transport: one task per connection that writes queued
//! messages, pings, and reads the client's commands.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use problem_details::{ProblemDetails, ProblemType};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{CloseReason, Membership, Notifier, Transport, valid_room};

/// The query of both transports.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Connect {
    /// Rooms to join at once, comma-separated: `orders` (every order's
    /// events), an order id (that order's events), `alerts`.
    #[param(example = "orders,42,alerts")]
    pub(crate) rooms: Option<String>,
}

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Command {
    Join { room: String },
    Leave { room: String },
    Ping,
}

/// A WebSocket of order events and alerts, in rooms.
///
/// Messages are JSON text: `{"type":"order","event":{…}}` (an order
/// event) and `{"type":"alert","alert":{…}}`. The client may send
/// `{"op":"join","room"}`, `{"op":"leave","room"}` and `{"op":"ping"}`;
/// each is answered (`joined`, `left`, `pong`, or `error`). A slow
/// consumer is closed with 1008 `slow consumer`, a client over the
/// message rate with 1008 `rate limited`, an idle one with 1001 `idle`.
#[utoipa::path(
    get,
    path = "/api/notifications/ws",
    tag = "notifications",
    params(Connect),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket"),
        (status = 403, description = "a browser `Origin` other than the Hub's own (or an allowed one)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 422, description = "a bad room list: a name that is not 1 to 64 of a-z, 0-9, `_` and `-`, or more rooms than a connection may join (32 by default)", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 426, description = "not a WebSocket upgrade request", body = crate::openapi::Problem, content_type = "application/problem+json"),
        (status = 503, description = "too many connections, or shutting down", body = crate::openapi::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds"))),
    ),
)]
pub(crate) async fn upgrade(
    State(notifier): State<Notifier>,
    headers: HeaderMap,
    Query(connect): Query<Connect>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ProblemDetails::from_status_code(StatusCode::UPGRADE_REQUIRED)
                .with_type(ProblemType::default())
                .with_detail(format!(
                    "this is a WebSocket endpoint: {}",
                    rejection.body_text()
                ))
                .into_response();
        }
    };
    let membership =
        match notifier.connect(Transport::WebSocket, &headers, connect.rooms.as_deref()) {
            Ok(membership) => membership,
            Err(refusal) => return refusal.into_response(),
        };
    let max = notifier.config().max_message_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(|error| tracing::debug!(%error, "a WebSocket upgrade failed"))
        .on_upgrade(move |socket| run(socket, notifier, membership))
}

type Sink = SplitSink<WebSocket, Message>;

/// Sends `message`, giving up after `timeout`.
async fn send(sink: &mut Sink, message: Message, timeout: Duration) -> Result<(), CloseReason> {
    match tokio::time::timeout(timeout, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(CloseReason::Client),
        Err(_) => Err(CloseReason::WriteTimeout),
    }
}

fn text(value: &Value) -> Message {
    Message::Text(value.to_string().into())
}

async fn run(socket: WebSocket, notifier: Notifier, mut membership: Membership) {
    let config = notifier.config().clone();
    let id = membership.id();
    let (mut sink, mut stream) = socket.split();
    let closed = notifier.streams().closed();
    tokio::pin!(closed);
    let mut ping =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    let mut last_heard = Instant::now();
    let mut refusals = 0_u32;
    let welcome = json!({ "type": "welcome", "connection": id });
    let mut reason = send(&mut sink, text(&welcome), config.write_timeout)
        .await
        .err();
    while reason.is_none() {
        let idle = tokio::time::sleep_until(last_heard + config.idle_timeout);
        reason = tokio::select! {
            biased;
            () = &mut closed => Some(CloseReason::Shutdown),
            kicked = membership.kicked.kicked() => Some(kicked),
            queued = membership.receiver.recv() => match queued {
                Some((_, message)) => {
                    let sent = send(&mut sink, Message::Text(message.as_ref().into()), config.write_timeout).await;
                    if sent.is_ok() {
                        notifier.count_sent(Transport::WebSocket);
                    }
                    sent.err()
                }
                // The notifier holds the sender while the connection is
                // registered; gone means it was dropped from the rooms.
                None => Some(CloseReason::SlowConsumer),
            },
            _ = ping.tick() => send(&mut sink, Message::Ping(Default::default()), config.write_timeout).await.err(),
            () = idle => Some(CloseReason::Idle),
            frame = stream.next() => match frame {
                None | Some(Ok(Message::Close(_))) => Some(CloseReason::Client),
                Some(Err(error)) => {
                    let error = error.to_string();
                    // tungstenite's words for a frame over the size limit
                    // or a protocol violation; anything else is the client
                    // going away.
                    if error.contains("Space limit") || error.contains("Protocol") {
                        Some(CloseReason::ProtocolError)
                    } else {
                        Some(CloseReason::Client)
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    last_heard = Instant::now();
                    None
                }
                Some(Ok(message)) => {
                    last_heard = Instant::now();
                    match reply(&notifier, id, &message, &mut refusals) {
                        Reply::Send(answer) => send(&mut sink, text(&answer), config.write_timeout).await.err(),
                        Reply::Close(reason) => Some(reason),
                    }
                }
            },
        };
    }
    let reason = reason.unwrap_or(CloseReason::Client);
    membership.set_close_reason(reason);
    let code = match reason {
        CloseReason::Client => close_code::NORMAL,
        CloseReason::Idle | CloseReason::Shutdown => close_code::AWAY,
        CloseReason::SlowConsumer | CloseReason::RateLimited => close_code::POLICY,
        CloseReason::ProtocolError => close_code::PROTOCOL,
        // The socket is stuck: drop it without another write.
        CloseReason::WriteTimeout => return,
    };
    let frame = CloseFrame {
        code,
        reason: reason.words().into(),
    };
    let _ = send(&mut sink, Message::Close(Some(frame)), config.write_timeout).await;
}

enum Reply {
    Send(Value),
    Close(CloseReason),
}

/// The answer to one client message, after the rate limit.
fn reply(notifier: &Notifier, id: u64, message: &Message, refusals: &mut u32) -> Reply {
    if let Err(limited) = notifier.limiter().try_acquire(Some(&id)) {
        notifier.count_received("rate_limited");
        *refusals += 1;
        if *refusals > notifier.config().max_refusals {
            return Reply::Close(CloseReason::RateLimited);
        }
        let retry_after_ms = limited.retry_after.as_millis();
        return Reply::Send(json!({
            "type": "error",
            "message": format!("rate limited: {} messages per second; retry after {retry_after_ms} ms", notifier.config().messages_per_second),
        }));
    }
    let command = match message {
        Message::Text(text) => serde_json::from_str::<Command>(text.as_str()),
        _ => {
            notifier.count_received("invalid");
            return Reply::Send(json!({ "type": "error", "message": "send JSON text frames" }));
        }
    };
    let answer = match command {
        Err(error) => {
            notifier.count_received("invalid");
            return Reply::Send(json!({
                "type": "error",
                "message": format!("not a command ({error}): send {{\"op\":\"join\"|\"leave\",\"room\":\"orders\"}} or {{\"op\":\"ping\"}}"),
            }));
        }
        Ok(Command::Ping) => json!({ "type": "pong" }),
        Ok(Command::Join { room } | Command::Leave { room }) if !valid_room(&room) => {
            notifier.count_received("invalid");
            return Reply::Send(json!({
                "type": "error",
                "message": format!("room {room:?} is not a room name: 1 to 64 of a-z, 0-9, '_' and '-'"),
            }));
        }
        Ok(Command::Join { room }) => {
            if notifier.join(id, &room) {
                json!({ "type": "joined", "room": room })
            } else {
                json!({
                    "type": "error",
                    "message": format!("at most {} rooms per connection", notifier.config().max_rooms),
                })
            }
        }
        Ok(Command::Leave { room }) => {
            notifier.leave(id, &room);
            json!({ "type": "left", "room": room })
        }
    };
    notifier.count_received("accepted");
    Reply::Send(answer)
}
