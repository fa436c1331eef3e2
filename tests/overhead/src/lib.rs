//! Holds the `adapters` bench: `cargo bench --workspace --bench adapters --locked` measures
//! messages per second through rdkafka (mock cluster), lapin (RabbitMQ with confirms) and
//! async-nats (JetStream), each plain, carrying 1, 2 or 5 headers, and wrapped by its mqtrace
//! adapter in off, full and ledger mode; it prints the overhead and the telemetry bytes per
//! message, and writes the medians to `target/overhead.json`.
