//! What `process_once` asks of a store: take a message, mark it done, or let it go.

use crate::DedupId;
use std::future::Future;
use std::time::Duration;

/// A store of processed messages: the sequence window ([`WindowStore`](crate::WindowStore)),
/// Redis (`RedisStore`, feature `redis`), PostgreSQL (`PgStore`, feature `postgres`).
pub trait Store: Sync {
    /// What the store holds while the work runs, handed to the work: PostgreSQL's is the
    /// open transaction the work writes in; the others' only name the claim.
    type Claim: Send;

    /// Asks to process `id` (`None`: the message has no id, see
    /// [`Outcome::Unchecked`](crate::Outcome::Unchecked)).
    fn claim(
        &self,
        id: Option<&DedupId>,
    ) -> impl Future<Output = Result<Check<Self::Claim>, StoreError>> + Send;

    /// The work succeeded: remember the message as processed (PostgreSQL: commit).
    fn done(&self, claim: Self::Claim) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The work failed: forget the claim, so that the next copy is processed (PostgreSQL:
    /// roll back).
    fn release(&self, claim: Self::Claim) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A store's answer to a claim.
#[derive(Debug)]
pub enum Check<C> {
    /// Not processed before: the work may run.
    Take(C),
    /// Processed before: a copy, to skip.
    Done,
    /// Being processed elsewhere (another worker's claim, whose lease runs): ask again after
    /// this long.
    Busy(Duration),
    /// This store cannot tell for this message (the window without a seq, a message without
    /// an id): the work runs, nothing is remembered.
    Unchecked(C),
}

/// A store that could not be asked or told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Redis answered with an error, or could not be reached.
    #[cfg(feature = "redis")]
    #[error("Redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// PostgreSQL answered with an error (the work's own SQL included), or could not be
    /// reached.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL: {}", postgres_detail(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A key holds what this crate never writes there.
    #[error("{key} holds {value:?}: neither a claim nor a done mark (another program's key?)")]
    Foreign {
        /// The key.
        key: String,
        /// What it holds.
        value: String,
    },
    /// A table name this crate refuses to put into SQL.
    #[error(
        "{0:?} is not a plain table name (ASCII letters, digits, `_`; optionally `schema.table`)"
    )]
    TableName(String),
    /// The work left its transaction aborted (an SQL error it did not return): PostgreSQL
    /// rolled everything back, the mark too.
    #[error("the transaction was aborted by an earlier statement: nothing was committed")]
    Aborted,
}

/// tokio-postgres says only "db error" for an error the server sent: the server's message
/// and code are what tell the app what went wrong.
#[cfg(feature = "postgres")]
fn postgres_detail(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
