//! Real processes killed with SIGKILL against the RabbitMQ at 127.0.0.1:5672, in full and in
//! ledger mode: a consumer mid-batch, and a producer between its sends and their confirms.
//! Each child is this test binary run again (`child_process`, its role from the environment),
//! exporting to the same trace directory as the parent with `mqtrace-export`'s file exporter;
//! it says on stdout, line by line, what it did, and the parent kills it at the point it
//! names. Ground truth is what the processes said and what the broker held, never the traces.
//!
//! The spans and ledgers a killed process had not exported are gone, so the analyzer cannot
//! know every stage: what it must do is name every message the killed process took (or sent)
//! and never settled (or saw confirmed), never state a wrong stage as certain, list the
//! killed process's exporter as stopped without its final report, and never read as a clean
//! bill.

mod support;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use mqtrace::{Consumer, Mode, Producer};
use mqtrace_analyzer::report::render_table;
use mqtrace_analyzer::{Evidence, Finding, Kind, Options, Report, Where, analyze, input};
use mqtrace_export::{Overflow, Telemetry};
use mqtrace_lapin::{SYSTEM, TracedConsumer, TracedPublisher, TracedQueue};
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::child::{Next, Tagged};
use support::rabbit::{confirming_channel, connect};
use support::{BROKER_TIMEOUT, unique};
use tokio::time::timeout;

/// What every child line starts with (libtest prints its own lines around them).
const TAG: &str = "killed-child:";
/// Messages the parent publishes before the consumer starts.
const PUBLISHED: u64 = 40;
/// The consumer settles this many, with an export half way, then takes `TAKEN` more.
const SETTLED: u64 = 10;
const TAKEN: u64 = 3;
/// Messages published and consumed after the kill (a restarted consumer passes the rest).
const AFTER: u64 = 5;
/// The producer sends this many awaiting each confirm, then `UNCONFIRMED` without.
const CONFIRMED: u64 = 5;
const UNCONFIRMED: u64 = 3;

async fn declare_queue(channel: &Channel, name: &str) {
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(120_000));
    channel
        .queue_declare(name.into(), QueueDeclareOptions::default(), args)
        .await
        .expect("queue_declare");
}

fn pipeline(dir: &Path, service: &str) -> Telemetry {
    Telemetry::builder()
        .file(dir)
        .service_name(service)
        .overflow(Overflow::Block)
        .build()
        .expect("file exporter")
}

fn producer(telemetry: &Telemetry, id: &str, mode: Mode) -> Producer {
    Producer::builder(SYSTEM)
        .producer_id(id)
        .tracer_provider(telemetry.provider())
        .mode(mode)
        .build()
}

fn traced_queue(telemetry: &Telemetry, name: &str, mode: Mode) -> TracedQueue {
    TracedQueue::new(
        name,
        Consumer::builder(SYSTEM, name)
            .tracer_provider(telemetry.provider())
            .mode(mode)
            .build(),
    )
}

async fn publish_confirmed(publisher: &TracedPublisher, queue: &str) {
    let confirm = publisher
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            b"{}",
            BasicProperties::default(),
        )
        .await
        .expect("publish");
    let confirmation = timeout(BROKER_TIMEOUT, confirm)
        .await
        .expect("confirm in time")
        .expect("confirm");
    assert!(confirmation.is_ack());
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Ledger => "ledger",
        _ => "full",
    }
}

// ---------------------------------------------------------------------------------------
// The child processes.

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{TAG} {line}").expect("stdout");
    out.flush().expect("stdout");
}

/// The entry of the child processes: nothing unless `KILLED_CHILD` names a role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process() {
    let Ok(role) = std::env::var("KILLED_CHILD") else {
        return;
    };
    let mode = match env("KILLED_MODE").as_str() {
        "ledger" => Mode::Ledger,
        _ => Mode::Full,
    };
    let telemetry = pipeline(Path::new(&env("KILLED_TRACES")), &format!("killed-{role}"));
    say(&format!("instance {}", telemetry.instance()));
    let queue = env("KILLED_QUEUE");
    let conn = connect().await;
    match role.as_str() {
        "consumer" => consumer_child(&telemetry, &conn, &queue, mode).await,
        "producer" => producer_child(&telemetry, &conn, &queue, mode).await,
        other => panic!("no role {other}"),
    }
}

/// Says so and waits for the SIGKILL, holding everything the caller holds: nothing is
/// dropped (a ledger-mode producer or consumer flushes its ledgers when dropped), nothing
/// shuts down, no final report.
async fn kill_me() -> Infallible {
    say("kill-me");
    std::future::pending().await
}

