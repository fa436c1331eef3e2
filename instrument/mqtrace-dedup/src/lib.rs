//! # mqtrace-dedup: idempotent consumers
//!
//! The classic answer to duplicates (a producer's retry stored twice, a redelivery after a
//! lost consumer ack) is an idempotent consumer: remember what was processed and skip a copy.
//! mqtrace numbers every message of a stream without gaps, so "what was processed" can be a
//! sequence window instead of a cache of ids, and the `consume_ack` spans of the skipped
//! copies (`skip_duplicate`) let the analyzer prove the filter worked.
//!
//! ## One call for every adapter
//!
//! [`process_once`]`(delivery, &store, work)` takes a delivery from any adapter (anything
//! [`Settle`]: mqtrace-lapin's `TracedDelivery`, mqtrace-nats' `TracedMessage`,
//! mqtrace-kafka's `TracedMessage`, behind the features `lapin`, `nats`, `kafka`; the core's
//! [`mqtrace::Delivery`] always). A copy of a message the store has seen done is settled with
//! `skip_duplicate` and never reaches `work`; otherwise `work` runs, the store marks the
//! message done, and the delivery is acked. A failed work hands the delivery back, not
//! settled ([`ProcessError`]).
//!
//! ## Stores
//!
//! | store | feature | remembers | per message (measured on loopback, `docs/dedup.md`) |
//! |---|---|---|---|
//! | [`WindowStore`] | — | per (producer id, stream) the highest seq done and a bitmap of the [`WIDTH`] below it; forgotten on restart | a lock and a few instructions: 0.4 µs |
//! | `RedisStore` | `redis` | a key per message: a claim (`SET NX PX lease`), then `done` for a retention | the claim, 1 round trip; the done mark, 1: 43 µs |
//! | `PgStore` | `postgres` | a row per message, inserted in the app's own transaction | `BEGIN`+`INSERT`, 1 round trip; `COMMIT`, 1 (needed by the work anyway) |
//!
//! A message without mqtrace's numbering is keyed by its client's id
//! ([`Settle::fallback_id`]) in Redis and PostgreSQL, and passes unchecked without one (and
//! always through the window): [`Outcome::Unchecked`].
//!
//! ## When the process dies
//!
//! The broker delivers again whatever was not acked. What happens to that copy:
//!
//! | the process dies | window | Redis | PostgreSQL |
//! |---|---|---|---|
//! | before the work (claimed) | processed once (the window was lost, nothing was done) | processed once, after the dead worker's lease lapses | processed once (the transaction died with the connection) |
//! | during the work | processed again: the partial work's effects stay | processed again after the lease: the partial work's effects stay | processed once: the partial writes rolled back |
//! | after the work, before the mark | processed twice | processed twice, after the lease | processed once: work and mark commit together |
//! | after the mark, before the ack | processed twice (restart forgets the window) | skipped | skipped |
//!
//! Within one process the window skips every copy (and a copy arriving while the first is
//! processed waits for it). So: PostgreSQL is exactly once for writes in its transaction;
//! Redis skips every copy of a message marked done and retakes a dead worker's claim after
//! its lease; the window is exactly once only while the process lives. `docs/dedup.md`
//! tells more.
//!
//! ## Usage
//!
//! ```
//! use mqtrace_dedup::{Outcome, WindowStore, process_once};
//! use std::collections::HashMap;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let producer = mqtrace::Producer::builder("kafka").producer_id("orders-api-1").build();
//! let consumer = mqtrace::Consumer::builder("kafka", "shipping").build();
//! let store = WindowStore::new();
//!
//! // One message, delivered twice (a redelivery after a lost ack).
//! let mut headers = HashMap::new();
//! producer.message("orders").begin_attempt(&mut headers).sent().acked(None, None);
//! let mut outcomes = Vec::new();
//! for _ in 0..2 {
//!     let delivery = consumer.deliver(&headers, mqtrace::DeliveryInfo::new("orders"));
//!     let outcome = process_once(delivery, &store, async |d, _claim| {
//!         // ... the app's work ...
//!         Ok::<_, std::io::Error>(d.key().map(|k| k.seq))
//!     })
//!     .await?;
//!     outcomes.push(outcome);
//! }
//! assert_eq!(outcomes, [Outcome::Processed(Some(1)), Outcome::Skipped]);
//! # Ok(()) }
//! ```
//!
//! With PostgreSQL, the work writes in the transaction it is handed:
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn run(delivery: mqtrace::Delivery) -> Result<(), Box<dyn std::error::Error>> {
//! use mqtrace_dedup::{PgStore, process_once};
//!
//! let store = PgStore::connect("host=127.0.0.1 user=postgres dbname=app").await?;
//! process_once(delivery, &store, async |d, tx| {
//!     let seq = d.key().map_or(0, |k| k.seq as i64);
//!     tx.execute("INSERT INTO shipments (seq) VALUES ($1)", &[&seq]).await
//! })
//! .await?;
//! # Ok(()) }
//! ```
//!
//! The window alone, without the settle:
//!
//! ```
//! use mqtrace_dedup::{Seen, SeqWindows};
//!
//! let mut done = SeqWindows::default();
//! assert_eq!(done.mark("orders-api-1", "orders", 7), Seen::New);
//! assert_eq!(done.mark("orders-api-1", "orders", 7), Seen::Before); // a copy: skip it
//! assert_eq!(done.mark("orders-api-1", "orders", 5), Seen::New); // late, but not seen
//! assert_eq!(done.mark("orders-api-1", "orders", 5_000), Seen::New);
//! // 7 is now more than the window's width behind the highest seq: it cannot be told.
//! assert_eq!(done.check("orders-api-1", "orders", 7), Seen::TooOld);
//! ```

mod id;
#[cfg(feature = "postgres")]
mod postgres_store;
mod process;
#[cfg(feature = "redis")]
mod redis_store;
mod settle;
mod store;
mod window;
mod window_store;

pub use id::DedupId;
#[cfg(feature = "postgres")]
pub use postgres_store::{PgClaim, PgClient, PgStore};
pub use process::{Outcome, ProcessError, process_once};
#[cfg(feature = "redis")]
pub use redis_store::{RedisClaim, RedisStore};
pub use settle::{Settle, SettleError};
pub use store::{Check, Store, StoreError};
pub use window::{Seen, SeqWindow, SeqWindows, WIDTH};
pub use window_store::{TooOld, WindowClaim, WindowStore};
