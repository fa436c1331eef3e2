//! PostgreSQL: the mark inserted in the app's own transaction, under a unique key.

use crate::{Check, DedupId, Store, StoreError};
use std::ops::Deref;
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio_postgres::{Client, Statement};

/// Processed messages as rows of a uniquely keyed table, inserted in the transaction that
/// holds the app's own writes: the business write and the mark commit together or not at
/// all, so a message is processed exactly once whatever point the process dies at.
///
/// Per message: `BEGIN` and the mark's `INSERT … ON CONFLICT DO NOTHING` in one round trip
/// (pipelined), the work in the transaction, then `COMMIT` (pipelined with a check that the
/// work did not leave the transaction aborted). The insert inserting nothing means the
/// message was processed: the transaction is rolled back and the copy skipped. A copy that
/// arrives while another connection's transaction holds the same mark uncommitted waits in
/// the insert until that one commits (then it is skipped) or rolls back (then it is taken).
///
/// The table ([`PgStore::ddl`]), created if missing:
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS mqtrace_processed (
///     producer_id  text        NOT NULL,
///     stream       text        NOT NULL,
///     seq          bigint      NOT NULL,
///     processed_at timestamptz NOT NULL DEFAULT now(),
///     PRIMARY KEY (producer_id, stream, seq)
/// )
/// ```
///
/// `seq` holds the u64 seq's bits (a seq above `i64::MAX` reads back negative). A message
/// without mqtrace's numbering but with a [`fallback_id`](crate::Settle::fallback_id) is
/// keyed `('', id, 0)` (a real seq is never 0); one with neither runs in a transaction with
/// no mark. Old rows are the app's to prune (`DELETE … WHERE processed_at < …`), once no
/// copy can arrive any more.
///
/// One store is one connection, and one transaction at a time: parallel workers each take
/// a store of their own.
#[derive(Clone, Debug)]
pub struct PgStore {
    conn: Arc<Mutex<Conn>>,
    insert: Statement,
    check: Statement,
}

#[derive(Debug)]
struct Conn {
    client: Client,
    /// A transaction is open: set before `BEGIN` is sent, cleared once `COMMIT` or
    /// `ROLLBACK` returned. Still set at the next claim, it was left open by a
    /// `process_once` whose future was dropped: that claim rolls it back first.
    open: bool,
}

impl PgStore {
    /// The default table.
    pub const TABLE: &'static str = "mqtrace_processed";

    /// Connects with `params` (e.g. `host=127.0.0.1 user=postgres dbname=app`, no TLS), runs
    /// the connection on the current tokio runtime, and creates the default table if missing.
    pub async fn connect(params: &str) -> Result<Self, StoreError> {
        let (client, connection) = tokio_postgres::connect(params, tokio_postgres::NoTls).await?;
        // The connection ends with an error only when the client's requests fail too: they
        // report it.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Self::new(client, Self::TABLE).await
    }

    /// Over a client the app connected (its connection task running), marking in `table`
    /// (created if missing).
    pub async fn new(client: Client, table: &str) -> Result<Self, StoreError> {
        let ddl = Self::ddl(table)?;
        // Workers starting together would race in `CREATE TABLE IF NOT EXISTS` (the loser
        // fails on the catalog's unique index): one at a time, under an advisory lock.
        client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtext('mqtrace-dedup {table}')); \
                 {ddl}; COMMIT"
            ))
            .await?;
        let insert = client
            .prepare(&format!(
                "INSERT INTO {table} (producer_id, stream, seq) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING"
            ))
            .await?;
        let check = client.prepare("SELECT 1").await?;
        Ok(Self {
            conn: Arc::new(Mutex::new(Conn {
                client,
                open: false,
            })),
            insert,
            check,
        })
    }

    /// The DDL of `table`; refused unless `table` is a plain name (`[A-Za-z_][A-Za-z0-9_]*`,
    /// optionally `schema.`-qualified), since it is written into SQL.
    pub fn ddl(table: &str) -> Result<String, StoreError> {
        let plain = |part: &str| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let mut parts = table.split('.');
        let ok = match (parts.next(), parts.next(), parts.next()) {
            (Some(t), None, None) => plain(t),
            (Some(s), Some(t), None) => plain(s) && plain(t),
            _ => false,
        };
        if !ok {
            return Err(StoreError::TableName(table.to_owned()));
        }
        Ok(format!(
            "CREATE TABLE IF NOT EXISTS {table} (
    producer_id  text        NOT NULL,
    stream       text        NOT NULL,
    seq          bigint      NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer_id, stream, seq)
)"
        ))
    }

    /// The store's connection, outside any transaction, for the app's own statements (set-up,
    /// reports); `process_once` on this store waits while it is held.
    pub async fn client(&self) -> Result<PgClient, StoreError> {
        let mut conn = self.conn.clone().lock_owned().await;
        if conn.open {
            conn.client.batch_execute("ROLLBACK").await?;
            conn.open = false;
        }
        Ok(PgClient { conn })
    }

    async fn begin(&self, id: Option<&DedupId>) -> Result<Check<PgClaim>, StoreError> {
        let mut conn = self.conn.clone().lock_owned().await;
        if conn.open {
            conn.client.batch_execute("ROLLBACK").await?;
            conn.open = false;
        }
        conn.open = true;
        let Some(id) = id else {
            conn.client.batch_execute("BEGIN").await?;
            return Ok(Check::Unchecked(PgClaim { conn }));
        };
        let (producer_id, stream, seq) = match id {
            DedupId::Seq(key) => (&*key.producer_id, &*key.stream, key.seq),
            DedupId::Message(id) => ("", id.as_str(), 0),
        };
        // The u64's bits: one-to-one, which is all a key needs.
        let seq = i64::from_ne_bytes(seq.to_ne_bytes());
        // Sent in this order in one round trip: tokio-postgres writes a request when its
        // future is first polled, and `join` polls its first future first.
        let (begun, inserted) = futures::future::join(
            conn.client.batch_execute("BEGIN"),
            conn.client
                .execute(&self.insert, &[&producer_id, &stream, &seq]),
        )
        .await;
        let inserted = match begun.and(inserted) {
            Ok(n) => n,
            Err(e) => {
                // Best effort: should it fail too, `open` makes the next claim retry it.
                if conn.client.batch_execute("ROLLBACK").await.is_ok() {
                    conn.open = false;
                }
                return Err(e.into());
            }
        };
        if inserted == 1 {
            return Ok(Check::Take(PgClaim { conn }));
        }
        conn.client.batch_execute("ROLLBACK").await?;
        conn.open = false;
        Ok(Check::Done)
    }
}

