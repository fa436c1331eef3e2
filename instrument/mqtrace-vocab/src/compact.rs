//! The compact header (SPEC §3 v2): one header, [`crate::header::COMPACT`], instead of four,
//! whose value is `1;{producer_id};{stream};{seq};{attempt}[;{message_id}]`. Each field is
//! percent-encoded (`%`, `;` and every byte outside printable ASCII as `%XX`); the message id
//! is written only when it differs from the default `{producer_id}:{stream}:{seq}`.
//!
//! A value that does not parse is a message without mqtrace headers: [`decode`] says why and
//! never panics, whatever the bytes (a fuzz target holds it to that).
//!
//! ```
//! use mqtrace_vocab::compact::{Compact, decode, encode};
//!
//! let value = encode("orders-api;1", "orders", 42, 1, None);
//! assert_eq!(value, "1;orders-api%3B1;orders;42;1");
//! let back = decode(value.as_bytes())?;
//! assert_eq!((&*back.producer_id, back.seq, back.message_id), ("orders-api;1", 42, None));
//! # Ok::<(), mqtrace_vocab::compact::CompactError>(())
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// The format version written first.
pub const VERSION: &str = "1";

/// A decoded compact header: its text fields borrow the value where they hold no `%`
/// escape (a consumer reads one per message: nothing to allocate in the usual case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compact<'a> {
    /// The producer id.
    pub producer_id: Cow<'a, str>,
    /// The stream.
    pub stream: Cow<'a, str>,
    /// The seq (≥ 1).
    pub seq: u64,
    /// The send attempt (≥ 1).
    pub attempt: u64,
    /// A message id other than the default, if the producer set one.
    pub message_id: Option<Cow<'a, str>>,
}

impl Compact<'_> {
    /// The message id: the one carried, or the default `{producer_id}:{stream}:{seq}`.
    pub fn message_id(&self) -> String {
        match &self.message_id {
            Some(id) => id.clone().into_owned(),
            None => {
                with_default_message_id(&self.producer_id, &self.stream, self.seq, str::to_owned)
            }
        }
    }
}

/// Why a compact header value was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompactError {
    /// The first field is not a version this reader knows.
    Version,
    /// Fewer than five fields, or more than six.
    Fields(usize),
    /// A `%` not followed by two hex digits, or a field that is not UTF-8 once decoded.
    Encoding(&'static str),
    /// The seq or attempt is not a whole number ≥ 1.
    Number(&'static str),
}

impl fmt::Display for CompactError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactError::Version => write!(f, "not version {VERSION} of the compact header"),
            CompactError::Fields(n) => write!(f, "{n} fields, expected 5 or 6"),
            CompactError::Encoding(field) => write!(f, "{field} is not percent-encoded UTF-8"),
            CompactError::Number(field) => write!(f, "{field} is not a whole number ≥ 1"),
        }
    }
}

impl std::error::Error for CompactError {}

/// Whether a byte is written as itself.
fn plain(b: u8) -> bool {
    (0x20..=0x7e).contains(&b) && b != b'%' && b != b';'
}

