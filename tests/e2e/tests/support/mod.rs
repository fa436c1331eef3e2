//! What the broker fault tests share: trace files of their own, the consumers' live counters
//! read back through an in-memory metrics exporter, the analyzer's verdicts as an exact set,
//! and unique names for the broker objects each test creates.

#![allow(dead_code)] // each test binary uses its own part of this module

use mqtrace_analyzer::{Options, Report, analyze, input};
use mqtrace_export::{Overflow, Telemetry};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

/// One finding as the tests compare them: (kind/stage, stream, consumer group, seq).
pub type Verdict = (String, String, Option<String>, u64);

/// Spans of one test, written as OTLP JSON lines to a directory of its own.
pub struct Traces {
    dir: tempfile::TempDir,
    telemetry: Telemetry,
    metrics: InMemoryMetricExporter,
    mode: mqtrace::Mode,
}

impl Traces {
    /// A file exporter that never drops (tests want every span); full mode.
    pub fn new(service: &str) -> Self {
        Self::in_mode(service, mqtrace::Mode::Full)
    }

    /// [`Self::new`], for producers and consumers recording in `mode`.
    pub fn in_mode(service: &str, mode: mqtrace::Mode) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let metrics = InMemoryMetricExporter::default();
        let telemetry = Telemetry::builder()
            .file(dir.path())
            .metric_exporter(metrics.clone())
            .service_name(service)
            .overflow(Overflow::Block)
            .build()
            .expect("file exporter");
        Self {
            dir,
            telemetry,
            metrics,
            mode,
        }
    }

    /// The mode the test's producers and consumers record in.
    pub fn mode(&self) -> mqtrace::Mode {
        self.mode
    }

    /// The provider the adapters record through.
    pub fn provider(&self) -> &SdkTracerProvider {
        self.telemetry.provider()
    }

    /// The provider the consumers count their live signals through (SPEC §7).
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        self.telemetry
            .meter_provider()
            .expect("the in-memory metric exporter")
    }

    /// The live counters as they stand now (cumulative), each summed over its attribute
    /// sets; only sets whose `messaging.destination.name` is `destination`. A counter nothing
    /// added to is absent (0).
    pub fn live(&self, destination: &str) -> BTreeMap<String, u64> {
        self.telemetry.flush().expect("flush");
        let exported = self
            .metrics
            .get_finished_metrics()
            .expect("in-memory metrics");
        let mut out = BTreeMap::new();
        // Cumulative temporality: the last collection holds every count so far.
        let Some(last) = exported.last() else {
            return out;
        };
        for m in last.scope_metrics().flat_map(|s| s.metrics()) {
            let AggregatedMetrics::U64(MetricData::Sum(sum)) = m.data() else {
                panic!("{} is not a u64 counter", m.name());
            };
            for p in sum.data_points() {
                let here = p.attributes().any(|kv| {
                    kv.key.as_str() == mqtrace::names::attr::MESSAGING_DESTINATION_NAME
                        && kv.value.as_str() == destination
                });
                if here {
                    *out.entry(m.name().to_owned()).or_default() += p.value();
                }
            }
        }
        out
    }

    /// Flushes, analyzes the files with the default grace, and checks the telemetry is whole.
    pub fn analyze(self) -> Report {
        self.analyze_sized().0
    }

    /// [`Self::analyze`], and the bytes of telemetry the files hold.
    pub fn analyze_sized(self) -> (Report, u64) {
        let stats = self.telemetry.shutdown().expect("exporter shutdown");
        let bytes = std::fs::read_dir(self.dir.path())
            .expect("trace dir")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        assert_eq!(stats.dropped(), 0, "telemetry dropped");
        let files = input::discover(&[self.dir.path().to_path_buf()]).expect("trace files");
        let report = analyze(&files, &Options::default(), &|_| {}).expect("analysis");
        assert!(
            report.input.malformed.is_empty(),
            "{:?}",
            report.input.malformed
        );
        (report, bytes)
    }
}

/// How many findings of `key` (`kind/stage`) the report holds.
pub fn count(report: &Report, key: &str) -> u64 {
    report.findings.iter().filter(|f| f.key() == key).count() as u64
}

