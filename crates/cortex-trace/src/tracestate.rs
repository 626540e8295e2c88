//! The `tracestate` header, exactly as W3C Trace Context Level 2 says.
//!
//! Cortex parses and keeps this list itself ([`Tracestate`]) instead of
//! handing it to the SDK's `TraceState`, whose key rules are Level 1's (and
//! refuse, for instance, `foo@=1` or a 14-character system id): what was
//! received and validated here is what is sent on.

use std::fmt;
use std::str::FromStr;

use opentelemetry::trace::TraceState;

/// The most list members a `tracestate` may carry.
pub const MAX_MEMBERS: usize = 32;

/// Truncation removes members longer than this first (the spec's rule).
const LARGE_MEMBER: usize = 128;

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
}

/// A validated `tracestate` list, in order, as W3C Trace Context Level 2
/// defines it.
///
/// Parsing ([`parse_tracestate`], [`str::parse`]) combines every header
/// value, drops empty members and surrounding blanks, and keeps duplicated
/// keys as they came (the spec lets a vendor keep them or drop one, not
/// drop the header). Mutations follow "Mutating the tracestate field": an
/// inserted or updated key moves to the front, the list never exceeds 32
/// members (the right-most goes), and [`truncate_to`](Self::truncate_to)
/// removes members by the spec's truncation order.
///
/// ```
/// use cortex_trace::Tracestate;
///
/// let mut state: Tracestate = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,foo@=1".parse().unwrap();
/// state.insert("congo", "ucfJifl5GOE").unwrap();
/// assert_eq!(state.to_string(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7,foo@=1");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tracestate {
    members: Vec<(String, String)>,
}

/// Parses every `tracestate` value of a request, combined in order as one
/// list. Empty members (`a=1,,b=2`, surrounding spaces) are dropped. No
/// header at all is an empty state.
pub fn parse_tracestate(values: &[&str]) -> Result<Tracestate, TracestateError> {
    let mut members = Vec::new();
    for value in values {
        for member in value.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            // Checked before parsing the member, so a huge header costs no
            // more than 33 members' work.
            if members.len() == MAX_MEMBERS {
                return Err(TracestateError::TooManyMembers);
            }
            let (key, value) = member
                .split_once('=')
                .ok_or(TracestateError::MalformedMember)?;
            validate(key, value)?;
            members.push((key.to_owned(), value.to_owned()));
        }
    }
    Ok(Tracestate { members })
}

impl FromStr for Tracestate {
    type Err = TracestateError;

    /// Parses one header value.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        parse_tracestate(&[value])
    }
}

impl Tracestate {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            members: Vec::new(),
        }
    }

    /// The value of the first member with `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The members, left to right.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are none (then no `tracestate` header is sent).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Adds or updates `key`: every member with that key is removed and
    /// `key=value` goes to the front. Past 32 members the right-most one is
    /// dropped. An invalid key or value leaves the list unchanged.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TracestateError> {
        validate(key, value)?;
        self.members.retain(|(k, _)| k != key);
        self.members.insert(0, (key.to_owned(), value.to_owned()));
        self.members.truncate(MAX_MEMBERS);
        Ok(())
    }

    /// Removes every member with `key`; the first one's value, if any.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.members.iter().position(|(k, _)| k == key)?;
        let (_, value) = self.members.remove(index);
        self.members.retain(|(k, _)| k != key);
        Some(value)
    }

    /// Shortens the header to at most `max_len` characters the way the
    /// spec orders it: members longer than 128 characters go first, then
    /// members from the end of the list; each starting from the right.
    pub fn truncate_to(&mut self, max_len: usize) {
        while self.header_len() > max_len {
            let large = self
                .members
                .iter()
                .rposition(|(k, v)| k.len() + 1 + v.len() > LARGE_MEMBER);
            match large {
                Some(index) => {
                    self.members.remove(index);
                }
                None => {
                    self.members.pop();
                }
            }
        }
    }

    /// The length of [`to_string`](ToString::to_string), without building it.
    fn header_len(&self) -> usize {
        let members: usize = self
            .members
            .iter()
            .map(|(k, v)| k.len() + 1 + v.len())
            .sum();
        members + self.members.len().saturating_sub(1)
    }

    /// The SDK's view of this list, best effort: the members the SDK's
    /// (Level 1) `TraceState` accepts, the first of a duplicated key only.
    /// It is what OpenTelemetry samplers and exporters see; the header
    /// sent on is built from `self`, never from this.
    pub fn to_trace_state(&self) -> TraceState {
        let mut seen: Vec<&str> = Vec::with_capacity(self.members.len());
        let accepted: Vec<(&str, &str)> = self
            .iter()
            .filter(|(key, value)| {
                if seen.contains(key) {
                    return false;
                }
                seen.push(key);
                TraceState::from_key_value([(*key, *value)]).is_ok()
            })
            .collect();
        TraceState::from_key_value(accepted).unwrap_or_default()
    }

    /// The members of an SDK `TraceState` that this grammar accepts (the
    /// SDK checks values more loosely), in order.
    pub fn from_trace_state(state: &TraceState) -> Self {
        Self {
            members: state
                .into_iter()
                .filter(|(key, value)| validate(key, value).is_ok())
                .take(MAX_MEMBERS)
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        }
    }
}

/// The header value: `key=value` members joined by `,`.
impl fmt::Display for Tracestate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

