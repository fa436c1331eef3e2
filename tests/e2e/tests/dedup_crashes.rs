//! Idempotent consumers (mqtrace-dedup) killed with SIGKILL at each crash point, against the
//! real RabbitMQ (127.0.0.1:5672), Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432,
//! user `postgres`, database `test`): `scripts/services` starts them.
//!
//! Each run: a producer publishes seqs 1..=6 to a queue of its own, seq 3 twice (a retry
//! after a lost confirm: two stored copies). Consumer process A (this test binary run again
//! as `child_consumer`) processes seq 1, takes seq 2, and is SIGKILLed at the crash point
//! (before the work, during it, after it and before the mark, after the mark and before the
//! ack); RabbitMQ requeues seq 2. Consumer process B takes the six deliveries left. Ground
//! truth is what the processes did (the business table or effects file, each delivery's
//! outcome), checked against the store's documented guarantee (docs/dedup.md); then
//! `mqtrace analyze` over both processes' spans must call the copies `redelivered`, and
//! `duplicate/consume` only without a store. Every test runs in full and in ledger mode.
//!
//! Spans are flushed at the crash point before the kill: what is tested is the store, not
//! the telemetry a SIGKILL loses (mqtrace-export's tests cover that).

mod support;

use futures::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use mqtrace::{Consumer, MessageKey, Mode, Producer};
use mqtrace_analyzer::{Options, analyze, input};
use mqtrace_dedup::{
    Check, DedupId, Outcome, PgClaim, PgStore, RedisStore, Settle, SettleError, Store, StoreError,
    WindowStore, process_once,
};
use mqtrace_export::{Overflow, Telemetry};
use mqtrace_lapin::{SYSTEM, TracedConsumer, TracedDelivery, TracedPublisher};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::child::{Next, Tagged};
use support::rabbit::{AMQP_URI, connect};
use support::{BROKER_TIMEOUT, expect, unique, verdicts};
use tokio::time::timeout;

const REDIS_URL: &str = "redis://127.0.0.1:6379/";
const PG_PARAMS: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";
const PRODUCER: &str = "orders-api";
/// The seq consumer A dies on.
const CRASH_SEQ: u64 = 2;
/// The seq published twice.
const RETRIED_SEQ: u64 = 3;
const LAST_SEQ: u64 = 6;
/// Deliveries left for B: seqs 2..=6 and the second copy of 3.
const LEFT_FOR_B: usize = 6;
/// The Redis lease: long enough to tell a wait for it from a process start.
const LEASE: Duration = Duration::from_secs(2);
/// What every child line starts with (libtest prints its own lines around them).
const TAG: &str = "dedup-child:";

/// Where the consumer dies, as the issue names the points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    /// Claimed, the work not started.
    BeforeWork,
    /// Inside the work: PostgreSQL, the business row written (uncommitted); the others,
    /// before their effect.
    DuringWork,
    /// The work returned, the store not yet told.
    AfterWork,
    /// Marked done, the delivery not yet acked.
    AfterMark,
}

impl Point {
    const ALL: [Point; 4] = [
        Point::BeforeWork,
        Point::DuringWork,
        Point::AfterWork,
        Point::AfterMark,
    ];

    fn name(self) -> &'static str {
        match self {
            Point::BeforeWork => "before-work",
            Point::DuringWork => "during-work",
            Point::AfterWork => "after-work",
            Point::AfterMark => "after-mark",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Postgres,
    Redis,
    Window,
    /// No store: the same path, every claim unchecked.
    None,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Redis => "redis",
            Kind::Window => "window",
            Kind::None => "none",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Kind::Postgres, Kind::Redis, Kind::Window, Kind::None]
            .into_iter()
            .find(|k| k.name() == s)
    }
}

// ---------------------------------------------------------------------------------------
// The child: a consumer process.

/// Not a test of its own: the consumer process the tests below start (this binary, with
/// `DEDUP_CHILD` set). Without it, it returns at once.
#[test]
fn child_consumer() {
    if std::env::var_os("DEDUP_CHILD").is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(child());
}