/// The report's findings as an exact set.
pub fn verdicts(report: &Report) -> BTreeSet<Verdict> {
    report
        .findings
        .iter()
        .map(|f| {
            (
                f.key(),
                f.stream.clone(),
                f.consumer_group.clone(),
                u64::try_from(f.seq.expect("a numbered finding")).expect("positive seq"),
            )
        })
        .collect()
}

/// The expected findings: `kind/stage` of `stream` in `group` for each seq.
pub fn expect(
    key: &str,
    stream: &str,
    group: Option<&str>,
    seqs: impl IntoIterator<Item = u64>,
) -> BTreeSet<Verdict> {
    seqs.into_iter()
        .map(|seq| {
            (
                key.to_owned(),
                stream.to_owned(),
                group.map(str::to_owned),
                seq,
            )
        })
        .collect()
}

/// A name no other test (or earlier run) uses: `{prefix}-{pid}-{time}-{n}`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An idempotent consumer's check (`seen` is what it processed; `None`: a naive consumer,
/// which processes every copy): whether `seq` is a copy to settle with `skip_duplicate`.
pub fn processed_before(seen: Option<&mut std::collections::HashSet<u64>>, seq: u64) -> bool {
    seen.is_some_and(|seen| !seen.insert(seq))
}

/// How long a test waits for a broker before it fails.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs each named `async fn(Mode)` test in full mode and in ledger mode, as `full::{name}`
/// and `ledger::{name}`: the same faults must give the same findings in both (SPEC §2b).
#[allow(unused_macros)] // each test binary uses its own part of this module
macro_rules! in_both_modes {
    ($($name:ident),+ $(,)?) => {
        mod full {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(mqtrace::Mode::Full).await
                }
            )+
        }
        mod ledger {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(mqtrace::Mode::Ledger).await
                }
            )+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use in_both_modes;

/// RabbitMQ on loopback, as `scripts/services` brings it up.
pub mod rabbit {
    use super::BROKER_TIMEOUT;
    use lapin::options::ConfirmSelectOptions;
    use lapin::{Channel, Connection, ConnectionProperties};
    use tokio::time::timeout;

    /// The broker's address (guest/guest, default vhost).
    pub const AMQP_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    /// A connection, or a panic that says how to start the broker.
    pub async fn connect() -> Connection {
        match timeout(
            BROKER_TIMEOUT,
            Connection::connect(AMQP_URI, ConnectionProperties::default()),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => panic!("RabbitMQ at {AMQP_URI}: {e} (start it with scripts/services)"),
            Err(_) => {
                panic!("RabbitMQ at {AMQP_URI} did not answer (start it with scripts/services)")
            }
        }
    }

    /// A channel with publisher confirms on.
    pub async fn confirming_channel(conn: &Connection) -> Channel {
        let channel = conn.create_channel().await.expect("channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm_select");
        channel
    }
}

/// The parent's side of a test that runs itself as a child process and reads what it says.
pub mod child {
    use std::io::{BufRead, BufReader};
    use std::process::ChildStdout;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// What the child said next.
    pub enum Next {
        /// A line with the tag: what follows the tag.
        Said(String),
        /// Its standard output closed (it ended, or was killed).
        Ended,
        /// The deadline passed first.
        TimedOut,
    }

    /// The lines a child writes to standard output that carry `tag` (libtest's own output
    /// may share a line), read on a thread so that the parent waits with a deadline.
    pub struct Tagged {
        lines: mpsc::Receiver<String>,
        tag: &'static str,
        deadline: Instant,
    }

    impl Tagged {
        /// Reads `stdout` until it closes; [`Tagged::next`] gives up `within` from now.
        pub fn new(stdout: ChildStdout, tag: &'static str, within: Duration) -> Tagged {
            let (tx, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            Tagged {
                lines,
                tag,
                deadline: Instant::now() + within,
            }
        }

        /// The next tagged line, or why there is none.
        pub fn next(&self) -> Next {
            loop {
                let left = self.deadline.saturating_duration_since(Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(line) => {
                        if let Some(at) = line.find(self.tag) {
                            return Next::Said(line[at + self.tag.len()..].to_owned());
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return Next::Ended,
                    Err(mpsc::RecvTimeoutError::Timeout) => return Next::TimedOut,
                }
            }
        }
    }
}
