//! Spans to files, one OTLP `ExportTraceServiceRequest` per line in JSON, as the
//! OpenTelemetry Collector's file exporter writes them (hex ids, 64-bit integers as strings).
//!
//! Each batch is serialized whole, then handed to the OS with a single `write` on an
//! append-only file: a process killed mid-write leaves at most one torn last line, which the
//! analyzer counts and skips. Files rotate by size; every process writes files of its own
//! (created with `create_new`, never shared), so several services can share one directory.
//!
//! # When a write fails
//!
//! Every line in a file is whole, and a batch that is not readable on disk is never counted
//! as exported: `export` returns an error naming the file, and the
//! [`CountingBatchProcessor`](crate::CountingBatchProcessor) counts the batch's spans as
//! dropped (`dropped_export_error`) and reports the count in its next `mqtrace telemetry`
//! span.
//!
//! - **The write fails** (disk full `ENOSPC`, file size limit `EFBIG`, `EIO`, …), possibly
//!   after part of the line reached the file: the file is cut back (`set_len`) to the length
//!   it had before, so it still ends at a line boundary and the next batch starts a line of
//!   its own. Should cutting back fail too, the file is abandoned with the fragment as its
//!   torn last line and the next batch starts a new file.
//! - **The file loses its name** (its directory was removed, or the file deleted, while the
//!   exporter holds it open): writes to it still succeed, but nobody can read them. After
//!   each write the exporter checks the open file's link count; at zero, the batch just
//!   written is reported lost, the directory is recreated and the next batch starts a new
//!   file. The spans written to that file before the removal were counted exported when they
//!   reached it; the error says how many went with it.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::config::DEFAULT_MAX_FILE_BYTES;
use crate::error::ExportError;

/// Writes OTLP JSON lines into a directory, one line per batch, each handed to the OS in one
/// `write`.
///
/// Every line in a file is whole: a failed write (`ENOSPC`, `EFBIG`, `EIO`, …) is cut back to
/// the last whole line. A file that lost its name (its directory was removed) is replaced by
/// a new one in the recreated directory. Either way `export` returns an error naming the
/// file, so the batch is counted as dropped, never as exported.
#[derive(Debug)]
pub struct FileExporter {
    dir: PathBuf,
    stem: String,
    max_file_bytes: u64,
    resource: ResourceAttributesWithSchema,
    state: Mutex<FileState>,
}

#[derive(Debug, Default)]
struct FileState {
    /// The file being written, opened on the first write after a (re)start.
    file: Option<File>,
    /// Its length: every byte in it is ours.
    written: u64,
    /// Spans in it, to say how many went with it if it is deleted.
    spans: u64,
    /// Its number in the name.
    index: u32,
}

impl FileState {
    /// Closes the current file (if still held) for good: the next write creates the next one.
    fn next_file(&mut self) {
        self.file = None;
        self.index += 1;
        self.written = 0;
        self.spans = 0;
    }
}

