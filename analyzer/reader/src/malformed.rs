//! Records the readers could not use: each is named, counted and reported, never dropped
//! silently.

use serde::Serialize;
use std::fmt;

/// Where in a file something was read: a line (JSON lines) or a byte offset (protobuf
/// records, compressed streams), or the whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file.
    pub file: String,
    /// 1-based line (JSON lines).
    pub line: Option<u64>,
    /// Byte offset (protobuf records, or damage in a compressed stream).
    pub offset: Option<u64>,
}

impl Malformed {
    /// A problem at `at` (the file is filled in when the file is done).
    pub fn new(at: Location, error: impl Into<String>) -> Self {
        Malformed {
            at,
            error: error.into(),
            ends_file: false,
        }
    }
}

impl Location {
    /// A line of the file being read.
    pub(crate) fn line(line: u64) -> Self {
        Location {
            line: Some(line),
            ..Location::default()
        }
    }

    /// A byte offset in the file being read.
    pub(crate) fn offset(offset: u64) -> Self {
        Location {
            offset: Some(offset),
            ..Location::default()
        }
    }

    pub(crate) fn shift_lines(&mut self, before: u64) {
        if let Some(l) = &mut self.line {
            *l += before;
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.offset) {
            (Some(line), _) => write!(f, "{}:{line}", self.file),
            (None, Some(offset)) => write!(f, "{} (byte {offset})", self.file),
            (None, None) => write!(f, "{}", self.file),
        }
    }
}

/// One input problem: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Malformed {
    /// Where: the file, and the line or byte in it.
    #[serde(flatten)]
    pub at: Location,
    /// What is wrong, and what was expected.
    pub error: String,
    /// A problem with the rest of the file (damage, a broken framing): always listed, however
    /// many records of the file were listed before it.
    #[serde(skip)]
    pub(crate) ends_file: bool,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.error)
    }
}
