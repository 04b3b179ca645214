//! One dead letter as read from the dead-letter queue: its body (which may
//! not decode), its properties and headers, and the views commands print.

use chrono::{DateTime, Utc};
use ingest_shared::headers::{self, table_to_json};
use ingest_shared::{ContractError, IngestJob, Limits};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value};

/// Headers the broker adds on delivery: metadata about this delivery, not
/// part of the dead letter, so hidden from `list --json`, `export` and replays.
pub const BROKER_DELIVERY_HEADERS: [&str; 1] = ["x-delivery-count"];

/// Shown for a device or job id that cannot be read from the message.
pub const UNKNOWN: &str = "?";

/// A dead letter: body bytes as published, properties as received.
#[derive(Debug)]
pub struct DeadLetter {
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// Properties, headers included, as delivered.
    pub properties: BasicProperties,
    /// The decoded job, or why the body is not a valid job.
    pub job: Result<IngestJob, ContractError>,
}

impl DeadLetter {
    /// Reads a message; bodies that do not decode are kept, never refused.
    pub fn new(body: Vec<u8>, properties: BasicProperties) -> Self {
        let job = IngestJob::decode(&body, &Limits::default());
        Self {
            body,
            properties,
            job,
        }
    }

    /// The header table, if any.
    pub fn headers(&self) -> Option<&FieldTable> {
        self.properties.headers().as_ref()
    }

    /// The job id: from the decoded body, else the message id, else the
    /// body's `job_id` text, else `?`.
    pub fn job_id(&self) -> String {
        if let Ok(job) = &self.job {
            return job.job_id.to_string();
        }
        if let Some(id) = self.properties.message_id() {
            return id.to_string();
        }
        self.raw_field("job_id")
            .unwrap_or_else(|| UNKNOWN.to_owned())
    }

    /// The device of a decoded body, else `?` (an invalid device is not shown
    /// as if it were one).
    pub fn device(&self) -> &str {
        self.job.as_ref().map_or(UNKNOWN, |job| job.device.as_str())
    }

    /// `transient` or `permanent` as the worker wrote it.
    pub fn error_class(&self) -> Option<&str> {
        headers::get_str(self.headers(), headers::ERROR_CLASS)
    }

    /// The error chain as the worker wrote it.
    pub fn error(&self) -> Option<&str> {
        headers::get_str(self.headers(), headers::ERROR)
    }

    /// Attempts made before the job was dead-lettered.
    pub fn attempts(&self) -> Option<i64> {
        headers::get_i64(self.headers(), headers::ATTEMPTS)
    }

    /// Time of the first failed attempt.
    pub fn first_failure(&self) -> Option<DateTime<Utc>> {
        self.time_header(headers::FIRST_FAILURE)
    }

    /// Time of the last failed attempt.
    pub fn last_failure(&self) -> Option<DateTime<Utc>> {
        self.time_header(headers::LAST_FAILURE)
    }

    /// `now - last failure`; `None` without a readable last-failure header.
    pub fn age(&self, now: DateTime<Utc>) -> Option<chrono::TimeDelta> {
        self.last_failure().map(|last| now - last)
    }

    /// The broker's delivery counter, delivery metadata only.
    pub fn delivery_count(&self) -> Option<i64> {
        headers::get_i64(self.headers(), BROKER_DELIVERY_HEADERS[0])
    }

    /// Every header except the broker's delivery metadata, as JSON.
    pub fn dead_letter_headers(&self) -> Value {
        let mut table = FieldTable::default();
        for (key, value) in self.headers().into_iter().flatten() {
            if !BROKER_DELIVERY_HEADERS.contains(&key.as_str()) {
                table.insert(key.clone(), value.clone());
            }
        }
        table_to_json(&table)
    }

