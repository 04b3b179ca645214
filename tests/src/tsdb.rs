//! Reading points back from VictoriaMetrics and holding them against the
//! readings the simulator serves for the same device and range.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// VictoriaMetrics base URL used by every test.
pub const TSDB_URL: &str = "http://127.0.0.1:8428";

/// The measurements every simulated reading carries.
pub const FIELDS: [&str; 3] = ["temperature", "pressure", "power"];

/// One exported series.
#[derive(Debug, Clone, Deserialize)]
pub struct Series {
    /// `__name__` and the labels.
    pub metric: BTreeMap<String, String>,
    /// Values, in timestamp order.
    pub values: Vec<f64>,
    /// Millisecond timestamps.
    pub timestamps: Vec<i64>,
}

/// Makes recently written points searchable at once.
pub async fn flush() {
    let _ = reqwest::get(format!("{TSDB_URL}/internal/force_flush")).await;
}

/// Every `machine_reading_*` series of one device.
pub async fn export(device: &str) -> Vec<Series> {
    flush().await;
    let selector = format!(r#"{{__name__=~"machine_reading_.*",machine_id="{device}"}}"#);
    let body = reqwest::Client::new()
        .get(format!("{TSDB_URL}/api/v1/export"))
        .query(&[("match[]", selector.as_str())])
        .send()
        .await
        .expect("VictoriaMetrics answers")
        .error_for_status()
        .expect("the export succeeds")
        .text()
        .await
        .expect("the export has a body");
    body.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("export lines are series"))
        .collect()
}

/// Points stored for a device, over all its series.
pub async fn point_count(device: &str) -> usize {
    export(device)
        .await
        .iter()
        .map(|s| s.timestamps.len())
        .sum()
}

/// Waits until a device has at least `points` points, or the timeout passes.
/// Returns the count seen last.
pub async fn wait_for_points(device: &str, points: usize, timeout: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let seen = point_count(device).await;
        if seen >= points || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks that the TSDB holds exactly the readings the simulator serves for
/// `[start, end)` at `interval`: every reading once, with its value and its
/// tags, and nothing else for that device. Returns the number of readings.
pub async fn assert_exactly_the_simulated_readings(
    device: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: Duration,
) -> usize {
    let expected: Vec<_> = factory_sim::readings(device, start, end, interval).collect();
    assert_exactly(device, &expected).await
}

/// Like [`assert_exactly_the_simulated_readings`], but without the readings
/// at positions `every - 1`, `2 * every - 1`, ... of the range: those a
/// simulator corrupting every `every`-th reading spoils. Returns the number
/// of readings expected and found.
pub async fn assert_the_simulated_readings_but_every(
    device: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    interval: Duration,
    every: usize,
) -> usize {
    let expected: Vec<_> = factory_sim::readings(device, start, end, interval)
        .enumerate()
        .filter(|(position, _)| (position + 1) % every != 0)
        .map(|(_, reading)| reading)
        .collect();
    assert_exactly(device, &expected).await
}

/// Checks that the TSDB holds exactly `expected` for `device`.
async fn assert_exactly(device: &str, expected: &[factory_sim::Reading]) -> usize {
    let series = export(device).await;
    assert_eq!(
        series.len(),
        FIELDS.len(),
        "device {device}: expected one series per field, got {:?}",
        series.iter().map(|s| &s.metric).collect::<Vec<_>>()
    );
    for field in FIELDS {
        let name = format!("machine_reading_{field}");
        let found = series
            .iter()
            .find(|s| s.metric.get("__name__") == Some(&name))
            .unwrap_or_else(|| panic!("device {device}: no series {name}"));
        let tags = &expected[0].tags;
        for (label, value) in [
            ("factory", &tags.factory),
            ("zone", &tags.zone),
            ("cell", &tags.cell),
            ("machine_group", &tags.machine_group),
            ("machine", &tags.machine),
            ("machine_id", &tags.machine_id),
        ] {
            assert_eq!(
                found.metric.get(label),
                Some(value),
                "{name}: label {label}"
            );
        }
        assert_eq!(
            found.timestamps.len(),
            expected.len(),
            "{name} of {device}: points stored vs readings served"
        );
        for (i, reading) in expected.iter().enumerate() {
            let want = match field {
                "temperature" => reading.temperature,
                "pressure" => reading.pressure,
                _ => reading.power,
            };
            assert_eq!(
                found.timestamps[i],
                reading.timestamp.timestamp_millis(),
                "{name}: timestamp {i}"
            );
            assert_eq!(found.values[i], want, "{name} at {}", reading.timestamp);
        }
    }
    expected.len()
}
