//! The compute routes' own refusals, as RFC 9457 `application/problem+json`
//! (the pool's refusals and job failures come from cortex-workers'
//! `IntoResponse`: 429/503 with `Retry-After`, 504, 500).

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use problem_details::ProblemDetails;
use serde::Serialize;

use crate::orders::FieldError;

/// A refusal of a compute route.
#[derive(Debug)]
pub(super) struct Problem(ProblemDetails<Members>);

#[derive(Debug, Serialize)]
struct Members {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

impl Problem {
    fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self(
            ProblemDetails::from_status_code(status)
                .with_type(Uri::from_static(kind))
                .with_detail(detail.into())
                .with_extensions(Members { errors: Vec::new() }),
        )
    }

    /// 422: the request parsed, but `errors` name values out of bounds.
    pub(super) fn invalid(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|error| format!("{}: {}", error.field, error.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut problem = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/invalid-compute-request",
            detail,
        );
        problem.0.extensions.errors = errors;
        problem
    }

    /// An extractor's refusal (query, body, JSON) with its own status: 413
    /// past the body limit, 415 without a JSON content type, 400 for bad
    /// syntax, 422 for a missing or mistyped field.
    pub(super) fn unreadable(status: StatusCode, detail: String) -> Self {
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "/problems/compute-request-too-large"
        } else {
            "/problems/unreadable-compute-request"
        };
        Self::new(status, kind, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}
