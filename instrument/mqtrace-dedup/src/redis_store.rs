//! Redis: a claim with a lease, then a done mark kept for a retention.

use crate::{Check, DedupId, Store, StoreError};
use redis::aio::MultiplexedConnection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// What a key holds once its message is processed.
const DONE: &str = "done";
/// What a claim's value starts with (then the worker and the claim's number).
const CLAIM: &str = "claim:";

/// Deletes the claim only if it is still this worker's: once its lease lapsed, another
/// worker's claim (or done mark) may sit under the same key.
const RELEASE: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Processed messages in Redis, one key each: `{prefix}:{id}` (see [`DedupId::encode`]).
///
/// - **claim**: `SET key claim:… NX PX lease`, one round trip. Taken: the work runs. Not
///   taken: a second round trip (`GET`, `PTTL`) says whether the message is done (skip the
///   copy) or claimed by a worker whose lease runs (wait and ask again).
/// - **done**: `SET key done PX retention` after the work, one round trip; the key then
///   lives for the retention, and a copy delivered within it is skipped.
/// - A worker that dies holding a claim (killed, hung past its lease) loses it when the lease
///   lapses: the broker's redelivery is then taken by another worker. The lease must exceed
///   the longest work: a claim that lapses under a live worker lets a second one in.
///
/// Cloning shares the connection (redis' multiplexed connection pipelines every caller's
/// commands over one socket).
#[derive(Clone, Debug)]
pub struct RedisStore {
    conn: MultiplexedConnection,
    prefix: String,
    lease: Duration,
    retention: Duration,
    poll: Duration,
    worker: String,
    release: redis::Script,
}

/// Numbers claims within the process, so that each claim's value is its own.
static CLAIMS: AtomicU64 = AtomicU64::new(0);

impl RedisStore {
    /// The default key prefix.
    pub const PREFIX: &'static str = "mqtrace:done";
    /// The default lease of a claim.
    pub const LEASE: Duration = Duration::from_secs(30);
    /// The default retention of a done mark.
    pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/`).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        Ok(Self::new(client.get_multiplexed_async_connection().await?))
    }

    /// Over a connection the app made.
    pub fn new(conn: MultiplexedConnection) -> Self {
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Self {
            conn,
            prefix: Self::PREFIX.to_owned(),
            lease: Self::LEASE,
            retention: Self::RETENTION,
            poll: Duration::from_millis(50),
            worker: format!("{}-{started:x}", std::process::id()),
            release: redis::Script::new(RELEASE),
        }
    }

    /// Keys start with `prefix` (default [`Self::PREFIX`]).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a claim keeps other workers out (default [`Self::LEASE`]): longer than the
    /// longest work, shorter than you want a dead worker's messages to wait.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long a done mark is kept (default [`Self::RETENTION`]): longer than any copy can
    /// arrive late (the broker's redelivery, a producer's retries).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How often a copy asks again while another worker's claim runs (default 50 ms).
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The key of `id`.
    pub fn key(&self, id: &DedupId) -> String {
        format!("{}:{}", self.prefix, id.encode())
    }

    /// What the key of `id` holds: `Some("done")`, a claim (`claim:…`), or `None`.
    pub async fn peek(&self, id: &DedupId) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("GET")
            .arg(self.key(id))
            .query_async(&mut conn)
            .await?)
    }

    async fn try_claim(&self, key: String) -> Result<Check<RedisClaim>, StoreError> {
        let mut conn = self.conn.clone();
        let token = format!(
            "{CLAIM}{}:{}",
            self.worker,
            CLAIMS.fetch_add(1, Ordering::Relaxed)
        );
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(millis(self.lease))
            .query_async(&mut conn)
            .await?;
        if set.is_some() {
            return Ok(Check::Take(RedisClaim {
                key: Some((key, token)),
            }));
        }
        let (value, pttl): (Option<String>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await?;
        match value {
            Some(v) if v == DONE => Ok(Check::Done),
            Some(v) if v.starts_with(CLAIM) => {
                // PTTL: milliseconds left, or negative (no expiry, or gone meanwhile).
                let left = u64::try_from(pttl).map_or(self.poll, Duration::from_millis);
                Ok(Check::Busy(left.min(self.poll)))
            }
            Some(value) => Err(StoreError::Foreign { key, value }),
            // The claim lapsed between the two round trips: ask again at once.
            None => Ok(Check::Busy(Duration::ZERO)),
        }
    }
}

/// Whole milliseconds, at least 1 (`PX 0` is an error).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A claim on one key (none for a message without an id).
#[derive(Debug)]
pub struct RedisClaim {
    key: Option<(String, String)>,
}

impl RedisClaim {
    /// The key claimed.
    pub fn key(&self) -> Option<&str> {
        self.key.as_ref().map(|(key, _)| key.as_str())
    }
}

impl Store for RedisStore {
    type Claim = RedisClaim;

    async fn claim(&self, id: Option<&DedupId>) -> Result<Check<RedisClaim>, StoreError> {
        match id {
            Some(id) => self.try_claim(self.key(id)).await,
            None => Ok(Check::Unchecked(RedisClaim { key: None })),
        }
    }

    async fn done(&self, claim: RedisClaim) -> Result<(), StoreError> {
        let Some((key, _)) = claim.key else {
            return Ok(());
        };
        // Unconditional: even if this claim lapsed and another worker took the key, the
        // message is processed now, and that is what the key must say.
        let mut conn = self.conn.clone();
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(DONE)
            .arg("PX")
            .arg(millis(self.retention))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn release(&self, claim: RedisClaim) -> Result<(), StoreError> {
        let Some((key, token)) = claim.key else {
            return Ok(());
        };
        let mut conn = self.conn.clone();
        let _deleted: i64 = self
            .release
            .key(key)
            .arg(token)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
