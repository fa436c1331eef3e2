//! Text that reaches a terminal: names come from message headers any publisher can set, so
//! control characters in them are escaped before they are printed.

use std::borrow::Cow;

/// Whether `c` could move the cursor, change colours, erase or reorder text on a terminal:
/// C0 and C1 controls, DEL, and the bidirectional overrides.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character written as a Rust-style escape (`\u{1b}`, `\n`).
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_other_text_kept() {
        assert_eq!(printable("orders-é"), "orders-é");
        assert_eq!(
            printable("a\x1b[2Jb\r\nc\u{9b}d\u{202e}"),
            "a\\u{1b}[2Jb\\r\\nc\\u{9b}d\\u{202e}"
        );
    }
}
