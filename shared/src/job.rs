//! The ingestion job of contract version 1: decoding with validation, the
//! canonical encoding, and the deterministic job id (see `docs/contract.md`).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The only contract version this crate reads and writes.
pub const CONTRACT_VERSION: u64 = 1;

/// Largest job body accepted, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Default for the longest range one job may cover: 7 days.
pub const DEFAULT_MAX_SPAN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Longest `requested_by` text accepted, in characters.
pub const MAX_REQUESTED_BY_CHARS: usize = 256;

/// Longest device id accepted, in bytes (all allowed characters are ASCII).
pub const MAX_DEVICE_LEN: usize = 64;

/// Namespace of the UUIDv5 job ids: `UUIDv5(NAMESPACE_URL, "urn:ingest-fleet:job:v1")`.
pub const JOB_ID_NAMESPACE: Uuid = Uuid::from_u128(0xd2b5e4c6_5c9a_5536_84fe_1a7a46cec6d7);

/// One device and one half-open time range `[start, end)` to ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestJob {
    /// Always [`CONTRACT_VERSION`].
    pub version: u64,
    /// Identifies the job across retries, replays and logs.
    pub job_id: Uuid,
    /// Device id as the factory API knows it; validated by [`validate_device`].
    pub device: String,
    /// Inclusive start, in UTC.
    #[serde(serialize_with = "serialize_canonical")]
    pub start: DateTime<Utc>,
    /// Exclusive end, in UTC.
    #[serde(serialize_with = "serialize_canonical")]
    pub end: DateTime<Utc>,
    /// Who or what asked for the job, for operators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// Limits a decoder applies beyond the shape of the body.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest range one job may cover. Default: [`DEFAULT_MAX_SPAN`].
    pub max_span: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_span: DEFAULT_MAX_SPAN,
        }
    }
}

/// Why a body is not a valid v1 job. Every variant names the field and rule.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// The body exceeds [`MAX_BODY_BYTES`].
    #[error("body is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// The body is not UTF-8 JSON.
    #[error("body is not valid JSON")]
    InvalidJson(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("body must be a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("field `{0}` is required")]
    MissingField(&'static str),
    /// A field holds the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    /// `version` is not [`CONTRACT_VERSION`].
    #[error("field `version` is {0}, but only version 1 is supported")]
    UnsupportedVersion(String),
    /// `job_id` is not a hyphenated UUID.
    #[error("field `job_id` must be a hyphenated UUID, got {0:?}")]
    InvalidJobId(String),
    /// `device` breaks the device id rule.
    #[error("field `device` {rule}, got {device:?}")]
    InvalidDevice { device: String, rule: DeviceRule },
    /// `start` or `end` is not an RFC 3339 time.
    #[error("field `{field}` must be an RFC 3339 time with an offset, got {value:?}")]
    InvalidTime {
        field: &'static str,
        value: String,
        #[source]
        source: chrono::ParseError,
    },
    /// `start` is not before `end`.
    #[error("range is empty or reversed: `start` ({start}) must be before `end` ({end})")]
    EmptyRange {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// The range is longer than the configured maximum.
    #[error("range spans {}, over the maximum of {}", humantime::format_duration(*.span), humantime::format_duration(*.limit))]
    SpanTooLong { span: Duration, limit: Duration },
    /// `requested_by` is longer than [`MAX_REQUESTED_BY_CHARS`].
    #[error("field `requested_by` is {0} characters, over the limit of 256")]
    RequestedByTooLong(usize),
}

/// The part of the device id rule `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$` a value breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRule {
    /// The id is the empty string.
    Empty,
    /// The id is longer than 64 bytes.
    TooLong,
    /// The first character is not an ASCII letter or digit.
    BadFirst,
    /// A character outside `A-Z a-z 0-9 . _ -`.
    BadCharacter,
}

impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceRule::Empty => "must not be empty",
            DeviceRule::TooLong => "must be at most 64 characters",
            DeviceRule::BadFirst => "must start with an ASCII letter or digit",
            DeviceRule::BadCharacter => "may only hold ASCII letters, digits, '.', '_' and '-'",
        })
    }
}

/// Checks a device id against `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`.
pub fn validate_device(device: &str) -> Result<(), DeviceRule> {
    let bytes = device.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(DeviceRule::Empty);
    };
    if !first.is_ascii_alphanumeric() {
        return Err(DeviceRule::BadFirst);
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(DeviceRule::BadCharacter);
    }
    if bytes.len() > MAX_DEVICE_LEN {
        return Err(DeviceRule::TooLong);
    }
    Ok(())
}

