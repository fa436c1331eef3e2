//! The Redis and PostgreSQL stores against the real servers (Redis on 127.0.0.1:6379,
//! PostgreSQL on 127.0.0.1:5432 with user `postgres` and database `test`: `scripts/services`
//! starts both), through `process_once` with the core's deliveries: concurrent copies, leases,
//! failed and aborted work. The crash points, with real consumer processes and a broker, are
//! in `tests/e2e/tests/dedup_crashes.rs`.

#![cfg(all(feature = "redis", feature = "postgres"))]

use mqtrace::{Consumer, DeliveryInfo, Producer};
use mqtrace_dedup::{
    Check, DedupId, Outcome, PgStore, ProcessError, RedisStore, Store, StoreError, process_once,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

const REDIS_URL: &str = "redis://127.0.0.1:6379/";
const PG_PARAMS: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// A name no other test or run uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{nanos:x}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `n` deliveries of one new message (a redelivery, or a retry stored twice).
fn copies(n: usize) -> Vec<mqtrace::Delivery> {
    let producer = Producer::builder("rabbitmq")
        .producer_id(unique("dedup-test"))
        .build();
    let consumer = Consumer::builder("rabbitmq", "shipping").build();
    let mut headers = HashMap::new();
    producer
        .message("orders")
        .begin_attempt(&mut headers)
        .sent()
        .acked(None, None);
    (0..n)
        .map(|_| consumer.deliver(&headers, DeliveryInfo::new("orders")))
        .collect()
}

async fn redis(lease: Duration) -> RedisStore {
    RedisStore::connect(REDIS_URL)
        .await
        .unwrap_or_else(|e| panic!("Redis at {REDIS_URL}: {e} (start it with scripts/services)"))
        .prefix("mqtrace:test")
        .lease(lease)
        .retention(Duration::from_secs(60))
        .poll(Duration::from_millis(10))
}

async fn postgres() -> PgStore {
    PgStore::connect(PG_PARAMS).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {PG_PARAMS}: {e} (start it with scripts/services)")
    })
}

/// A business table of the test's own: one row per processing.
async fn business(store: &PgStore) -> String {
    let table = unique("dedup_orders");
    store
        .client()
        .await
        .expect("connection")
        .batch_execute(&format!("CREATE TABLE {table} (seq bigint NOT NULL)"))
        .await
        .expect("business table");
    table
}

