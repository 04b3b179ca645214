//! Why a job failed, and the one decision each failure makes: retry later
//! (transient) or dead-letter now (permanent). Decided by type, never by text.

use std::time::Duration;

use ingest_shared::ContractError;
use ingest_shared::secret::redact_in_text;

pub use ingest_shared::headers::ErrorClass;

/// A dependency whose repeated failure opens a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// The factory data API.
    Factory,
    /// The time-series database.
    Tsdb,
}

impl Dependency {
    /// `factory` or `tsdb`, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::Factory => "factory",
            Dependency::Tsdb => "tsdb",
        }
    }
}

/// A failed call to the factory API.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No connection could be made, or it broke.
    #[error("cannot reach the factory API at {url}")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The request or its body took longer than the fetch timeout.
    #[error("factory API request timed out: {url}")]
    Timeout {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error status.
    #[error("factory API answered {status} for {url}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
        /// The `Retry-After` the API asked for, if any.
        retry_after: Option<Duration>,
    },
    /// The API does not know the device (404).
    #[error("the factory API does not know device {device:?} (404 from {url})")]
    UnknownDevice { device: String, url: String },
    /// The response body could not be read to its end.
    #[error("reading the factory API's response failed: {url}")]
    Body {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The body is not a page of readings.
    #[error("the factory API's response is not a page of readings: {url}")]
    Decode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

impl FetchError {
    /// Transient or permanent, by kind and status.
    pub fn class(&self) -> ErrorClass {
        match self {
            FetchError::Connect { .. } | FetchError::Timeout { .. } | FetchError::Body { .. } => {
                ErrorClass::Transient
            }
            FetchError::Status { status, .. } => status_class(*status),
            FetchError::UnknownDevice { .. } | FetchError::Decode { .. } => ErrorClass::Permanent,
        }
    }

    /// Whether the call is worth repeating inside the same attempt. A page
    /// that does not parse is repeated too (a truncated body may be a blip)
    /// but fails the job permanently once the retries are spent.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Transient || matches!(self, FetchError::Decode { .. })
    }

    /// Whether this failure says the API as a whole is down, as opposed to
    /// failing one request: only these count towards opening its circuit, so
    /// that a device the API keeps failing still ends in the dead-letter queue.
    pub fn is_outage(&self) -> bool {
        match self {
            FetchError::Connect { .. } | FetchError::Timeout { .. } => true,
            FetchError::Status { status, .. } => matches!(status.as_u16(), 502..=504),
            _ => false,
        }
    }

    /// The wait the API asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A failed write to the TSDB.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// No connection could be made, or it broke.
    #[error("cannot reach the TSDB at {url}")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The write took longer than the write timeout.
    #[error("TSDB write timed out: {url}")]
    Timeout {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The TSDB answered with an error status.
    #[error("TSDB answered {status} to a write of {points} points: {body}")]
    Status {
        status: reqwest::StatusCode,
        points: usize,
        body: String,
        retry_after: Option<Duration>,
    },
    /// Compressing the body failed.
    #[error("compressing a TSDB write failed")]
    Compress(#[source] std::io::Error),
}

impl WriteError {
    /// Transient or permanent, by kind and status.
    pub fn class(&self) -> ErrorClass {
        match self {
            WriteError::Connect { .. } | WriteError::Timeout { .. } => ErrorClass::Transient,
            WriteError::Status { status, .. } => status_class(*status),
            WriteError::Compress(_) => ErrorClass::Permanent,
        }
    }

    /// The wait the TSDB asked for.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WriteError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Readings of a job that could not become points.
#[derive(Debug, thiserror::Error)]
#[error(
    "{count} of the job's readings cannot be written; the first, reading {index} of the range, {reason}"
)]
pub struct InvalidReadings {
    /// How many readings were invalid.
    pub count: u64,
    /// Position of the first invalid reading in the range (0-based).
    pub index: u64,
    /// What is wrong with the first invalid reading.
    pub reason: String,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The body breaks the job contract.
    #[error("the job breaks the contract")]
    Contract(#[from] ContractError),
    /// Fetching readings failed.
    #[error("fetching readings failed")]
    Fetch(#[from] FetchError),
    /// Some readings cannot be mapped to points.
    #[error("the factory's readings are invalid")]
    Readings(#[from] InvalidReadings),
    /// Writing points failed.
    #[error("writing points to the TSDB failed")]
    Write(#[from] WriteError),
}

impl JobError {
    /// The class that picks the job's path.
    pub fn class(&self) -> ErrorClass {
        match self {
            JobError::Contract(_) | JobError::Readings(_) => ErrorClass::Permanent,
            JobError::Fetch(err) => err.class(),
            JobError::Write(err) => err.class(),
        }
    }

    /// The dependency to blame, when the failure says it is down.
    pub fn outage_of(&self) -> Option<Dependency> {
        match self {
            JobError::Fetch(err) if err.is_outage() => Some(Dependency::Factory),
            JobError::Write(err) if err.class() == ErrorClass::Transient => Some(Dependency::Tsdb),
            _ => None,
        }
    }

    /// A short label for metrics: `contract`, `fetch`, `readings`, `write`.
    pub fn stage(&self) -> &'static str {
        match self {
            JobError::Contract(_) => "contract",
            JobError::Fetch(_) => "fetch",
            JobError::Readings(_) => "readings",
            JobError::Write(_) => "write",
        }
    }

    /// The whole chain of causes on one line, with URL passwords redacted:
    /// the text of the `x-ingest-error` header and of log lines.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        redact_in_text(&text)
    }
}

/// 5xx, 408 and 429 are worth retrying; every other status is not.
pub fn status_class(status: reqwest::StatusCode) -> ErrorClass {
    if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

/// Reads `Retry-After` given in seconds (the form APIs use for 429 and 503).
pub fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    fn status(code: u16) -> FetchError {
        FetchError::Status {
            url: "http://factory/devices/d/readings".into(),
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
        }
    }

    #[test]
    fn statuses_are_classified_by_code() {
        for code in [500, 502, 503, 504, 408, 429] {
            assert_eq!(status(code).class(), ErrorClass::Transient, "{code}");
        }
        for code in [400, 401, 403, 405, 410, 422] {
            assert_eq!(status(code).class(), ErrorClass::Permanent, "{code}");
        }
    }

    #[test]
    fn unknown_devices_and_contract_violations_are_permanent() {
        let unknown = JobError::from(FetchError::UnknownDevice {
            device: "d".into(),
            url: "u".into(),
        });
        assert_eq!(unknown.class(), ErrorClass::Permanent);
        let contract = JobError::from(ContractError::NotAnObject);
        assert_eq!(contract.class(), ErrorClass::Permanent);
    }

    #[test]
    fn only_unavailability_blames_the_factory_as_a_whole() {
        assert_eq!(
            JobError::from(status(503)).outage_of(),
            Some(Dependency::Factory)
        );
        assert_eq!(JobError::from(status(500)).outage_of(), None);
        assert_eq!(JobError::from(status(429)).outage_of(), None);
    }

    #[test]
    fn unparsable_pages_are_retried_within_the_attempt_then_permanent() {
        let source = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let err = FetchError::Decode {
            url: "u".into(),
            source,
        };
        assert!(err.is_retryable());
        assert_eq!(err.class(), ErrorClass::Permanent);
    }

    #[test]
    fn the_chain_names_every_cause_and_hides_passwords() {
        let err = JobError::from(FetchError::Status {
            url: "http://user:hunter2@factory/devices/d/readings".into(),
            status: StatusCode::BAD_GATEWAY,
            retry_after: None,
        });
        let chain = err.chain();
        assert!(chain.starts_with("fetching readings failed: factory API answered 502"));
        assert!(!chain.contains("hunter2"), "{chain}");
    }

    fn write_status(code: u16) -> WriteError {
        WriteError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            points: 10,
            body: String::new(),
            retry_after: None,
        }
    }

    /// A real connection error: a request to a loopback port nobody
    /// listens on.
    async fn refused() -> reqwest::Error {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn unreachable_dependencies_are_transient_outages() {
        let fetch = JobError::from(FetchError::Connect {
            url: "u".into(),
            source: refused().await,
        });
        assert_eq!(fetch.class(), ErrorClass::Transient);
        assert_eq!(fetch.outage_of(), Some(Dependency::Factory));
        let write = JobError::from(WriteError::Connect {
            url: "u".into(),
            source: refused().await,
        });
        assert_eq!(write.class(), ErrorClass::Transient);
        assert_eq!(write.outage_of(), Some(Dependency::Tsdb));
    }

    #[test]
    fn tsdb_statuses_are_classified_by_code_and_only_transient_ones_blame_it() {
        for code in [500, 503, 429, 408] {
            let err = JobError::from(write_status(code));
            assert_eq!(err.class(), ErrorClass::Transient, "{code}");
            assert_eq!(err.outage_of(), Some(Dependency::Tsdb), "{code}");
        }
        for code in [400, 413, 422] {
            let err = JobError::from(write_status(code));
            assert_eq!(err.class(), ErrorClass::Permanent, "{code}");
            assert_eq!(err.outage_of(), None, "{code}");
        }
    }

    #[test]
    fn invalid_readings_are_permanent_and_blame_no_dependency() {
        let err = JobError::from(InvalidReadings {
            count: 3,
            index: 9,
            reason: "has no TIMESTAMP".into(),
        });
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert_eq!(err.outage_of(), None);
        assert_eq!(err.stage(), "readings");
        assert!(
            err.chain().contains("3 of the job's readings"),
            "{}",
            err.chain()
        );
    }

    #[test]
    fn an_unknown_device_is_neither_retried_nor_an_outage() {
        let err = FetchError::UnknownDevice {
            device: "d".into(),
            url: "u".into(),
        };
        assert!(!err.is_retryable());
        assert!(!err.is_outage());
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(2)));
    }
}