/// What the child was told, from its environment.
struct ChildConfig {
    queue: String,
    effects: PathBuf,
    table: String,
    crash: Option<(Point, u64)>,
    count: usize,
    mode: Mode,
    provider: SdkTracerProvider,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{TAG} {line}").expect("stdout");
    out.flush().expect("stdout");
}

async fn child() {
    let telemetry = Telemetry::builder()
        .file(env("DEDUP_TRACES"))
        .service_name("dedup-consumer")
        .overflow(Overflow::Block)
        .build()
        .expect("file exporter");
    let crash = std::env::var("DEDUP_CRASH").ok().map(|c| {
        let (point, seq) = c.split_once(':').expect("point:seq");
        (
            Point::parse(point).expect("crash point"),
            seq.parse().expect("crash seq"),
        )
    });
    let cfg = ChildConfig {
        queue: env("DEDUP_QUEUE"),
        effects: env("DEDUP_EFFECTS").into(),
        table: env("DEDUP_TABLE"),
        crash,
        count: env("DEDUP_COUNT").parse().expect("count"),
        mode: env("DEDUP_MODE").parse().expect("mode"),
        provider: telemetry.provider().clone(),
    };
    match Kind::parse(&env("DEDUP_STORE")).expect("store kind") {
        Kind::Postgres => {
            let store = PgStore::connect(PG_PARAMS).await.expect("PostgreSQL");
            let table = cfg.table.clone();
            consume(&cfg, &store, async |seq, tx: &mut PgClaim, cfg| {
                let row = i64::try_from(seq).map_err(|e| e.to_string())?;
                tx.execute(&format!("INSERT INTO {table} (seq) VALUES ($1)"), &[&row])
                    .await
                    .map_err(|e| e.to_string())?;
                cfg.maybe_crash(Point::DuringWork, seq).await;
                Ok(())
            })
            .await
        }
        Kind::Redis => {
            let store = RedisStore::connect(REDIS_URL)
                .await
                .expect("Redis")
                .lease(LEASE)
                .retention(Duration::from_secs(120));
            consume(&cfg, &store, async |seq, _, cfg| effect(seq, cfg).await).await
        }
        Kind::Window => {
            let store = WindowStore::new();
            consume(&cfg, &store, async |seq, _, cfg| effect(seq, cfg).await).await
        }
        Kind::None => consume(&cfg, &NoStore, async |seq, _, cfg| effect(seq, cfg).await).await,
    }
    telemetry.shutdown().expect("exporter shutdown");
}

/// The work of the stores without a transaction: one line per processing in a file that
/// outlives the process (`write` reaches the kernel before the kill).
async fn effect(seq: u64, cfg: &ChildConfig) -> Result<(), String> {
    cfg.maybe_crash(Point::DuringWork, seq).await;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.effects)
        .map_err(|e| e.to_string())?;
    writeln!(f, "{seq}").map_err(|e| e.to_string())
}

impl ChildConfig {
    /// At the crash point for `seq`: flushes the spans so far, says so, and waits for the
    /// SIGKILL.
    async fn maybe_crash(&self, point: Point, seq: u64) {
        if self.crash == Some((point, seq)) {
            match crash(&self.provider, point, seq).await {}
        }
    }
}

async fn crash(provider: &SdkTracerProvider, point: Point, seq: u64) -> Infallible {
    mqtrace::flush_ledgers();
    provider.force_flush().expect("flush before the crash");
    say(&format!("crash {} {seq}", point.name()));
    std::future::pending().await
}

/// A store that checks nothing: the consumer without a store, on the same path.
struct NoStore;

impl Store for NoStore {
    type Claim = ();

    async fn claim(&self, _: Option<&DedupId>) -> Result<Check<()>, StoreError> {
        Ok(Check::Unchecked(()))
    }

    async fn done(&self, (): ()) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release(&self, (): ()) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A delivery that dies at [`Point::AfterMark`]: `process_once` acks only after the mark.
struct Crashy<'a> {
    inner: TracedDelivery,
    cfg: &'a ChildConfig,
}

