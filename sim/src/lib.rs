//! A simulator of the factory's data API, for the ingestion fleet's tests
//! and benchmarks: deterministic readings served in pages, plus faults that
//! tests switch on and off at run time.
//!
//! - `readings` — the pure function from (device, time) to a reading.
//! - `paging` — which readings a range holds, pages and cursors.
//! - `encode` — the hand-written JSON of a page, the hot path.
//! - `devices` — which device ids exist.
//! - `faults` — fault settings and the decision of what a request gets.
//! - `stats` — the counters behind `/stats`.
//! - `api` — the data endpoints; `admin` — the fault-injection endpoints.
//! - `error` — error answers with JSON bodies.
//! - `config` — [`SimConfig`]; `state` — what the handlers share.
//! - `server` — [`serve`] for the binary, [`spawn`] for tests.
//!
//! The HTTP API is described in `docs/factory-api.md`.

mod admin;
mod api;
mod config;
mod devices;
mod encode;
mod error;
mod faults;
mod paging;
mod readings;
mod server;
mod state;
mod stats;

pub use api::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
pub use config::{ConfigError, SimConfig};
pub use devices::is_valid_device_id;
pub use faults::{
    CorruptionKind, DeviceCorruption, DeviceFailure, DeviceFaults, FaultError, FaultSettings,
    FaultsSnapshot,
};
pub use readings::{DeviceTags, Reading, device_tags, reading, readings};
pub use server::{SimHandle, serve, serve_with_shutdown, spawn};
pub use stats::StatsSnapshot;
