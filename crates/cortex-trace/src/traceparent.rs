//! The `traceparent` header, exactly as W3C Trace Context Level 2 says.

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

/// The Level-2 `random` flag: the trace id's right 7 bytes are random.
pub const RANDOM_FLAG: u8 = 0x02;

/// The flags this implementation understands and forwards: `sampled` and
/// `random`. Unknown flags are dropped, as the spec asks of vendors that do
/// not understand them.
const KNOWN_FLAGS: u8 = SAMPLED_FLAG | RANDOM_FLAG;

/// The `sampled` flag.
const SAMPLED_FLAG: u8 = 0x01;

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent {
    /// The version the sender used (0 today; higher versions are parsed by
    /// their first four fields).
    pub version: u8,
    /// The trace id (never all zeros).
    pub trace_id: TraceId,
    /// The caller's span id (never all zeros).
    pub parent_id: SpanId,
    /// `sampled` and `random` flags; unknown bits cleared.
    pub flags: TraceFlags,
}

/// Why a `traceparent` was rejected. Every rejection means "start a new
/// trace and drop `tracestate`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceparentError {
    /// The header is absent.
    #[error("no traceparent header")]
    Missing,
    /// The header appears more than once.
    #[error("traceparent appears more than once")]
    Duplicated,
    /// Version `ff` is forbidden.
    #[error("traceparent version ff is invalid")]
    ForbiddenVersion,
    /// Too short, or version 00 with trailing data, or a future version
    /// whose extra data is not `-`-separated.
    #[error("traceparent has the wrong length")]
    Length,
    /// A field separator is missing.
    #[error("traceparent fields must be separated by '-'")]
    Separator,
    /// A field holds characters other than lowercase hex.
    #[error("traceparent fields must be lowercase hex")]
    NotLowercaseHex,
    /// The trace id is all zeros.
    #[error("traceparent trace-id is all zeros")]
    ZeroTraceId,
    /// The parent id is all zeros.
    #[error("traceparent parent-id is all zeros")]
    ZeroParentId,
}

/// `00-` + 32 + `-` + 16 + `-` + 2.
const VERSION_00_LEN: usize = 55;

impl Traceparent {
    /// Parses every value the carrier had for `traceparent` (more than one
    /// is an error). Surrounding spaces and tabs are ignored.
    pub fn parse_all(values: &[&str]) -> Result<Self, TraceparentError> {
        match values {
            [] => Err(TraceparentError::Missing),
            [value] => Self::parse(value),
            _ => Err(TraceparentError::Duplicated),
        }
    }

    /// Parses one header value.
    pub fn parse(value: &str) -> Result<Self, TraceparentError> {
        let value = value.trim_matches([' ', '\t']).as_bytes();
        if value.len() < VERSION_00_LEN {
            return Err(TraceparentError::Length);
        }
        let version = hex_u8(&value[0..2])?;
        if version == 0xff {
            return Err(TraceparentError::ForbiddenVersion);
        }
        if version == 0 && value.len() != VERSION_00_LEN {
            return Err(TraceparentError::Length);
        }
        // A future version may append fields, but only after a '-'.
        if value.len() > VERSION_00_LEN && value[VERSION_00_LEN] != b'-' {
            return Err(TraceparentError::Length);
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return Err(TraceparentError::Separator);
        }
        let trace_id = hex_u128(&value[3..35])?;
        let parent_id = hex_u64(&value[36..52])?;
        let flags = hex_u8(&value[53..55])?;
        if trace_id == 0 {
            return Err(TraceparentError::ZeroTraceId);
        }
        if parent_id == 0 {
            return Err(TraceparentError::ZeroParentId);
        }
        Ok(Self {
            version,
            trace_id: TraceId::from(trace_id),
            parent_id: SpanId::from(parent_id),
            flags: TraceFlags::new(flags & KNOWN_FLAGS),
        })
    }

