//! Which responses are worth compressing.

use http::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};

use super::config::Config;

/// Why a response was sent uncompressed, or `None` if it may be
/// compressed. When several reasons hold, the cheapest to check is the one
/// reported: status and size come first, as they settle most API answers
/// (small JSON) without a header lookup or a media-type parse.
pub(crate) fn skip_reason(
    status: StatusCode,
    headers: &HeaderMap,
    exact_size: Option<u64>,
    config: &Config,
) -> Option<&'static str> {
    let min_size = config.min_size;
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Some("status");
    }
    // The body's own exact size first: it costs no header lookup.
    let size = exact_size.or_else(|| {
        headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    if size.is_some_and(|size| size < min_size) {
        return Some("too_small");
    }
    if headers.contains_key(CONTENT_ENCODING) {
        return Some("already_encoded");
    }
    if headers.contains_key(CONTENT_RANGE) {
        return Some("range");
    }
    if headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|directive| directive.trim().eq_ignore_ascii_case("no-transform"))
    {
        return Some("no_transform");
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let type_allowed = match (&config.allowed_types, content_type) {
        (Some(allowed), Some(content_type)) => allowed_type(allowed, content_type),
        // An allow-list cannot vouch for a body of unknown type.
        (Some(_), None) => false,
        (None, Some(content_type)) => compressible_type(content_type),
        (None, None) => true,
    };
    if !type_allowed {
        return Some("content_type");
    }
    if config.skip_rules.iter().any(|rule| rule(status, headers)) {
        return Some("rule");
    }
    None
}

fn allowed_type(allowed: &[String], content_type: &str) -> bool {
    // Entries are lowercase (the builder lowers them); the header is
    // compared without a lowercase copy, as this runs on every response.
    let essence = media_essence(content_type);
    allowed.iter().any(|entry| {
        if entry.ends_with('/') {
            essence
                .get(..entry.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(entry))
        } else {
            essence.eq_ignore_ascii_case(entry)
        }
    })
}

/// The `type/subtype` of a `Content-Type`, parameters and spaces cut.
fn media_essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// Already-compressed media and gRPC are not worth (or not allowed) another
/// pass; SVG is text and compresses well.
fn compressible_type(content_type: &str) -> bool {
    let essence = media_essence(content_type);
    if essence.eq_ignore_ascii_case("image/svg+xml") {
        return true;
    }
    let (kind, subtype) = essence.split_once('/').unwrap_or((essence, ""));
    let is = |name: &str, names: &[&str]| names.iter().any(|n| name.eq_ignore_ascii_case(n));
    if is(kind, &["image", "audio", "video", "font"]) {
        return false;
    }
    !is(
        subtype,
        &[
            "zip",
            "gzip",
            "x-gzip",
            "zstd",
            "x-bzip2",
            "x-7z-compressed",
            "x-rar-compressed",
            "vnd.rar",
            "x-xz",
            "x-tar",
            "octet-stream",
            "wasm",
            "pdf",
        ],
    ) && !subtype
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(
        status: u16,
        headers: &[(&'static str, &'static str)],
        size: Option<u64>,
    ) -> Option<&'static str> {
        let headers: HeaderMap = headers
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect();
        let config = crate::CompressionLayer::new().config;
        skip_reason(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            size,
            &config,
        )
    }

    #[test]
    fn allow_lists_and_rules_narrow_what_compresses() {
        let layer = crate::CompressionLayer::new()
            .only_content_types(["text/*", "application/json"])
            .skip_when(|status, _| status == StatusCode::NOT_FOUND);
        let headers = |value: &'static str| -> HeaderMap {
            [(http::header::CONTENT_TYPE, value.parse().unwrap())]
                .into_iter()
                .collect()
        };
        let reason = |status: u16, value| {
            skip_reason(
                StatusCode::from_u16(status).unwrap(),
                &headers(value),
                None,
                &layer.config,
            )
        };
        assert_eq!(reason(200, "text/html; charset=utf-8"), None);
        assert_eq!(reason(200, "application/json"), None);
        assert_eq!(reason(200, "application/xml"), Some("content_type"));
        assert_eq!(reason(404, "text/plain"), Some("rule"));
    }

    #[test]
    fn skips_what_must_not_or_need_not_be_compressed() {
        assert_eq!(skip(204, &[], None), Some("status"));
        assert_eq!(skip(304, &[], None), Some("status"));
        assert_eq!(
            skip(200, &[("content-encoding", "gzip")], None),
            Some("already_encoded")
        );
        assert_eq!(
            skip(206, &[("content-range", "bytes 0-9/100")], None),
            Some("range")
        );
        assert_eq!(
            skip(200, &[("cache-control", "public, No-Transform")], None),
            Some("no_transform")
        );
        assert_eq!(
            skip(200, &[("content-type", "image/png")], None),
            Some("content_type")
        );
        assert_eq!(
            skip(200, &[("content-type", "application/grpc+proto")], None),
            Some("content_type")
        );
        assert_eq!(
            skip(200, &[("content-type", "application/zip")], None),
            Some("content_type")
        );
        assert_eq!(
            skip(200, &[("content-length", "10")], None),
            Some("too_small")
        );
        assert_eq!(skip(200, &[], Some(10)), Some("too_small"));
    }

    #[test]
    fn compresses_text_svg_json_and_unknown_sizes() {
        assert_eq!(skip(200, &[("content-type", "image/svg+xml")], None), None);
        assert_eq!(
            skip(
                200,
                &[("content-type", "application/json; charset=utf-8")],
                None
            ),
            None
        );
        assert_eq!(
            skip(200, &[("content-type", "text/event-stream")], None),
            None
        );
        assert_eq!(skip(200, &[], None), None);
        assert_eq!(skip(500, &[("content-length", "5000")], None), None);
    }
}
