//! Step definitions, one module per feature file, sharing one world.

mod dlq;
mod ingestion;
mod reliability;

use chrono::{DateTime, Utc};
use ingest_tests::fleet::{DeadLetter, Fleet};
use tokio::time::Instant;

/// What a scenario has set up so far.
#[derive(Default, cucumber::World)]
pub struct FleetWorld {
    /// The scenario's own fleet.
    pub fleet: Option<Fleet>,
    /// Devices the scenario ingests.
    pub devices: Vec<String>,
    /// The range of the import.
    pub range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Jobs published.
    pub jobs: usize,
    /// The body of the job published last.
    pub last_body: Vec<u8>,
    /// The body of the job that breaks the contract, once published.
    pub bad_body: Option<Vec<u8>>,
    /// The dead letter the scenario examines.
    pub dead_letter: Option<DeadLetter>,
    /// When a worker was sent SIGTERM.
    pub terminated_at: Option<Instant>,
    /// When the TSDB was cut off.
    pub outage_started_at: Option<Instant>,
    /// What a dead-letter scenario remembers.
    pub dlq: dlq::DlqScene,
}

impl std::fmt::Debug for FleetWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetWorld")
            .field(
                "prefix",
                &self.fleet.as_ref().map(|fleet| fleet.prefix.clone()),
            )
            .field("devices", &self.devices)
            .field("range", &self.range)
            .field("jobs", &self.jobs)
            .finish()
    }
}

impl FleetWorld {
    /// The fleet, started on first use.
    pub async fn fleet(&mut self) -> &mut Fleet {
        if self.fleet.is_none() {
            self.fleet = Some(Fleet::start().await);
        }
        self.fleet.as_mut().expect("just started")
    }
}
