//! The test harness of the fleet: real RabbitMQ, real VictoriaMetrics, the
//! simulator in-process and workers as real processes. Every fleet gets its
//! own name prefix and device ids, so tests run in parallel on one broker
//! and one TSDB without seeing each other.
//!
//! - [`fleet`]: one isolated fleet — topology, simulator, workers, jobs.
//! - [`worker`]: a worker process: start, signal, metrics, logs.
//! - [`tsdb`]: reading points back from VictoriaMetrics and comparing them
//!   with what the simulator served.
//! - [`proxy`]: a TCP proxy that can cut a dependency off.
//! - [`management`]: the broker's management API: queue counters, clashing
//!   declarations, left-over queues.
//! - [`factory`]: when the simulated factory API was asked.
//! - [`contract`]: job bodies that break the contract, one per rule.
//! - [`deadletters`]: a fleet's dead-letter queue as an operator meets it.

pub mod contract;
pub mod deadletters;
pub mod factory;
pub mod fleet;
pub mod management;
pub mod proxy;
pub mod tsdb;
pub mod worker;

use std::path::PathBuf;

/// Where cargo put the workspace's binaries for this test run.
pub fn bin_dir() -> PathBuf {
    // A test binary lives in `target/<profile>/deps/`; the workspace's other
    // binaries sit one level up. `cargo test --workspace` builds them first.
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let deps = exe.parent().expect("the test binary is in a folder");
    deps.parent().expect("deps/ has a parent").to_path_buf()
}

/// The path of one of the workspace's binaries, failing loudly when it has
/// not been built.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing; build the workspace's binaries first (cargo build --workspace)",
        path.display()
    );
    path
}

/// Folder for the logs of processes a test starts.
pub fn log_dir() -> PathBuf {
    let dir = bin_dir().join("test-logs");
    std::fs::create_dir_all(&dir).expect("the target folder is writable");
    dir
}
