//! The simulated factory's data: every reading is a pure function of the
//! device id and its timestamp, so tests can predict each value exactly.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::time::Duration;

use crate::paging::{ReadingRange, interval_millis};

/// Inclusive bounds of the temperature, in hundredths of a degree Celsius.
pub(crate) const TEMPERATURE_HUNDREDTHS: (u32, u32) = (1_800, 9_500);

/// Inclusive bounds of the pressure, in hundredths of a bar.
pub(crate) const PRESSURE_HUNDREDTHS: (u32, u32) = (80, 1_200);

/// Inclusive bounds of the power draw, in hundredths of a kilowatt.
pub(crate) const POWER_HUNDREDTHS: (u32, u32) = (0, 25_000);

const FACTORY_COUNT: u64 = 3;
const ZONE_NAMES: [&str; 4] = ["zone-a", "zone-b", "zone-c", "zone-d"];
const CELL_COUNT: u64 = 12;
const MACHINE_GROUPS: [&str; 6] = ["press", "lathe", "mill", "welder", "oven", "robot"];
const MACHINES_PER_GROUP: u64 = 20;

/// The tags of a device: where it stands in the factory and what it is.
///
/// They depend on the device id only, through a stable hash, so they are the
/// same in every run, on every machine and in every version of Rust.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeviceTags {
    /// The plant, `plant-1` to `plant-3`.
    pub factory: String,
    /// The zone inside the plant, `zone-a` to `zone-d`.
    pub zone: String,
    /// The cell inside the zone, `cell-01` to `cell-12`.
    pub cell: String,
    /// The kind of machine: `press`, `lathe`, `mill`, `welder`, `oven` or
    /// `robot`.
    pub machine_group: String,
    /// The machine's name inside its group, such as `press-07`.
    pub machine: String,
    /// The device id itself.
    pub machine_id: String,
}

/// One reading of one device, as the factory API serves it.
///
/// Serializes to the API's shape, `{"Values": {"FACTORY": ..., ...}}`, with
/// the keys in the order the API writes them.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// The device's tags.
    pub tags: DeviceTags,
    /// When the reading was taken.
    pub timestamp: DateTime<Utc>,
    /// Temperature in degrees Celsius, 18.00 to 95.00, two decimals at most.
    pub temperature: f64,
    /// Pressure in bar, 0.80 to 12.00, two decimals at most.
    pub pressure: f64,
    /// Power draw in kilowatts, 0.00 to 250.00, two decimals at most.
    pub power: f64,
}

/// The tags of `device`, derived from a stable hash of its id.
pub fn device_tags(device: &str) -> DeviceTags {
    let hash = mix(fnv1a(FNV_OFFSET, device.as_bytes()));
    let factory = 1 + pick(hash, 1, FACTORY_COUNT);
    let zone = ZONE_NAMES[pick(hash, 2, ZONE_NAMES.len() as u64) as usize];
    let cell = 1 + pick(hash, 3, CELL_COUNT);
    let group = MACHINE_GROUPS[pick(hash, 4, MACHINE_GROUPS.len() as u64) as usize];
    let machine = 1 + pick(hash, 5, MACHINES_PER_GROUP);

    DeviceTags {
        factory: format!("plant-{factory}"),
        zone: zone.to_owned(),
        cell: format!("cell-{cell:02}"),
        machine_group: group.to_owned(),
        machine: format!("{group}-{machine:02}"),
        machine_id: device.to_owned(),
    }
}

/// The reading of `device` at `timestamp`.
///
/// The measurements come from a stable hash of the device id and the
/// timestamp in whole milliseconds, so two calls with the same arguments
/// always agree, and agree with what the simulator serves.
pub fn reading(device: &str, timestamp: DateTime<Utc>) -> Reading {
    let measurements = DeviceSeed::new(device).measurements(timestamp.timestamp_millis());
    Reading {
        tags: device_tags(device),
        timestamp,
        temperature: measurements.temperature(),
        pressure: measurements.pressure(),
        power: measurements.power(),
    }
}