impl IngestJob {
    /// Builds a job for one device and window, with its derived id.
    pub fn new(device: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            version: CONTRACT_VERSION,
            job_id: derive_job_id(device, start, end),
            device: device.to_owned(),
            start,
            end,
            requested_by: None,
        }
    }

    /// Decodes and validates a body, naming the first rule it breaks.
    pub fn decode(body: &[u8], limits: &Limits) -> Result<Self, ContractError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(ContractError::TooLarge {
                size: body.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let value: Value = serde_json::from_slice(body).map_err(ContractError::InvalidJson)?;
        let Value::Object(fields) = value else {
            return Err(ContractError::NotAnObject);
        };
        Self::from_fields(&fields, limits)
    }

    fn from_fields(fields: &Map<String, Value>, limits: &Limits) -> Result<Self, ContractError> {
        let version = required(fields, "version")?;
        if version.as_f64() != Some(1.0) {
            return Err(ContractError::UnsupportedVersion(version.to_string()));
        }

        let job_id = required_str(fields, "job_id")?;
        let job_id = parse_hyphenated_uuid(job_id)
            .ok_or_else(|| ContractError::InvalidJobId(job_id.to_owned()))?;

        let device = required_str(fields, "device")?;
        validate_device(device).map_err(|rule| ContractError::InvalidDevice {
            device: device.to_owned(),
            rule,
        })?;

        let start = parse_time(fields, "start")?;
        let end = parse_time(fields, "end")?;
        if start >= end {
            return Err(ContractError::EmptyRange { start, end });
        }
        let span = (end - start).to_std().unwrap_or(Duration::MAX);
        if span > limits.max_span {
            return Err(ContractError::SpanTooLong {
                span,
                limit: limits.max_span,
            });
        }

        let requested_by = match fields.get("requested_by") {
            None => None,
            Some(Value::String(text)) => {
                let chars = text.chars().count();
                if chars > MAX_REQUESTED_BY_CHARS {
                    return Err(ContractError::RequestedByTooLong(chars));
                }
                Some(text.clone())
            }
            Some(_) => {
                return Err(ContractError::WrongType {
                    field: "requested_by",
                    expected: "a string",
                });
            }
        };

        Ok(Self {
            version: CONTRACT_VERSION,
            job_id,
            device: device.to_owned(),
            start,
            end,
            requested_by,
        })
    }

    /// The canonical JSON body of this job.
    pub fn to_body(&self) -> Vec<u8> {
        // Serializing a struct of strings, numbers and a UUID cannot fail.
        serde_json::to_vec(self).expect("a job always serializes")
    }

    /// The span of the range.
    pub fn span(&self) -> Duration {
        (self.end - self.start).to_std().unwrap_or_default()
    }
}

/// The UUIDv5 id of a device and window, as every producer derives it.
pub fn derive_job_id(device: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Uuid {
    let name = format!(
        "{device}\n{}\n{}",
        canonical_time(start),
        canonical_time(end)
    );
    Uuid::new_v5(&JOB_ID_NAMESPACE, name.as_bytes())
}

/// Formats a time in UTC with `Z` and the shortest exact fraction of 0, 3, 6 or 9 digits.
pub fn canonical_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn serialize_canonical<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&canonical_time(*time))
}

fn required<'a>(
    fields: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a Value, ContractError> {
    fields.get(field).ok_or(ContractError::MissingField(field))
}

fn required_str<'a>(
    fields: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, ContractError> {
    required(fields, field)?
        .as_str()
        .ok_or(ContractError::WrongType {
            field,
            expected: "a string",
        })
}

