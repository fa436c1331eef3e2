//! Holds the `adapters` bench: `cargo bench -p mqtrace-overhead` measures messages per
//! second through rdkafka (mock cluster), lapin (RabbitMQ with confirms) and async-nats
//! (JetStream), each plain and wrapped by its mqtrace adapter, and prints the overhead.
