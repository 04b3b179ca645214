//! Fault injection: the settings tests change at run time, and the
//! deterministic decision of which fault, if any, a reading request gets.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::readings::mix;

/// Faults applied to every reading request; the body of `PUT /admin/faults`.
///
/// Every field is optional in JSON and defaults to "no fault". Unknown
/// fields are rejected so that a misspelt setting cannot pass unnoticed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    /// Delay added before answering each reading request, in milliseconds.
    /// Default 0; flag `--latency`, env `SIM_LATENCY`.
    pub latency_ms: u64,
    /// Fraction (0 to 1) of reading requests answering 500. Default 0; flag
    /// `--error-rate`, env `SIM_ERROR_RATE`.
    pub error_rate: f64,
    /// Fraction (0 to 1) of reading requests answering 429 with a
    /// `Retry-After` header. Default 0; flag `--rate-limit-rate`, env
    /// `SIM_RATE_LIMIT_RATE`.
    pub rate_limit_rate: f64,
    /// Seconds sent in `Retry-After` with an injected 429. Default 1; flag
    /// `--retry-after`, env `SIM_RETRY_AFTER`.
    pub retry_after_secs: u64,
    /// Fraction (0 to 1) of reading requests answering 200 with a body that
    /// is not JSON. Default 0; flag `--malformed-rate`, env
    /// `SIM_MALFORMED_RATE`.
    pub malformed_rate: f64,
    /// Fraction (0 to 1) of reading requests answering 200 with the first
    /// half of the page's JSON only. Default 0; flag `--truncated-rate`, env
    /// `SIM_TRUNCATED_RATE`.
    pub truncated_rate: f64,
    /// Delay between sending the status and headers of a page and sending
    /// its body, in milliseconds, so that a client's read timeout fires.
    /// Default 0; flag `--slow-body`, env `SIM_SLOW_BODY`.
    pub slow_body_ms: u64,
    /// When true every reading request answers 503. Default false; flag
    /// `--outage`, env `SIM_OUTAGE`.
    pub outage: bool,
}

impl Default for FaultSettings {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_secs: 1,
            malformed_rate: 0.0,
            truncated_rate: 0.0,
            slow_body_ms: 0,
            outage: false,
        }
    }
}

impl FaultSettings {
    /// Checks that every rate is a fraction from 0 to 1.
    pub fn validate(&self) -> Result<(), FaultError> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("malformed_rate", self.malformed_rate),
            ("truncated_rate", self.truncated_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FaultError::RateOutOfRange { name, rate });
            }
        }
        Ok(())
    }
}

/// The next `count` reading requests for a device answer `status`; the body
/// of `POST /admin/devices/{device}/fail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFailure {
    /// How many requests fail; in `GET /admin/faults`, how many are left.
    pub count: u32,
    /// The HTTP status they answer, 400 to 599. Default 503.
    #[serde(default = "default_failure_status")]
    pub status: u16,
    /// Seconds to send in a `Retry-After` header; none when absent.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

fn default_failure_status() -> u16 {
    503
}

impl DeviceFailure {
    /// Checks that the status is an error status and the count not zero.
    pub fn validate(&self) -> Result<(), FaultError> {
        if !(400..=599).contains(&self.status) {
            return Err(FaultError::StatusNotAnError(self.status));
        }
        if self.count == 0 {
            return Err(FaultError::ZeroCount);
        }
        Ok(())
    }
}

/// How a corrupted reading is altered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorruptionKind {
    /// `"temperature": "n/a"` instead of a number.
    NonNumeric,
    /// The `TIMESTAMP` key is left out.
    MissingTimestamp,
}

/// Every `every`-th reading of a device's range is altered as `kind` says;
/// the body of `POST /admin/devices/{device}/corrupt`.
///
/// Positions count from the first reading of the requested `[start, end)`,
/// whatever page it falls on: with `every: 3` the 3rd, 6th, 9th ... readings
/// of the range are corrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCorruption {
    /// The period, at least 1 (1 corrupts every reading).
    pub every: u64,
    /// What is done to the reading.
    pub kind: CorruptionKind,
}

impl DeviceCorruption {
    /// Checks that the period is at least 1.
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.every == 0 {
            return Err(FaultError::ZeroPeriod);
        }
        Ok(())
    }

    /// The alteration of the reading at `position` (from 0) in its range.
    pub(crate) fn applies_at(self, position: i64) -> Option<CorruptionKind> {
        let every = i64::try_from(self.every).unwrap_or(i64::MAX);
        ((position + 1) % every == 0).then_some(self.kind)
    }
}

/// The faults set for one device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFaults {
    /// Failures still to be served, if any.
    pub fail: Option<DeviceFailure>,
    /// Corruption of its readings, if any.
    pub corrupt: Option<DeviceCorruption>,
}