impl Settle for Crashy<'_> {
    fn key(&self) -> Option<&MessageKey> {
        self.inner.key()
    }

    fn fallback_id(&self) -> Option<String> {
        Settle::fallback_id(&self.inner)
    }

    async fn ack(self) -> Result<(), SettleError> {
        if let Some(seq) = self.inner.key().map(|k| k.seq) {
            self.cfg.maybe_crash(Point::AfterMark, seq).await;
        }
        Settle::ack(self.inner).await
    }

    fn skip_duplicate(self) -> impl Future<Output = Result<(), SettleError>> + Send {
        Settle::skip_duplicate(self.inner)
    }
}

/// Consumes `cfg.count` deliveries through `process_once`, saying what became of each.
async fn consume<S, W>(cfg: &ChildConfig, store: &S, work: W)
where
    S: Store,
    W: AsyncFn(u64, &mut S::Claim, &ChildConfig) -> Result<(), String>,
{
    let conn = Connection::connect(AMQP_URI, ConnectionProperties::default())
        .await
        .expect("RabbitMQ");
    let channel = conn.create_channel().await.expect("channel");
    // One delivery in flight: the kill leaves exactly the crash seq unacked.
    channel
        .basic_qos(1, BasicQosOptions::default())
        .await
        .expect("qos");
    let inner = channel
        .basic_consume(
            cfg.queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic_consume");
    let tracer = Consumer::builder(SYSTEM, cfg.queue.as_str())
        .tracer_provider(&cfg.provider)
        .mode(cfg.mode)
        .build();
    let mut deliveries = TracedConsumer::new(inner, tracer);
    for _ in 0..cfg.count {
        let d = deliveries
            .next()
            .await
            .expect("consumer open")
            .expect("delivery");
        let seq = d.key().expect("numbered").seq;
        let started = Instant::now();
        let outcome = process_once(Crashy { inner: d, cfg }, store, async |_, claim| {
            cfg.maybe_crash(Point::BeforeWork, seq).await;
            work(seq, claim, cfg).await?;
            cfg.maybe_crash(Point::AfterWork, seq).await;
            Ok::<_, String>(())
        })
        .await;
        let outcome = match outcome {
            Ok(Outcome::Processed(())) => "processed",
            Ok(Outcome::Skipped) => "skipped",
            Ok(Outcome::Unchecked(())) => "unchecked",
            Err(e) => panic!("seq {seq}: {e}"),
        };
        say(&format!(
            "{outcome} {seq} {}",
            started.elapsed().as_millis()
        ));
    }
    // A clean close: the broker has every ack before the process exits.
    conn.close(200, "done".into()).await.expect("close");
}

// ---------------------------------------------------------------------------------------
// The parent: broker set-up, the two consumer processes, ground truth, the analyzer.

/// Publishes seqs 1..=LAST_SEQ to `queue`, RETRIED_SEQ twice (its first confirm given up on,
/// as after a lost confirm: the broker stores both).
async fn publish(channel: &Channel, provider: &SdkTracerProvider, mode: Mode, queue: &str) {
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm_select");
    let producer = Producer::builder(SYSTEM)
        .producer_id(PRODUCER)
        .tracer_provider(provider)
        .mode(mode)
        .build();
    let publisher = TracedPublisher::new(channel.clone(), producer);
    for seq in 1..=LAST_SEQ {
        let mut message = publisher.message("", queue);
        loop {
            let confirm = publisher
                .publish_attempt(
                    &mut message,
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    format!("{{\"order\":{seq}}}").as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .expect("publish");
            if seq == RETRIED_SEQ && message.attempts() == 1 {
                confirm.give_up();
                continue;
            }
            let confirmation = timeout(BROKER_TIMEOUT, confirm)
                .await
                .expect("confirm in time")
                .expect("confirm");
            assert!(confirmation.is_ack());
            break;
        }
    }
}

/// What one consumer process said.
#[derive(Debug, Default)]
struct ChildRun {
    /// (outcome, seq, milliseconds in `process_once`), in order.
    outcomes: Vec<(String, u64, u128)>,
    crashed: Option<(String, u64)>,
}

/// Runs a consumer process; with a crash point, SIGKILLs it there.
fn run_child(vars: &[(&str, String)], crash: Option<Point>, count: usize) -> ChildRun {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "child_consumer",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("DEDUP_CHILD", "1")
    .env("DEDUP_COUNT", count.to_string())
    .env_remove("DEDUP_CRASH")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    if let Some(point) = crash {
        cmd.env("DEDUP_CRASH", format!("{}:{CRASH_SEQ}", point.name()));
    }
    let mut child = cmd.spawn().expect("consumer process");
    let stdout = child.stdout.take().expect("piped stdout");
    let lines = Tagged::new(stdout, TAG, Duration::from_secs(60));
    let mut run = ChildRun::default();
    loop {
        let said = match lines.next() {
            Next::Said(said) => said,
            Next::Ended => break,
            Next::TimedOut => {
                let _ = child.kill();
                panic!("consumer process: no end after 60 s; so far {run:?}");
            }
        };
        let words: Vec<&str> = said.split_whitespace().collect();
        match words.as_slice() {
            ["crash", point, seq] => {
                run.crashed = Some(((*point).to_owned(), seq.parse().expect("seq")));
                // The crash: SIGKILL, nothing runs after it.
                child.kill().expect("SIGKILL");
                break;
            }
            [outcome, seq, ms] => run.outcomes.push((
                (*outcome).to_owned(),
                seq.parse().expect("seq"),
                ms.parse().expect("ms"),
            )),
            _ => panic!("consumer process said {said:?}"),
        }
    }
    let status = child.wait().expect("wait");
    if crash.is_none() {
        assert!(status.success(), "consumer process failed: {status}");
    }
    run
}

/// One run at one crash point: what happened, as ground truth and as the analyzer saw it.
struct Run {
    queue: String,
    a: ChildRun,
    b: ChildRun,
    /// Processings per seq: business rows (PostgreSQL) or effect lines.
    effects: BTreeMap<u64, usize>,
    verdicts: BTreeSet<support::Verdict>,
}

async fn run(kind: Kind, point: Point, mode: Mode) -> Run {
    let base = tempfile::tempdir().expect("tempdir");
    let traces = base.path().join("traces");
    let effects = base.path().join("effects");
    let queue = unique(&format!("dedup-{}", kind.name()));
    let table = unique("dedup_business").replace('-', "_");
    let telemetry = Telemetry::builder()
        .file(&traces)
        .service_name("dedup-producer")
        .overflow(Overflow::Block)
        .build()
        .expect("file exporter");

    let pg = if kind == Kind::Postgres {
        let (client, connection) = tokio_postgres::connect(PG_PARAMS, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {PG_PARAMS}: {e} (start it with scripts/services)")
            });
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE TABLE {table} (seq bigint NOT NULL)"))
            .await
            .expect("business table");
        Some(client)
    } else {
        None
    };

    let conn = connect().await;
    let channel = conn.create_channel().await.expect("channel");
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(120_000));
    channel
        .queue_declare(queue.as_str().into(), QueueDeclareOptions::default(), args)
        .await
        .expect("queue_declare");
    publish(&channel, telemetry.provider(), mode, &queue).await;

    let vars = vec![
        ("DEDUP_STORE", kind.name().to_owned()),
        ("DEDUP_QUEUE", queue.clone()),
        ("DEDUP_TRACES", traces.display().to_string()),
        ("DEDUP_EFFECTS", effects.display().to_string()),
        ("DEDUP_TABLE", table.clone()),
        ("DEDUP_MODE", mode.to_string()),
    ];
    let a = {
        let vars = vars.clone();
        tokio::task::spawn_blocking(move || run_child(&vars, Some(point), 100))
            .await
            .expect("consumer A")
    };
    // B starts once RabbitMQ has requeued A's unacked delivery: B then gets it first.
    let started = Instant::now();
    loop {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let q = channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
            .expect("queue_declare passive");
        if q.message_count() as usize == LEFT_FOR_B {
            break;
        }
        assert!(
            started.elapsed() < BROKER_TIMEOUT,
            "RabbitMQ did not requeue the killed consumer's delivery: {} ready",
            q.message_count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = tokio::task::spawn_blocking(move || run_child(&vars, None, LEFT_FOR_B))
        .await
        .expect("consumer B");

    // Every copy was settled: nothing is left in the queue.
    let left = channel
        .basic_get(queue.as_str().into(), BasicGetOptions::default())
        .await
        .expect("basic_get");
    assert!(left.is_none(), "a message was left in the queue");
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .expect("queue_delete");

    let mut counts = BTreeMap::new();
    match &pg {
        Some(client) => {
            let rows = client
                .query(&format!("SELECT seq FROM {table}"), &[])
                .await
                .expect("business rows");
            for row in rows {
                let seq: i64 = row.get(0);
                *counts
                    .entry(u64::try_from(seq).expect("positive"))
                    .or_default() += 1;
            }
            client
                .batch_execute(&format!("DROP TABLE {table}"))
                .await
                .expect("drop business table");
        }
        None => {
            let text = std::fs::read_to_string(&effects).unwrap_or_default();
            for line in text.lines() {
                *counts.entry(line.parse().expect("seq")).or_default() += 1;
            }
        }
    }

    telemetry.shutdown().expect("exporter shutdown");
    let verdicts = verdicts_in(&traces);
    Run {
        queue,
        a,
        b,
        effects: counts,
        verdicts,
    }
}

fn verdicts_in(dir: &Path) -> BTreeSet<support::Verdict> {
    let files = input::discover(&[dir.to_path_buf()]).expect("trace files");
    let report = analyze(&files, &Options::default(), &|_| {}).expect("analysis");
    assert!(
        report.input.malformed.is_empty(),
        "{:?}",
        report.input.malformed
    );
    verdicts(&report)
}

impl Run {
    /// A died where it was told to, after processing seq 1.
    fn check_crash(&self, point: Point) {
        assert_eq!(
            self.a.crashed,
            Some((point.name().to_owned(), CRASH_SEQ)),
            "{:?}",
            self.a
        );
        let a: Vec<_> = self
            .a
            .outcomes
            .iter()
            .map(|(o, s, _)| (o.as_str(), *s))
            .collect();
        assert!(
            a == [("processed", 1)] || a == [("unchecked", 1)],
            "A before its crash: {a:?}"
        );
    }

    /// B's deliveries in order: the requeued crash seq first, then 3..=6 with 3 twice.
    fn b(&self) -> Vec<(&str, u64)> {
        self.b
            .outcomes
            .iter()
            .map(|(o, s, _)| (o.as_str(), *s))
            .collect()
    }

    fn b_millis(&self, seq: u64) -> u128 {
        self.b
            .outcomes
            .iter()
            .find(|(_, s, _)| *s == seq)
            .map(|(_, _, ms)| *ms)
            .expect("seq delivered to B")
    }

    /// Processings per seq as expected: once each, `twice` twice.
    fn check_effects(&self, twice: &[u64]) {
        let want: BTreeMap<u64, usize> = (1..=LAST_SEQ)
            .map(|seq| (seq, if twice.contains(&seq) { 2 } else { 1 }))
            .collect();
        assert_eq!(self.effects, want, "processings per seq");
    }

    /// The analyzer: the retry's two stored copies always; the crash seq redelivered; with
    /// `store`, no `duplicate/consume`; without, `duplicate/consume` of the retried seq (both
    /// its copies acked).
    fn check_verdicts(&self, store: bool) {
        let q = self.queue.as_str();
        let mut want = expect("duplicate/produce", q, None, [RETRIED_SEQ]);
        want.extend(expect("redelivered", q, Some(q), [CRASH_SEQ]));
        if !store {
            want.extend(expect("duplicate/consume", q, Some(q), [RETRIED_SEQ]));
        }
        assert_eq!(self.verdicts, want);
    }
}

fn with_outcomes(first: &str, crash: &str, rest: &str) -> Vec<(String, u64)> {
    let mut v = vec![(crash.to_owned(), CRASH_SEQ), (first.to_owned(), 3)];
    v.push((rest.to_owned(), 3));
    v.extend((4..=LAST_SEQ).map(|s| (first.to_owned(), s)));
    v
}

fn owned(v: Vec<(&str, u64)>) -> Vec<(String, u64)> {
    v.into_iter().map(|(o, s)| (o.to_owned(), s)).collect()
}

async fn postgres_holds_every_message_exactly_once_whatever_the_crash_point(mode: Mode) {
    for point in Point::ALL {
        let r = run(Kind::Postgres, point, mode).await;
        r.check_crash(point);
        // The business table: every seq once, the retried one and the crash seq included.
        r.check_effects(&[]);
        // Killed before its commit, A's transaction died with it: B processes seq 2.
        // Killed after it, the mark is there: B skips the copy.
        let crash = if point == Point::AfterMark {
            "skipped"
        } else {
            "processed"
        };
        assert_eq!(
            owned(r.b()),
            with_outcomes("processed", crash, "skipped"),
            "{point:?}"
        );
        r.check_verdicts(true);
    }
}

async fn redis_skips_every_copy_marked_done_and_retakes_a_dead_workers_claim(mode: Mode) {
    for point in Point::ALL {
        let r = run(Kind::Redis, point, mode).await;
        r.check_crash(point);
        if point == Point::AfterMark {
            // Marked done before the kill: the redelivered copy is skipped at once.
            assert_eq!(
                owned(r.b()),
                with_outcomes("processed", "skipped", "skipped")
            );
            assert!(r.b_millis(CRASH_SEQ) < LEASE.as_millis() / 2);
            r.check_effects(&[]);
        } else {
            // The dead worker's claim holds B off until its lease lapses, then B takes it.
            assert_eq!(
                owned(r.b()),
                with_outcomes("processed", "processed", "skipped")
            );
            let waited = r.b_millis(CRASH_SEQ);
            assert!(
                waited >= LEASE.as_millis() / 2,
                "{point:?}: B took seq {CRASH_SEQ} after {waited} ms, within A's lease"
            );
            // After the work and before the mark, the work is done twice: the documented
            // window of a store outside the work's transaction.
            let twice: &[u64] = if point == Point::AfterWork {
                &[CRASH_SEQ]
            } else {
                &[]
            };
            r.check_effects(twice);
        }
        let store = RedisStore::connect(REDIS_URL).await.expect("Redis");
        let key = DedupId::Seq(MessageKey::new(PRODUCER, r.queue.as_str(), CRASH_SEQ));
        assert_eq!(
            store.peek(&key).await.expect("GET").as_deref(),
            Some("done")
        );
        r.check_verdicts(true);
    }
}

async fn the_window_skips_copies_within_a_process_and_forgets_them_on_restart(mode: Mode) {
    for point in Point::ALL {
        let r = run(Kind::Window, point, mode).await;
        r.check_crash(point);
        // Within B, the retry's second copy is skipped; B's window starts empty, so the
        // crash seq is processed again, twice in all if A had done the work.
        assert_eq!(
            owned(r.b()),
            with_outcomes("processed", "processed", "skipped")
        );
        let twice: &[u64] = match point {
            Point::BeforeWork | Point::DuringWork => &[],
            Point::AfterWork | Point::AfterMark => &[CRASH_SEQ],
        };
        r.check_effects(twice);
        r.check_verdicts(true);
    }
}

async fn without_a_store_copies_are_processed_twice_and_the_analyzer_says_so(mode: Mode) {
    for point in Point::ALL {
        let r = run(Kind::None, point, mode).await;
        r.check_crash(point);
        assert_eq!(
            owned(r.b()),
            with_outcomes("unchecked", "unchecked", "unchecked")
        );
        let twice: &[u64] = match point {
            Point::BeforeWork | Point::DuringWork => &[RETRIED_SEQ],
            Point::AfterWork | Point::AfterMark => &[CRASH_SEQ, RETRIED_SEQ],
        };
        r.check_effects(twice);
        r.check_verdicts(false);
    }
}

// Both modes: the same crashes must give the same findings with ledgers (SPEC §2b).
support::in_both_modes!(
    postgres_holds_every_message_exactly_once_whatever_the_crash_point,
    redis_skips_every_copy_marked_done_and_retakes_a_dead_workers_claim,
    the_window_skips_copies_within_a_process_and_forgets_them_on_restart,
    without_a_store_copies_are_processed_twice_and_the_analyzer_says_so,
);
