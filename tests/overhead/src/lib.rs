//! Holds the `adapters` bench: `cargo bench --workspace --bench adapters --locked` measures
//! messages per second through rdkafka (mock cluster), lapin (RabbitMQ with confirms) and
//! async-nats (JetStream), each plain, carrying 1, 2 or 5 headers, and wrapped by its mqtrace
//! adapter in off, full and ledger mode; it prints the overhead and the telemetry bytes per
//! message, and writes the medians to `target/overhead.json`.
//!
//! And the `live` bench (criterion): `cargo bench --workspace --bench live --locked` measures
//! what the consumers' live signals (SPEC §7) cost per delivery on the consumer's thread, on
//! and off, in ledger mode and in full mode.
