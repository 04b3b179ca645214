//! Paging, ranges, validation and device ids.

use chrono::{DateTime, Duration, Utc};
use factory_sim::SimConfig;

use crate::helpers::*;

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// Pages of 7 over 50 readings hold each reading once, in time order, and
/// equal what `factory_sim::reading` predicts.
#[tokio::test]
async fn paging_serves_every_reading_once_in_order() {
    let sim = start_sim().await;
    let pages = fetch_all_pages(&sim, "press-07", START, "2026-12-01T00:00:50Z", 7).await;

    assert_eq!(pages.len(), 8);
    assert!(
        pages[..7]
            .iter()
            .all(|page| page["readings"].as_array().unwrap().len() == 7)
    );
    let served: Vec<serde_json::Value> = pages
        .iter()
        .flat_map(|page| page["readings"].as_array().unwrap().clone())
        .collect();
    let expected: Vec<serde_json::Value> = (0..50)
        .map(|second| {
            let reading = factory_sim::reading("press-07", time(START) + Duration::seconds(second));
            serde_json::to_value(reading).unwrap()
        })
        .collect();
    assert_eq!(served, expected);
}

/// Without `limit` a page holds 1,000 readings; 10,000 is the most.
#[tokio::test]
async fn limit_defaults_to_one_thousand_and_caps_at_ten_thousand() {
    let sim = start_sim().await;
    let day = range_query(START, "2026-12-02T00:00:00Z");

    let (_, page) = status_and_json(get_readings(&sim, "press-07", &day).await).await;
    assert_eq!(page["readings"].as_array().unwrap().len(), 1_000);
    assert!(page["next_cursor"].is_string());

    let query = format!("{day}&limit=10000");
    let (_, page) = status_and_json(get_readings(&sim, "press-07", &query).await).await;
    assert_eq!(page["readings"].as_array().unwrap().len(), 10_000);
}

/// `limit` outside 1..=10,000 answers 400 naming the parameter.
#[tokio::test]
async fn limit_out_of_bounds_answers_400() {
    let sim = start_sim().await;
    for limit in ["0", "10001", "-3", "many"] {
        let query = format!(
            "{}&limit={limit}",
            range_query(START, "2026-12-01T01:00:00Z")
        );
        let (status, body) = status_and_json(get_readings(&sim, "press-07", &query).await).await;
        assert_eq!(status, 400, "limit={limit}");
        assert_eq!(body["parameter"], "limit");
    }
}

/// A reading stamped exactly `end` is left out; one stamped `start` is in.
#[tokio::test]
async fn range_is_half_open() {
    let sim = start_sim().await;
    let query = range_query(START, "2026-12-01T00:00:03Z");
    let (_, page) = status_and_json(get_readings(&sim, "press-07", &query).await).await;
    assert_eq!(
        timestamps(&page),
        [
            "2026-12-01T00:00:00Z",
            "2026-12-01T00:00:01Z",
            "2026-12-01T00:00:02Z"
        ]
    );
    assert!(page["next_cursor"].is_null());
}

/// A range between two instants of the grid holds nothing.
#[tokio::test]
async fn range_without_an_instant_is_empty_with_null_cursor() {
    let sim = start_sim().await;
    let query = range_query("2026-12-01T00:00:00.100Z", "2026-12-01T00:00:00.900Z");
    let (status, page) = status_and_json(get_readings(&sim, "press-07", &query).await).await;
    assert_eq!(status, 200);
    assert_eq!(page["readings"], serde_json::json!([]));
    assert!(page["next_cursor"].is_null());
}

/// Times with an offset are read in UTC; the answer is in UTC with `Z`.
#[tokio::test]
async fn offsets_are_normalised_to_utc() {
    let sim = start_sim().await;
    let query = range_query("2026-12-01T01:00:00%2B01:00", "2026-12-01T01:00:01%2B01:00");
    let (_, page) = status_and_json(get_readings(&sim, "press-07", &query).await).await;
    assert_eq!(timestamps(&page), ["2026-12-01T00:00:00Z"]);
}

