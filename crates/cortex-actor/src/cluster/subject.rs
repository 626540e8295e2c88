//! Topics and patterns as NATS subjects under `cortex.<namespace>.ev.`.
//!
//! A topic's words become a subject's tokens. `*` is NATS's `*`; a
//! trailing `**` is NATS's `>` plus the bare prefix (because `**` also
//! matches no word at all, which `>` does not). NATS has no wildcard for
//! "any number of tokens, then more": a pattern with `**` before its last
//! word (`**.failed`) subscribes to the widest subject it can express and
//! the rest is filtered on the client. Nothing ever subscribes to a bare
//! `>`: every subject carries the namespace.

use crate::bus::pattern::Pattern;

/// Why a topic cannot travel as a NATS subject.
pub(crate) fn check_subject_word(word: &str) -> Result<(), &'static str> {
    if word
        .bytes()
        .any(|byte| byte.is_ascii_whitespace() || byte == b'>' || byte == b'*')
    {
        return Err("NATS subjects cannot hold whitespace, `>` or `*` inside a word");
    }
    Ok(())
}

/// The subjects a pattern subscribes to, and whether deliveries still need
/// the client-side match (they do when NATS cannot express the pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubjectFilter {
    pub(crate) subjects: Vec<String>,
    pub(crate) exact: bool,
}

impl SubjectFilter {
    /// One subject covering every subject of the filter, for a JetStream
    /// consumer (a 2.9 server takes one `filter_subject` only).
    pub(crate) fn single(&self, prefix: &str) -> String {
        match self.subjects.as_slice() {
            [one] => one.clone(),
            _ => {
                // `a.b.**` → `a.b` and `a.b.>`: both are under `a.>`, or
                // under the prefix's `>` when `a.b` is one word.
                let first = &self.subjects[0];
                let topic = &first[prefix.len()..];
                match topic.rsplit_once('.') {
                    Some((parent, _)) => format!("{prefix}{parent}.>"),
                    None => format!("{prefix}>"),
                }
            }
        }
    }
}

/// `prefix` is `cortex.<namespace>.ev.` (with its trailing dot).
pub(crate) fn pattern_subjects(prefix: &str, pattern: &Pattern) -> SubjectFilter {
    let words: Vec<&str> = pattern.words().collect();
    let first_double = words.iter().position(|word| *word == "**");
    match first_double {
        None => SubjectFilter {
            subjects: vec![format!("{prefix}{}", words.join("."))],
            exact: true,
        },
        Some(at) if at == words.len() - 1 => {
            let head = &words[..at];
            if head.is_empty() {
                SubjectFilter {
                    subjects: vec![format!("{prefix}>")],
                    exact: true,
                }
            } else {
                let head = head.join(".");
                SubjectFilter {
                    subjects: vec![format!("{prefix}{head}"), format!("{prefix}{head}.>")],
                    exact: true,
                }
            }
        }
        Some(at) => {
            // `**` followed by more words: subscribe wide, match locally.
            let head = &words[..at];
            let subject = if head.is_empty() {
                format!("{prefix}>")
            } else {
                format!("{prefix}{}.>", head.join("."))
            };
            let mut subjects = vec![subject];
            if !head.is_empty() && words[at + 1..].iter().all(|word| *word == "**") {
                subjects.insert(0, format!("{prefix}{}", head.join(".")));
            }
            SubjectFilter {
                subjects,
                exact: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "cortex.shop.ev.";

    fn subjects(pattern: &str) -> (Vec<String>, bool) {
        let filter = pattern_subjects(PREFIX, &Pattern::parse(pattern).unwrap());
        (filter.subjects, filter.exact)
    }

    #[test]
    fn the_subject_scheme() {
        assert_eq!(
            subjects("order.created"),
            (vec!["cortex.shop.ev.order.created".to_owned()], true)
        );
        assert_eq!(
            subjects("order.*"),
            (vec!["cortex.shop.ev.order.*".to_owned()], true)
        );
        assert_eq!(
            subjects("order.**"),
            (
                vec![
                    "cortex.shop.ev.order".to_owned(),
                    "cortex.shop.ev.order.>".to_owned()
                ],
                true
            )
        );
        assert_eq!(subjects("**"), (vec!["cortex.shop.ev.>".to_owned()], true));
        assert_eq!(
            subjects("**.failed"),
            (vec!["cortex.shop.ev.>".to_owned()], false)
        );
        assert_eq!(
            subjects("order.**.failed"),
            (vec!["cortex.shop.ev.order.>".to_owned()], false)
        );
        assert_eq!(
            subjects("*.created"),
            (vec!["cortex.shop.ev.*.created".to_owned()], true)
        );
    }

    #[test]
    fn never_a_bare_wildcard() {
        for pattern in ["**", "*", "**.x", "*.**", "a.**"] {
            let (subjects, _) = subjects(pattern);
            assert!(subjects.iter().all(|s| s.starts_with(PREFIX)), "{pattern}");
        }
    }

    #[test]
    fn one_filter_for_a_consumer() {
        let single = |pattern: &str| {
            pattern_subjects(PREFIX, &Pattern::parse(pattern).unwrap()).single(PREFIX)
        };
        assert_eq!(single("order.*"), "cortex.shop.ev.order.*");
        assert_eq!(single("order.**"), "cortex.shop.ev.>");
        assert_eq!(single("shop.order.**"), "cortex.shop.ev.shop.>");
        assert_eq!(single("**"), "cortex.shop.ev.>");
    }

    #[test]
    fn words_nats_cannot_carry() {
        assert!(check_subject_word("created").is_ok());
        assert!(check_subject_word("a b").is_err());
        assert!(check_subject_word("a>").is_err());
    }
}
