//! What a store remembers a message by, and its one-string form (a Redis key's tail).

use mqtrace::MessageKey;
use std::fmt::Write as _;

/// What a store remembers a message by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DedupId {
    /// mqtrace's numbering: (producer id, stream, seq), the same for every copy of a message
    /// whoever stored or delivered it.
    Seq(MessageKey),
    /// A message without that numbering: the id its client gives (see
    /// [`Settle::fallback_id`](crate::Settle::fallback_id)).
    Message(String),
}

impl DedupId {
    /// The id of a delivery: its numbering, else `fallback` (the client's message id), else
    /// none (such a message cannot be checked: see [`Outcome::Unchecked`](crate::Outcome)).
    pub fn of(key: Option<&MessageKey>, fallback: impl FnOnce() -> Option<String>) -> Option<Self> {
        match key {
            Some(key) => Some(Self::Seq(key.clone())),
            None => fallback().map(Self::Message),
        }
    }

    /// One string that names this id and no other: `s:{producer}:{stream}:{seq}` or
    /// `m:{id}`, each name with `%` and `:` percent-encoded, so that no producer id or stream
    /// (both come from message headers) can make two ids collide.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        match self {
            Self::Seq(key) => {
                out.push_str("s:");
                escape(&key.producer_id, &mut out);
                out.push(':');
                escape(&key.stream, &mut out);
                // Writing to a String cannot fail.
                let _ = write!(out, ":{}", key.seq);
            }
            Self::Message(id) => {
                out.push_str("m:");
                escape(id, &mut out);
            }
        }
        out
    }

    /// The id [`encode`](Self::encode) wrote, or `None` for a string it did not write.
    pub fn decode(s: &str) -> Option<Self> {
        if let Some(id) = s.strip_prefix("m:") {
            return unescape(id).map(Self::Message);
        }
        let mut parts = s.strip_prefix("s:")?.split(':');
        let (producer, stream, seq) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let seq = seq.parse().ok()?;
        Some(Self::Seq(MessageKey::new(
            unescape(producer)?,
            unescape(stream)?,
            seq,
        )))
    }
}

fn escape(name: &str, out: &mut String) {
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3)?;
        out.push(match code {
            "25" => '%',
            "3A" => ':',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_that_hold_the_separator_stay_apart() {
        let a = DedupId::Seq(MessageKey::new("a:b", "c", 1));
        let b = DedupId::Seq(MessageKey::new("a", "b:c", 1));
        assert_ne!(a.encode(), b.encode());
        assert_eq!(a.encode(), "s:a%3Ab:c:1");
        assert_eq!(DedupId::Message("x:1".into()).encode(), "m:x%3A1");
        assert_eq!(DedupId::decode("s:a:b"), None);
        assert_eq!(DedupId::decode("m:%zz"), None);
    }

    fn id() -> impl Strategy<Value = DedupId> {
        let name = "[a-z:%3A5]{0,6}";
        prop_oneof![
            (name, name, any::<u64>())
                .prop_map(|(p, s, seq)| DedupId::Seq(MessageKey::new(p, s, seq))),
            "[a-z:%3A5]{0,12}".prop_map(DedupId::Message),
        ]
    }

    proptest! {
        /// The encoding is one-to-one: it decodes back to the id it came from, so two
        /// different ids never share a Redis key.
        #[test]
        fn encoding_round_trips(a in id(), b in id()) {
            prop_assert_eq!(DedupId::decode(&a.encode()), Some(a.clone()));
            prop_assert_eq!(a.encode() == b.encode(), a == b);
        }
    }
}