/// The open transaction the work writes in: derefs to the [`Client`], whose statements run
/// in it until `process_once` commits (the work succeeded) or rolls back (it failed). The
/// work must not end the transaction itself.
#[derive(Debug)]
pub struct PgClaim {
    conn: OwnedMutexGuard<Conn>,
}

impl PgClaim {
    /// The client, inside the transaction.
    pub fn client(&self) -> &Client {
        &self.conn.client
    }
}

impl Deref for PgClaim {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.conn.client
    }
}

/// The store's connection, held outside any transaction ([`PgStore::client`]).
#[derive(Debug)]
pub struct PgClient {
    conn: OwnedMutexGuard<Conn>,
}

impl Deref for PgClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.conn.client
    }
}

impl Store for PgStore {
    type Claim = PgClaim;

    async fn claim(&self, id: Option<&DedupId>) -> Result<Check<PgClaim>, StoreError> {
        self.begin(id).await
    }

    async fn done(&self, mut claim: PgClaim) -> Result<(), StoreError> {
        // COMMIT of a transaction an error aborted answers ROLLBACK, not an error: the check
        // statement, sent before it in the same round trip, fails in an aborted transaction.
        let (checked, committed) = futures::future::join(
            claim.conn.client.query_opt(&self.check, &[]),
            claim.conn.client.batch_execute("COMMIT"),
        )
        .await;
        committed?;
        claim.conn.open = false;
        match checked {
            Ok(_) => Ok(()),
            Err(e)
                if e.code()
                    == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION) =>
            {
                Err(StoreError::Aborted)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn release(&self, mut claim: PgClaim) -> Result<(), StoreError> {
        claim.conn.client.batch_execute("ROLLBACK").await?;
        claim.conn.open = false;
        Ok(())
    }
}
