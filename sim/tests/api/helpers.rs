//! Starting a simulator per test and fetching from it.

use factory_sim::{SimConfig, SimHandle};
use serde_json::Value;

/// The start of the range most tests read, 2026-12-01T00:00:00Z.
pub const START: &str = "2026-12-01T00:00:00Z";

/// A simulator with the default settings.
pub async fn start_sim() -> SimHandle {
    start_sim_with(SimConfig::default()).await
}

/// A simulator with `config`.
pub async fn start_sim_with(config: SimConfig) -> SimHandle {
    factory_sim::spawn(config)
        .await
        .expect("the simulator starts")
}

/// The URL of `device`'s readings endpoint, the device id written as is.
pub fn readings_url(sim: &SimHandle, device: &str) -> String {
    format!("{}/devices/{device}/readings", sim.base_url())
}

/// GETs `device`'s readings with `query` (already encoded).
pub async fn get_readings(sim: &SimHandle, device: &str, query: &str) -> reqwest::Response {
    let url = format!("{}?{query}", readings_url(sim, device));
    reqwest::get(url)
        .await
        .expect("the request reaches the simulator")
}

/// The query string of the range `[start, end)`.
pub fn range_query(start: &str, end: &str) -> String {
    format!("start={start}&end={end}")
}

/// The status and JSON body of a response.
pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.expect("the body is JSON");
    (status, body)
}

/// A client that sends JSON to the admin API.
pub fn admin(sim: &SimHandle, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().request(method, format!("{}{path}", sim.base_url()))
}

/// Every page of `device`'s readings of `[start, end)`, following cursors.
pub async fn fetch_all_pages(
    sim: &SimHandle,
    device: &str,
    start: &str,
    end: &str,
    limit: u32,
) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = format!("{}&limit={limit}", range_query(start, end));
        if let Some(cursor) = &cursor {
            query.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = status_and_json(get_readings(sim, device, &query).await).await;
        assert_eq!(status, 200, "{page}");
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
    }
}

/// The `TIMESTAMP` of every reading of `page`.
pub fn timestamps(page: &Value) -> Vec<String> {
    page["readings"]
        .as_array()
        .expect("readings is an array")
        .iter()
        .map(|reading| reading["Values"]["TIMESTAMP"].as_str().unwrap().to_owned())
        .collect()
}
