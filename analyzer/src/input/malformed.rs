//! Records the readers could not use: each is named, counted and reported, never dropped
//! silently.

use serde::Serialize;
use std::fmt;

/// One input problem: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Malformed {
    /// The file.
    pub file: String,
    /// 1-based line (JSON lines), when the problem is in a line.
    pub line: Option<u64>,
    /// Byte offset (protobuf records, or the start of the bad line).
    pub offset: Option<u64>,
    /// What is wrong, and what was expected.
    pub error: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.offset) {
            (Some(line), _) => write!(f, "{}:{line}: {}", self.file, self.error),
            (None, Some(offset)) => write!(f, "{} (byte {offset}): {}", self.file, self.error),
            (None, None) => write!(f, "{}: {}", self.file, self.error),
        }
    }
}