fn parse_time(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<DateTime<Utc>, ContractError> {
    let text = required_str(fields, field)?;
    // chrono also takes a lowercase `t`/`z` or a space as separator; the
    // contract's schema does not, and both must agree.
    if text.as_bytes().get(10) != Some(&b'T') || text.ends_with('z') {
        return Err(ContractError::InvalidTime {
            field,
            value: text.to_owned(),
            source: DateTime::parse_from_rfc3339("").unwrap_err(),
        });
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|source| ContractError::InvalidTime {
            field,
            value: text.to_owned(),
            source,
        })
}

/// Parses only the 36-character hyphenated form, as the schema demands;
/// `Uuid::parse_str` alone would also take braced, URN and simple forms.
fn parse_hyphenated_uuid(text: &str) -> Option<Uuid> {
    if text.len() != 36 {
        return None;
    }
    Uuid::try_parse(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn body(device: &str, start: &str, end: &str) -> Vec<u8> {
        serde_json::json!({
            "version": 1,
            "job_id": "0b1e4c7a-2f43-4a8e-9d6b-5c3f1a2e7d90",
            "device": device,
            "start": start,
            "end": end,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn decodes_a_valid_body_and_normalises_times_to_utc() {
        let job = IngestJob::decode(
            &body(
                "press-07",
                "2026-12-01T01:00:00+01:00",
                "2026-12-01T01:00:00Z",
            ),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(job.start, time("2026-12-01T00:00:00Z"));
        assert_eq!(job.device, "press-07");
        assert_eq!(job.span(), Duration::from_secs(3600));
    }

    #[test]
    fn reversed_and_empty_ranges_are_rejected() {
        for (start, end) in [
            ("2026-12-01T01:00:00Z", "2026-12-01T00:00:00Z"),
            ("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        ] {
            let err = IngestJob::decode(&body("d1", start, end), &Limits::default()).unwrap_err();
            assert!(matches!(err, ContractError::EmptyRange { .. }), "{err}");
        }
    }

    #[test]
    fn span_over_the_limit_is_rejected_and_named() {
        let limits = Limits {
            max_span: Duration::from_secs(3600),
        };
        let err = IngestJob::decode(
            &body("d1", "2026-12-01T00:00:00Z", "2026-12-01T01:00:01Z"),
            &limits,
        )
        .unwrap_err();
        assert!(matches!(err, ContractError::SpanTooLong { .. }));
        assert!(err.to_string().contains("over the maximum of 1h"), "{err}");
    }

    #[test]
    fn hostile_device_ids_break_a_named_rule() {
        let cases = [
            ("", DeviceRule::Empty),
            ("../admin", DeviceRule::BadFirst),
            ("a/../../admin", DeviceRule::BadCharacter),
            ("a%2Fb", DeviceRule::BadCharacter),
            ("press 07", DeviceRule::BadCharacter),
            ("prèss", DeviceRule::BadCharacter),
            ("-flag", DeviceRule::BadFirst),
        ];
        for (device, rule) in cases {
            assert_eq!(validate_device(device), Err(rule), "{device:?}");
        }
        assert_eq!(validate_device(&"a".repeat(65)), Err(DeviceRule::TooLong));
        assert_eq!(validate_device(&"a".repeat(64)), Ok(()));
        assert_eq!(validate_device("A.b_c-9"), Ok(()));
    }

    #[test]
    fn unknown_versions_and_fields() {
        let mut value: Value =
            serde_json::from_slice(&body("d1", "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z"))
                .unwrap();
        value["future_field"] = Value::from("ignored");
        assert!(IngestJob::decode(value.to_string().as_bytes(), &Limits::default()).is_ok());

        value["version"] = Value::from(2);
        let err = IngestJob::decode(value.to_string().as_bytes(), &Limits::default()).unwrap_err();
        assert!(matches!(err, ContractError::UnsupportedVersion(ref v) if v == "2"));
    }

    #[test]
    fn oversized_bodies_are_rejected_before_parsing() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        let err = IngestJob::decode(&big, &Limits::default()).unwrap_err();
        assert!(matches!(err, ContractError::TooLarge { size, .. } if size == MAX_BODY_BYTES + 1));
    }

    #[test]
    fn job_ids_only_accept_the_hyphenated_form() {
        let mut value: Value =
            serde_json::from_slice(&body("d1", "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z"))
                .unwrap();
        value["job_id"] = Value::from("0b1e4c7a2f434a8e9d6b5c3f1a2e7d90");
        let err = IngestJob::decode(value.to_string().as_bytes(), &Limits::default()).unwrap_err();
        assert!(matches!(err, ContractError::InvalidJobId(_)));
    }

    #[test]
    fn job_ids_are_stable_and_depend_on_every_part() {
        let (start, end) = (time("2026-12-01T00:00:00Z"), time("2026-12-01T01:00:00Z"));
        let id = derive_job_id("press-07", start, end);
        assert_eq!(id, derive_job_id("press-07", start, end));
        assert_eq!(id.get_version_num(), 5);
        // Pinned so that a change to the derivation, which would orphan every
        // id other languages compute, cannot pass unnoticed.
        assert_eq!(id.to_string(), "a17b77da-000a-56ba-88fe-2a048dd09a37");
        assert_ne!(id, derive_job_id("press-08", start, end));
        assert_ne!(
            id,
            derive_job_id("press-07", start, time("2026-12-01T02:00:00Z"))
        );
    }

    #[test]
    fn the_namespace_is_the_documented_derivation() {
        let expected = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:ingest-fleet:job:v1");
        assert_eq!(JOB_ID_NAMESPACE, expected);
    }

    #[test]
    fn canonical_times_use_the_shortest_exact_fraction() {
        assert_eq!(
            canonical_time(time("2026-12-01T00:00:00Z")),
            "2026-12-01T00:00:00Z"
        );
        assert_eq!(
            canonical_time(time("2026-12-01T00:00:00.25+00:00")),
            "2026-12-01T00:00:00.250Z"
        );
        assert_eq!(
            canonical_time(time("2026-12-01T00:00:00.000001Z")),
            "2026-12-01T00:00:00.000001Z"
        );
    }

    #[test]
    fn encoding_round_trips() {
        let mut job = IngestJob::new(
            "press-07",
            time("2026-12-01T00:00:00Z"),
            time("2026-12-01T01:00:00Z"),
        );
        job.requested_by = Some("tests".into());
        let decoded = IngestJob::decode(&job.to_body(), &Limits::default()).unwrap();
        assert_eq!(decoded, job);
    }
}
