//! What an idempotent consumer's check costs per message, for each mqtrace-dedup store: the
//! store's claim and done mark around an empty work (what `process_once` adds to a delivery,
//! the broker's settle aside).
//!
//! - `window/mark`: `SeqWindows::mark` alone, one stream, seqs in order (ns).
//! - `window/new`, `window/copy`: the `WindowStore`'s claim and done mark of a new seq, and
//!   its claim of a seq done already (ns).
//! - `redis/new`: `SET NX PX` then `SET done PX`: two round trips. `redis/copy`: `SET NX PX`
//!   refused, then `GET`+`PTTL` pipelined: two round trips (µs).
//! - `postgres/new`: `BEGIN`+`INSERT` pipelined, then a check+`COMMIT` pipelined: two round
//!   trips and a commit. `postgres/copy`: `BEGIN`+`INSERT` (nothing inserted), `ROLLBACK`:
//!   two round trips (µs).
//!
//! `cargo bench --workspace --bench dedup_stores --locked` (Redis on 127.0.0.1:6379,
//! PostgreSQL on 127.0.0.1:5432 with user `postgres` and database `test`: `scripts/services`
//! starts both). A name after `--` (`window`, `redis`, `postgres`) selects.

use criterion::{Criterion, criterion_group, criterion_main};
use mqtrace::MessageKey;
use mqtrace_dedup::{Check, DedupId, PgStore, RedisStore, SeqWindows, Store, WindowStore};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

const REDIS_URL: &str = "redis://127.0.0.1:6379/";
const PG_PARAMS: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";
const PG_TABLE: &str = "mqtrace_bench_processed";

/// A producer id no earlier run used, so that every "new" seq is new to the stores.
fn producer() -> MessageKey {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    MessageKey::new(format!("bench-{}-{ms:x}", std::process::id()), "orders", 0)
}

/// `seq` of the stream `base` names (the names shared, as a delivery's key shares them).
fn id(base: &MessageKey, seq: u64) -> DedupId {
    DedupId::Seq(MessageKey {
        seq,
        ..base.clone()
    })
}

/// Claims `id` and marks it done; panics unless the store took it.
async fn new<S: Store>(store: &S, id: DedupId) {
    match store.claim(Some(&id)).await.expect("claim") {
        Check::Take(claim) => store.done(claim).await.expect("done"),
        _ => panic!("a new seq was not taken"),
    }
}

/// Claims `id`, done before; panics unless the store said so.
async fn copy<S: Store>(store: &S, id: &DedupId) {
    match store.claim(Some(id)).await.expect("claim") {
        Check::Done => {}
        _ => panic!("a seq done before was not skipped"),
    }
}

/// Times `iters` calls of `step(seq)` on a runtime of one thread, seqs new each time.
fn timed<F, Fut>(runtime: &tokio::runtime::Runtime, iters: u64, step: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let first = NEXT.fetch_add(iters, Ordering::Relaxed);
    runtime.block_on(async {
        let started = Instant::now();
        for seq in first..first + iters {
            step(seq).await;
        }
        started.elapsed()
    })
}

fn window(c: &mut Criterion) {
    let mut group = c.benchmark_group("window");
    let mut windows = SeqWindows::default();
    let mut seq = 0u64;
    group.bench_function("mark", |b| {
        b.iter(|| {
            seq += 1;
            black_box(windows.mark("orders-api-1", "orders", black_box(seq)))
        })
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = WindowStore::new();
    let p = producer();
    group.bench_function("new", |b| {
        b.iter_custom(|iters| timed(&runtime, iters, |seq| new(&store, id(&p, seq))))
    });
    let done = id(&p, u64::MAX);
    runtime.block_on(new(&store, done.clone()));
    group.bench_function("copy", |b| {
        b.iter_custom(|iters| timed(&runtime, iters, |_| copy(&store, &done)))
    });
    group.finish();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn redis(c: &mut Criterion) {
    let runtime = runtime();
    let store = runtime
        .block_on(RedisStore::connect(REDIS_URL))
        .unwrap_or_else(|e| panic!("Redis at {REDIS_URL}: {e} (start it with scripts/services)"))
        .prefix("mqtrace:bench")
        .retention(Duration::from_secs(60));
    let p = producer();
    let mut group = c.benchmark_group("redis");
    group.bench_function("new", |b| {
        b.iter_custom(|iters| timed(&runtime, iters, |seq| new(&store, id(&p, seq))))
    });
    let done = id(&p, u64::MAX);
    runtime.block_on(new(&store, done.clone()));
    group.bench_function("copy", |b| {
        b.iter_custom(|iters| timed(&runtime, iters, |_| copy(&store, &done)))
    });
    group.finish();
}

fn postgres(c: &mut Criterion) {
    let runtime = runtime();
    let store = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(PG_PARAMS, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {PG_PARAMS}: {e} (start it with scripts/services)")
            });
        tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS {PG_TABLE}"))
            .await
            .expect("drop the bench's table");
        PgStore::new(client, PG_TABLE).await.expect("PgStore")
    });
    let p = producer();
    let mut group = c.benchmark_group("postgres");
    group.bench_function("new", |b| {
        b.iter_custom(|iters| timed(&runtime, iters, |seq| new(&store, id(&p, seq))))
    });
    let done = id(&p, u64::MAX);
    runtime.block_on(new(&store, done.clone()));
    group.bench_function("copy", |b| {
        b.iter_custom(|iters| timed(&runtime, iters, |_| copy(&store, &done)))
    });
    group.finish();
    runtime.block_on(async {
        let client = store.client().await.expect("connection");
        client
            .batch_execute(&format!("DROP TABLE {PG_TABLE}"))
            .await
            .expect("drop the bench's table");
    });
}

criterion_group!(benches, window, redis, postgres);
criterion_main!(benches);