async fn rows(store: &PgStore, table: &str) -> i64 {
    store
        .client()
        .await
        .expect("connection")
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

type Result<T> = std::result::Result<Outcome<T>, ProcessError<mqtrace::Delivery, String>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_workers_process_one_message_once() {
    let store = redis(Duration::from_secs(10)).await;
    let processed = AtomicU32::new(0);
    let [a, b]: [_; 2] = copies(2).try_into().expect("two copies");
    let work = async |_: &mqtrace::Delivery, _: &mut mqtrace_dedup::RedisClaim| {
        processed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok::<_, String>(())
    };
    let started = Instant::now();
    let (a, b): (Result<()>, Result<()>) = tokio::join!(
        process_once(a, &store, &work),
        process_once(b, &store, &work)
    );
    let mut outcomes = [a.expect("a"), b.expect("b")];
    outcomes.sort_by_key(|o| matches!(o, Outcome::Skipped));
    assert_eq!(outcomes, [Outcome::Processed(()), Outcome::Skipped]);
    assert_eq!(processed.load(Ordering::Relaxed), 1);
    // The copy waited for the first worker's mark, not for its lease.
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn redis_a_dead_workers_claim_is_taken_again_after_its_lease() {
    let lease = Duration::from_millis(400);
    let store = redis(lease).await;
    let [dead, copy]: [_; 2] = copies(2).try_into().expect("two copies");
    let id = DedupId::Seq(dead.key().expect("numbered").clone());
    // The worker claims, then dies: its claim is never done nor released.
    let Check::Take(claim) = store.claim(Some(&id)).await.expect("claim") else {
        panic!("a new message was not taken")
    };
    let claimed = Instant::now();
    drop((claim, dead));
    let outcome: Result<()> = process_once(copy, &store, async |_, _| Ok(())).await;
    assert_eq!(outcome.expect("copy"), Outcome::Processed(()));
    assert!(
        claimed.elapsed() >= lease,
        "taken within the dead claim's lease"
    );
    assert_eq!(store.peek(&id).await.expect("GET").as_deref(), Some("done"));
}

#[tokio::test]
async fn redis_a_failed_work_releases_its_claim_and_hands_the_delivery_back() {
    let store = redis(Duration::from_secs(10)).await;
    let [first, copy]: [_; 2] = copies(2).try_into().expect("two copies");
    let failed: Result<()> = process_once(first, &store, async |_, _| Err("no stock".into())).await;
    match failed {
        Err(ProcessError::Work {
            delivery,
            error,
            release: None,
        }) => {
            assert_eq!(error, "no stock");
            delivery.settle(mqtrace::SettleOutcome::Nack, "nack");
        }
        other => panic!("{other:?}"),
    }
    let started = Instant::now();
    let retried: Result<()> = process_once(copy, &store, async |_, _| Ok(())).await;
    assert_eq!(retried.expect("retry"), Outcome::Processed(()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited for a lease"
    );
}

#[tokio::test]
async fn redis_keys_a_message_without_numbering_by_its_id_and_passes_one_without_any() {
    let store = redis(Duration::from_secs(10)).await;
    let consumer = Consumer::builder("rabbitmq", "shipping").build();
    let none = HashMap::<String, String>::new();
    let id = unique("order");
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let info = DeliveryInfo {
            message_id: Some(id.clone()),
            ..DeliveryInfo::new("orders")
        };
        let d = consumer.deliver(&none, info);
        let outcome: Result<()> = process_once(d, &store, async |_, _| Ok(())).await;
        outcomes.push(outcome.expect("keyed by id"));
    }
    assert_eq!(outcomes, [Outcome::Processed(()), Outcome::Skipped]);
    let bare = consumer.deliver(&none, DeliveryInfo::new("orders"));
    let outcome: Result<()> = process_once(bare, &store, async |_, _| Ok(())).await;
    assert_eq!(outcome.expect("unchecked"), Outcome::Unchecked(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_connections_write_one_message_once() {
    let (one, two) = (postgres().await, postgres().await);
    let table = business(&one).await;
    let [a, b]: [_; 2] = copies(2).try_into().expect("two copies");
    let sql = format!("INSERT INTO {table} (seq) VALUES (1)");
    let work = async |_: &mqtrace::Delivery, tx: &mut mqtrace_dedup::PgClaim| {
        tx.execute(&sql, &[]).await.map_err(|e| e.to_string())?;
        // Holds the mark uncommitted while the other connection's insert arrives.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok::<_, String>(())
    };
    let (a, b): (Result<()>, Result<()>) =
        tokio::join!(process_once(a, &one, &work), process_once(b, &two, &work));
    let mut outcomes = [a.expect("a"), b.expect("b")];
    outcomes.sort_by_key(|o| matches!(o, Outcome::Skipped));
    assert_eq!(outcomes, [Outcome::Processed(()), Outcome::Skipped]);
    assert_eq!(rows(&one, &table).await, 1);
}

#[tokio::test]
async fn postgres_a_failed_work_rolls_back_its_writes_with_the_mark() {
    let store = postgres().await;
    let table = business(&store).await;
    let [first, copy]: [_; 2] = copies(2).try_into().expect("two copies");
    let sql = format!("INSERT INTO {table} (seq) VALUES (1)");
    let failed: Result<()> = process_once(first, &store, async |_, tx| {
        tx.execute(&sql, &[]).await.map_err(|e| e.to_string())?;
        Err("the payment service said no".to_owned())
    })
    .await;
    assert!(matches!(failed, Err(ProcessError::Work { .. })));
    assert_eq!(rows(&store, &table).await, 0);
    let retried: Result<()> = process_once(copy, &store, async |_, tx| {
        tx.execute(&sql, &[]).await.map_err(|e| e.to_string())?;
        Ok(())
    })
    .await;
    assert_eq!(retried.expect("retry"), Outcome::Processed(()));
    assert_eq!(rows(&store, &table).await, 1);
}

#[tokio::test]
async fn postgres_an_aborted_transaction_is_not_taken_for_done() {
    let store = postgres().await;
    let [first, copy]: [_; 2] = copies(2).try_into().expect("two copies");
    // The work swallows an SQL error: the transaction is aborted, COMMIT would roll back.
    let swallowed: Result<()> = process_once(first, &store, async |_, tx| {
        let _ = tx.execute("SELECT no_such_column FROM pg_class", &[]).await;
        Ok(())
    })
    .await;
    assert!(
        matches!(
            swallowed,
            Err(ProcessError::Store {
                error: StoreError::Aborted,
                ..
            })
        ),
        "{swallowed:?}"
    );
    let retried: Result<()> = process_once(copy, &store, async |_, _| Ok(())).await;
    assert_eq!(retried.expect("retry"), Outcome::Processed(()));
}

#[tokio::test]
async fn postgres_a_dropped_call_leaves_no_transaction_open() {
    let store = postgres().await;
    let table = business(&store).await;
    let [first, copy]: [_; 2] = copies(2).try_into().expect("two copies");
    let sql = format!("INSERT INTO {table} (seq) VALUES (1)");
    // The app gives up on the call mid-work (a timeout): its future is dropped.
    let hung = process_once(first, &store, async |_, tx| {
        tx.execute(&sql, &[]).await.map_err(|e| e.to_string())?;
        std::future::pending::<()>().await;
        Ok::<_, String>(())
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), hung)
            .await
            .is_err()
    );
    assert_eq!(rows(&store, &table).await, 0, "the dropped work's write");
    let retried: Result<()> = process_once(copy, &store, async |_, tx| {
        tx.execute(&sql, &[]).await.map_err(|e| e.to_string())?;
        Ok(())
    })
    .await;
    assert_eq!(retried.expect("retry"), Outcome::Processed(()));
    assert_eq!(rows(&store, &table).await, 1);
}

#[tokio::test]
async fn postgres_refuses_a_table_name_it_would_have_to_quote() {
    assert!(PgStore::ddl("orders_done").is_ok());
    assert!(PgStore::ddl("app.orders_done").is_ok());
    for bad in ["", "1x", "a;DROP TABLE x", "a.b.c", "\"x\""] {
        assert!(
            matches!(PgStore::ddl(bad), Err(StoreError::TableName(_))),
            "{bad}"
        );
    }
}
