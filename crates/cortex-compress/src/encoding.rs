//! Content codings and `Accept-Encoding` negotiation (RFC 9110 §12.5.3).

use http::HeaderMap;
use http::header::ACCEPT_ENCODING;

/// A content coding this crate can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Brotli (`br`).
    Brotli,
    /// Zstandard (`zstd`).
    Zstd,
    /// gzip (`gzip`, alias `x-gzip`).
    Gzip,
    /// zlib-framed deflate (`deflate`), as RFC 9110 defines it.
    Deflate,
}

impl Encoding {
    /// The token for `Content-Encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Brotli => "br",
            Self::Zstd => "zstd",
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
        }
    }

    /// Whether this build can produce and decode it (its cargo feature).
    pub const fn is_enabled(self) -> bool {
        match self {
            Self::Brotli => cfg!(feature = "br"),
            Self::Zstd => cfg!(feature = "zstd"),
            Self::Gzip => cfg!(feature = "gzip"),
            Self::Deflate => cfg!(feature = "deflate"),
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Brotli => 0,
            Self::Zstd => 1,
            Self::Gzip => 2,
            Self::Deflate => 3,
        }
    }

    pub(crate) fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("br") {
            Some(Self::Brotli)
        } else if token.eq_ignore_ascii_case("zstd") {
            Some(Self::Zstd)
        } else if token.eq_ignore_ascii_case("gzip") || token.eq_ignore_ascii_case("x-gzip") {
            Some(Self::Gzip)
        } else if token.eq_ignore_ascii_case("deflate") {
            Some(Self::Deflate)
        } else {
            None
        }
    }
}

/// What the client accepts, decided against the server's preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// Compress with this coding.
    Encode(Encoding),
    /// Send the body as it is.
    Identity,
}

/// Thousandths: q-values have at most three decimals.
type Quality = u16;

/// Parses every `Accept-Encoding` value and picks a coding.
///
/// Codings are case-insensitive, `x-gzip` means gzip, `q` has up to three
/// decimals and `q=0` excludes, `*` covers codings not listed. The highest
/// quality wins; ties go to the earlier entry of `preference` (the
/// server's order). Malformed entries are skipped, never an error.
///
/// Identity is always the fallback: even with `identity;q=0` or `*;q=0` and
/// nothing else acceptable, the response goes out uncompressed rather than
/// as a `406` — a body the client may not want beats no body, which is what
/// browsers and tower-http do too.
///
/// ```
/// use cortex_compress::{Encoding, Negotiated, negotiate};
/// use http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("accept-encoding", "gzip;q=0.8, br, *;q=0".parse().unwrap());
/// let preference = [Encoding::Brotli, Encoding::Zstd, Encoding::Gzip, Encoding::Deflate];
/// assert_eq!(negotiate(&headers, &preference), Negotiated::Encode(Encoding::Brotli));
/// ```
pub fn negotiate(headers: &HeaderMap, preference: &[Encoding]) -> Negotiated {
    // One slot per coding: negotiation allocates nothing.
    let mut listed: [Option<Quality>; 4] = [None; 4];
    let mut wildcard: Option<Quality> = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for entry in value.split(',') {
            let mut parts = entry.split(';');
            let token = parts.next().unwrap_or_default().trim();
            if token.is_empty() {
                continue;
            }
            let Some(quality) = quality(parts) else {
                continue;
            };
            if token == "*" {
                wildcard = Some(wildcard.map_or(quality, |q| q.max(quality)));
            } else if let Some(encoding) = Encoding::from_token(token) {
                let slot = &mut listed[encoding.index()];
                *slot = Some(slot.map_or(quality, |q| q.max(quality)));
            }
        }
    }
    let quality_of = |encoding: Encoding| listed[encoding.index()].or(wildcard).unwrap_or(0);
    let mut best: Option<(Encoding, Quality)> = None;
    for &encoding in preference {
        let q = quality_of(encoding);
        if q > 0 && best.is_none_or(|(_, best_q)| q > best_q) {
            best = Some((encoding, q));
        }
    }
    best.map_or(Negotiated::Identity, |(encoding, _)| {
        Negotiated::Encode(encoding)
    })
}

/// The `q` parameter in thousandths (1000 when absent); `None` when it is
/// malformed, which makes the entry skipped.
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> Option<Quality> {
    let mut quality = 1000;
    for param in params {
        let (key, value) = param.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        quality = parse_qvalue(value.trim())?;
    }
    Some(quality)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn parse_qvalue(value: &str) -> Option<Quality> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: Quality = 0;
    for (i, digit) in fraction.bytes().enumerate() {
        thousandths += Quality::from(digit - b'0') * [100, 10, 1][i];
    }
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Encoding; 4] = [
        Encoding::Brotli,
        Encoding::Zstd,
        Encoding::Gzip,
        Encoding::Deflate,
    ];

    fn pick(values: &[&str]) -> Negotiated {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(ACCEPT_ENCODING, value.parse().unwrap());
        }
        negotiate(&headers, &ALL)
    }

    #[test]
    fn server_preference_breaks_ties() {
        assert_eq!(
            pick(&["gzip, deflate, br, zstd"]),
            Negotiated::Encode(Encoding::Brotli)
        );
        assert_eq!(pick(&["gzip, zstd"]), Negotiated::Encode(Encoding::Zstd));
        assert_eq!(pick(&["*"]), Negotiated::Encode(Encoding::Brotli));
    }

    #[test]
    fn quality_values_decide_first() {
        assert_eq!(
            pick(&["br;q=0.5, gzip;q=0.9"]),
            Negotiated::Encode(Encoding::Gzip)
        );
        assert_eq!(
            pick(&["br;q=0.001, gzip;q=0"]),
            Negotiated::Encode(Encoding::Brotli)
        );
        assert_eq!(pick(&["BR;Q=1.000"]), Negotiated::Encode(Encoding::Brotli));
        assert_eq!(pick(&["x-gzip"]), Negotiated::Encode(Encoding::Gzip));
        assert_eq!(
            pick(&["gzip;q=0.8", "br;q=0.9"]),
            Negotiated::Encode(Encoding::Brotli)
        );
    }

    #[test]
    fn exclusions_and_wildcards() {
        assert_eq!(
            pick(&["*;q=0.5, br;q=0"]),
            Negotiated::Encode(Encoding::Zstd)
        );
        assert_eq!(pick(&["*;q=0"]), Negotiated::Identity);
        assert_eq!(pick(&["identity"]), Negotiated::Identity);
        assert_eq!(pick(&["identity;q=0"]), Negotiated::Identity);
        assert_eq!(pick(&[]), Negotiated::Identity);
        assert_eq!(pick(&["compress, sdch"]), Negotiated::Identity);
    }

    #[test]
    fn malformed_entries_are_skipped() {
        for garbage in [
            "br;q=2",
            "br;q=0.0001",
            "br;q=abc",
            "br;q",
            "br;q=1.5",
            ",,,;;;",
            "br;q=-1",
            "br;q=0.5.5",
        ] {
            let combined = format!("{garbage}, gzip;q=0.1");
            assert_eq!(
                pick(&[&combined]),
                Negotiated::Encode(Encoding::Gzip),
                "{garbage:?}"
            );
        }
    }
}
