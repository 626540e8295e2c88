//! Topics and patterns: dot-separated words, with `*` (one word) and `**`
//! (any number of words) allowed in patterns only.

/// A bad topic or pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct TopicError {
    /// `"topic"` or `"pattern"`.
    pub what: &'static str,
    /// What was given.
    pub value: String,
    /// Why it is refused.
    pub reason: &'static str,
}

/// A compiled pattern: its words, `*` and `**` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern(Vec<Box<str>>);

impl Pattern {
    pub(crate) fn parse(pattern: &str) -> Result<Self, TopicError> {
        let error = |reason| TopicError {
            what: "pattern",
            value: pattern.to_owned(),
            reason,
        };
        let words: Vec<Box<str>> = pattern.split('.').map(Into::into).collect();
        for word in &words {
            if word.is_empty() {
                return Err(error("empty word (leading, trailing or double dot)"));
            }
            if word.contains('*') && !matches!(&**word, "*" | "**") {
                return Err(error("`*` and `**` must be whole words"));
            }
        }
        Ok(Self(words))
    }

    /// The pattern's words, `*` and `**` included.
    #[cfg(feature = "nats")]
    pub(crate) fn words(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|word| &**word)
    }

    pub(crate) fn matches(&self, topic: &[&str]) -> bool {
        fn go(pattern: &[Box<str>], topic: &[&str]) -> bool {
            match pattern.split_first() {
                None => topic.is_empty(),
                Some((word, rest)) if &**word == "**" => {
                    (0..=topic.len()).any(|skip| go(rest, &topic[skip..]))
                }
                Some((word, rest)) => match topic.split_first() {
                    Some((first, tail)) => (&**word == "*" || **word == **first) && go(rest, tail),
                    None => false,
                },
            }
        }
        go(&self.0, topic)
    }
}

/// Checks a topic to publish on (no wildcards) and splits it into words.
pub(crate) fn check_topic(topic: &str) -> Result<Vec<&str>, TopicError> {
    let error = |reason| TopicError {
        what: "topic",
        value: topic.to_owned(),
        reason,
    };
    let words: Vec<&str> = topic.split('.').collect();
    if words.iter().any(|word| word.is_empty()) {
        return Err(error("empty word (leading, trailing or double dot)"));
    }
    if words.iter().any(|word| word.contains('*')) {
        return Err(error("wildcards belong in patterns, not topics"));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let cases = [
            ("order.*", "order.created", true),
            ("order.*", "order.line.added", false),
            ("order.*", "order", false),
            ("order.**", "order", true),
            ("order.**", "order.line.added", true),
            ("**.failed", "order.payment.failed", true),
            ("**", "anything.at.all", true),
            ("order.created", "order.created", true),
            ("order.created", "order.paid", false),
            ("*.created", "user.created", true),
        ];
        for (pattern, topic, expected) in cases {
            let words = check_topic(topic).unwrap();
            assert_eq!(
                Pattern::parse(pattern).unwrap().matches(&words),
                expected,
                "{pattern} vs {topic}"
            );
        }
        assert!(Pattern::parse("order..x").is_err());
        assert!(Pattern::parse("order.cre*").is_err());
        assert!(check_topic("order.*").is_err());
        assert!(check_topic("").is_err());
    }
}