/// Every reading the simulator holds for `device` in `[start, end)` when it
/// takes one reading per `interval`, in time order.
///
/// `interval` must be a whole, non-zero number of milliseconds, as the
/// simulator requires of its own; otherwise the iterator is empty.
pub fn readings(
    device: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: Duration,
) -> impl Iterator<Item = Reading> + '_ {
    let range = interval_millis(interval).map(|millis| ReadingRange::new(start, end, millis));
    range.into_iter().flat_map(move |range| {
        range
            .indices()
            .filter_map(move |index| range.timestamp(index))
            .map(move |timestamp| reading(device, timestamp))
    })
}

impl Serialize for Reading {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut outer = serializer.serialize_struct("Reading", 1)?;
        outer.serialize_field("Values", &ReadingValues(self))?;
        outer.end()
    }
}

/// The inner `Values` object of a serialized reading.
struct ReadingValues<'a>(&'a Reading);

impl Serialize for ReadingValues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let reading = self.0;
        let tags = &reading.tags;
        let timestamp = reading
            .timestamp
            .to_rfc3339_opts(SecondsFormat::AutoSi, true);

        let mut values = serializer.serialize_struct("Values", 10)?;
        values.serialize_field("FACTORY", &tags.factory)?;
        values.serialize_field("ZONE", &tags.zone)?;
        values.serialize_field("CELL", &tags.cell)?;
        values.serialize_field("MACHINE_GROUP", &tags.machine_group)?;
        values.serialize_field("MACHINE", &tags.machine)?;
        values.serialize_field("MACHINE_ID", &tags.machine_id)?;
        values.serialize_field("TIMESTAMP", &timestamp)?;
        values.serialize_field("temperature", &reading.temperature)?;
        values.serialize_field("pressure", &reading.pressure)?;
        values.serialize_field("power", &reading.power)?;
        values.end()
    }
}

/// The hash state after a device id, from which the measurements of each
/// of its timestamps follow. Computing it once per page saves hashing the id
/// again for every reading.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeviceSeed(u64);

impl DeviceSeed {
    /// Hashes the device id.
    pub(crate) fn new(device: &str) -> Self {
        // The 0xff byte cannot occur in UTF-8, so it separates the id from the
        // timestamp unambiguously.
        Self(fnv1a(fnv1a(FNV_OFFSET, device.as_bytes()), &[0xff]))
    }

    /// The measurements at `millis` milliseconds since the Unix epoch.
    pub(crate) fn measurements(self, millis: i64) -> Measurements {
        let hash = mix(fnv1a(self.0, &millis.to_le_bytes()));
        Measurements {
            temperature: within(hash, 1, TEMPERATURE_HUNDREDTHS),
            pressure: within(hash, 2, PRESSURE_HUNDREDTHS),
            power: within(hash, 3, POWER_HUNDREDTHS),
        }
    }
}

/// The three measurements of a reading, in integer hundredths of their unit.
///
/// Integers keep the hot path free of float formatting; dividing by 100
/// gives the closest `f64` to the two-decimal value, which survives a round
/// trip through any float64 store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Measurements {
    pub(crate) temperature: u32,
    pub(crate) pressure: u32,
    pub(crate) power: u32,
}

impl Measurements {
    fn temperature(self) -> f64 {
        f64::from(self.temperature) / 100.0
    }

    fn pressure(self) -> f64 {
        f64::from(self.pressure) / 100.0
    }

    fn power(self) -> f64 {
        f64::from(self.power) / 100.0
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Continues a 64-bit FNV-1a hash from `state` over `bytes`.
///
/// FNV-1a is defined byte by byte, unlike std's `DefaultHasher`, whose output
/// may change between Rust releases.
pub(crate) fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(FNV_PRIME)
    })
}

/// The SplitMix64 finaliser: spreads every input bit over the whole output,
/// which FNV alone does poorly for short inputs.
pub(crate) fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A value in `0..count` drawn from `hash`, independent for each `salt`.
fn pick(hash: u64, salt: u64, count: u64) -> u64 {
    mix(hash ^ salt) % count
}