/// The interval setting spaces the readings.
#[tokio::test]
async fn interval_sets_the_spacing_of_readings() {
    let sim = start_sim_with(SimConfig {
        interval: std::time::Duration::from_millis(250),
        ..SimConfig::default()
    })
    .await;
    let query = range_query(START, "2026-12-01T00:00:01Z");
    let (_, page) = status_and_json(get_readings(&sim, "press-07", &query).await).await;
    assert_eq!(
        timestamps(&page),
        [
            "2026-12-01T00:00:00Z",
            "2026-12-01T00:00:00.250Z",
            "2026-12-01T00:00:00.500Z",
            "2026-12-01T00:00:00.750Z"
        ]
    );
}

/// Missing, unreadable or reversed times answer 400 naming the parameter.
#[tokio::test]
async fn bad_times_answer_400_naming_the_parameter() {
    let sim = start_sim().await;
    let cases = [
        ("end=2026-12-01T00:00:01Z", "start"),
        ("start=2026-12-01T00:00:00Z", "end"),
        ("start=yesterday&end=2026-12-01T00:00:01Z", "start"),
        ("start=2026-12-01T00:00:00Z&end=2026-12-01", "end"),
        (
            "start=2026-12-01T00:00:01Z&end=2026-12-01T00:00:01Z",
            "start",
        ),
        (
            "start=2026-12-01T00:00:02Z&end=2026-12-01T00:00:01Z",
            "start",
        ),
    ];
    for (query, parameter) in cases {
        let (status, body) = status_and_json(get_readings(&sim, "press-07", query).await).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["parameter"], parameter, "{query}: {body}");
        assert!(body["message"].is_string());
    }
}

/// A cursor the simulator did not issue for the range answers 400.
#[tokio::test]
async fn invalid_cursor_answers_400() {
    let sim = start_sim().await;
    let range = range_query(START, "2026-12-01T00:01:00Z");
    for cursor in ["garbage", "1796083200500", "1796083260000", "1"] {
        let query = format!("{range}&cursor={cursor}");
        let (status, body) = status_and_json(get_readings(&sim, "press-07", &query).await).await;
        assert_eq!(status, 400, "cursor={cursor}");
        assert_eq!(body["error"], "invalid_cursor");
    }
}

/// With a device list, other well-formed ids answer 404.
#[tokio::test]
async fn unlisted_device_answers_404() {
    let sim = start_sim_with(SimConfig {
        devices: vec!["press-07".into()],
        ..SimConfig::default()
    })
    .await;
    let query = range_query(START, "2026-12-01T00:00:01Z");
    assert_eq!(get_readings(&sim, "press-07", &query).await.status(), 200);
    let (status, body) = status_and_json(get_readings(&sim, "press-08", &query).await).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "unknown_device");
}

/// Ids that break the contract's rule answer 404 even when every id exists,
/// including a percent-encoded `../admin`, which axum decodes first.
#[tokio::test]
async fn malformed_device_ids_answer_404() {
    let sim = start_sim().await;
    let query = range_query(START, "2026-12-01T00:00:01Z");
    let too_long = "a".repeat(65);
    let devices = [
        "..%2Fadmin",
        "press%2007",
        "pr%C3%A8ss",
        "-press",
        "%FF",
        &too_long,
    ];
    for device in devices {
        let (status, body) = status_and_json(get_readings(&sim, device, &query).await).await;
        assert_eq!(status, 404, "{device}");
        assert_eq!(body["error"], "unknown_device", "{device}");
    }
}

/// `..%2Fadmin` is reported decoded, proving axum decoded the segment
/// rather than the router matching another route.
#[tokio::test]
async fn percent_encoded_traversal_is_decoded_and_unknown() {
    let sim = start_sim().await;
    let query = range_query(START, "2026-12-01T00:00:01Z");
    let (status, body) = status_and_json(get_readings(&sim, "..%2Fadmin", &query).await).await;
    assert_eq!(status, 404);
    assert!(
        body["message"].as_str().unwrap().contains("../admin"),
        "{body}"
    );
}

/// `/healthz` answers 200.
#[tokio::test]
async fn healthz_answers_200() {
    let sim = start_sim().await;
    let response = reqwest::get(format!("{}/healthz", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// After `shutdown` the port no longer accepts requests.
#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = start_sim().await;
    let url = format!("{}/healthz", sim.base_url());
    sim.shutdown().await.unwrap();
    assert!(reqwest::get(url).await.is_err());
}