/// An auto-ack consumer: RabbitMQ forgets each message as it sends it. Settles `SETTLED`
/// (exporting half way, so that some of its telemetry is out), then takes `TAKEN` more and
/// dies before processing them; what the client had received beyond those dies with it.
async fn consumer_child(telemetry: &Telemetry, conn: &Connection, queue: &str, mode: Mode) {
    let channel = conn.create_channel().await.expect("channel");
    let inner = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("basic_consume");
    let traced = traced_queue(telemetry, queue, mode);
    let mut consumer = TracedConsumer::new(inner, traced.tracer().clone()).auto_ack(true);
    let mut held = Vec::new();
    for n in 1..=SETTLED + TAKEN {
        let delivery = timeout(BROKER_TIMEOUT, consumer.next())
            .await
            .expect("a delivery in time")
            .expect("consumer open")
            .expect("delivery");
        let seq = delivery.key().expect("numbered").seq;
        say(&format!("took {seq}"));
        if n > SETTLED {
            // Taken, never processed: held until the kill.
            held.push(delivery);
            continue;
        }
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
        say(&format!("settled {seq}"));
        if n == SETTLED / 2 {
            telemetry.flush().expect("flush");
        }
    }
    match kill_me().await {}
}

/// A producer that sends `CONFIRMED` messages awaiting each confirm (exporting after them),
/// then `UNCONFIRMED` more whose confirms it never awaits: killed between send and ack.
async fn producer_child(telemetry: &Telemetry, conn: &Connection, queue: &str, mode: Mode) {
    let publisher = TracedPublisher::new(
        confirming_channel(conn).await,
        producer(telemetry, &env("KILLED_PRODUCER"), mode),
    );
    for seq in 1..=CONFIRMED {
        publish_confirmed(&publisher, queue).await;
        say(&format!("acked {seq}"));
    }
    telemetry.flush().expect("flush");
    let mut pending = Vec::new();
    for seq in CONFIRMED + 1..=CONFIRMED + UNCONFIRMED {
        let confirm = publisher
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                b"{}",
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        say(&format!("sent {seq}"));
        pending.push(confirm);
    }
    // The confirms stay unawaited until the kill.
    let _held = (pending, publisher);
    match kill_me().await {}
}

// ---------------------------------------------------------------------------------------
// The parent's side.

/// What a child said before it was killed.
#[derive(Debug, Default)]
struct Said {
    instance: String,
    took: BTreeSet<u64>,
    settled: BTreeSet<u64>,
    acked: BTreeSet<u64>,
    sent: BTreeSet<u64>,
}