fn push_field(out: &mut String, field: &str) {
    for &b in field.as_bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The header value for a message; `message_id` is written only when it is not the default.
pub fn encode(
    producer_id: &str,
    stream: &str,
    seq: u64,
    attempt: u64,
    message_id: Option<&str>,
) -> String {
    let mut out = String::with_capacity(producer_id.len() + stream.len() + 32);
    out.push_str(VERSION);
    out.push(';');
    push_field(&mut out, producer_id);
    out.push(';');
    push_field(&mut out, stream);
    // Digits by hand, not `write!`: this runs for every message a producer sends.
    out.push(';');
    push_decimal(&mut out, seq);
    out.push(';');
    push_decimal(&mut out, attempt);
    if let Some(id) = message_id
        && !is_default_id(id, producer_id, stream, seq)
    {
        out.push(';');
        push_field(&mut out, id);
    }
    out
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, n: u64) {
    out.push_str(decimal(n, &mut [0; 20]));
}

/// `n` in decimal, written into the end of `digits` (a u64 has at most 20).
fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &str {
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` < 10: the cast keeps every bit.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&digits[at..]).unwrap_or_default()
}

/// The default message id, `{producer_id}:{stream}:{seq}`, handed to `make`: assembled on the
/// stack (on the heap past 160 bytes), so that whichever owned form the caller makes of it
/// (`String`, `Arc<str>`) costs only its own allocation. Producers and consumers build it for
/// every message whose id was not set.
pub fn with_default_message_id<R>(
    producer_id: &str,
    stream: &str,
    seq: u64,
    make: impl FnOnce(&str) -> R,
) -> R {
    let mut digits = [0; 20];
    let parts = [producer_id, ":", stream, ":", decimal(seq, &mut digits)];
    let mut buf = [0u8; 160];
    let mut len = 0;
    for part in parts {
        let Some(slot) = buf.get_mut(len..len + part.len()) else {
            return make(&parts.concat());
        };
        slot.copy_from_slice(part.as_bytes());
        len += part.len();
    }
    // Whole `str`s were joined: the bytes are UTF-8.
    match std::str::from_utf8(&buf[..len]) {
        Ok(id) => make(id),
        Err(_) => make(&parts.concat()),
    }
}

/// `id == "{producer}:{stream}:{seq}"`, without building the string.
fn is_default_id(id: &str, producer: &str, stream: &str, seq: u64) -> bool {
    id.strip_prefix(producer)
        .and_then(|r| r.strip_prefix(':'))
        .and_then(|r| r.strip_prefix(stream))
        .and_then(|r| r.strip_prefix(':'))
        // Digits only: `parse` would take `+3` for 3, and `+3` is not the default id.
        .is_some_and(|r| {
            !r.starts_with('0')
                && r.bytes().all(|b| b.is_ascii_digit())
                && r.parse::<u64>().ok() == Some(seq)
        })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn field<'a>(raw: &'a [u8], name: &'static str) -> Result<Cow<'a, str>, CompactError> {
    if !raw.contains(&b'%') {
        return std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|_| CompactError::Encoding(name));
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hi = raw.get(i + 1).copied().and_then(hex);
            let lo = raw.get(i + 2).copied().and_then(hex);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(CompactError::Encoding(name));
            };
            bytes.push(hi << 4 | lo);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|_| CompactError::Encoding(name))
}

fn number(raw: &[u8], name: &'static str) -> Result<u64, CompactError> {
    // Digits only: `+1`, ` 1` and `01` are not how the header is written.
    if raw.is_empty() || raw.len() > 20 || raw[0] == b'0' || !raw.iter().all(u8::is_ascii_digit) {
        return Err(CompactError::Number(name));
    }
    // ASCII digits, checked above: accumulate them, refusing what overflows a u64 (a
    // consumer reads this for every message; `str::parse` would check the bytes again).
    raw.iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(CompactError::Number(name))
}

/// Reads a header value. Any bytes are safe to pass: a bad value is an error, never a panic,
/// and nothing is allocated beyond the value's own length.
pub fn decode(value: &[u8]) -> Result<Compact<'_>, CompactError> {
    let mut parts = value.split(|b| *b == b';');
    if parts.next() != Some(VERSION.as_bytes()) {
        return Err(CompactError::Version);
    }
    // The fields after the version, on the stack (a sixth is only counted, to say how many).
    let mut rest: [&[u8]; 6] = [&[]; 6];
    let mut n = 0;
    for part in parts.take(6) {
        rest[n] = part;
        n += 1;
    }
    if !(4..=5).contains(&n) {
        return Err(CompactError::Fields(n + 1));
    }
    let rest = &rest[..n];
    let message_id = match rest.get(4) {
        Some(raw) => Some(field(raw, "message id")?),
        None => None,
    };
    Ok(Compact {
        producer_id: field(rest[0], "producer id")?,
        stream: field(rest[1], "stream")?,
        seq: number(rest[2], "seq")?,
        attempt: number(rest[3], "attempt")?,
        message_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_message_id_on_the_stack_and_past_it() {
        for (producer, stream, seq) in [
            ("orders-api-1".to_owned(), "orders".to_owned(), 42),
            ("p;x".to_owned(), "s".to_owned(), 1),
            ("p".repeat(150), "s".repeat(20), u64::MAX),
        ] {
            let id = with_default_message_id(&producer, &stream, seq, str::to_owned);
            assert_eq!(id, format!("{producer}:{stream}:{seq}"));
            assert!(is_default_id(&id, &producer, &stream, seq));
        }
    }

    #[test]
    fn numbers_at_the_edges_of_u64() {
        let max = encode("p", "s", u64::MAX, 1, None);
        assert_eq!(max, "1;p;s;18446744073709551615;1");
        assert_eq!(decode(max.as_bytes()).map(|c| c.seq), Ok(u64::MAX));
        assert_eq!(encode("p", "s", 1, 10, None), "1;p;s;1;10");
        for bad in [
            "1;p;s;18446744073709551616;1",
            "1;p;s;99999999999999999999;1",
            "1;p;s;01;1",
            "1;p;s;0;1",
            "1;p;s;1;+1",
            "1;p;s;;1",
        ] {
            assert!(
                matches!(decode(bad.as_bytes()), Err(CompactError::Number(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_spec_form_with_and_without_a_message_id() {
        assert_eq!(
            encode("p", "orders", 7, 2, Some("p:orders:7")),
            "1;p;orders;7;2"
        );
        assert_eq!(
            encode("p", "or;ders%", 7, 1, Some("order-7 é")),
            "1;p;or%3Bders%25;7;1;order-7 %C3%A9"
        );
        let c = decode(b"1;p;or%3Bders%25;7;1;order-7 %C3%A9").expect("decode");
        assert_eq!(c.stream, "or;ders%");
        assert_eq!(c.message_id.as_deref(), Some("order-7 é"));
        assert_eq!(
            decode(b"1;p;s;1;1").map(|c| c.message_id()),
            Ok("p:s:1".to_owned())
        );
    }

    #[test]
    fn bad_values_are_errors() {
        for (bad, why) in [
            (&b"2;p;s;1;1"[..], CompactError::Version),
            (b"1;p;s;1", CompactError::Fields(4)),
            (b"1;p;s;1;1;m;x", CompactError::Fields(7)),
            (b"1;p%zz;s;1;1", CompactError::Encoding("producer id")),
            (b"1;p%C3;s;1;1", CompactError::Encoding("producer id")),
            (b"1;p;s;0;1", CompactError::Number("seq")),
            (b"1;p;s;+1;1", CompactError::Number("seq")),
            (
                b"1;p;s;1;99999999999999999999999",
                CompactError::Number("attempt"),
            ),
            (b"", CompactError::Version),
        ] {
            assert_eq!(decode(bad), Err(why), "{}", String::from_utf8_lossy(bad));
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any ids, any seq and attempt: what is encoded decodes to the same message.
        #[test]
        fn round_trip(
            producer in ".*",
            stream in ".*",
            seq in 1u64..,
            attempt in 1u64..,
            id in proptest::option::of(".*"),
        ) {
            let value = encode(&producer, &stream, seq, attempt, id.as_deref());
            prop_assert!(value.bytes().all(|b| (0x20..=0x7e).contains(&b)), "printable ASCII");
            let back = decode(value.as_bytes()).expect("decodes");
            prop_assert_eq!(&back.producer_id, &producer);
            prop_assert_eq!(&back.stream, &stream);
            prop_assert_eq!((back.seq, back.attempt), (seq, attempt));
            let default = format!("{producer}:{stream}:{seq}");
            prop_assert_eq!(back.message_id(), id.unwrap_or(default));
        }

        /// Any bytes: an answer, never a panic.
        #[test]
        fn any_bytes_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
