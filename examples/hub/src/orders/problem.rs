//! The order routes' refusals, as RFC 9457 `application/problem+json`.
//!
//! Every refusal has `type`, `title`, `status` and `detail`; an invalid
//! order adds `errors` (one `{field, message}` per bad field) and a full
//! order book adds `retry_after` (seconds, also sent as `Retry-After`).
//! `error` repeats `detail` for clients written against the Hub's earlier
//! `{"error": "..."}` bodies.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use problem_details::ProblemDetails;
use serde::Serialize;

/// One invalid field of a request (an order, a compute job).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name in the request body.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// A refusal of an order route.
#[derive(Debug)]
pub(super) struct Problem {
    details: ProblemDetails<Members>,
    retry_after: Option<Duration>,
}

/// The extension members a Hub problem may carry.
#[derive(Debug, Serialize)]
struct Members {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    error: String,
}

impl Problem {
    /// A problem of `kind` (a path under `/problems/`, resolved against the
    /// Hub's address) with `status` and `detail`.
    fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let details = ProblemDetails::from_status_code(status)
            .with_type(Uri::from_static(kind))
            .with_detail(detail.clone())
            .with_extensions(Members {
                errors: Vec::new(),
                retry_after: None,
                error: detail,
            });
        Self {
            details,
            retry_after: None,
        }
    }

    /// 422: the order parsed, but `errors` name fields out of bounds.
    pub(super) fn invalid_order(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|error| format!("{}: {}", error.field, error.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-order",
            detail,
        );
        problem.details.extensions.errors = errors;
        problem
    }

    /// The JSON extractor's refusal with its own status: 413 over the body
    /// limit, 415 without a JSON content type, 400 for bad syntax, 422 for
    /// a missing or mistyped field.
    pub(super) fn unreadable_order(rejection: &JsonRejection) -> Self {
        let status = rejection.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "/problems/order-too-large"
        } else {
            "/problems/unreadable-order"
        };
        Self::new(status, kind, rejection.body_text())
    }

    /// 503 with `Retry-After`: `max` orders are pending or processing.
    pub(super) fn too_many_orders(max: usize, retry_after: Duration) -> Self {
        let mut problem = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "/problems/too-many-orders",
            format!("too many orders in flight (at most {max} pending or processing)"),
        );
        problem.details.extensions.retry_after = Some(whole_seconds(retry_after));
        problem.retry_after = Some(retry_after);
        problem
    }

    /// 404: no such order, or it finished too long ago to be kept.
    pub(super) fn no_order(id: u64) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "/problems/no-such-order",
            format!("no order {id}"),
        )
    }

    /// 404: the order has no live actor on any node (it is final, or
    /// unknown).
    pub(super) fn no_live_actor(id: u64) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "/problems/no-live-order-actor",
            format!(
                "order {id} has no live actor: it is final or unknown (GET /api/orders/{id} has its log)"
            ),
        )
    }

    /// 503: the actor system could not take the order or answer for it.
    pub(super) fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "/problems/orders-unavailable",
            detail,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = self.details.into_response();
        if let Some(retry_after) = self.retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(whole_seconds(retry_after)),
            );
        }
        response
    }
}

/// `Retry-After` counts whole seconds: round up, and never say 0.
fn whole_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    seconds.max(1)
}
