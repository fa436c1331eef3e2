//! A batch span processor that never loses a span without counting it.
//!
//! The SDK's `BatchSpanProcessor` drops spans when its queue is full and keeps the count to
//! itself. This one counts every drop (queue full, export error), can block the app instead
//! of dropping, and sends the counts to the backend as a span of their own.
//!
//! The app's thread only pushes into a bounded channel; one worker thread batches and exports.
//!
//! Every export carries a telemetry report (a heartbeat) naming this pipeline's instance id:
//! a process killed before its shutdown report leaves reports that stop, and the analyzer
//! can then say whose telemetry is incomplete instead of blaming a stage.

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::config::{BatchConfig, Overflow};
use crate::stats::{TelemetryStats, new_instance_id, telemetry_span};

/// Control messages: the worker waits on these, never on the span queue, so that pushing a
/// span does not wake the worker (a futex wake per span would cost the app more than the
/// whole span).
enum Ctl {
    ExportNow,
    Flush(SyncSender<OTelSdkResult>),
    Shutdown(SyncSender<OTelSdkResult>),
    Resource(Resource),
}

/// How the worker drives the exporter's futures.
#[derive(Clone, Debug, Default)]
pub enum Driver {
    /// A plain executor on the worker thread (file and blocking-HTTP exporters).
    #[default]
    Thread,
    /// A tokio runtime (tonic's gRPC exporter needs one).
    Tokio(tokio::runtime::Handle),
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct CountingBatchProcessor {
    spans: SyncSender<SpanData>,
    ctl: SyncSender<Ctl>,
    queued: Arc<AtomicUsize>,
    export_requested: Arc<AtomicBool>,
    batch_size: usize,
    overflow: Overflow,
    stats: Arc<TelemetryStats>,
    instance: String,
    worker: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Ctl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ctl::ExportNow => "ExportNow",
            Ctl::Flush(_) => "Flush",
            Ctl::Shutdown(_) => "Shutdown",
            Ctl::Resource(_) => "Resource",
        })
    }
}

impl CountingBatchProcessor {
    /// Starts the worker thread that exports through `exporter`, with a fresh instance id.
    pub fn new<E>(exporter: E, config: BatchConfig, driver: Driver) -> std::io::Result<Self>
    where
        E: SpanExporter + 'static,
    {
        Self::with_instance(exporter, config, driver, new_instance_id())
    }

    /// [`Self::new`], naming the pipeline `instance` in its telemetry reports
    /// (`mqtrace.telemetry.instance`). It must be unique per run of the process: the
    /// analyzer takes a final report of that id as the whole instance's.
    pub fn with_instance<E>(
        exporter: E,
        config: BatchConfig,
        driver: Driver,
        instance: String,
    ) -> std::io::Result<Self>
    where
        E: SpanExporter + 'static,
    {
        let (spans, span_rx) = mpsc::sync_channel(config.max_queue_size.max(1));
        // Room for a few control messages; ExportNow is only ever sent with try_send.
        let (ctl, ctl_rx) = mpsc::sync_channel(16);
        let stats = Arc::new(TelemetryStats::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let export_requested = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            exporter,
            config: config.clone(),
            driver,
            stats: stats.clone(),
            queued: queued.clone(),
            export_requested: export_requested.clone(),
            instance: instance.clone(),
            last_reported_dropped: None,
            reported: false,
        };
        let handle = std::thread::Builder::new()
            .name("mqtrace-export".into())
            .spawn(move || worker.run(&ctl_rx, &span_rx))?;
        Ok(Self {
            spans,
            ctl,
            queued,
            export_requested,
            batch_size: config.max_export_batch_size.max(1),
            overflow: config.overflow,
            stats,
            instance,
            worker: std::sync::Mutex::new(Some(handle)),
        })
    }

    /// The instance id its telemetry reports carry.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The counters of this pipeline.
    pub fn stats(&self) -> Arc<TelemetryStats> {
        self.stats.clone()
    }

    fn request_export(&self) {
        if !self.export_requested.swap(true, Ordering::AcqRel) {
            // Full means requests are pending already; Disconnected means shut down.
            let _ = self.ctl.try_send(Ctl::ExportNow);
        }
    }

    fn control(&self, make: impl FnOnce(SyncSender<OTelSdkResult>) -> Ctl) -> OTelSdkResult {
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        self.ctl
            .send(make(ack_tx))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        ack_rx
            .recv()
            .map_err(|_| OTelSdkError::InternalFailure("export worker stopped".into()))?
    }
}

