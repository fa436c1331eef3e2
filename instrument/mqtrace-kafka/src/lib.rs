//! # mqtrace-kafka: mqtrace for Kafka through rdkafka
//!
//! ## Overview
//!
//! Wraps rdkafka's `FutureProducer` and `StreamConsumer` so that every message is numbered
//! per stream and traced through the four mqtrace stages, with no change to what the app
//! sends or receives:
//!
//! | stage | recorded when |
//! |---|---|
//! | `produce` | `send_result` returns (the record is enqueued, or refused) |
//! | `store_ack` | the delivery report arrives: `ok` with `partition/offset`, or the error |
//! | `deliver` | `recv` returns the message |
//! | `consume_ack` | the app marks it done: [`TracedMessage::ack`] stores the offset |
//!
//! ## Usage
//!
//! ```no_run
//! use mqtrace_kafka::{TracedConsumer, TracedProducer};
//! use rdkafka::ClientConfig;
//! use rdkafka::consumer::StreamConsumer;
//! use rdkafka::producer::FutureRecord;
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let producer = TracedProducer::with_producer_id(
//!     ClientConfig::new().set("bootstrap.servers", "localhost:9092").create()?,
//!     "orders-api-1",
//! );
//! producer
//!     .send(FutureRecord::<str, str>::to("orders").payload("{}"), Duration::from_secs(1))
//!     .await?;
//!
//! let inner: StreamConsumer = ClientConfig::new()
//!     .set("bootstrap.servers", "localhost:9092")
//!     .set("group.id", "shipping")
//!     .set("enable.auto.offset.store", "false")
//!     .create()?;
//! let consumer = TracedConsumer::new(
//!     inner,
//!     mqtrace::Consumer::builder("kafka", "shipping").build(),
//!     false,
//! );
//! let message = consumer.recv().await?;
//! // ... process it ...
//! message.ack()?;
//! # Ok(()) }
//! ```

mod consumer;
mod context;
mod headers;
mod position;
mod producer;

pub use consumer::{OffsetStore, TracedConsumer, TracedMessage};
pub use context::{Refused, TracedBaseProducer, TracedOpaque, TracingContext};
pub use headers::HeaderReader;
pub use producer::TracedProducer;

/// `messaging.system` for Kafka.
pub const SYSTEM: &str = "kafka";
