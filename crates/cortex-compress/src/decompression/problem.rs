//! The layer's own refusals as RFC 9457 `application/problem+json`: 415 for
//! a coding it cannot decode, 413 for a declared length over its limit.

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use problem_details::{JsonProblemDetails, ProblemDetails, ProblemType};
use serde::Serialize;

use crate::Encoding;

/// The media type of every refusal body.
const PROBLEM_JSON: &str = "application/problem+json";

/// A response with `problem` as its body: `about:blank`, the status's
/// reason phrase as title, and `detail`.
fn problem_response<Ext: Serialize>(
    status: StatusCode,
    detail: String,
    extensions: Ext,
) -> Response<Bytes> {
    let problem = ProblemDetails::from_status_code(status)
        .with_type(ProblemType::default())
        .with_detail(detail)
        .with_extensions(extensions);
    // Serialising plain strings and numbers cannot fail; an empty body is
    // still a well-formed refusal if it ever did.
    let body = JsonProblemDetails::from(problem)
        .to_body_string()
        .map(Bytes::from)
        .unwrap_or_default();
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *response.body_mut() = body;
    response
}

/// The 415 answer to a coding this layer cannot decode, listing what it
/// can in `Accept-Encoding` (RFC 9110 §12.5.3).
pub(super) fn unsupported(coding: &str) -> Response<Bytes> {
    let mut response = problem_response(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("request Content-Encoding {coding:?} is not supported"),
        (),
    );
    let mut accepted: Vec<&str> = [
        Encoding::Gzip,
        Encoding::Brotli,
        Encoding::Zstd,
        Encoding::Deflate,
    ]
    .into_iter()
    .filter(|e| e.is_enabled())
    .map(Encoding::as_str)
    .collect();
    accepted.push("identity");
    if let Ok(value) = HeaderValue::from_str(&accepted.join(", ")) {
        response.headers_mut().insert(ACCEPT_ENCODING, value);
    }
    response
}

/// The `max_size` extension member of a 413.
#[derive(Serialize)]
struct SizeLimit {
    max_size: u64,
}

/// The 413 answer to a declared `Content-Length` over the limit, given
/// before the body is read (so HTTP/1.1 never sends `100 Continue`).
pub(super) fn too_large(declared: u64, max_size: u64) -> Response<Bytes> {
    problem_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body of {declared} bytes exceeds the limit of {max_size} bytes"),
        SizeLimit { max_size },
    )
}
