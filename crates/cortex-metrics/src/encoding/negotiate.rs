//! Proactive negotiation of the exposition format (RFC 9110 §12.5.1), with
//! the media-type parameters of the Prometheus exposition formats.

use super::Format;

/// Thousandths: q-values have at most three decimals.
type Quality = u16;

impl Format {
    /// Picks the format to answer a scrape with, from its `Accept` header;
    /// `None` when neither format is acceptable (a `406`).
    ///
    /// Each format takes the quality of the most specific media range that
    /// matches it (RFC 9110 §12.5.1): `application/openmetrics-text` with
    /// `version=1.0.0` or no version, and `text/plain` with `version=0.0.4`
    /// or no version, before `application/*` or `text/*`, before `*/*`.
    /// A range naming another version (`version=0.0.1`, `version=99`,
    /// Prometheus text `1.0.0`) matches nothing served here: it cannot lend
    /// its quality to the format Cortex writes. Other parameters, such as
    /// Prometheus 3's `escaping`, do not affect matching: every name Cortex
    /// writes is valid under every escaping scheme.
    ///
    /// The higher quality wins. On a tie OpenMetrics wins if a range named
    /// it, and Prometheus text otherwise, so `*/*` (curl, browsers) gets
    /// the classic text. A missing header, or one with no well-formed
    /// range, means anything is acceptable: Prometheus text. Malformed
    /// ranges are skipped.
    ///
    /// ```
    /// use cortex_metrics::Format;
    ///
    /// // What Prometheus 3 sends by default.
    /// let prometheus = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
    ///     application/openmetrics-text;version=0.0.1;q=0.5,\
    ///     text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
    ///     text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    /// assert_eq!(Format::negotiate(Some(prometheus)), Some(Format::OpenMetrics));
    /// assert_eq!(Format::negotiate(Some("text/plain")), Some(Format::Prometheus));
    /// assert_eq!(Format::negotiate(None), Some(Format::Prometheus));
    /// // A version this crate does not write is not served as 1.0.0.
    /// let future = "application/openmetrics-text; version=99";
    /// assert_eq!(Format::negotiate(Some(future)), None);
    /// let with_fallback = "application/openmetrics-text; version=99, text/plain; q=0.5";
    /// assert_eq!(Format::negotiate(Some(with_fallback)), Some(Format::Prometheus));
    /// ```
    pub fn negotiate(accept: Option<&str>) -> Option<Self> {
        let Some(accept) = accept else {
            return Some(Self::Prometheus);
        };
        let mut openmetrics = Match::default();
        let mut text = Match::default();
        let mut any_range = false;
        for range in split_unquoted(accept, b',') {
            let Some(range) = MediaRange::parse(range) else {
                continue;
            };
            any_range = true;
            openmetrics.offer(range.specificity_for(Self::OpenMetrics), range.quality);
            text.offer(range.specificity_for(Self::Prometheus), range.quality);
        }
        if !any_range {
            return Some(Self::Prometheus);
        }
        let (om_q, text_q) = (openmetrics.quality(), text.quality());
        let om_named = openmetrics.specificity >= Specificity::Subtype;
        if om_q > 0 && (om_q > text_q || (om_q == text_q && om_named)) {
            Some(Self::OpenMetrics)
        } else if text_q > 0 {
            Some(Self::Prometheus)
        } else {
            None
        }
    }
}

/// How closely a media range names a format; more specific ranges override
/// less specific ones whatever their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
enum Specificity {
    /// The range does not match the format.
    #[default]
    None,
    /// `*/*`.
    Any,
    /// `text/*` or `application/*`.
    Type,
    /// `text/plain` or `application/openmetrics-text` without a version.
    Subtype,
    /// The same with the version this crate writes.
    Version,
}

/// The most specific range seen so far for one format, and its quality.
#[derive(Debug, Default)]
struct Match {
    specificity: Specificity,
    quality: Quality,
}

impl Match {
    fn offer(&mut self, specificity: Specificity, quality: Quality) {
        if specificity == Specificity::None {
            return;
        }
        if specificity > self.specificity {
            *self = Self {
                specificity,
                quality,
            };
        } else if specificity == self.specificity {
            // The same range twice: RFC 9110 leaves it open; be generous.
            self.quality = self.quality.max(quality);
        }
    }

