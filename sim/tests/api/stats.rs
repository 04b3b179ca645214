//! The counters of `/stats` and their reset.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

async fn stats(sim: &factory_sim::SimHandle) -> factory_sim::StatsSnapshot {
    admin(sim, Method::GET, "/stats")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Readings count per device when their page is served with 200; every
/// reading request counts, whatever its answer.
#[tokio::test]
async fn stats_count_served_readings_per_device_and_requests() {
    let sim = start_sim().await;
    fetch_all_pages(&sim, "press-07", START, "2026-12-01T00:00:25Z", 10).await;
    fetch_all_pages(&sim, "oven-1", START, "2026-12-01T00:00:05Z", 10).await;
    let bad = get_readings(&sim, "press-07", "start=nope&end=nope").await;
    assert_eq!(bad.status(), 400);

    let stats = stats(&sim).await;
    assert_eq!(stats.total_readings, 30);
    assert_eq!(stats.devices["press-07"], 25);
    assert_eq!(stats.devices["oven-1"], 5);
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.faults_injected, 0);
}

/// Failed and truncated answers count as faults and serve no readings.
#[tokio::test]
async fn stats_count_faults_and_not_their_readings() {
    let sim = start_sim().await;
    let query = range_query(START, "2026-12-01T00:00:10Z");
    admin(&sim, Method::POST, "/admin/devices/press-07/fail")
        .json(&json!({"count": 1, "status": 503}))
        .send()
        .await
        .unwrap();
    get_readings(&sim, "press-07", &query).await;
    admin(&sim, Method::PUT, "/admin/faults")
        .json(&json!({"truncated_rate": 1.0}))
        .send()
        .await
        .unwrap();
    get_readings(&sim, "press-07", &query).await;

    let stats = stats(&sim).await;
    assert_eq!(stats.total_readings, 0);
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.faults_injected, 2);
    assert_eq!(stats.faults["device_failure"], 1);
    assert_eq!(stats.faults["truncated"], 1);
}

/// `POST /admin/reset` zeroes the counters and clears the faults.
#[tokio::test]
async fn reset_zeroes_stats_and_clears_faults() {
    let sim = start_sim().await;
    let query = range_query(START, "2026-12-01T00:00:10Z");
    get_readings(&sim, "press-07", &query).await;
    admin(&sim, Method::PUT, "/admin/faults")
        .json(&json!({"outage": true}))
        .send()
        .await
        .unwrap();

    let response = admin(&sim, Method::POST, "/admin/reset")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(stats(&sim).await, factory_sim::StatsSnapshot::default());
    assert_eq!(sim.faults(), factory_sim::FaultsSnapshot::default());
    assert_eq!(get_readings(&sim, "press-07", &query).await.status(), 200);
}
