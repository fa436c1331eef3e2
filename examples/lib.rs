//! Examples of mqtrace (see `README.md` in this folder). The demo's scenario lives here as a
//! library module so that the end-to-end tests can run it and check the analyzer against it.

/// The demo: five real faults on librdkafka's in-process mock cluster.
pub mod demo {
    #[path = "cluster.rs"]
    pub mod cluster;
    #[path = "scenario.rs"]
    mod scenario;

    pub use scenario::{Injected, PRODUCER_ID, run, run_in};
}
