//! Counters of what the simulator served, read by tests through `/stats`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::faults::FaultTally;

/// What the simulator has served since it started or was last reset; the
/// answer of `GET /stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Readings served in pages answered with 200 and a whole JSON body.
    pub total_readings: u64,
    /// `total_readings` by device id.
    pub devices: BTreeMap<String, u64>,
    /// Reading requests received, whatever their answer.
    pub requests: u64,
    /// Faults injected, of every kind.
    pub faults_injected: u64,
    /// `faults_injected` by kind: `latency`, `outage`, `device_failure`,
    /// `server_error`, `rate_limited`, `malformed`, `truncated`, `slow_body`
    /// and `corrupted_reading` (one per altered reading).
    pub faults: BTreeMap<String, u64>,
}

/// The outcome of one reading request, recorded in one step.
#[derive(Debug, Default)]
pub(crate) struct RequestRecord<'a> {
    /// The device whose readings were served, when any were.
    pub(crate) device: Option<&'a str>,
    pub(crate) readings: u64,
    pub(crate) faults: FaultTally,
}

/// The live counters behind [`StatsSnapshot`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    total_readings: u64,
    devices: HashMap<String, u64>,
    requests: u64,
    faults_injected: u64,
    faults: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Counts one reading request; takes the lock once.
    pub(crate) fn record(&self, record: RequestRecord<'_>) {
        let mut counters = self.lock();
        counters.requests += 1;

        if let Some(device) = record.device.filter(|_| record.readings > 0) {
            counters.total_readings += record.readings;
            // Look up before inserting so a known device costs no allocation.
            match counters.devices.get_mut(device) {
                Some(count) => *count += record.readings,
                None => {
                    counters.devices.insert(device.to_owned(), record.readings);
                }
            }
        }

        for (kind, count) in record.faults.counts().filter(|(_, count)| *count > 0) {
            counters.faults_injected += count;
            *counters.faults.entry(kind.as_str()).or_default() += count;
        }
    }

    /// Sets every counter back to zero.
    pub(crate) fn reset(&self) {
        *self.lock() = Counters::default();
    }

    /// A copy of the counters.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let counters = self.lock();
        StatsSnapshot {
            total_readings: counters.total_readings,
            devices: counters
                .devices
                .iter()
                .map(|(device, count)| (device.clone(), *count))
                .collect(),
            requests: counters.requests,
            faults_injected: counters.faults_injected,
            faults: counters
                .faults
                .iter()
                .map(|(kind, count)| ((*kind).to_owned(), *count))
                .collect(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // Counters stay consistent between statements, so a lock poisoned by
        // a panicking request is still safe to use.
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultKind;

    #[test]
    fn record_counts_readings_per_device_and_faults_by_kind() {
        let stats = Stats::default();
        let mut faults = FaultTally::default();
        faults.add(FaultKind::Corrupted, 3);
        stats.record(RequestRecord {
            device: Some("press-07"),
            readings: 10,
            faults,
        });
        stats.record(RequestRecord {
            device: Some("press-07"),
            readings: 5,
            faults: FaultTally::default(),
        });
        stats.record(RequestRecord::default());

        let snapshot = stats.snapshot();
        assert_eq!(snapshot.total_readings, 15);
        assert_eq!(snapshot.devices["press-07"], 15);
        assert_eq!(snapshot.requests, 3);
        assert_eq!(snapshot.faults_injected, 3);
        assert_eq!(snapshot.faults["corrupted_reading"], 3);

        stats.reset();
        assert_eq!(stats.snapshot(), StatsSnapshot::default());
    }
}
