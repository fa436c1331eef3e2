//! Spans to files, one OTLP `ExportTraceServiceRequest` per line in JSON, as the
//! OpenTelemetry Collector's file exporter writes them (hex ids, 64-bit integers as strings).
//!
//! Each batch is serialized whole, then written with a single `write` on an append-only file:
//! a process killed mid-write leaves at most one torn last line, which the analyzer counts and
//! skips. Files rotate by size; every process writes files of its own, so several services can
//! share one directory.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::config::DEFAULT_MAX_FILE_BYTES;
use crate::error::ExportError;

/// Writes OTLP JSON lines into a directory. See the [module docs](self).
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
    file: Option<File>,
    written: u64,
    index: u32,
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

    fn write_line(&self, line: &[u8]) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.written > 0 && state.written + line.len() as u64 > self.max_file_bytes {
            if let Some(old) = state.file.take() {
                old.sync_data()?;
            }
            state.index += 1;
            state.written = 0;
        }
        if state.file.is_none() {
            let path = self.path(state.index);
            state.file = Some(OpenOptions::new().create(true).append(true).open(path)?);
        }
        if let Some(file) = state.file.as_mut() {
            file.write_all(line)?;
        }
        state.written += line.len() as u64;
        Ok(())
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

impl SpanExporter for FileExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let line = Self::encode(&batch, &self.resource);
        self.write_line(&line).map_err(|e| {
            OTelSdkError::InternalFailure(format!(
                "writing spans under {}: {e}",
                self.dir.display()
            ))
        })
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