/// Every fault in force; the answer of `GET /admin/faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultsSnapshot {
    /// The settings applied to every reading request.
    pub global: FaultSettings,
    /// Per-device faults, by device id.
    pub devices: BTreeMap<String, DeviceFaults>,
}

/// A fault setting that cannot be applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FaultError {
    /// A rate outside 0 to 1 (or NaN).
    #[error("`{name}` must be a fraction from 0 to 1, got {rate}")]
    RateOutOfRange {
        /// The setting's name.
        name: &'static str,
        /// The rejected value.
        rate: f64,
    },
    /// A device failure whose status is not 400 to 599.
    #[error("`status` must be an error status from 400 to 599, got {0}")]
    StatusNotAnError(u16),
    /// A device failure with `count` 0.
    #[error("`count` must be at least 1")]
    ZeroCount,
    /// A corruption with `every` 0.
    #[error("`every` must be at least 1")]
    ZeroPeriod,
}

/// A kind of injected fault, as counted in `/stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Latency,
    Outage,
    DeviceFailure,
    ServerError,
    RateLimited,
    Malformed,
    Truncated,
    SlowBody,
    Corrupted,
}

impl FaultKind {
    /// Every kind, in the order of [`FaultTally`]'s slots.
    pub(crate) const ALL: [FaultKind; 9] = [
        FaultKind::Latency,
        FaultKind::Outage,
        FaultKind::DeviceFailure,
        FaultKind::ServerError,
        FaultKind::RateLimited,
        FaultKind::Malformed,
        FaultKind::Truncated,
        FaultKind::SlowBody,
        FaultKind::Corrupted,
    ];

    /// The kind's name in `/stats`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FaultKind::Latency => "latency",
            FaultKind::Outage => "outage",
            FaultKind::DeviceFailure => "device_failure",
            FaultKind::ServerError => "server_error",
            FaultKind::RateLimited => "rate_limited",
            FaultKind::Malformed => "malformed",
            FaultKind::Truncated => "truncated",
            FaultKind::SlowBody => "slow_body",
            FaultKind::Corrupted => "corrupted_reading",
        }
    }

    /// The kind's slot in a [`FaultTally`].
    fn slot(self) -> usize {
        self as usize
    }
}

/// How many faults of each kind one request received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FaultTally([u64; FaultKind::ALL.len()]);

impl FaultTally {
    pub(crate) fn add(&mut self, kind: FaultKind, count: u64) {
        self.0[kind.slot()] += count;
    }

    /// Adds every count of `other`.
    pub(crate) fn merge(&mut self, other: FaultTally) {
        for (slot, count) in self.0.iter_mut().zip(other.0) {
            *slot += count;
        }
    }

    /// Each kind with its count, zero counts included.
    pub(crate) fn counts(&self) -> impl Iterator<Item = (FaultKind, u64)> + '_ {
        FaultKind::ALL
            .into_iter()
            .map(|kind| (kind, self.0[kind.slot()]))
    }
}

/// What a reading request that passed validation receives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Decision {
    /// An injected answer in place of the page.
    Refuse(Refusal),
    /// The page, possibly cut, delayed or corrupted.
    Serve(ServeFaults),
}

/// An injected answer that serves no readings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Refusal {
    /// 503: the global outage switch is on.
    Outage,
    /// A failure set for the device.
    DeviceFailure {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    /// 500 drawn from `error_rate`.
    ServerError,
    /// 429 drawn from `rate_limit_rate`.
    RateLimited { retry_after_secs: u64 },
    /// 200 with a body that is not JSON.
    Malformed,
}

/// The faults applied to a page that is served.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ServeFaults {
    pub(crate) truncated: bool,
    pub(crate) slow_body: Option<Duration>,
    pub(crate) corruption: Option<DeviceCorruption>,
}

impl Decision {
    /// The faults this decision injects, by kind.
    pub(crate) fn tally(&self) -> FaultTally {
        let mut tally = FaultTally::default();
        match self {
            Decision::Refuse(refusal) => {
                let kind = match refusal {
                    Refusal::Outage => FaultKind::Outage,
                    Refusal::DeviceFailure { .. } => FaultKind::DeviceFailure,
                    Refusal::ServerError => FaultKind::ServerError,
                    Refusal::RateLimited { .. } => FaultKind::RateLimited,
                    Refusal::Malformed => FaultKind::Malformed,
                };
                tally.add(kind, 1);
            }
            Decision::Serve(faults) => {
                tally.add(FaultKind::Truncated, u64::from(faults.truncated));
                tally.add(FaultKind::SlowBody, u64::from(faults.slow_body.is_some()));
            }
        }
        tally
    }

