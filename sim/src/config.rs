//! The simulator's settings, shared by the binary's flags and by tests that
//! start it in-process.

use std::time::Duration;

use crate::devices::is_valid_device_id;
use crate::faults::{FaultError, FaultSettings};
use crate::paging::interval_millis;

/// How a simulator instance behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Time between two readings of a device. Must be a whole, non-zero
    /// number of milliseconds. Default 1 s; flag `--interval`, env
    /// `SIM_INTERVAL`.
    pub interval: Duration,
    /// The devices that exist; when empty, every id that follows the
    /// contract's rule exists. Default empty; flag `--devices`, env
    /// `SIM_DEVICES`.
    pub devices: Vec<String>,
    /// Faults in force at start; tests change them over the admin API.
    /// Default none.
    pub faults: FaultSettings,
    /// Seed of the draws that decide which requests get a rate-based fault.
    /// Default 0; flag `--seed`, env `SIM_SEED`.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            devices: Vec::new(),
            faults: FaultSettings::default(),
            seed: 0,
        }
    }
}

/// A setting of [`SimConfig`] that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The interval is zero or not a whole number of milliseconds.
    #[error("`interval` must be a whole, non-zero number of milliseconds, got {0:?}")]
    Interval(Duration),
    /// A listed device breaks the contract's rule for ids.
    #[error("`devices` holds {0:?}, which is not a valid device id")]
    Device(String),
    /// A fault setting is out of range.
    #[error("invalid `faults`")]
    Faults(#[source] FaultError),
}

impl SimConfig {
    /// Checks every setting; [`spawn`](crate::spawn) and
    /// [`serve`](crate::serve) refuse a configuration that fails this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.interval_ms().map(drop)
    }

    /// The interval in milliseconds, if every setting is usable.
    pub(crate) fn interval_ms(&self) -> Result<i64, ConfigError> {
        let interval_ms =
            interval_millis(self.interval).ok_or(ConfigError::Interval(self.interval))?;

        if let Some(device) = self.devices.iter().find(|d| !is_valid_device_id(d)) {
            return Err(ConfigError::Device(device.clone()));
        }
        self.faults.validate().map_err(ConfigError::Faults)?;
        Ok(interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_with_a_one_second_interval() {
        assert_eq!(SimConfig::default().interval_ms().unwrap(), 1_000);
    }

    #[test]
    fn interval_must_be_whole_milliseconds() {
        for interval in [Duration::ZERO, Duration::from_micros(1_500)] {
            let config = SimConfig {
                interval,
                ..SimConfig::default()
            };
            assert!(matches!(config.validate(), Err(ConfigError::Interval(_))));
        }
    }

    #[test]
    fn listed_devices_must_be_valid_ids() {
        let config = SimConfig {
            devices: vec!["ok-1".into(), "not ok".into()],
            ..SimConfig::default()
        };
        assert!(matches!(config.validate(), Err(ConfigError::Device(d)) if d == "not ok"));
    }
}