impl FileExporter {
    /// Writes into `dir` (created if missing), starting a new file past
    /// [`DEFAULT_MAX_FILE_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, ExportError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| ExportError::Io {
            path: dir.clone(),
            source,
        })?;
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        Ok(Self {
            stem: format!("spans-{started}-{}", std::process::id()),
            dir,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            resource: ResourceAttributesWithSchema::default(),
            state: Mutex::new(FileState::default()),
        })
    }

    /// Starts a new file once the current one holds `bytes` (a line is never split).
    pub fn with_max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes.max(1);
        self
    }

    /// The directory written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, index: u32) -> PathBuf {
        self.dir.join(format!("{}-{index:04}.jsonl", self.stem))
    }

    /// One line of OTLP JSON for `batch`.
    pub fn encode(batch: &[SpanData], resource: &ResourceAttributesWithSchema) -> Vec<u8> {
        crate::json::encode_line(batch, resource)
    }

    /// The same line through opentelemetry-proto's structs and serde: the reference the
    /// direct encoder is tested against.
    pub fn encode_via_proto(
        batch: Vec<SpanData>,
        resource: &ResourceAttributesWithSchema,
    ) -> Vec<u8> {
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, resource),
        };
        // Serializing plain proto structs into memory cannot fail.
        let mut line = serde_json::to_vec(&request).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// Appends one line (one batch of `spans` spans) to the current file, rotating first if
    /// the line would take the file past its size. On `Err` the batch is not readable on disk
    /// (see the [module docs](self)), and the message says where and why.
    fn write_line(&self, line: &[u8], spans: usize) -> Result<(), String> {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *guard;
        if state.written > 0 && state.written + line.len() as u64 > self.max_file_bytes {
            let old = state.file.take();
            let old_path = self.path(state.index);
            state.next_file();
            if let Some(old) = old {
                old.sync_data()
                    .map_err(|e| format!("syncing {} on rotation: {e}", old_path.display()))?;
            }
        }
        let file = match state.file.take() {
            Some(file) => file,
            None => self.open_next(state)?,
        };
        let file = state.file.insert(file);
        let path = self.path(state.index);

        // The length before the write is where a failed write is cut back to. `written` is
        // the file's length: the file is ours alone (created with `create_new`).
        let before = state.written;
        // `write_all` hands the whole line to one `write` call. It only calls again after a
        // short write, which on a regular file means the line hit a limit (RLIMIT_FSIZE, a
        // full disk: the next call returns EFBIG or ENOSPC) or that the process is being
        // killed.
        if let Err(e) = file.write_all(line) {
            return Err(match file.set_len(before) {
                Ok(()) => format!(
                    "{}: writing {spans} spans failed ({e}); the partial line was cut off, the \
                     file ends at its last whole line",
                    path.display()
                ),
                Err(cut) => {
                    // Appending to this file would glue the next line to the fragment:
                    // leave the fragment as the file's torn last line, which readers skip.
                    state.next_file();
                    format!(
                        "{}: writing {spans} spans failed ({e}), and cutting the partial line \
                         off failed too ({cut}); the file keeps it as a torn last line, later \
                         spans go to a new file",
                        path.display()
                    )
                }
            });
        }
        state.written += line.len() as u64;
        state.spans += spans as u64;

        // A removed directory (or a deleted file) leaves an open file with no name: writes
        // succeed and nobody can ever read them. Check after the write, so that a removal
        // racing with it is caught too. An fstat failure says nothing about the line, which
        // the kernel took: count it written.
        if is_unlinked(file) {
            let lost = state.spans;
            state.next_file();
            // Recreated now rather than on the next write, so that this message can say so.
            let recreated = match std::fs::create_dir_all(&self.dir) {
                Ok(()) => format!("later spans go to a new file in {}", self.dir.display()),
                Err(e) => format!("recreating {} failed: {e}", self.dir.display()),
            };
            return Err(format!(
                "{} was deleted while open (was {} removed?): this batch of {spans} spans and \
                 the {} spans written to the file before it are gone; {recreated}",
                path.display(),
                self.dir.display(),
                lost - spans as u64,
            ));
        }
        Ok(())
    }

    /// Creates the file for `state.index`, or the next free index: a file is never shared,
    /// so that cutting a failed line off cannot cut someone else's. Recreates the directory
    /// if it was removed.
    fn open_next(&self, state: &mut FileState) -> Result<File, String> {
        const ATTEMPTS: u32 = 1000;
        for _ in 0..ATTEMPTS {
            let path = self.path(state.index);
            let open = || OpenOptions::new().append(true).create_new(true).open(&path);
            let opened = match open() {
                Err(e) if e.kind() == ErrorKind::NotFound => std::fs::create_dir_all(&self.dir)
                    .map_err(|e| format!("recreating {}: {e}", self.dir.display()))
                    .and_then(|()| open().map_err(|e| format!("creating {}: {e}", path.display()))),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    state.index += 1;
                    continue;
                }
                other => other.map_err(|e| format!("creating {}: {e}", path.display())),
            };
            return opened;
        }
        Err(format!(
            "{}: {ATTEMPTS} files named {}-*.jsonl exist already",
            self.dir.display(),
            self.stem
        ))
    }

    fn sync(&self) -> OTelSdkResult {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &state.file {
            Some(file) => file.sync_data().map_err(|e| {
                OTelSdkError::InternalFailure(format!("sync {}: {e}", self.dir.display()))
            }),
            None => Ok(()),
        }
    }
}

/// Whether `file` has no name left (its directory was removed, or it was deleted).
#[cfg(unix)]
fn is_unlinked(file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata().is_ok_and(|m| m.nlink() == 0)
}

/// Not detected elsewhere: no portable link count.
#[cfg(not(unix))]
fn is_unlinked(_file: &File) -> bool {
    false
}

impl SpanExporter for FileExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let line = Self::encode(&batch, &self.resource);
        // An error makes the processor count the whole batch as dropped: it is not on disk.
        self.write_line(&line, batch.len())
            .map_err(OTelSdkError::InternalFailure)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.sync()
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.sync()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}
