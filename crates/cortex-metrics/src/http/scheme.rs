//! The `url_scheme` of a request (OpenTelemetry `url.scheme`: "the scheme
//! of the original client request, if known (e.g. from `Forwarded#proto`,
//! `X-Forwarded-Proto`, or a similar header). Otherwise, the scheme of the
//! immediate peer request").
//!
//! cortex-trace's server layer resolves `url.scheme` the same way, so a
//! span and its request's series agree.

use http::header::{FORWARDED, HeaderName};
use http::{HeaderMap, Uri};

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Every value `url_scheme` can take: the index is what
/// [`url_scheme_index`] returns.
pub(crate) const SCHEME_LABELS: [&str; 2] = ["http", "https"];

/// The index into [`SCHEME_LABELS`] of a request's scheme, from the first
/// of these that names `http` or `https` (case-insensitively):
///
/// 1. the `proto` of the first `Forwarded` element (the client's hop);
/// 2. the first `X-Forwarded-Proto` value;
/// 3. the request target's scheme (HTTP/1.1 absolute-form, HTTP/2
///    `:scheme`);
/// 4. `https` if the server's own listener speaks TLS
///    (`served_over_tls`), else `http`.
///
/// Any other value is ignored, so a client can move a request between the
/// two series at most, never invent a third.
pub(crate) fn url_scheme_index(headers: &HeaderMap, uri: &Uri, served_over_tls: bool) -> usize {
    forwarded_proto(headers)
        .or_else(|| {
            let value = headers.get(X_FORWARDED_PROTO)?.to_str().ok()?;
            known(value.split(',').next()?)
        })
        .or_else(|| known(uri.scheme_str()?))
        .unwrap_or(usize::from(served_over_tls))
}

/// `proto=` of the first element of `Forwarded` (RFC 7239 §5.4).
fn forwarded_proto(headers: &HeaderMap) -> Option<usize> {
    let value = headers.get(FORWARDED)?.to_str().ok()?;
    let first = value.split(',').next()?;
    first.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("proto") {
            known(value.trim().trim_matches('"'))
        } else {
            None
        }
    })
}

fn known(scheme: &str) -> Option<usize> {
    // Quoted or not, as cortex-trace reads it, so a span and its series agree.
    let scheme = scheme.trim().trim_matches('"');
    SCHEME_LABELS
        .iter()
        .position(|known| known.eq_ignore_ascii_case(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(headers: &[(&'static str, &'static str)], uri: &str, tls: bool) -> &'static str {
        let headers: HeaderMap = headers
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect();
        SCHEME_LABELS[url_scheme_index(&headers, &uri.parse().unwrap(), tls)]
    }

    #[test]
    fn proxies_headers_then_target_then_listener() {
        assert_eq!(scheme(&[], "/x", false), "http");
        assert_eq!(scheme(&[], "/x", true), "https");
        assert_eq!(scheme(&[], "https://example.com/x", false), "https");
        assert_eq!(scheme(&[], "http://example.com/x", true), "http");
        let proxied = [("x-forwarded-proto", "HTTPS, http")];
        assert_eq!(scheme(&proxied, "/x", false), "https");
        let forwarded = [
            (
                "forwarded",
                r#"for=192.0.2.60;proto="https";by=203.0.113.43, proto=http"#,
            ),
            ("x-forwarded-proto", "http"),
        ];
        assert_eq!(scheme(&forwarded, "http://example.com/", false), "https");
    }

    #[test]
    fn other_schemes_fall_through() {
        assert_eq!(
            scheme(&[("x-forwarded-proto", "gopher")], "/x", true),
            "https"
        );
        assert_eq!(
            scheme(&[("forwarded", "for=x;proto=ws")], "/x", false),
            "http"
        );
        assert_eq!(scheme(&[], "ftp://example.com/x", false), "http");
    }
}
