//! The `tracestate` header, exactly as W3C Trace Context Level 2 says.

use opentelemetry::trace::TraceState;

/// The most list members a `tracestate` may carry.
pub const MAX_MEMBERS: usize = 32;

/// Why a `tracestate` was dropped. Any of these drops the *whole* header
/// (the trace itself continues).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TracestateError {
    /// More than 32 non-empty members.
    #[error("tracestate has more than 32 members")]
    TooManyMembers,
    /// A member is not `key=value` per the grammar.
    #[error("tracestate member is not key=value")]
    MalformedMember,
    /// A key breaks the key grammar.
    #[error("tracestate key is invalid")]
    InvalidKey,
    /// A value breaks the value grammar.
    #[error("tracestate value is invalid")]
    InvalidValue,
    /// The same key appears twice.
    #[error("tracestate has a duplicated key")]
    DuplicateKey,
}

/// Parses every `tracestate` value of a request, combined in order as one
/// list. Empty members (`a=1,,b=2`, surrounding spaces) are dropped. No
/// header at all is an empty state.
pub fn parse_tracestate(values: &[&str]) -> Result<TraceState, TracestateError> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    for value in values {
        for member in value.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            if members.len() == MAX_MEMBERS {
                return Err(TracestateError::TooManyMembers);
            }
            let (key, value) = member
                .split_once('=')
                .ok_or(TracestateError::MalformedMember)?;
            if !valid_key(key) {
                return Err(TracestateError::InvalidKey);
            }
            if !valid_value(value) {
                return Err(TracestateError::InvalidValue);
            }
            if members.iter().any(|(existing, _)| *existing == key) {
                return Err(TracestateError::DuplicateKey);
            }
            members.push((key, value));
        }
    }
    if members.is_empty() {
        return Ok(TraceState::NONE);
    }
    // Our grammar check is the spec's; the SDK type re-validates with its
    // own and must agree, but if it ever refuses, dropping is the rule.
    TraceState::from_key_value(members).map_err(|_| TracestateError::MalformedMember)
}

fn key_char(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'_' | b'-' | b'*' | b'/')
}

/// `simple-key = lcalpha 0*255(keychar)`, or
/// `tenant-id "@" system-id` with `tenant-id = (lcalpha / DIGIT) 0*240(keychar)`
/// and `system-id = lcalpha 0*13(keychar)`.
fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match key.split_once('@') {
        None => {
            !bytes.is_empty()
                && bytes.len() <= 256
                && bytes[0].is_ascii_lowercase()
                && bytes.iter().all(|&b| key_char(b))
        }
        Some((tenant, system)) => {
            let (tenant, system) = (tenant.as_bytes(), system.as_bytes());
            !tenant.is_empty()
                && tenant.len() <= 241
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && tenant.iter().all(|&b| key_char(b))
                && !system.is_empty()
                && system.len() <= 14
                && system[0].is_ascii_lowercase()
                && system.iter().all(|&b| key_char(b))
        }
    }
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII without `,` and `=`,
/// spaces allowed inside but not at the end; 1 to 256 characters.
fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let nblk = |b: u8| (0x21..=0x7e).contains(&b) && b != b',' && b != b'=';
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes.iter().all(|&b| b == b' ' || nblk(b))
        && bytes.last().is_some_and(|&b| nblk(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combines_headers_in_order_and_drops_empty_members() {
        let state =
            parse_tracestate(&["congo=t61rcWkgMzE", " , rojo=00f067aa0ba902b7 ,,"]).unwrap();
        assert_eq!(state.header(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
        assert_eq!(parse_tracestate(&[]).unwrap().header(), "");
        assert_eq!(parse_tracestate(&[" , "]).unwrap().header(), "");
    }

    #[test]
    fn accepts_the_grammar_edges() {
        let max_simple = format!("a{}=v", "b".repeat(255));
        let tenant = format!("{}@sys=v", "1".repeat(241));
        let value = format!("k={}", "x".repeat(256));
        for member in [
            "foo=bar",
            "foo-_*/9=bar",
            "1tenant@vendor=value with spaces",
            max_simple.as_str(),
            tenant.as_str(),
            value.as_str(),
            "k=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~",
        ] {
            assert!(parse_tracestate(&[member]).is_ok(), "{member:?}");
        }
    }

    #[test]
    fn any_bad_member_drops_the_whole_state() {
        use TracestateError as E;
        let too_long_key = format!("a{}=v", "b".repeat(256));
        let too_long_value = format!("k={}", "x".repeat(257));
        let cases: Vec<(String, E)> = vec![
            ("foo".into(), E::MalformedMember),
            ("Foo=bar".into(), E::InvalidKey),
            ("1foo=bar".into(), E::InvalidKey),
            ("foo@1sys=bar".into(), E::InvalidKey),
            ("foo@systemtoolongname=bar".into(), E::InvalidKey),
            ("@sys=bar".into(), E::InvalidKey),
            (too_long_key, E::InvalidKey),
            ("foo=".into(), E::InvalidValue),
            ("foo=b\tar".into(), E::InvalidValue),
            ("foo=b=ar".into(), E::InvalidValue),
            ("foo=bär".into(), E::InvalidValue),
            (too_long_value, E::InvalidValue),
            ("foo=1,foo=2".into(), E::DuplicateKey),
        ];
        for (member, error) in cases {
            let with_good = format!("good=1,{member}");
            assert_eq!(
                parse_tracestate(&[&with_good]).unwrap_err(),
                error,
                "{member:?}"
            );
        }
    }

    #[test]
    fn more_than_32_members_drops_the_state() {
        let members: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            parse_tracestate(&[&members.join(",")]),
            Err(TracestateError::TooManyMembers)
        );
        let exactly: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        let split = [exactly[..16].join(","), exactly[16..].join(",")];
        assert!(parse_tracestate(&[&split[0], &split[1]]).is_ok());
    }
}
