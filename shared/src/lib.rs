//! What every program of the ingestion fleet shares.
//!
//! - [`job`]: the v1 job contract — decoding, validation, encoding, job ids.
//! - [`window`]: splitting a requested range into per-job windows.
//! - [`topology`]: exchange and queue names, arguments and declaration.
//! - [`headers`]: the AMQP headers the fleet reads and writes.
//! - [`broker`]: connecting to RabbitMQ.
//! - [`secret`]: URLs whose passwords never reach a log.
//! - [`telemetry`]: log output, pretty or JSON.

pub mod broker;
pub mod headers;
pub mod job;
pub mod secret;
pub mod telemetry;
pub mod topology;
pub mod window;

pub use job::{ContractError, IngestJob, Limits};
pub use secret::SecretUrl;
pub use topology::Topology;