    /// Formats as version 00, the only version this implementation emits.
    pub fn to_header(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; VERSION_00_LEN];
        let mut put = |start: usize, bytes: &[u8]| {
            for (i, byte) in bytes.iter().enumerate() {
                out[start + 2 * i] = HEX[usize::from(byte >> 4)];
                out[start + 2 * i + 1] = HEX[usize::from(byte & 0xf)];
            }
        };
        put(0, &[0]);
        put(3, &self.trace_id.to_bytes());
        put(36, &self.parent_id.to_bytes());
        put(53, &[self.flags.to_u8() & KNOWN_FLAGS]);
        // Only ASCII hex digits and dashes were written.
        out.iter().map(|&b| char::from(b)).collect()
    }
}

fn hex_digit(byte: u8) -> Result<u8, TraceparentError> {
    match byte {
        b'0'..=b'9' => Ok(byte - b'0'),
        b'a'..=b'f' => Ok(byte - b'a' + 10),
        _ => Err(TraceparentError::NotLowercaseHex),
    }
}

fn hex_u8(digits: &[u8]) -> Result<u8, TraceparentError> {
    Ok((hex_digit(digits[0])? << 4) | hex_digit(digits[1])?)
}

fn hex_u64(digits: &[u8]) -> Result<u64, TraceparentError> {
    digits
        .iter()
        .try_fold(0u64, |acc, &d| Ok((acc << 4) | u64::from(hex_digit(d)?)))
}

fn hex_u128(digits: &[u8]) -> Result<u128, TraceparentError> {
    digits
        .iter()
        .try_fold(0u128, |acc, &d| Ok((acc << 4) | u128::from(hex_digit(d)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let parsed = Traceparent::parse(VALID).unwrap();
        assert_eq!(parsed.version, 0);
        assert_eq!(
            parsed.trace_id,
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            parsed.parent_id,
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
        assert!(parsed.flags.is_sampled());
        assert_eq!(parsed.to_header(), VALID);
    }

    #[test]
    fn trims_surrounding_whitespace() {
        assert!(Traceparent::parse(&format!(" \t{VALID}\t ")).is_ok());
    }

    #[test]
    fn keeps_sampled_and_random_flags_and_drops_unknown_ones() {
        let random = VALID.replace("-01", "-03");
        assert_eq!(Traceparent::parse(&random).unwrap().flags.to_u8(), 0x03);
        let unknown = VALID.replace("-01", "-ff");
        let parsed = Traceparent::parse(&unknown).unwrap();
        assert_eq!(parsed.flags.to_u8(), 0x03);
        assert!(parsed.to_header().ends_with("-03"));
    }

    #[test]
    fn rejects_what_the_spec_rejects() {
        use TraceparentError as E;
        let cases: &[(&str, E)] = &[
            ("", E::Length),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                E::ForbiddenVersion,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                E::Length,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
                E::Length,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                E::ZeroTraceId,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                E::ZeroParentId,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                E::NotLowercaseHex,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
                E::NotLowercaseHex,
            ),
            (
                "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                E::NotLowercaseHex,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
                E::Separator,
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
                E::Separator,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                E::Length,
            ),
            (
                "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
                E::Length,
            ),
        ];
        for (value, error) in cases {
            assert_eq!(Traceparent::parse(value), Err(*error), "{value:?}");
        }
        assert_eq!(Traceparent::parse_all(&[]), Err(E::Missing));
        assert_eq!(Traceparent::parse_all(&[VALID, VALID]), Err(E::Duplicated));
    }

    #[test]
    fn future_versions_use_the_first_four_fields() {
        let future =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        let parsed = Traceparent::parse(future).unwrap();
        assert_eq!(parsed.version, 0xcc);
        assert!(parsed.flags.is_sampled());
        let exact = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(Traceparent::parse(exact).is_ok());
        // We answer in the version we speak.
        assert!(parsed.to_header().starts_with("00-"));
    }
}