fn validate(key: &str, value: &str) -> Result<(), TracestateError> {
    if !valid_key(key) {
        return Err(TracestateError::InvalidKey);
    }
    if !valid_value(value) {
        return Err(TracestateError::InvalidValue);
    }
    Ok(())
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )` with
/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"` (Level 2: no
/// separate multi-tenant form; `@` is an ordinary character after the
/// first).
fn valid_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    let keychar = |b: u8| {
        b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(b, b'_' | b'-' | b'*' | b'/' | b'@')
    };
    match bytes.first() {
        Some(&first) => {
            bytes.len() <= 256
                && (first.is_ascii_lowercase() || first.is_ascii_digit())
                && bytes.iter().all(|&b| keychar(b))
        }
        None => false,
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

    fn header(values: &[&str]) -> String {
        parse_tracestate(values).unwrap().to_string()
    }

    #[test]
    fn combines_headers_in_order_and_drops_empty_members() {
        assert_eq!(
            header(&["congo=t61rcWkgMzE", " , rojo=00f067aa0ba902b7 ,,"]),
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
        );
        assert_eq!(header(&[]), "");
        assert!(parse_tracestate(&[" , "]).unwrap().is_empty());
    }

    #[test]
    fn keeps_duplicated_keys_as_received() {
        assert_eq!(header(&["foo=1,foo=2"]), "foo=1,foo=2");
        assert_eq!(header(&["foo=1", "foo=1"]), "foo=1,foo=1");
        assert_eq!(
            parse_tracestate(&["foo=1,foo=2"]).unwrap().get("foo"),
            Some("1")
        );
    }

    #[test]
    fn accepts_the_level_2_key_grammar() {
        let max = format!("a{}=v", "b".repeat(255));
        let at_anywhere = format!("{}@{}=v", "t".repeat(241), "v".repeat(14));
        let long_tenant = format!("{}@v=v", "t".repeat(242));
        let long_system = format!("t@{}=v", "v".repeat(15));
        let value = format!("k={}", "x".repeat(256));
        for member in [
            "foo=bar",
            "foo-_*/9=bar",
            "1tenant@vendor=value with spaces",
            "0=digit-first",
            "foo@=1",
            "foo@@bar=1",
            "foo@bar@baz=1",
            "foo@1sys=bar",
            max.as_str(),
            at_anywhere.as_str(),
            long_tenant.as_str(),
            long_system.as_str(),
            value.as_str(),
            "k=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~",
        ] {
            assert_eq!(header(&[member]), member, "{member:?}");
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
            ("foo.bar=1".into(), E::InvalidKey),
            ("foo =1".into(), E::InvalidKey),
            ("@sys=bar".into(), E::InvalidKey),
            ("_foo=bar".into(), E::InvalidKey),
            (too_long_key, E::InvalidKey),
            ("foo=".into(), E::InvalidValue),
            ("foo=b\tar".into(), E::InvalidValue),
            ("foo=b=ar".into(), E::InvalidValue),
            ("foo=bär".into(), E::InvalidValue),
            (too_long_value, E::InvalidValue),
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
        assert_eq!(parse_tracestate(&[&split[0], &split[1]]).unwrap().len(), 32);
    }

    #[test]
    fn an_updated_key_moves_to_the_front_and_a_new_one_is_prepended() {
        let mut state: Tracestate = "a=1,b=2,a=3,c=4".parse().unwrap();
        state.insert("a", "9").unwrap();
        assert_eq!(state.to_string(), "a=9,b=2,c=4");
        state.insert("d", "0").unwrap();
        assert_eq!(state.to_string(), "d=0,a=9,b=2,c=4");
        assert_eq!(state.insert("D", "0"), Err(TracestateError::InvalidKey));
        assert_eq!(state.insert("d", "x,y"), Err(TracestateError::InvalidValue));
        assert_eq!(state.remove("b").as_deref(), Some("2"));
        assert_eq!(state.remove("b"), None);
        assert_eq!(state.to_string(), "d=0,a=9,c=4");
    }

    #[test]
    fn inserting_into_a_full_list_drops_the_right_most_member() {
        let full: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
        let mut state: Tracestate = full.join(",").parse().unwrap();
        state.insert("new", "1").unwrap();
        assert_eq!(state.len(), 32);
        assert_eq!(state.iter().next(), Some(("new", "1")));
        assert_eq!(state.get("k31"), None);
        assert_eq!(state.get("k30"), Some("v"));
    }

    #[test]
    fn truncation_removes_large_members_first_then_from_the_end() {
        let large = format!("big={}", "x".repeat(200));
        let mut state: Tracestate = format!("a=1,{large},b=2,c=3").parse().unwrap();
        state.truncate_to(11);
        assert_eq!(state.to_string(), "a=1,b=2,c=3");
        state.truncate_to(7);
        assert_eq!(state.to_string(), "a=1,b=2");
        state.truncate_to(0);
        assert!(state.is_empty());
    }

    #[test]
    fn the_sdk_sees_what_it_accepts_and_the_first_of_a_duplicated_key() {
        let state: Tracestate = "foo@@bar=1,rojo=1,rojo=2,t@vvvvvvvvvvvvvv=3,congo=4"
            .parse()
            .unwrap();
        assert_eq!(state.to_trace_state().header(), "rojo=1,congo=4");
        let back = Tracestate::from_trace_state(&state.to_trace_state());
        assert_eq!(back.to_string(), "rojo=1,congo=4");
        // The SDK allows a trailing space in a value; this grammar does not.
        let loose = TraceState::from_key_value([("a", "1 "), ("b", "2")]).unwrap();
        assert_eq!(Tracestate::from_trace_state(&loose).to_string(), "b=2");
    }
}