impl SpanProcessor for CountingBatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        let delivered = match self.spans.try_send(span) {
            Ok(()) => true,
            Err(TrySendError::Full(span)) if self.overflow == Overflow::Block => {
                self.request_export();
                self.spans.send(span).is_ok()
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        };
        if !delivered {
            self.stats.queue_full();
            return;
        }
        if self.queued.fetch_add(1, Ordering::Relaxed) + 1 >= self.batch_size {
            self.request_export();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.control(Ctl::Flush)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let result = self.control(Ctl::Shutdown);
        if let Some(handle) = self
            .worker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            let _ = handle.join();
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Blocking send: the resource must reach the exporter before the first export.
        let _ = self.ctl.send(Ctl::Resource(resource.clone()));
    }
}

struct Worker<E> {
    exporter: E,
    config: BatchConfig,
    driver: Driver,
    stats: Arc<TelemetryStats>,
    queued: Arc<AtomicUsize>,
    export_requested: Arc<AtomicBool>,
    instance: String,
    /// The drop count the last report that reached the exporter gave.
    last_reported_dropped: Option<u64>,
    /// Whether any report was exported (the first goes out with the resource).
    reported: bool,
}

impl<E: SpanExporter> Worker<E> {
    fn run(mut self, ctl: &Receiver<Ctl>, spans: &Receiver<SpanData>) {
        let mut deadline = Instant::now() + self.config.scheduled_delay;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match ctl.recv_timeout(wait) {
                Ok(Ctl::ExportNow) => {
                    // A failure is counted in the stats; the worker goes on.
                    let _ = self.drain(spans);
                }
                Ok(Ctl::Resource(resource)) => {
                    self.exporter.set_resource(&resource);
                    // The first report as soon as the exporter knows its resource (the
                    // provider sets it once, when it is built): a process killed before its
                    // first batch still shows that it ran.
                    if !self.reported {
                        let _ = self.export(&mut Vec::new(), false);
                    }
                }
                Ok(Ctl::Flush(ack)) => {
                    let result = self.drain(spans).and(self.exporter.force_flush());
                    let _ = ack.send(result);
                }
                Ok(Ctl::Shutdown(ack)) => {
                    let _ = ack.send(self.shutdown(spans));
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.drain(spans);
                    deadline = Instant::now() + self.config.scheduled_delay;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.shutdown(spans);
                    return;
                }
            }
        }
    }

    /// Exports everything queued now, in batches; the first failure is returned, every
    /// failure is counted.
    fn drain(&mut self, spans: &Receiver<SpanData>) -> OTelSdkResult {
        self.export_requested.store(false, Ordering::Release);
        let mut result = Ok(());
        loop {
            let mut batch = Vec::with_capacity(self.config.max_export_batch_size);
            while batch.len() < self.config.max_export_batch_size {
                match spans.try_recv() {
                    Ok(span) => batch.push(span),
                    Err(_) => break,
                }
            }
            self.queued.fetch_sub(batch.len(), Ordering::Relaxed);
            let full = batch.len() == self.config.max_export_batch_size;
            let r = self.export(&mut batch, false);
            if result.is_ok() {
                result = r;
            }
            if !full {
                return result;
            }
        }
    }

    fn shutdown(&mut self, spans: &Receiver<SpanData>) -> OTelSdkResult {
        let drained = self.drain(spans);
        let last = self.export(&mut Vec::new(), true);
        drained.and(last).and(self.exporter.shutdown())
    }

    /// Exports what is batched with a telemetry span: one per export (the heartbeat), one
    /// alone when the drop count moved with nothing to export (a failing backend) or none
    /// was exported yet (the first report, see `Ctl::Resource`), and always the final one,
    /// so a clean run says "0 dropped" explicitly.
    fn export(&mut self, batch: &mut Vec<SpanData>, is_final: bool) -> OTelSdkResult {
        let app_spans = batch.len();
        let now = self.stats.snapshot();
        let drops_moved = now.dropped() > 0 && self.last_reported_dropped != Some(now.dropped());
        if app_spans == 0 && !is_final && !drops_moved && self.reported {
            return Ok(());
        }
        let mut spans =
            std::mem::replace(batch, Vec::with_capacity(self.config.max_export_batch_size));
        // The reading includes this batch as if exported; a failure is reported next time.
        let mut reading = now;
        reading.exported += app_spans as u64;
        spans.push(telemetry_span(reading, is_final, &self.instance));
        let future = self.exporter.export(spans);
        let result = match &self.driver {
            Driver::Thread => futures_executor::block_on(future),
            Driver::Tokio(handle) => handle.block_on(future),
        };
        match &result {
            Ok(()) => {
                self.stats.exported(app_spans);
                self.last_reported_dropped = Some(now.dropped());
                self.reported = true;
            }
            Err(_) => self.stats.export_failed(app_spans),
        }
        result
    }
}