    fn quality(&self) -> Quality {
        if self.specificity == Specificity::None {
            0
        } else {
            self.quality
        }
    }
}

/// One `type/subtype;param=value;q=0.5` element of `Accept`.
struct MediaRange<'a> {
    media_type: &'a str,
    subtype: &'a str,
    /// `None` when absent; `Some` of the unquoted value otherwise.
    version: Option<&'a str>,
    quality: Quality,
}

impl<'a> MediaRange<'a> {
    /// `None` for a malformed element (no `/`, an empty token, a bad `q`).
    fn parse(range: &'a str) -> Option<Self> {
        let mut parts = split_unquoted(range, b';');
        let (media_type, subtype) = parts.next()?.trim().split_once('/')?;
        let (media_type, subtype) = (media_type.trim(), subtype.trim());
        if media_type.is_empty() || subtype.is_empty() || (media_type == "*" && subtype != "*") {
            return None;
        }
        let mut version = None;
        let mut quality = 1000;
        for param in parts {
            let param = param.trim();
            if param.is_empty() {
                continue;
            }
            let (key, value) = param.split_once('=')?;
            let (key, value) = (key.trim(), unquote(value.trim()));
            if key.eq_ignore_ascii_case("q") {
                quality = parse_qvalue(value)?;
            } else if key.eq_ignore_ascii_case("version") {
                version = Some(value);
            }
        }
        Some(Self {
            media_type,
            subtype,
            version,
            quality,
        })
    }

    fn specificity_for(&self, format: Format) -> Specificity {
        let (media_type, subtype, version) = match format {
            Format::OpenMetrics => ("application", "openmetrics-text", "1.0.0"),
            Format::Prometheus => ("text", "plain", "0.0.4"),
        };
        if self.media_type == "*" {
            return Specificity::Any;
        }
        if !self.media_type.eq_ignore_ascii_case(media_type) {
            return Specificity::None;
        }
        if self.subtype == "*" {
            return Specificity::Type;
        }
        if !self.subtype.eq_ignore_ascii_case(subtype) {
            return Specificity::None;
        }
        match self.version {
            None => Specificity::Subtype,
            Some(v) if v == version => Specificity::Version,
            Some(_) => Specificity::None,
        }
    }
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

/// A parameter value without its quotes (escapes are irrelevant to the
/// values compared here, which are plain version numbers).
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Splits on `separator` outside quoted strings, so `version="1,0"` stays
/// one piece.
fn split_unquoted(text: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, byte) in current.bytes().enumerate() {
            match byte {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b if b == separator && !quoted => {
                    rest = Some(&current[i + 1..]);
                    return Some(&current[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(accept: &str) -> Option<Format> {
        Format::negotiate(Some(accept))
    }

    #[test]
    fn quoted_separators_do_not_split() {
        let pieces: Vec<_> = split_unquoted(r#"a;v="1,2;3",b"#, b',').collect();
        assert_eq!(pieces, [r#"a;v="1,2;3""#, "b"]);
        let params: Vec<_> = split_unquoted(r#"a;v="x\";y";q=1"#, b';').collect();
        assert_eq!(params, ["a", r#"v="x\";y""#, "q=1"]);
    }

    #[test]
    fn qvalues_follow_the_rfc_grammar() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.125"), Some(125));
        assert_eq!(parse_qvalue("0"), Some(0));
        for bad in ["1.5", "2", "0.1234", "-0", "abc", "", ".5", "1.001"] {
            assert_eq!(parse_qvalue(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_quoted_version_is_the_same_version() {
        let om = pick(r#"application/openmetrics-text; version="1.0.0""#);
        assert_eq!(om, Some(Format::OpenMetrics));
    }

    #[test]
    fn a_malformed_range_is_skipped_not_fatal() {
        assert_eq!(
            pick("application/openmetrics-text;q=abc, text/plain;q=0.2"),
            Some(Format::Prometheus)
        );
        assert_eq!(pick("*/plain"), Some(Format::Prometheus));
    }
}
