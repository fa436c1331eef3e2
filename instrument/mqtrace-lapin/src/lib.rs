//! # mqtrace-lapin: mqtrace for RabbitMQ through lapin
//!
//! ## Overview
//!
//! Wraps lapin's `Channel` (for publishing) and `Consumer` so that every message is numbered
//! per stream and traced through the four mqtrace stages, with no change to what the app
//! publishes or receives:
//!
//! | stage | recorded when |
//! |---|---|
//! | `produce` | `basic_publish` returns |
//! | `store_ack` | the publisher confirm arrives: `ok` (position `attempt/N`), `nack` for a nack or a returned (unroutable, mandatory) message, `error`, or `timeout` from [`TracedConfirm::wait_for`] |
//! | `deliver` | a delivery is taken from the [`TracedConsumer`] stream (or [`TracedQueue::trace`]d); redelivered = delivery count 2, or the quorum queue's `x-delivery-count` + 1 |
//! | `consume_ack` | the app settles it: `basic_ack` / `basic_nack` / `basic_reject`, or `skip_duplicate` |
//!
//! The consumer group is the queue. RabbitMQ gives a stored copy no identity of its own, so
//! the adapter names it by the send attempt that stored it (`attempt/N`, carried in the
//! `mqtrace-attempt` header): a retry after a lost confirm that was stored twice shows as two
//! copies, and the analyzer reports `duplicate/produce`.
//!
//! ## Usage
//!
//! ```no_run
//! use futures::StreamExt;
//! use lapin::options::*;
//! use lapin::types::FieldTable;
//! use lapin::{BasicProperties, Connection, ConnectionProperties};
//! use mqtrace_lapin::{TracedConsumer, TracedPublisher};
//!
//! # async fn run() -> Result<(), lapin::Error> {
//! let conn = Connection::connect("amqp://127.0.0.1:5672", ConnectionProperties::default()).await?;
//! let channel = conn.create_channel().await?;
//! channel.confirm_select(ConfirmSelectOptions::default()).await?;
//! let publisher = TracedPublisher::with_producer_id(channel.clone(), "orders-api-1");
//! publisher
//!     .basic_publish("".into(), "orders".into(), BasicPublishOptions::default(), b"{}",
//!         BasicProperties::default())
//!     .await?
//!     .await?;
//!
//! let consumer = channel
//!     .basic_consume("orders".into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
//!     .await?;
//! let mut deliveries = TracedConsumer::from_queue(consumer);
//! if let Some(delivery) = deliveries.next().await {
//!     let delivery = delivery?;
//!     // ... process delivery.delivery().data ...
//!     delivery.ack(BasicAckOptions::default()).await?;
//! }
//! # Ok(()) }
//! ```

mod consumer;
mod headers;
mod publisher;

pub use consumer::{TracedConsumer, TracedDelivery, TracedQueue};
pub use headers::TableReader;
pub use publisher::{TracedConfirm, TracedPublisher, destination_name};

/// `messaging.system` for RabbitMQ.
pub const SYSTEM: &str = "rabbitmq";

/// The position of the copy stored by send attempt `attempt`: `attempt/{attempt}`.
pub fn attempt_position(attempt: u32) -> String {
    format!("attempt/{attempt}")
}

/// The `error.type` of a lapin error: the AMQP reply (e.g. `NOTFOUND`) or the error's kind.
pub(crate) fn error_type(e: &lapin::Error) -> String {
    use lapin::ErrorKind;
    use lapin::protocol::AMQPErrorKind;
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(soft) => format!("{soft:?}"),
            AMQPErrorKind::Hard(hard) => format!("{hard:?}"),
        },
        other => {
            let name = format!("{other:?}");
            name.split(['(', ' ', '{'])
                .next()
                .unwrap_or("lapin")
                .to_owned()
        }
    }
}
