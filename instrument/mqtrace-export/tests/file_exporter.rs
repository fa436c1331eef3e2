//! The file exporter writes what the OpenTelemetry Collector's file exporter writes, rotates,
//! and leaves at most one torn line behind when killed.

mod common;

use mqtrace_export::{BatchConfig, Telemetry};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn produce_n(telemetry: &Telemetry, n: usize) {
    common::produce(telemetry.provider(), n);
}

#[test]
fn lines_are_collector_style_otlp_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let telemetry = Telemetry::builder()
        .file(dir.path())
        .service_name("orders-api")
        .build()
        .expect("pipeline");
    produce_n(&telemetry, 3);
    let stats = telemetry.shutdown().expect("shutdown");
    assert_eq!((stats.exported, stats.dropped()), (6, 0));

    let files = common::files(dir.path());
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).expect("read");
    // The first line is the pipeline's first telemetry report (written when it starts); the
    // app's spans follow.
    let first: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|l| l["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] != "mqtrace telemetry")
        .expect("a line of app spans");
    let rs = &first["resourceSpans"][0];
    let service = rs["resource"]["attributes"]
        .as_array()
        .expect("resource attributes")
        .iter()
        .find(|a| a["key"] == "service.name")
        .expect("service.name");
    assert_eq!(service["value"]["stringValue"], "orders-api");
    let span = &rs["scopeSpans"][0]["spans"][0];
    assert_eq!(rs["scopeSpans"][0]["scope"]["name"], "mqtrace");
    let trace_id = span["traceId"].as_str().expect("traceId is a string");
    assert_eq!(trace_id.len(), 32, "hex trace id");
    assert!(trace_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(span["spanId"].as_str().map(str::len), Some(16));
    assert!(span["startTimeUnixNano"].is_string(), "int64 as string");
    assert!(span["endTimeUnixNano"].is_string());
    assert_eq!(span["kind"], 4, "SPAN_KIND_PRODUCER");
    let seq = span["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .find(|a| a["key"] == "mqtrace.seq")
        .expect("seq attribute");
    assert_eq!(seq["value"]["intValue"], "1", "int64 attribute as string");

    let (requests, bad) = common::parse_all(dir.path());
    assert!(bad.is_empty());
    let names = common::span_names(&requests);
    assert_eq!(names.iter().filter(|n| *n == "send orders").count(), 3);
    assert_eq!(names.iter().filter(|n| *n == "store_ack orders").count(), 3);
    // One report at start, one with the batch (the heartbeat), the final one at shutdown.
    assert_eq!(
        names.iter().filter(|n| *n == "mqtrace telemetry").count(),
        3,
        "the telemetry reports"
    );
}

#[test]
fn files_rotate_by_size_and_no_span_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let telemetry = Telemetry::builder()
        .rotating_file(dir.path(), 4 * 1024)
        .batch(BatchConfig {
            max_export_batch_size: 4,
            ..BatchConfig::default()
        })
        .build()
        .expect("pipeline");
    produce_n(&telemetry, 200);
    telemetry.shutdown().expect("shutdown");
    let files = common::files(dir.path());
    assert!(
        files.len() > 5,
        "expected rotation, got {} files",
        files.len()
    );
    for f in &files {
        let len = std::fs::metadata(f).expect("metadata").len();
        // A file passes the limit by at most the one line that starts it.
        assert!(len < 4 * 1024 + 8 * 1024, "{} is {len} bytes", f.display());
    }
    let (requests, bad) = common::parse_all(dir.path());
    assert!(bad.is_empty());
    let names = common::span_names(&requests);
    assert_eq!(names.iter().filter(|n| n.starts_with("send")).count(), 200);
    assert_eq!(
        names.iter().filter(|n| n.starts_with("store_ack")).count(),
        200
    );
}

const CHILD_DIR: &str = "MQTRACE_TEST_KILL_DIR";

/// Not a test: the process the kill test starts and kills. It writes spans until killed, all
/// into one file.
#[test]
#[ignore = "helper process for a_killed_writer_leaves_at_most_one_torn_line"]
fn kill_test_child_writes_forever() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let telemetry = Telemetry::builder()
        .rotating_file(dir, 1 << 40)
        .batch(BatchConfig {
            // Lines of about a megabyte: the kernel copies each for a good while, a window
            // for the kill to land in.
            max_export_batch_size: 2_048,
            scheduled_delay: Duration::from_millis(1),
            ..BatchConfig::default()
        })
        .build()
        .expect("pipeline");
    loop {
        produce_n(&telemetry, 200);
    }
}

/// What a killed writer left in its file.
#[derive(Debug)]
struct KilledFile {
    whole_lines: usize,
    /// The file ends without a newline: the kill landed inside a `write`.
    torn: bool,
}

/// Checks one killed writer's file: every line that ends with a newline is a whole OTLP
/// request; only the last may lack the newline (torn).
fn check_killed_file(path: &Path) -> KilledFile {
    let bytes = std::fs::read(path).expect("read");
    let mut out = KilledFile {
        whole_lines: 0,
        torn: false,
    };
    for (i, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        if !line.ends_with(b"\n") {
            // split_inclusive: only the last piece can lack its newline.
            out.torn = true;
            continue;
        }
        if let Err(e) = serde_json::from_slice::<ExportTraceServiceRequest>(line) {
            panic!(
                "{}:{}: a whole line that is not an OTLP request: {e}",
                path.display(),
                i + 1
            );
        }
        out.whole_lines += 1;
    }
    out
}

