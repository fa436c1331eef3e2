//! # mqtrace: did we lose a message, and where?
//!
//! ## Overview
//!
//! This crate is the instrumentation core of mqtrace. It numbers each producer's messages
//! per stream (1, 2, 3, … with no holes), carries that number and the trace context in the
//! message headers, and records one OpenTelemetry span per stage of the message's life:
//! `produce`, `store_ack`, `deliver` and `consume_ack`. The `mqtrace` analyzer later joins
//! these spans per message and names the stage that lost or duplicated it.
//!
//! It depends on the OpenTelemetry **API** only: spans go through whichever `TracerProvider`
//! the app installed (see the `mqtrace-export` crate for one that never loses telemetry
//! silently). Broker adapters (`mqtrace-kafka`, …) wrap real clients with it; use it directly
//! to instrument any other client.
//!
//! ## Concepts
//!
//! - A **stream** is one producer's numbered sequence, named by ([`MessageKey::producer_id`],
//!   [`MessageKey::stream`]). A message's **seq** is handed out once; a retry of the same
//!   message reuses it and records the next attempt number.
//! - A **carrier** is the client's header map, seen through OpenTelemetry's
//!   [`Injector`](opentelemetry::propagation::Injector) and
//!   [`Extractor`](opentelemetry::propagation::Extractor) traits.
//! - The names of spans, attributes and headers are constants in [`names`], shared with the
//!   analyzer.
//!
//! ## Usage
//!
//! ```
//! use std::collections::HashMap;
//! use mqtrace::{Consumer, DeliveryInfo, Producer};
//!
//! // Producing: number the message, record the attempt and the broker's answer.
//! let producer = Producer::builder("rabbitmq").producer_id("orders-api-1").build();
//! let mut message = producer.message("orders");
//! let mut headers: HashMap<String, String> = HashMap::new();
//! let attempt = message.begin_attempt(&mut headers);
//! // ... client.publish(payload, headers) returned Ok ...
//! let pending = attempt.sent();
//! // ... the publisher confirm arrived ...
//! pending.acked(None, None);
//! assert_eq!(headers["mqtrace"], "1;orders-api-1;orders;1;1"); // producer;stream;seq;attempt
//!
//! // Consuming: record the delivery, then how it was settled.
//! let consumer = Consumer::builder("rabbitmq", "shipping").build();
//! let delivery = consumer.deliver(&headers, DeliveryInfo::new("shipping-queue"));
//! assert_eq!(delivery.key().map(|k| k.seq), Some(1));
//! // ... process the message, then basic_ack ...
//! delivery.ack();
//! ```
//!
//! ## Modes
//!
//! What is recorded is a [`Mode`], chosen on the builders (`.mode(..)`) or by the
//! `MQTRACE_MODE` variable ([`ENV_MODE`]), which every builder reads as its default:
//!
//! - [`Mode::Full`] (default): one span per stage event; the compact `mqtrace` header and
//!   `traceparent` (the five headers of SPEC §3 with
//!   [`ProducerBuilder::header_form`]`(`[`HeaderForm::Five`]`)`).
//! - [`Mode::Ledger`] (SPEC §2b): the ordinary path of a message — a first attempt acked `ok`,
//!   a first delivery, an `ack` — only adds its seq to a per-stream ledger, exported as one
//!   `mqtrace ledger {destination}` span per stream, stage and flush interval (by a background
//!   thread, at [`Producer::flush`]/[`Consumer::flush`]/[`flush_ledgers`], and when the last
//!   handle is dropped); everything else, and every message the app's sampler keeps, gets the
//!   full spans. The compact `mqtrace` header, `traceparent` only with a full span.
//! - [`Mode::Off`]: nothing recorded, no headers.
//!
//! ```
//! use std::collections::HashMap;
//! use mqtrace::{Mode, Producer};
//!
//! let producer = Producer::builder("kafka").producer_id("p1").mode(Mode::Ledger).build();
//! let mut headers: HashMap<String, String> = HashMap::new();
//! producer.message("orders").begin_attempt(&mut headers).sent().acked(Some("0/7"), Some("0"));
//! assert_eq!(headers["mqtrace"], "1;p1;orders;1;1"); // no span, no traceparent
//! producer.flush(); // one span: mqtrace.seqs = "1"
//! ```
//!
//! ## Live signals
//!
//! Every consumer that records (full and ledger mode; off mode passes every call straight
//! through) also checks the seqs where they arrive (SPEC §7), per (producer, stream,
//! destination, partition), and counts through the app's OpenTelemetry `MeterProvider` (the
//! global one, or [`ConsumerBuilder::meter_provider`]): `mqtrace.consumer.missing` (holes once
//! the consumer is [`ConsumerBuilder::reorder_window`] seqs past them), `mqtrace.consumer.late`
//! (counted holes that arrived after all), `mqtrace.consumer.redelivered` and
//! `mqtrace.consumer.duplicates`, with the stream, destination and group as attributes. A hook
//! ([`ConsumerBuilder::on_gap`]) names the seqs. See [`live`].
//!
//! ## Feature flags
//!
//! - `tracing` (default): `produce` and `deliver` spans become children of the app's current
//!   `tracing` span when the app uses `tracing-opentelemetry`.

mod consumer;
pub mod headers;
mod ledger;
pub mod live;
mod message;
mod mode;
pub mod names;
mod producer;
pub mod sequencer;
mod span;

pub use consumer::{Consumer, ConsumerBuilder, Delivery, DeliveryInfo, ParentMode};
pub use ledger::{LEDGER_SPAN_PREFIX, flush_ledgers};
pub use live::{DEFAULT_REORDER_WINDOW, Gap, GapKind};
pub use message::{MessageKey, SettleOutcome, StoreOutcome};
pub use mode::{DEFAULT_FLUSH_INTERVAL, ENV_MODE, HeaderForm, Mode, UnknownMode};
pub use names::Stage;
pub use producer::{
    OutgoingMessage, PendingAck, Producer, ProducerBuilder, SendAttempt, SendCall,
    default_producer_id,
};
pub use sequencer::{Sequencer, StreamCounter};
