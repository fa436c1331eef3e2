//! Finding the trace files under the given paths and opening them (decompressing as needed).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the input files could not be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// A path does not exist or cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Nothing to analyze under the given paths.
    #[error(
        "no trace files under {paths}: expected OTLP JSON lines (.json, .jsonl) or OTLP protobuf \
         (.pb, .binpb), optionally compressed (.gz, .zst)"
    )]
    NoInput {
        /// The paths, joined.
        paths: String,
    },
}

/// How a file's records are framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OTLP JSON, one `ExportTraceServiceRequest` per line.
    JsonLines,
    /// OTLP protobuf, each `ExportTraceServiceRequest` after a 4-byte big-endian length.
    Protobuf,
}

/// How a file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Plain.
    None,
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}

/// A file to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// Its path.
    pub path: PathBuf,
    /// Its framing.
    pub format: Format,
    /// Its compression.
    pub compression: Compression,
    /// (device, inode): the same file reached by two paths is read once.
    pub id: (u64, u64),
}

/// What the name says about a file; `None` when it is not a trace file by name.
pub fn classify(path: &Path) -> Option<(Format, Compression)> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let (rest, compression) = if let Some(r) = name.strip_suffix(".gz") {
        (r, Compression::Gzip)
    } else if let Some(r) = name.strip_suffix(".zst") {
        (r, Compression::Zstd)
    } else {
        (name.as_str(), Compression::None)
    };
    let format = if rest.ends_with(".json") || rest.ends_with(".jsonl") {
        Format::JsonLines
    } else if rest.ends_with(".pb") || rest.ends_with(".binpb") {
        Format::Protobuf
    } else {
        return None;
    };
    Some((format, compression))
}

/// The trace files under `paths`: files as given (a file named on the command line with an
/// unknown extension is read as JSON lines), directories recursively (only regular files whose
/// names say they hold traces: a FIFO or socket there is skipped, never waited on), sorted,
/// each file once however many paths reach it (a directory named twice, a symlink).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<InputFile>, DiscoverError> {
    let mut out = Vec::new();
    let mut dirs = HashSet::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| DiscoverError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(path, &meta, &mut dirs, &mut out)?;
        } else {
            let (format, compression) =
                classify(path).unwrap_or((Format::JsonLines, Compression::None));
            out.push(InputFile {
                path: path.clone(),
                format,
                compression,
                id: (meta.dev(), meta.ino()),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    let mut seen = HashSet::new();
    out.retain(|f| seen.insert(f.id));
    if out.is_empty() {
        let paths = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DiscoverError::NoInput { paths });
    }
    Ok(out)
}

/// Adds the trace files under `dir`; `dirs` holds the directories walked already, so that a
/// symlink back up the tree ends the walk instead of looping.
fn walk(
    dir: &Path,
    meta: &std::fs::Metadata,
    dirs: &mut HashSet<(u64, u64)>,
    out: &mut Vec<InputFile>,
) -> Result<(), DiscoverError> {
    if !dirs.insert((meta.dev(), meta.ino())) {
        return Ok(());
    }
    let io = |source| DiscoverError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        // Followed through symlinks; one that leads nowhere is skipped like any non-file.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, &meta, dirs, out)?;
        } else if meta.is_file()
            && let Some((format, compression)) = classify(&path)
        {
            out.push(InputFile {
                path,
                format,
                compression,
                id: (meta.dev(), meta.ino()),
            });
        }
    }
    Ok(())
}

/// An opened file: its decompressed bytes, and how many of its own bytes were read so far
/// (to say where damage in a compressed stream lies).
pub struct Opened {
    /// The (decompressed) bytes.
    pub reader: Box<dyn Read + Send>,
    /// Bytes read from the file itself.
    pub raw_read: Arc<AtomicU64>,
}

struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The most one read asks a decoder for. Both decoders drop what a read that fails had
/// already decoded, and zstd decodes all the input it holds (its 1 MiB buffer: all of a
/// small file) in one read if the buffer takes it: one damaged block lost every line before
/// it. A zstd block's worth (128 KiB) keeps them, at no cost in speed (measured).
const DECODED_READ: usize = 128 << 10;

/// A decoder read at most [`DECODED_READ`] bytes at a time.
struct Capped<R>(R);

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(DECODED_READ);
        self.0.read(&mut buf[..n])
    }
}

/// Opens `file` for reading, decompressing as its name says: every gzip member and every
/// zstd frame, one after another, as `gzip -d` and `zstd -d` read them.
pub fn open(file: &InputFile) -> std::io::Result<Opened> {
    let raw_read = Arc::new(AtomicU64::new(0));
    let raw = Counting {
        inner: File::open(&file.path)?,
        n: Arc::clone(&raw_read),
    };
    let raw = BufReader::with_capacity(1 << 20, raw);
    let reader: Box<dyn Read + Send> = match file.compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(Capped(flate2::bufread::MultiGzDecoder::new(raw))),
        Compression::Zstd => Box::new(Capped(zstd::stream::read::Decoder::with_buffer(raw)?)),
    };
    Ok(Opened { reader, raw_read })
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub(crate) fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    match fill(input, buf) {
        (got, None) => Ok(got),
        (_, Some(e)) => Err(e),
    }
}

/// Reads until `buf` is full, the input ends or a read fails; returns how much was read
/// either way, so that what came before damage is kept.
pub(crate) fn fill(
    input: &mut (impl Read + ?Sized),
    buf: &mut [u8],
) -> (usize, Option<std::io::Error>) {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_format_and_compression() {
        let c = |n: &str| classify(Path::new(n));
        assert_eq!(
            c("a/spans.jsonl"),
            Some((Format::JsonLines, Compression::None))
        );
        assert_eq!(c("x.JSON.gz"), Some((Format::JsonLines, Compression::Gzip)));
        assert_eq!(
            c("x.jsonl.zst"),
            Some((Format::JsonLines, Compression::Zstd))
        );
        assert_eq!(c("x.binpb"), Some((Format::Protobuf, Compression::None)));
        assert_eq!(c("notes.txt"), None);
        assert_eq!(c("trace.proto"), None, "a schema file, not traces");
    }

    #[test]
    fn a_file_reached_twice_is_read_once_and_a_fifo_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.jsonl");
        std::fs::write(&f, "{}\n").expect("write");
        std::os::unix::fs::symlink(&f, dir.path().join("b.jsonl")).expect("symlink");
        std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).expect("symlink");
        let fifo = dir.path().join("c.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let files = discover(&[
            dir.path().to_path_buf(),
            dir.path().to_path_buf(),
            f.clone(),
        ])
        .expect("discover");
        assert_eq!(files.len(), 1, "{files:?}");
    }

    #[test]
    fn a_directory_without_traces_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("readme.txt"), "hi").expect("write");
        let err = discover(&[dir.path().to_path_buf()]).expect_err("no traces");
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }
}