/// A value in the inclusive `bounds` drawn from `hash` for `salt`.
fn within(hash: u64, salt: u64, (low, high): (u32, u32)) -> u32 {
    let span = u64::from(high - low) + 1;
    // The pick is below `span`, which fits in u32, so the sum cannot overflow.
    low + pick(hash, salt, span) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64, millis: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, millis * 1_000_000).unwrap()
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn tags_depend_on_the_device_only_and_stay_in_their_sets() {
        for device in ["press-07", "a", "Z.9_x-1", "sensor-000123"] {
            let tags = device_tags(device);
            assert_eq!(tags, device_tags(device));
            assert_eq!(tags.machine_id, device);
            assert!(["plant-1", "plant-2", "plant-3"].contains(&tags.factory.as_str()));
            assert!(ZONE_NAMES.contains(&tags.zone.as_str()));
            assert!(
                tags.machine
                    .starts_with(&format!("{}-", tags.machine_group))
            );
        }
    }

    #[test]
    fn tags_and_measurements_are_pinned_across_releases() {
        // Stored series and other crates' expectations are built on these
        // values; if this test fails, the simulator's output has changed.
        let expected = DeviceTags {
            factory: "plant-2".into(),
            zone: "zone-d".into(),
            cell: "cell-01".into(),
            machine_group: "welder".into(),
            machine: "welder-17".into(),
            machine_id: "press-07".into(),
        };
        assert_eq!(device_tags("press-07"), expected);

        let first = reading("press-07", at(1_796_083_200, 0));
        assert_eq!(
            (first.temperature, first.pressure, first.power),
            (46.09, 9.28, 200.03)
        );
        let later = reading("press-07", at(1_796_083_201, 250));
        assert_eq!(
            (later.temperature, later.pressure, later.power),
            (50.87, 3.81, 184.29)
        );
    }

    #[test]
    fn reading_is_a_pure_function_of_device_and_timestamp() {
        let first = reading("press-07", at(1_796_083_200, 0));
        assert_eq!(first, reading("press-07", at(1_796_083_200, 0)));
        assert_ne!(first, reading("press-07", at(1_796_083_201, 0)));
        assert_ne!(
            first.temperature,
            reading("press-08", at(1_796_083_200, 0)).temperature
        );
    }

    #[test]
    fn measurements_stay_in_bounds_with_two_decimals_at_most() {
        for second in 0..2_000 {
            let reading = reading("oven-3", at(1_796_083_200 + second, 0));
            for (value, low, high) in [
                (reading.temperature, 18.0, 95.0),
                (reading.pressure, 0.8, 12.0),
                (reading.power, 0.0, 250.0),
            ] {
                assert!(
                    (low..=high).contains(&value),
                    "{value} outside {low}..={high}"
                );
                let hundredths = (value * 100.0).round();
                assert_eq!(hundredths / 100.0, value);
            }
        }
    }

    #[test]
    fn reading_serializes_to_the_values_shape_in_key_order() {
        let json = serde_json::to_string(&reading("press-07", at(1_796_083_201, 0))).unwrap();
        let keys = [
            "FACTORY",
            "ZONE",
            "CELL",
            "MACHINE_GROUP",
            "MACHINE",
            "MACHINE_ID",
            "TIMESTAMP",
            "temperature",
            "pressure",
            "power",
        ];
        assert!(
            json.starts_with(r#"{"Values":{"FACTORY":"plant-"#),
            "{json}"
        );
        let positions: Vec<usize> = keys
            .iter()
            .map(|key| json.find(&format!("\"{key}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{json}");
        assert!(
            json.contains(r#""TIMESTAMP":"2026-12-01T00:00:01Z""#),
            "{json}"
        );
    }

    #[test]
    fn readings_lists_the_half_open_range_on_the_interval_grid() {
        let start = at(1_796_083_200, 500);
        let end = at(1_796_083_203, 0);
        let stamps: Vec<_> = readings("press-07", start, end, Duration::from_secs(1))
            .map(|reading| reading.timestamp)
            .collect();
        assert_eq!(stamps, [at(1_796_083_201, 0), at(1_796_083_202, 0)]);
    }

    #[test]
    fn readings_is_empty_for_an_interval_the_simulator_rejects() {
        let start = at(1_796_083_200, 0);
        let end = at(1_796_083_203, 0);
        assert_eq!(
            readings("d", start, end, Duration::from_micros(1_500)).count(),
            0
        );
        assert_eq!(readings("d", start, end, Duration::ZERO).count(), 0);
    }
}
