//! Finding the trace files under the given paths and opening them (decompressing as needed).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::AnalyzeError;

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
    } else if rest.ends_with(".pb") || rest.ends_with(".binpb") || rest.ends_with(".proto") {
        Format::Protobuf
    } else {
        return None;
    };
    Some((format, compression))
}

/// The trace files under `paths`: files as given (a file named on the command line with an
/// unknown extension is read as JSON lines), directories recursively (only files whose names
/// say they hold traces), sorted, without duplicates.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<InputFile>, AnalyzeError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| AnalyzeError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else {
            let (format, compression) =
                classify(path).unwrap_or((Format::JsonLines, Compression::None));
            out.push(InputFile {
                path: path.clone(),
                format,
                compression,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    if out.is_empty() {
        let paths = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(AnalyzeError::NoInput { paths });
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<InputFile>) -> Result<(), AnalyzeError> {
    let io = |source| AnalyzeError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if let Some((format, compression)) = classify(&path) {
            out.push(InputFile {
                path,
                format,
                compression,
            });
        }
    }
    Ok(())
}

/// Opens `file` for reading, decompressing as its name says.
pub fn open(file: &InputFile) -> std::io::Result<Box<dyn Read + Send>> {
    let raw = BufReader::with_capacity(1 << 20, File::open(&file.path)?);
    Ok(match file.compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(raw)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
        ),
    })
}

/// Reads until `buf` is full or the input ends; returns how much was read.
pub fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
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
    }

    #[test]
    fn a_directory_without_traces_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("readme.txt"), "hi").expect("write");
        let err = discover(&[dir.path().to_path_buf()]).expect_err("no traces");
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }
}
