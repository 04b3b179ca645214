//! Each injected fault, driven over the admin API as other crates' tests do.

use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

use crate::helpers::*;

const ONE_MINUTE: &str = "start=2026-12-01T00:00:00Z&end=2026-12-01T00:01:00Z";

async fn put_faults(sim: &factory_sim::SimHandle, settings: serde_json::Value) {
    let response = admin(sim, Method::PUT, "/admin/faults")
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// A device failure answers its status `count` times, then readings again.
#[tokio::test]
async fn device_failure_answers_503_count_times_then_200() {
    let sim = start_sim().await;
    let response = admin(&sim, Method::POST, "/admin/devices/press-07/fail")
        .json(&json!({"count": 2, "status": 503, "retry_after_secs": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    for _ in 0..2 {
        let response = get_readings(&sim, "press-07", ONE_MINUTE).await;
        assert_eq!(response.status(), 503);
        assert!(response.headers().get("retry-after").is_none());
    }
    assert_eq!(
        get_readings(&sim, "press-08", ONE_MINUTE).await.status(),
        200
    );
    assert_eq!(
        get_readings(&sim, "press-07", ONE_MINUTE).await.status(),
        200
    );
}

/// A device failure with `retry_after_secs` sends `Retry-After`.
#[tokio::test]
async fn device_failure_sends_retry_after_when_given() {
    let sim = start_sim().await;
    let response = admin(&sim, Method::POST, "/admin/devices/press-07/fail")
        .json(&json!({"count": 1, "status": 429, "retry_after_secs": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let response = get_readings(&sim, "press-07", ONE_MINUTE).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
}

/// A failure status outside 400..=599 or a zero count is refused.
#[tokio::test]
async fn device_failure_with_a_bad_status_or_count_answers_400() {
    let sim = start_sim().await;
    for body in [
        json!({"count": 1, "status": 200}),
        json!({"count": 0, "status": 503}),
    ] {
        let response = admin(&sim, Method::POST, "/admin/devices/press-07/fail")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
}

/// `rate_limit_rate: 1` answers every request 429 with `Retry-After`.
#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let sim = start_sim().await;
    put_faults(&sim, json!({"rate_limit_rate": 1.0, "retry_after_secs": 3})).await;
    for _ in 0..3 {
        let response = get_readings(&sim, "press-07", ONE_MINUTE).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
    }
}

/// `error_rate: 1` answers every request 500; a rate of 0 none.
#[tokio::test]
async fn error_rate_one_fails_every_request_and_zero_none() {
    let sim = start_sim().await;
    put_faults(&sim, json!({"error_rate": 1.0})).await;
    for _ in 0..5 {
        assert_eq!(
            get_readings(&sim, "press-07", ONE_MINUTE).await.status(),
            500
        );
    }
    put_faults(&sim, json!({"error_rate": 0.0})).await;
    for _ in 0..5 {
        assert_eq!(
            get_readings(&sim, "press-07", ONE_MINUTE).await.status(),
            200
        );
    }
}

/// A fractional rate injects about that share of failures, the same ones
/// for the same seed.
#[tokio::test]
async fn fractional_error_rate_is_repeatable_for_a_seed() {
    async fn statuses() -> Vec<u16> {
        let sim = start_sim().await;
        put_faults(&sim, json!({"error_rate": 0.5})).await;
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(
                get_readings(&sim, "press-07", ONE_MINUTE)
                    .await
                    .status()
                    .as_u16(),
            );
        }
        statuses
    }
    let first = statuses().await;
    assert_eq!(first, statuses().await);
    let failed = first.iter().filter(|status| **status == 500).count();
    assert!((8..=32).contains(&failed), "{failed} of 40");
}

/// `malformed_rate: 1` answers 200 with a body that is not JSON.
#[tokio::test]
async fn malformed_answers_200_with_a_non_json_body() {
    let sim = start_sim().await;
    put_faults(&sim, json!({"malformed_rate": 1.0})).await;
    let response = get_readings(&sim, "press-07", ONE_MINUTE).await;
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
}

/// `truncated_rate: 1` answers 200 with the first half of the page.
#[tokio::test]
async fn truncated_answers_200_with_half_the_json() {
    let sim = start_sim().await;
    let whole = get_readings(&sim, "press-07", ONE_MINUTE)
        .await
        .bytes()
        .await
        .unwrap();
    put_faults(&sim, json!({"truncated_rate": 1.0})).await;

    let response = get_readings(&sim, "press-07", ONE_MINUTE).await;
    assert_eq!(response.status(), 200);
    let cut = response.bytes().await.unwrap();
    assert_eq!(cut.len(), whole.len() / 2);
    assert!(whole.starts_with(&cut));
    assert!(serde_json::from_slice::<serde_json::Value>(&cut).is_err());
}

/// `outage: true` answers every request 503, and clearing faults ends it.
#[tokio::test]
async fn outage_answers_503_until_faults_are_cleared() {
    let sim = start_sim().await;
    put_faults(&sim, json!({"outage": true})).await;
    for device in ["press-07", "oven-1"] {
        assert_eq!(get_readings(&sim, device, ONE_MINUTE).await.status(), 503);
    }
    let response = admin(&sim, Method::DELETE, "/admin/faults")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        get_readings(&sim, "press-07", ONE_MINUTE).await.status(),
        200
    );
}

/// `slow_body_ms` sends the headers at once and the body that much later,
/// so a client read timeout shorter than it fires.
#[tokio::test]
async fn slow_body_delays_the_body_after_the_headers() {
    let sim = start_sim().await;
    put_faults(&sim, json!({"slow_body_ms": 1_500})).await;

    let started = Instant::now();
    let response = get_readings(&sim, "press-07", ONE_MINUTE).await;
    let headers_after = started.elapsed();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    let body_after = started.elapsed();

    assert!(
        headers_after < Duration::from_millis(1_000),
        "{headers_after:?}"
    );
    assert!(body_after >= Duration::from_millis(1_500), "{body_after:?}");
    assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());

    let client = reqwest::Client::builder()
        .read_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let response = client
        .get(format!("{}?{ONE_MINUTE}", readings_url(&sim, "press-07")))
        .send()
        .await
        .unwrap();
    assert!(response.bytes().await.is_err(), "the read timeout fires");
}

/// `latency_ms` delays the whole answer.
#[tokio::test]
async fn latency_delays_each_reading_request() {
    let sim = start_sim().await;
    put_faults(&sim, json!({"latency_ms": 300})).await;
    let started = Instant::now();
    assert_eq!(
        get_readings(&sim, "press-07", ONE_MINUTE).await.status(),
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// `non_numeric` corruption writes `"n/a"` as every k-th temperature,
/// counted from the start of the range across pages.
#[tokio::test]
async fn corrupt_non_numeric_alters_every_kth_reading_of_the_range() {
    let sim = start_sim().await;
    let response = admin(&sim, Method::POST, "/admin/devices/press-07/corrupt")
        .json(&json!({"every": 4, "kind": "non_numeric"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let pages = fetch_all_pages(&sim, "press-07", START, "2026-12-01T00:00:20Z", 6).await;
    let altered: Vec<usize> = pages
        .iter()
        .flat_map(|page| page["readings"].as_array().unwrap().clone())
        .enumerate()
        .filter(|(_, reading)| reading["Values"]["temperature"] == "n/a")
        .map(|(position, _)| position + 1)
        .collect();
    assert_eq!(altered, [4, 8, 12, 16, 20]);
}

/// `missing_timestamp` corruption leaves `TIMESTAMP` out; other devices are
/// untouched, and clearing the device ends it.
#[tokio::test]
async fn corrupt_missing_timestamp_drops_the_key_until_cleared() {
    let sim = start_sim().await;
    let response = admin(&sim, Method::POST, "/admin/devices/press-07/corrupt")
        .json(&json!({"every": 1, "kind": "missing_timestamp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let query = range_query(START, "2026-12-01T00:00:03Z");
    let (_, page) = status_and_json(get_readings(&sim, "press-07", &query).await).await;
    let readings = page["readings"].as_array().unwrap();
    assert!(
        readings
            .iter()
            .all(|r| r["Values"].get("TIMESTAMP").is_none())
    );
    let (_, other) = status_and_json(get_readings(&sim, "press-08", &query).await).await;
    assert_eq!(timestamps(&other).len(), 3);

    let response = admin(&sim, Method::DELETE, "/admin/devices/press-07")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (_, page) = status_and_json(get_readings(&sim, "press-07", &query).await).await;
    assert_eq!(timestamps(&page).len(), 3);
}

/// `GET /admin/faults` shows global and per-device faults; unknown fields
/// and out-of-range rates are refused.
#[tokio::test]
async fn admin_faults_round_trip_and_reject_bad_settings() {
    let sim = start_sim().await;
    put_faults(&sim, json!({"error_rate": 0.25, "latency_ms": 5})).await;
    admin(&sim, Method::POST, "/admin/devices/press-07/fail")
        .json(&json!({"count": 3}))
        .send()
        .await
        .unwrap();

    let snapshot: factory_sim::FaultsSnapshot = admin(&sim, Method::GET, "/admin/faults")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snapshot.global.error_rate, 0.25);
    assert_eq!(snapshot.global.latency_ms, 5);
    assert_eq!(snapshot.global.retry_after_secs, 1);
    let failure = snapshot.devices["press-07"].fail.unwrap();
    assert_eq!((failure.count, failure.status), (3, 503));

    for bad in [json!({"eror_rate": 1.0}), json!({"error_rate": 2.0})] {
        let response = admin(&sim, Method::PUT, "/admin/faults")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
}

/// Faults set through the handle work like those set over HTTP.
#[tokio::test]
async fn handle_sets_faults_in_process() {
    let sim = start_sim().await;
    sim.fail_device(
        "press-07",
        factory_sim::DeviceFailure {
            count: 1,
            status: 502,
            retry_after_secs: None,
        },
    )
    .unwrap();
    assert_eq!(
        get_readings(&sim, "press-07", ONE_MINUTE).await.status(),
        502
    );
    assert_eq!(
        get_readings(&sim, "press-07", ONE_MINUTE).await.status(),
        200
    );
}
