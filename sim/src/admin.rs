//! The admin API through which tests set faults and reset the simulator
//! while it runs.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use std::sync::Arc;

use crate::error::ApiError;
use crate::faults::{DeviceCorruption, DeviceFailure, FaultSettings, FaultsSnapshot};
use crate::state::SimState;

/// `GET /admin/faults`: every fault in force.
pub(crate) async fn get_faults(State(state): State<Arc<SimState>>) -> Json<FaultsSnapshot> {
    Json(state.faults.snapshot())
}

/// `PUT /admin/faults`: replaces the global settings; fields left out take
/// their defaults.
pub(crate) async fn put_faults(
    State(state): State<Arc<SimState>>,
    settings: Result<Json<FaultSettings>, JsonRejection>,
) -> Result<Json<FaultsSnapshot>, ApiError> {
    let Json(settings) = settings.map_err(invalid_body)?;
    state.faults.set_global(settings)?;
    tracing::info!(?settings, "global faults replaced");
    Ok(Json(state.faults.snapshot()))
}

/// `DELETE /admin/faults`: clears every fault, global and per device.
pub(crate) async fn delete_faults(State(state): State<Arc<SimState>>) -> StatusCode {
    state.faults.clear();
    tracing::info!("all faults cleared");
    StatusCode::NO_CONTENT
}

/// `POST /admin/devices/{device}/fail`: fails the device's next requests.
pub(crate) async fn fail_device(
    State(state): State<Arc<SimState>>,
    Path(device): Path<String>,
    failure: Result<Json<DeviceFailure>, JsonRejection>,
) -> Result<Json<FaultsSnapshot>, ApiError> {
    let Json(failure) = failure.map_err(invalid_body)?;
    ensure_known(&state, &device)?;
    state.faults.fail_device(&device, failure)?;
    tracing::info!(%device, ?failure, "device failure set");
    Ok(Json(state.faults.snapshot()))
}

/// `POST /admin/devices/{device}/corrupt`: corrupts every k-th reading.
pub(crate) async fn corrupt_device(
    State(state): State<Arc<SimState>>,
    Path(device): Path<String>,
    corruption: Result<Json<DeviceCorruption>, JsonRejection>,
) -> Result<Json<FaultsSnapshot>, ApiError> {
    let Json(corruption) = corruption.map_err(invalid_body)?;
    ensure_known(&state, &device)?;
    state.faults.corrupt_device(&device, corruption)?;
    tracing::info!(%device, ?corruption, "device corruption set");
    Ok(Json(state.faults.snapshot()))
}

/// `DELETE /admin/devices/{device}`: clears the device's faults.
pub(crate) async fn clear_device(
    State(state): State<Arc<SimState>>,
    Path(device): Path<String>,
) -> StatusCode {
    state.faults.clear_device(&device);
    StatusCode::NO_CONTENT
}

/// `POST /admin/reset`: clears every fault and zeroes the counters.
pub(crate) async fn reset(State(state): State<Arc<SimState>>) -> StatusCode {
    state.reset();
    tracing::info!("faults and stats reset");
    StatusCode::NO_CONTENT
}

fn ensure_known(state: &SimState, device: &str) -> Result<(), ApiError> {
    if state.catalog.contains(device) {
        Ok(())
    } else {
        Err(ApiError::UnknownDevice(device.to_owned()))
    }
}

fn invalid_body(rejection: JsonRejection) -> ApiError {
    ApiError::InvalidBody(rejection.body_text())
}
