//! The state every request handler shares: settings, faults and counters.

use crate::config::{ConfigError, SimConfig};
use crate::devices::DeviceCatalog;
use crate::faults::FaultBook;
use crate::stats::Stats;

/// Everything a running simulator holds, behind one `Arc`.
pub(crate) struct SimState {
    /// Milliseconds between two readings of a device.
    pub(crate) interval_ms: i64,
    pub(crate) catalog: DeviceCatalog,
    pub(crate) faults: FaultBook,
    pub(crate) stats: Stats,
}

impl SimState {
    /// The state of a fresh simulator, once `config` is validated.
    pub(crate) fn new(config: &SimConfig) -> Result<Self, ConfigError> {
        let interval_ms = config.interval_ms()?;
        Ok(Self {
            interval_ms,
            catalog: DeviceCatalog::new(&config.devices),
            faults: FaultBook::new(config.faults, config.seed),
            stats: Stats::default(),
        })
    }

    /// Clears every fault and zeroes every counter.
    pub(crate) fn reset(&self) {
        self.faults.clear();
        self.stats.reset();
    }
}