    /// Whether the decision injects any fault into the answer.
    pub(crate) fn is_faulty(&self) -> bool {
        *self != Decision::Serve(ServeFaults::default())
    }
}

/// The faults in force and the sequence that makes rate draws repeatable.
pub(crate) struct FaultBook {
    seed: u64,
    /// Counts reading requests that reached a decision; draw `n` of every
    /// rate uses the `n`-th value, so a run with one seed and one request
    /// order always injects the same faults.
    sequence: AtomicU64,
    state: Mutex<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    global: FaultSettings,
    devices: HashMap<String, DeviceFaults>,
}

// Salts that make each rate's draw independent of the others'.
const SALT_ERROR: u64 = 1;
const SALT_RATE_LIMIT: u64 = 2;
const SALT_MALFORMED: u64 = 3;
const SALT_TRUNCATED: u64 = 4;

impl FaultBook {
    pub(crate) fn new(global: FaultSettings, seed: u64) -> Self {
        Self {
            seed,
            sequence: AtomicU64::new(0),
            state: Mutex::new(FaultState {
                global,
                devices: HashMap::new(),
            }),
        }
    }

    /// The global settings now in force.
    pub(crate) fn global(&self) -> FaultSettings {
        self.lock().global
    }

    /// Replaces the global settings, leaving per-device faults alone.
    pub(crate) fn set_global(&self, settings: FaultSettings) -> Result<(), FaultError> {
        settings.validate()?;
        self.lock().global = settings;
        Ok(())
    }

    /// Fails the next `failure.count` reading requests for `device`.
    pub(crate) fn fail_device(
        &self,
        device: &str,
        failure: DeviceFailure,
    ) -> Result<(), FaultError> {
        failure.validate()?;
        self.lock()
            .devices
            .entry(device.to_owned())
            .or_default()
            .fail = Some(failure);
        Ok(())
    }

    /// Corrupts the readings of `device` as `corruption` says.
    pub(crate) fn corrupt_device(
        &self,
        device: &str,
        corruption: DeviceCorruption,
    ) -> Result<(), FaultError> {
        corruption.validate()?;
        self.lock()
            .devices
            .entry(device.to_owned())
            .or_default()
            .corrupt = Some(corruption);
        Ok(())
    }

    /// Removes every fault of `device`.
    pub(crate) fn clear_device(&self, device: &str) {
        self.lock().devices.remove(device);
    }

    /// Removes every fault, global and per device, and restarts the rate
    /// sequence so that a reset run repeats its draws.
    pub(crate) fn clear(&self) {
        *self.lock() = FaultState::default();
        self.sequence.store(0, Ordering::Relaxed);
    }

    /// Everything in force.
    pub(crate) fn snapshot(&self) -> FaultsSnapshot {
        let state = self.lock();
        FaultsSnapshot {
            global: state.global,
            devices: state
                .devices
                .iter()
                .map(|(device, faults)| (device.clone(), *faults))
                .collect(),
        }
    }

    /// Decides what a valid reading request for `device` receives under the
    /// `global` settings read when it arrived.
    ///
    /// The order is fixed: outage, the device's failures, then the drawn
    /// 500, 429 and malformed answers; a request that draws none of them is
    /// served, possibly truncated, slowed or corrupted.
    pub(crate) fn decide(&self, global: &FaultSettings, device: &str) -> Decision {
        if global.outage {
            return Decision::Refuse(Refusal::Outage);
        }

        let corruption = {
            let mut state = self.lock();
            let faults = state.devices.get_mut(device);
            let (failure, corruption) = match faults {
                Some(faults) => (take_failure(&mut faults.fail), faults.corrupt),
                None => (None, None),
            };
            if let Some(failure) = failure {
                return Decision::Refuse(Refusal::DeviceFailure {
                    status: failure.status,
                    retry_after_secs: failure.retry_after_secs,
                });
            }
            corruption
        };

        let draw = self.sequence.fetch_add(1, Ordering::Relaxed);
        let hits = |rate: f64, salt: u64| self.unit(draw, salt) < rate;
        if hits(global.error_rate, SALT_ERROR) {
            return Decision::Refuse(Refusal::ServerError);
        }
        if hits(global.rate_limit_rate, SALT_RATE_LIMIT) {
            return Decision::Refuse(Refusal::RateLimited {
                retry_after_secs: global.retry_after_secs,
            });
        }
        if hits(global.malformed_rate, SALT_MALFORMED) {
            return Decision::Refuse(Refusal::Malformed);
        }
        Decision::Serve(ServeFaults {
            truncated: hits(global.truncated_rate, SALT_TRUNCATED),
            slow_body: (global.slow_body_ms > 0)
                .then(|| Duration::from_millis(global.slow_body_ms)),
            corruption,
        })
    }

