//! # mqtrace-dedup: idempotent consumers
//!
//! The classic answer to duplicates (a producer's retry stored twice, a redelivery after a
//! lost consumer ack) is an idempotent consumer: remember what was processed and skip a copy.
//! mqtrace numbers every message of a stream without gaps, so "what was processed" can be a
//! sequence window instead of a cache of ids.
//!
//! This crate starts with that window ([`SeqWindow`], [`SeqWindows`]): exact within its width,
//! O(1) per message, fixed memory per (producer id, stream), forgotten on restart. The stores
//! that survive a restart (Redis, PostgreSQL) and the one `process_once` call every adapter's
//! delivery goes through are still to come (issue 13).
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

mod window;

pub use window::{Seen, SeqWindow, SeqWindows, WIDTH};
