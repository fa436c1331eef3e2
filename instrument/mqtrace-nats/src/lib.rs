//! # mqtrace-nats: mqtrace for NATS JetStream through async-nats
//!
//! ## Overview
//!
//! Wraps a JetStream `Context` (for publishing) and the message streams of a durable
//! consumer so that every message is numbered per stream and traced through the four
//! mqtrace stages, with no change to what the app publishes or receives:
//!
//! | stage | recorded when |
//! |---|---|
//! | `produce` | the publish is sent |
//! | `store_ack` | the PubAck arrives: `ok` at the stream sequence (marked `mqtrace.broker.duplicate` when the dedup window caught a copy), `nack` when no stream captures the subject, `timeout`, `error` |
//! | `deliver` | a message is taken from the [`TracedMessages`] stream; delivery count and stream sequence from its ack subject |
//! | `consume_ack` | the app settles it: ack, nak (`nack`), term (`reject`), or `skip_duplicate` |
//!
//! The consumer group is the durable consumer. [`TracedJetStream::dedup_ids`] sends each
//! message's mqtrace message id as `Nats-Msg-Id`, so that a retry after a lost PubAck is
//! stored once.
//!
//! ## Usage
//!
//! ```no_run
//! use async_nats::jetstream::{self, consumer::pull};
//! use futures::StreamExt;
//! use mqtrace_nats::{TracedDurable, TracedJetStream};
//!
//! # async fn run() -> Result<(), async_nats::Error> {
//! let js = jetstream::new(async_nats::connect("127.0.0.1:4222").await?);
//! let publisher = TracedJetStream::with_producer_id(js.clone(), "orders-api-1").dedup_ids(true);
//! publisher.publish("orders.new", "{}".into()).await?.await?;
//!
//! let stream = js.get_stream("ORDERS").await?;
//! let consumer = stream
//!     .get_or_create_consumer("shipping", pull::Config {
//!         durable_name: Some("shipping".into()),
//!         ..Default::default()
//!     })
//!     .await?;
//! let mut messages = TracedDurable::named("shipping").messages(consumer.messages().await?);
//! if let Some(message) = messages.next().await {
//!     let message = message?;
//!     // ... process message.message().payload ...
//!     message.ack().await?;
//! }
//! # Ok(()) }
//! ```

mod consumer;
mod headers;
mod publisher;

pub use consumer::{TracedDurable, TracedMessage, TracedMessages};
pub use headers::HeaderReader;
pub use publisher::{TracedAckFuture, TracedJetStream};

/// `messaging.system` for NATS (the conventions have no value for it: SPEC §2 says `nats`).
pub const SYSTEM: &str = "nats";