/// Runs the child `role` and SIGKILLs it when it says `kill-me`.
fn run_child(role: &str, vars: &[(&str, String)]) -> Said {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("KILLED_CHILD", role)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child: Child = cmd.spawn().expect("child process");
    let stdout = child.stdout.take().expect("piped stdout");
    let lines = Tagged::new(stdout, TAG, Duration::from_secs(60));
    let mut said = Said::default();
    loop {
        let rest = match lines.next() {
            Next::Said(rest) => rest,
            Next::Ended => {
                let status = child.wait().expect("wait");
                panic!("the {role} process ended before its kill ({status}): {said:?}");
            }
            Next::TimedOut => {
                let _ = child.kill();
                panic!("the {role} process: no kill point after 60 s; so far {said:?}");
            }
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let seq = |w: &str| w.parse::<u64>().expect("seq");
        match words.as_slice() {
            ["instance", id] => said.instance = (*id).to_owned(),
            ["took", s] => {
                said.took.insert(seq(s));
            }
            ["settled", s] => {
                said.settled.insert(seq(s));
            }
            ["acked", s] => {
                said.acked.insert(seq(s));
            }
            ["sent", s] => {
                said.sent.insert(seq(s));
            }
            ["kill-me"] => {
                // std's kill is SIGKILL: nothing of the child runs after it.
                child.kill().expect("SIGKILL");
                break;
            }
            _ => panic!("the {role} process said {rest:?}"),
        }
    }
    let status = child.wait().expect("wait");
    assert!(!status.success(), "killed: {status}");
    said
}

fn report_of(dir: &Path) -> Report {
    let files = input::discover(&[dir.to_path_buf()]).expect("trace files");
    let report = analyze(&files, &Options::default(), &|_| {}).expect("analysis");
    // A killed writer may leave at most a torn last line (the file exporter writes a batch
    // with one write call); nothing else may be malformed.
    for m in &report.input.malformed {
        assert!(m.error.contains("torn last line"), "{m}");
    }
    report
}

/// The stopped-telemetry evidence, with the stage the spans alone point to.
fn stopped_evidence(f: &Finding) -> Option<Option<Where>> {
    match &f.evidence {
        Evidence::TelemetryStopped { spans_say, .. } => Some(*spans_say),
        _ => None,
    }
}

/// What every killed-process report must say: the killed instance stopped (and only it), no
/// loss names a stage as certain unless it is `allowed`, a loss makes the exit status 1, and
/// the table is no clean bill.
fn check_report(report: &Report, killed: &str, allowed: Option<Where>) {
    let counts: Vec<(&String, &u64)> = report
        .summary
        .findings
        .iter()
        .filter(|(_, n)| **n > 0)
        .collect();
    println!("findings: {counts:?}");
    if let Some(f) = report.findings.iter().find(|f| f.kind == Kind::Lost) {
        println!("e.g. seq {:?}: {}", f.seq, f.evidence_text());
    }
    let stopped: Vec<String> = report
        .summary
        .telemetry
        .stopped_instances()
        .into_iter()
        .map(|s| s.instance)
        .collect();
    assert_eq!(
        stopped,
        [killed.to_owned()],
        "the killed process's exporter"
    );
    for f in &report.findings {
        if f.kind == Kind::Lost && f.stage.is_some() {
            assert_eq!(f.stage, allowed, "a stage stated as certain: {f:?}");
        }
        if f.kind == Kind::Lost && f.stage.is_none() {
            assert!(
                stopped_evidence(f).is_some()
                    && f.evidence_text().contains(killed)
                    && f.evidence_text().contains("stopped without a final report"),
                "a loss without a stage must say whose telemetry stopped: {}",
                f.evidence_text()
            );
        }
    }
    // SPEC §5: the exit status counts findings (a loss: 1); the report itself always says
    // that the telemetry is incomplete.
    if report.findings.iter().any(|f| f.kind == Kind::Lost) {
        assert!(report.has_problems(), "exit status 1");
    }
    assert!(report.summary.telemetry.incomplete());
    let table = render_table(report, 1000);
    assert!(table.contains("telemetry INCOMPLETE"), "{table}");
    assert!(!table.contains("no findings: every message"), "{table}");
}

async fn a_consumer_killed_mid_batch_is_named_with_its_stopped_telemetry(mode: Mode) {
    let base = tempfile::tempdir().expect("tempdir");
    let traces = base.path().join("traces");
    let queue = unique("killed-consumer");
    let producer_id = unique("orders-api");
    let telemetry = pipeline(&traces, "killed-parent");
    let conn = connect().await;
    let admin = conn.create_channel().await.expect("channel");
    declare_queue(&admin, &queue).await;
    let publisher = TracedPublisher::new(
        confirming_channel(&conn).await,
        producer(&telemetry, &producer_id, mode),
    );
    for _ in 0..PUBLISHED {
        publish_confirmed(&publisher, &queue).await;
    }

    let vars = vec![
        ("KILLED_MODE", mode_name(mode).to_owned()),
        ("KILLED_TRACES", traces.display().to_string()),
        ("KILLED_QUEUE", queue.clone()),
    ];
    let said = tokio::task::spawn_blocking(move || run_child("consumer", &vars))
        .await
        .expect("consumer process");
    assert_eq!(said.took.len() as u64, SETTLED + TAKEN, "{said:?}");
    assert_eq!(said.settled.len() as u64, SETTLED, "{said:?}");

    // Auto-ack: whatever the client had received is gone from the broker.
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let q = admin
        .queue_declare(queue.as_str().into(), passive, FieldTable::default())
        .await
        .expect("queue_declare passive");
    let left_in_queue = u64::from(q.message_count());

    // The consumer restarts: more messages, all processed, and the rest of the queue.
    for _ in 0..AFTER {
        publish_confirmed(&publisher, &queue).await;
    }
    let traced = traced_queue(&telemetry, &queue, mode);
    let mut processed_later = BTreeSet::new();
    for _ in 0..left_in_queue + AFTER {
        let delivery = timeout(
            BROKER_TIMEOUT,
            traced.basic_get(&admin, BasicGetOptions::default()),
        )
        .await
        .expect("basic_get in time")
        .expect("basic_get")
        .expect("a message left");
        processed_later.insert(delivery.key().expect("numbered").seq);
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    admin
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("queue_delete");
    drop((publisher, traced));
    telemetry.shutdown().expect("exporter shutdown");

    // Ground truth: every message the killed consumer's client received and the app never
    // settled is lost at consume.
    let lost: BTreeSet<u64> = (1..=PUBLISHED)
        .filter(|s| !said.settled.contains(s) && !processed_later.contains(s))
        .collect();
    let taken_unsettled: BTreeSet<u64> = said.took.difference(&said.settled).copied().collect();
    assert!(taken_unsettled.is_subset(&lost), "{said:?}");
    assert_eq!(taken_unsettled.len() as u64, TAKEN);

    let report = report_of(&traces);
    check_report(&report, &said.instance, Some(Where::Consume));
    for seq in &lost {
        let named = report.findings.iter().any(|f| {
            f.seq == Some(*seq as i64)
                && f.producer_id == producer_id
                && f.kind == Kind::Lost
                && (f.stage == Some(Where::Consume) || stopped_evidence(f).is_some())
        });
        assert!(
            named,
            "seq {seq}, lost at consume, is not named: {:#?}",
            report
                .findings
                .iter()
                .map(|f| (f.key(), f.seq, f.evidence_text()))
                .collect::<Vec<_>>()
        );
    }
    // What the restarted consumer processed is no loss.
    for f in &report.findings {
        assert!(
            !processed_later.contains(&(f.seq.unwrap_or(0) as u64)) || f.kind != Kind::Lost,
            "{f:?}"
        );
    }
}

async fn a_producer_killed_between_send_and_ack_is_named_with_its_stopped_telemetry(mode: Mode) {
    let base = tempfile::tempdir().expect("tempdir");
    let traces = base.path().join("traces");
    let queue = unique("killed-producer");
    let producer_id = unique("orders-api");
    let telemetry = pipeline(&traces, "killed-parent");
    let conn = connect().await;
    let admin = conn.create_channel().await.expect("channel");
    declare_queue(&admin, &queue).await;

    let vars = vec![
        ("KILLED_MODE", mode_name(mode).to_owned()),
        ("KILLED_TRACES", traces.display().to_string()),
        ("KILLED_QUEUE", queue.clone()),
        ("KILLED_PRODUCER", producer_id.clone()),
    ];
    let said = tokio::task::spawn_blocking(move || run_child("producer", &vars))
        .await
        .expect("producer process");
    assert_eq!(said.acked.len() as u64, CONFIRMED, "{said:?}");
    assert_eq!(said.sent.len() as u64, UNCONFIRMED, "{said:?}");

    // What the broker stored (the unconfirmed sends may or may not have reached it before
    // the kill), processed by a consumer that shuts down cleanly.
    let traced = traced_queue(&telemetry, &queue, mode);
    let mut stored = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match traced
            .basic_get(&admin, BasicGetOptions::default())
            .await
            .expect("basic_get")
        {
            Some(delivery) => {
                stored.insert(delivery.key().expect("numbered").seq);
                delivery.ack(BasicAckOptions::default()).await.expect("ack");
            }
            None => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    admin
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("queue_delete");
    drop(traced);
    telemetry.shutdown().expect("exporter shutdown");
    assert!(
        said.acked.is_subset(&stored),
        "confirmed and stored: {stored:?}"
    );

    let report = report_of(&traces);
    // No stage is certain for a producer that died before its confirms: not even produce.
    check_report(&report, &said.instance, None);
    let highest_seen = report
        .findings
        .iter()
        .map(|f| f.seq.unwrap_or(0) as u64)
        .chain(stored.iter().copied())
        .max()
        .unwrap_or(0);
    for seq in &said.sent {
        let findings: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.seq == Some(*seq as i64) && f.producer_id == producer_id)
            .collect();
        if stored.contains(seq) {
            // Stored and processed: no loss, whatever telemetry is missing.
            assert!(
                findings.iter().all(|f| f.kind != Kind::Lost),
                "seq {seq} was processed: {findings:?}"
            );
        } else if *seq < highest_seen {
            // Never stored: named (a loss or an unobserved seq), with the stopped telemetry.
            assert!(
                findings
                    .iter()
                    .any(|f| f.kind.is_problem() && stopped_evidence(f).is_some()),
                "seq {seq}, never stored, is not named: {findings:?}"
            );
        }
        // A seq above every seq seen has no span at all: only the stopped instance in the
        // summary (checked above) speaks for it.
    }
}

support::in_both_modes!(
    a_consumer_killed_mid_batch_is_named_with_its_stopped_telemetry,
    a_producer_killed_between_send_and_ack_is_named_with_its_stopped_telemetry,
);
