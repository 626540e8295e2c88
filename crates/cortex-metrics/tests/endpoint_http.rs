//! The `/metrics` endpoint at the HTTP edges: HEAD, methods it does not
//! serve, and malformed or misplaced credentials.

use axum::Router;
use axum::body::Body;
use cortex_metrics::{MetricsEndpoint, MetricsRegistry};
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn endpoint() -> Router {
    let registry = MetricsRegistry::new();
    registry.counter("jobs_total", "Jobs.").unwrap().inc();
    MetricsEndpoint::new(registry)
        .path("/internal/metrics")
        .bearer_token("t0ken")
        .router()
}

async fn call(
    method: Method,
    path: &str,
    authorization: Option<HeaderValue>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    if let Some(value) = authorization {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let response = endpoint().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn head_is_authorised_like_get_and_answers_the_same_headers() {
    let token = Some(HeaderValue::from_static("Bearer t0ken"));
    let (status, headers, _) = call(Method::HEAD, "/internal/metrics", token.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (_, get_headers, body) = call(Method::GET, "/internal/metrics", token).await;
    assert_eq!(
        headers[header::CONTENT_TYPE],
        get_headers[header::CONTENT_TYPE]
    );
    assert_eq!(headers[header::VARY], "Accept");
    assert!(body.contains("jobs_total 1"), "{body}");

    let (status, headers, _) = call(Method::HEAD, "/internal/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn methods_other_than_get_and_head_get_405_even_with_a_token() {
    for method in [
        Method::POST,
        Method::PUT,
        Method::from_bytes(b"SCRAPE").unwrap(),
    ] {
        let (status, headers, _) = call(
            method.clone(),
            "/internal/metrics",
            Some(HeaderValue::from_static("Bearer t0ken")),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert!(headers.contains_key(header::ALLOW), "{method}");
    }
}

#[tokio::test]
async fn malformed_credentials_are_refused_and_never_echoed() {
    for value in [
        HeaderValue::from_static("Bearer  t0ken"),
        HeaderValue::from_static("Bearer t0ken "),
        HeaderValue::from_static("Bearert0ken"),
        HeaderValue::from_static("Token t0ken"),
        HeaderValue::from_static("Basic dDBrZW46"),
        HeaderValue::from_static(""),
        HeaderValue::from_bytes(b"Bearer t0k\xe9n").unwrap(),
    ] {
        let shown = format!("{value:?}");
        let (status, headers, body) = call(Method::GET, "/internal/metrics", Some(value)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{shown}");
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"metrics\"",
            "{shown}"
        );
        // An RFC 9457 problem that does not echo the credentials.
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{shown}"
        );
        assert!(
            body.starts_with(
                r#"{"type":"about:blank","status":401,"title":"Unauthorized","detail":"#
            ),
            "{shown}: {body}"
        );
        assert!(!body.contains("t0k"), "{shown}: {body}");
    }
}

#[tokio::test]
async fn the_default_path_is_not_served_when_another_is_configured() {
    let (status, _, _) = call(
        Method::GET,
        "/metrics",
        Some(HeaderValue::from_static("Bearer t0ken")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
