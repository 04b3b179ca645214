//! The factory's data API: pages of readings, health and the counters.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::encode::encode_page;
use crate::error::{ApiError, fault_response};
use crate::faults::{Decision, FaultKind, FaultTally, Refusal, ServeFaults};
use crate::paging::{Page, ReadingRange};
use crate::state::SimState;
use crate::stats::{RequestRecord, StatsSnapshot};

/// Readings per page when the client names no `limit`.
pub const DEFAULT_PAGE_LIMIT: u32 = 1_000;

/// The largest `limit` a client may ask for.
pub const MAX_PAGE_LIMIT: u32 = 10_000;

/// The body of an injected malformed answer: HTML where JSON belongs, as a
/// misbehaving proxy would send.
const MALFORMED_BODY: &[u8] = b"<html><body><h1>502 Bad Gateway</h1></body></html>";

/// The query string of a readings request, every value still text so that
/// each problem gets an answer naming its parameter.
#[derive(Debug, Deserialize)]
pub(crate) struct ReadingsQuery {
    start: Option<String>,
    end: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// A readings request that passed validation.
#[derive(Debug)]
struct ReadingsRequest {
    device: String,
    range: ReadingRange,
    page: Page,
}

/// `GET /devices/{device}/readings`.
pub(crate) async fn get_readings(
    State(state): State<Arc<SimState>>,
    device: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadingsQuery>, QueryRejection>,
) -> Response {
    let global = state.faults.global();
    let mut faults = FaultTally::default();
    if global.latency_ms > 0 {
        faults.add(FaultKind::Latency, 1);
        tokio::time::sleep(Duration::from_millis(global.latency_ms)).await;
    }

    let request = match parse_request(&state, device, query) {
        Ok(request) => request,
        Err(error) => {
            state.stats.record(RequestRecord {
                faults,
                ..RequestRecord::default()
            });
            return error.into_response();
        }
    };

    let decision = state.faults.decide(&global, &request.device);
    faults.merge(decision.tally());
    if decision.is_faulty() {
        tracing::debug!(device = %request.device, ?decision, "injecting fault");
    }
    let (response, readings) = respond(&request, decision, &mut faults);

    state.stats.record(RequestRecord {
        device: Some(&request.device),
        readings,
        faults,
    });
    response
}

/// Checks the device and the query, in the order a client would fix them.
fn parse_request(
    state: &SimState,
    device: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadingsQuery>, QueryRejection>,
) -> Result<ReadingsRequest, ApiError> {
    // A path segment that is not UTF-8 once decoded cannot name a device.
    let Path(device) = device.map_err(|_| ApiError::UnknownDevice(String::new()))?;
    if !state.catalog.contains(&device) {
        return Err(ApiError::UnknownDevice(device));
    }
    let Query(query) = query.map_err(|rejection| ApiError::InvalidQuery(rejection.body_text()))?;

    let start = parse_time("start", query.start.as_deref())?;
    let end = parse_time("end", query.end.as_deref())?;
    if start >= end {
        return Err(ApiError::EmptyRange {
            start: query.start.unwrap_or_default(),
            end: query.end.unwrap_or_default(),
        });
    }
    let limit = parse_limit(query.limit.as_deref())?;

    let range = ReadingRange::new(start, end, state.interval_ms);
    let cursor = match query.cursor {
        Some(cursor) => Some(
            range
                .decode_cursor(&cursor)
                .ok_or(ApiError::InvalidCursor(cursor))?,
        ),
        None => None,
    };
    Ok(ReadingsRequest {
        device,
        range,
        page: range.page(cursor, limit),
    })
}

fn parse_time(name: &'static str, value: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    let value = value.ok_or(ApiError::MissingParameter(name))?;
    DateTime::parse_from_rfc3339(value)
        .map(|time| time.to_utc())
        .map_err(|error| ApiError::InvalidParameter {
            name,
            reason: format!("{value:?} is not an RFC 3339 time ({error})"),
        })
}

fn parse_limit(value: Option<&str>) -> Result<u32, ApiError> {
    let Some(value) = value else {
        return Ok(DEFAULT_PAGE_LIMIT);
    };
    value
        .parse()
        .ok()
        .filter(|limit| (1..=MAX_PAGE_LIMIT).contains(limit))
        .ok_or_else(|| ApiError::InvalidParameter {
            name: "limit",
            reason: format!("{value:?} is not a whole number from 1 to {MAX_PAGE_LIMIT}"),
        })
}

/// The answer `decision` calls for, with the number of readings it serves
/// whole.
fn respond(
    request: &ReadingsRequest,
    decision: Decision,
    faults: &mut FaultTally,
) -> (Response, u64) {
    match decision {
        Decision::Serve(serve) => serve_page(request, serve, faults),
        Decision::Refuse(refusal) => (refusal_response(refusal), 0),
    }
}

/// The answer of a decision that serves no readings.
fn refusal_response(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Outage => fault_response(StatusCode::SERVICE_UNAVAILABLE, "outage", None),
        Refusal::DeviceFailure {
            status,
            retry_after_secs,
        } => {
            // Statuses were checked to be 400..=599 when the failure was set.
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            fault_response(status, "device_failure", retry_after_secs)
        }
        Refusal::ServerError => {
            fault_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None)
        }
        Refusal::RateLimited { retry_after_secs } => fault_response(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Some(retry_after_secs),
        ),
        Refusal::Malformed => json_response(Body::from(MALFORMED_BODY)),
    }
}

/// The requested page, with the faults that alter a served page applied.
fn serve_page(
    request: &ReadingsRequest,
    serve: ServeFaults,
    faults: &mut FaultTally,
) -> (Response, u64) {
    let encoded = encode_page(
        &request.device,
        request.range,
        &request.page,
        serve.corruption,
    );
    faults.add(FaultKind::Corrupted, encoded.corrupted);

    let mut body = encoded.body;
    let mut readings =
        u64::try_from(request.page.indices.end - request.page.indices.start).unwrap_or_default();
    if serve.truncated {
        body.truncate(body.len() / 2);
        readings = 0;
    }

    let body = match serve.slow_body {
        Some(delay) => delayed_body(Bytes::from(body), delay),
        None => Body::from(body),
    };
    (json_response(body), readings)
}

/// A body whose bytes are sent `delay` after the status and headers.
fn delayed_body(bytes: Bytes, delay: Duration) -> Body {
    let chunk = async move {
        tokio::time::sleep(delay).await;
        Ok::<_, Infallible>(bytes)
    };
    Body::from_stream(futures_util::stream::once(chunk))
}

fn json_response(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /healthz`.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `GET /stats`.
pub(crate) async fn get_stats(State(state): State<Arc<SimState>>) -> Json<StatsSnapshot> {
    Json(state.stats.snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_stays_within_bounds() {
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_PAGE_LIMIT);
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("10000")).unwrap(), MAX_PAGE_LIMIT);
        for bad in ["0", "10001", "-1", "ten", ""] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_must_be_rfc3339() {
        assert!(parse_time("start", Some("2026-12-01T00:00:00+01:00")).is_ok());
        assert!(matches!(
            parse_time("end", None),
            Err(ApiError::MissingParameter("end"))
        ));
        assert!(matches!(
            parse_time("start", Some("2026-12-01")),
            Err(ApiError::InvalidParameter { name: "start", .. })
        ));
    }
}