    /// The body as JSON when it parses, else its text with non-printable
    /// bytes escaped.
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Value::from(self.body_escaped()))
    }

    /// The body as text: valid UTF-8 as is, control characters and bytes
    /// that are not UTF-8 escaped (`\n`, `\u{1b}`, `\xff`).
    pub fn body_escaped(&self) -> String {
        let mut text = String::with_capacity(self.body.len());
        for chunk in self.body.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_control() {
                    text.extend(c.escape_debug());
                } else {
                    text.push(c);
                }
            }
            for byte in chunk.invalid() {
                text.push_str(&format!("\\x{byte:02x}"));
            }
        }
        text
    }

    /// One object for `list --json` and `show --json`: ids, decode status,
    /// body and headers.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("job_id".into(), Value::from(self.job_id()));
        object.insert("device".into(), Value::from(self.device()));
        object.insert(
            "message_id".into(),
            self.properties
                .message_id()
                .as_ref()
                .map_or(Value::Null, |id| Value::from(id.as_str())),
        );
        object.insert("body".into(), self.body_json());
        object.insert("body_bytes".into(), Value::from(self.body.len()));
        object.insert(
            "decode_error".into(),
            self.job
                .as_ref()
                .err()
                .map_or(Value::Null, |err| Value::from(error_chain(err))),
        );
        object.insert("headers".into(), self.dead_letter_headers());
        Value::Object(object)
    }

    /// The line `export` writes: the body object plus `"dead_letter": {headers}`.
    /// `None` when the body is not a JSON object, as no enqueue could take it.
    pub fn export_line(&self) -> Option<Value> {
        let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&self.body) else {
            return None;
        };
        body.insert("dead_letter".into(), self.dead_letter_headers());
        Some(Value::Object(body))
    }

    fn time_header(&self, name: &str) -> Option<DateTime<Utc>> {
        let text = headers::get_str(self.headers(), name)?;
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|time| time.with_timezone(&Utc))
    }

    fn raw_field(&self, field: &str) -> Option<String> {
        let value: Value = serde_json::from_slice(&self.body).ok()?;
        value.get(field)?.as_str().map(str::to_owned)
    }
}

/// An error and its sources, joined with `: `.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Renders one header value for people: strings bare, everything else as JSON.
pub fn header_text(value: &AMQPValue) -> String {
    match headers::to_json(value) {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lapin::types::LongString;

    /// A dead letter with the worker's headers, for tests across modules.
    pub(crate) fn letter(body: &[u8], entries: &[(&str, AMQPValue)]) -> DeadLetter {
        let mut table = FieldTable::default();
        for (key, value) in entries {
            table.insert((*key).into(), value.clone());
        }
        DeadLetter::new(
            body.to_vec(),
            BasicProperties::default().with_headers(table),
        )
    }

    pub(crate) fn text(value: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(value))
    }

    #[test]
    fn undecodable_bodies_are_kept_and_shown_escaped() {
        let letter = letter(b"\xffnot json\n", &[(headers::ERROR, text("bad body"))]);
        assert_eq!(letter.device(), UNKNOWN);
        assert_eq!(letter.job_id(), UNKNOWN);
        assert_eq!(letter.body_json(), Value::from("\\xffnot json\\n"));
        assert!(letter.export_line().is_none());
        assert_eq!(letter.to_json()["headers"]["x-ingest-error"], "bad body");
        assert!(
            letter.to_json()["decode_error"]
                .as_str()
                .unwrap()
                .contains("JSON")
        );
    }

    #[test]
    fn broker_delivery_headers_are_not_part_of_the_dead_letter() {
        let body = br#"{"version":1,"job_id":"x","device":"d"}"#;
        let letter = letter(
            body,
            &[
                ("x-delivery-count", AMQPValue::LongLongInt(2)),
                (headers::ATTEMPTS, AMQPValue::LongInt(5)),
            ],
        );
        assert_eq!(letter.delivery_count(), Some(2));
        assert_eq!(letter.attempts(), Some(5));
        let line = letter.export_line().unwrap();
        assert_eq!(
            line["dead_letter"],
            serde_json::json!({"x-ingest-attempts": 5})
        );
        assert_eq!(line["job_id"], "x");
        assert_eq!(letter.job_id(), "x");
    }
}