/// Waits for `child` to have written `min_bytes` into a new file in `dir` (one not in
/// `known`), then kills it with SIGKILL, preferably while the file ends inside a line, i.e.
/// while a `write` is copying the line (the kernel grows the file page by page). Returns the
/// file.
fn kill_mid_write(child: KillOnDrop, dir: &Path, known: &[PathBuf], min_bytes: u64) -> PathBuf {
    // Generous: other tests (and builds) share the two cores and slow the debug child.
    let deadline = Instant::now() + Duration::from_secs(90);
    let path = loop {
        if let Some(p) = common::files(dir).into_iter().find(|p| !known.contains(p)) {
            break p;
        }
        assert!(Instant::now() < deadline, "the child wrote no file");
        std::thread::sleep(Duration::from_millis(5));
    };
    let file = std::fs::File::open(&path).expect("open the child's file");
    let mut last = [0u8; 1];
    let mut watch_until = None;
    let mut whole_line = false;
    loop {
        let len = file.metadata().expect("metadata").len();
        // A line is a whole export batch (hundreds of KB): wait for the first to be complete,
        // so that the kill always leaves whole lines before the torn one.
        if !whole_line && len >= min_bytes {
            let mut head = vec![0u8; len.min(16 << 20) as usize];
            let n = file.read_at(&mut head, 0).unwrap_or(0);
            whole_line = head[..n].contains(&b'\n');
        }
        if len < min_bytes || !whole_line {
            assert!(
                Instant::now() < deadline,
                "the child wrote only {len} bytes"
            );
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        // No sleep from here: a `write` of a line lasts well under a millisecond.
        let until = *watch_until.get_or_insert_with(|| Instant::now() + Duration::from_secs(5));
        let mid_line = file.read_at(&mut last, len - 1).is_ok_and(|n| n == 1) && last[0] != b'\n';
        // Past 256 MiB, kill anyway: enough disk for one round.
        if mid_line || Instant::now() > until || len > 256 << 20 {
            break;
        }
    }
    drop(child);
    path
}

/// A child writer, killed (SIGKILL) and reaped when dropped: also when a check fails first,
/// so that no writer outlives the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // An error means it has exited already; wait reaps it either way.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process killed while it writes spans leaves whole lines and at most one torn last
/// line, because each batch is one `write` (which `each_batch_is_written_with_one_write_call`
/// in `file_faults.rs` proves): a kill can cut the line being copied, never one written.
/// Rounds repeat (at least three) until a kill really tore a line, so the test sees the case
/// it is about.
#[test]
fn a_killed_writer_leaves_at_most_one_torn_line() {
    // Several killed writers' files in one directory, as a reader of the traces meets them.
    const MIN_ROUNDS: usize = 3;
    const MAX_ROUNDS: usize = 20;
    const BUDGET: Duration = Duration::from_secs(180);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let started = Instant::now();
    let mut killed: Vec<(PathBuf, KilledFile)> = Vec::new();
    let tore = |killed: &[(PathBuf, KilledFile)]| killed.iter().any(|(_, k)| k.torn);
    while killed.len() < MIN_ROUNDS || !tore(&killed) {
        assert!(
            killed.len() < MAX_ROUNDS && started.elapsed() < BUDGET,
            "no kill tore a line in {} rounds ({:?}): {killed:?}",
            killed.len(),
            started.elapsed()
        );
        let child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "kill_test_child_writes_forever",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(KillOnDrop)
            .expect("spawn child writer");
        let known: Vec<PathBuf> = killed.iter().map(|(p, _)| p.clone()).collect();
        let path = kill_mid_write(child, dir.path(), &known, 300_000);
        let result = check_killed_file(&path);
        assert!(
            result.whole_lines > 0,
            "{}: the writer wrote whole lines before dying",
            path.display()
        );
        killed.push((path, result));
    }
    assert_eq!(
        common::files(dir.path()).len(),
        killed.len(),
        "one file per killed process"
    );
    // The directory now holds files of killed writers, at least one of them torn: the
    // analyzer's reader takes every whole line and names each torn one, nothing else.
    let files = mqtrace_reader::discover(&[dir.path().to_path_buf()]).expect("trace files");
    let mut spans = 0;
    let loaded = mqtrace_reader::load(&files, &|_| {}, &mut |parts| spans += parts.seq.len())
        .expect("read back");
    let torn = killed.iter().filter(|(_, k)| k.torn).count() as u64;
    let whole: u64 = killed.iter().map(|(_, k)| k.whole_lines as u64).sum();
    assert_eq!(loaded.stats.records, whole, "every whole line read");
    assert_eq!(
        loaded.stats.malformed_total, torn,
        "{:?}",
        loaded.stats.malformed
    );
    for m in &loaded.stats.malformed {
        assert!(m.error.starts_with("torn last line"), "{m}");
    }
    assert!(spans > 0, "the producers' spans were read");
}
