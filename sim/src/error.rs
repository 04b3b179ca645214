//! The API's error answers: a status and a JSON body naming the problem.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::faults::FaultError;

/// A request the simulator refuses, before any fault is considered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The device does not exist or its id is malformed.
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    /// A required query parameter is absent.
    #[error("missing query parameter `{0}`")]
    MissingParameter(&'static str),
    /// A query parameter cannot be used.
    #[error("invalid query parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// The query string cannot be decoded at all.
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    /// `start` is not before `end`.
    #[error("`start` ({start}) must be before `end` ({end})")]
    EmptyRange { start: String, end: String },
    /// The cursor was not issued for this range.
    #[error("invalid `cursor` {0:?}: pass back the `next_cursor` of the previous page")]
    InvalidCursor(String),
    /// An admin request body that is not the expected JSON.
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// An admin request whose fault settings are out of range.
    #[error(transparent)]
    InvalidFault(#[from] FaultError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::UnknownDevice(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownDevice(_) => "unknown_device",
            ApiError::MissingParameter(_) => "missing_parameter",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::InvalidQuery(_) => "invalid_query",
            ApiError::EmptyRange { .. } => "empty_range",
            ApiError::InvalidCursor(_) => "invalid_cursor",
            ApiError::InvalidBody(_) => "invalid_body",
            ApiError::InvalidFault(_) => "invalid_fault",
        }
    }

    /// The query parameter at fault, when one is.
    fn parameter(&self) -> Option<&'static str> {
        match self {
            ApiError::MissingParameter(name) | ApiError::InvalidParameter { name, .. } => {
                Some(name)
            }
            ApiError::EmptyRange { .. } => Some("start"),
            ApiError::InvalidCursor(_) => Some("cursor"),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
            parameter: self.parameter(),
        };
        (self.status(), Json(body)).into_response()
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize)]
struct ErrorBody {
    /// A stable code a client can match on.
    error: &'static str,
    /// A sentence for people.
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'static str>,
}

/// An injected error answer: `status`, a JSON body, and `Retry-After` when
/// `retry_after_secs` is given.
pub(crate) fn fault_response(
    status: StatusCode,
    code: &'static str,
    retry_after_secs: Option<u64>,
) -> Response {
    let body = ErrorBody {
        error: code,
        message: format!("injected fault: {code}"),
        parameter: None,
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(seconds) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