    /// A number in `[0, 1)` for draw `draw` of the rate salted `salt`: below
    /// a rate of 1 always, below a rate of 0 never.
    fn unit(&self, draw: u64, salt: u64) -> f64 {
        let bits = mix(self.seed ^ mix(draw ^ mix(salt)));
        // The top 53 bits make an exact f64 fraction.
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        // A panic while holding this lock leaves plain data behind, never a
        // half-applied invariant, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Uses one of a device's pending failures, dropping the rule when the last
/// one is used.
fn take_failure(slot: &mut Option<DeviceFailure>) -> Option<DeviceFailure> {
    let failure = slot.as_mut()?;
    let taken = *failure;
    failure.count -= 1;
    if failure.count == 0 {
        *slot = None;
    }
    Some(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(book: &FaultBook, settings: &FaultSettings, count: usize) -> Vec<Decision> {
        (0..count)
            .map(|_| book.decide(settings, "press-07"))
            .collect()
    }

    #[test]
    fn rate_of_one_hits_every_request_and_zero_none() {
        let book = FaultBook::new(FaultSettings::default(), 7);
        let always = FaultSettings {
            error_rate: 1.0,
            ..FaultSettings::default()
        };
        assert!(
            decisions(&book, &always, 500)
                .iter()
                .all(|d| *d == Decision::Refuse(Refusal::ServerError))
        );
        let never = FaultSettings::default();
        assert!(
            decisions(&book, &never, 500)
                .iter()
                .all(|d| matches!(d, Decision::Serve(faults) if !faults.truncated))
        );
    }

    #[test]
    fn rates_are_repeatable_for_a_seed_and_roughly_proportional() {
        let settings = FaultSettings {
            rate_limit_rate: 0.25,
            ..FaultSettings::default()
        };
        let first = decisions(&FaultBook::new(settings, 42), &settings, 4_000);
        let second = decisions(&FaultBook::new(settings, 42), &settings, 4_000);
        assert_eq!(first, second);

        let limited = first
            .iter()
            .filter(|d| matches!(d, Decision::Refuse(Refusal::RateLimited { .. })))
            .count();
        assert!((800..1_200).contains(&limited), "{limited} of 4000");
    }

    #[test]
    fn device_failure_is_served_count_times_then_cleared() {
        let book = FaultBook::new(FaultSettings::default(), 0);
        let failure = DeviceFailure {
            count: 2,
            status: 503,
            retry_after_secs: Some(4),
        };
        book.fail_device("press-07", failure).unwrap();
        let settings = FaultSettings::default();
        let expected = Decision::Refuse(Refusal::DeviceFailure {
            status: 503,
            retry_after_secs: Some(4),
        });
        assert_eq!(
            book.decide(&settings, "press-08"),
            Decision::Serve(ServeFaults::default())
        );
        assert_eq!(book.decide(&settings, "press-07"), expected);
        assert_eq!(book.decide(&settings, "press-07"), expected);
        assert_eq!(
            book.decide(&settings, "press-07"),
            Decision::Serve(ServeFaults::default())
        );
        assert!(book.snapshot().devices["press-07"].fail.is_none());
    }

    #[test]
    fn settings_reject_rates_outside_zero_to_one() {
        for rate in [-0.1, 1.5, f64::NAN] {
            let settings = FaultSettings {
                malformed_rate: rate,
                ..FaultSettings::default()
            };
            assert!(matches!(
                settings.validate(),
                Err(FaultError::RateOutOfRange {
                    name: "malformed_rate",
                    ..
                })
            ));
        }
    }

    #[test]
    fn settings_json_accepts_missing_fields_and_rejects_unknown_ones() {
        let settings: FaultSettings = serde_json::from_str(r#"{"outage": true}"#).unwrap();
        assert!(settings.outage);
        assert_eq!(settings.retry_after_secs, 1);
        assert!(serde_json::from_str::<FaultSettings>(r#"{"eror_rate": 1}"#).is_err());
    }

    #[test]
    fn corruption_counts_positions_from_one() {
        let rule = DeviceCorruption {
            every: 2,
            kind: CorruptionKind::MissingTimestamp,
        };
        let hits: Vec<bool> = (0..6).map(|p| rule.applies_at(p).is_some()).collect();
        assert_eq!(hits, [false, true, false, true, false, true]);
    }

    #[test]
    fn clear_removes_every_fault() {
        let book = FaultBook::new(
            FaultSettings {
                outage: true,
                ..FaultSettings::default()
            },
            0,
        );
        book.corrupt_device(
            "press-07",
            DeviceCorruption {
                every: 1,
                kind: CorruptionKind::NonNumeric,
            },
        )
        .unwrap();
        book.clear();
        assert_eq!(book.snapshot(), FaultsSnapshot::default());
    }
}
