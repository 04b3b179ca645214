//! Names of the AMQP headers the fleet reads and writes, and typed access to
//! header tables whatever integer width a publisher chose.

use lapin::types::{AMQPValue, FieldTable};

/// W3C trace context of the publisher, kept on retries and dead letters.
pub const TRACEPARENT: &str = "traceparent";
/// The attempt a delivery is (absent means 1).
pub const ATTEMPT: &str = "x-ingest-attempt";
/// RFC 3339 time of the first failed attempt.
pub const FIRST_FAILURE: &str = "x-ingest-first-failure";
/// RFC 3339 time of the latest failed attempt.
pub const LAST_FAILURE: &str = "x-ingest-last-failure";
/// `transient` or `permanent`.
pub const ERROR_CLASS: &str = "x-ingest-error-class";
/// The whole error chain of the last failure, secrets redacted.
pub const ERROR: &str = "x-ingest-error";
/// Attempts made when the job was dead-lettered.
pub const ATTEMPTS: &str = "x-ingest-attempts";
/// Id of the worker that gave up on the job.
pub const WORKER: &str = "x-ingest-worker";
/// Queue the job was consumed from when it was dead-lettered.
pub const SOURCE_QUEUE: &str = "x-ingest-source-queue";
/// Earlier dead-letter headers of a replayed job, oldest first.
pub const REPLAY_HISTORY: &str = "x-ingest-replay-history";

/// The headers a dead letter carries about its failure, in display order.
pub const DEAD_LETTER_HEADERS: [&str; 7] = [
    ERROR_CLASS,
    ERROR,
    ATTEMPTS,
    FIRST_FAILURE,
    LAST_FAILURE,
    WORKER,
    SOURCE_QUEUE,
];

/// What a failure means for a job, as written into `x-ingest-error-class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ErrorClass {
    /// Might succeed later: timeouts, refused or reset connections, 5xx,
    /// 408, 429. The job is retried through a delay queue.
    Transient,
    /// Will fail again: a contract violation, an unknown device, other 4xx,
    /// an unparsable payload. The job is dead-lettered at once.
    Permanent,
}

impl ErrorClass {
    /// `transient` or `permanent`: the header value and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Permanent => "permanent",
        }
    }
}

/// Reads an integer header of any AMQP integer width.
pub fn get_i64(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    match headers?.inner().get(name)? {
        AMQPValue::ShortShortInt(v) => Some((*v).into()),
        AMQPValue::ShortShortUInt(v) => Some((*v).into()),
        AMQPValue::ShortInt(v) => Some((*v).into()),
        AMQPValue::ShortUInt(v) => Some((*v).into()),
        AMQPValue::LongInt(v) => Some((*v).into()),
        AMQPValue::LongUInt(v) => Some((*v).into()),
        AMQPValue::LongLongInt(v) => Some(*v),
        _ => None,
    }
}

/// Reads a text header sent as a short or long string.
pub fn get_str<'a>(headers: Option<&'a FieldTable>, name: &str) -> Option<&'a str> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(v) => std::str::from_utf8(v.as_bytes()).ok(),
        AMQPValue::ShortString(v) => Some(v.as_str()),
        _ => None,
    }
}

/// Renders any header value as JSON, for display and export.
pub fn to_json(value: &AMQPValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AMQPValue::Boolean(v) => Value::from(*v),
        AMQPValue::ShortShortInt(v) => Value::from(*v),
        AMQPValue::ShortShortUInt(v) => Value::from(*v),
        AMQPValue::ShortInt(v) => Value::from(*v),
        AMQPValue::ShortUInt(v) => Value::from(*v),
        AMQPValue::LongInt(v) => Value::from(*v),
        AMQPValue::LongUInt(v) => Value::from(*v),
        AMQPValue::LongLongInt(v) => Value::from(*v),
        AMQPValue::Float(v) => Value::from(*v),
        AMQPValue::Double(v) => Value::from(*v),
        AMQPValue::DecimalValue(v) => Value::from(format!("{v:?}")),
        AMQPValue::ShortString(v) => Value::from(v.as_str()),
        AMQPValue::LongString(v) => Value::from(String::from_utf8_lossy(v.as_bytes())),
        AMQPValue::FieldArray(values) => {
            Value::Array(values.as_slice().iter().map(to_json).collect())
        }
        AMQPValue::Timestamp(v) => Value::from(*v),
        AMQPValue::FieldTable(table) => table_to_json(table),
        AMQPValue::ByteArray(v) => Value::from(format!("{v:?}")),
        AMQPValue::Void => Value::Null,
    }
}

/// Renders a header table as a JSON object.
pub fn table_to_json(table: &FieldTable) -> serde_json::Value {
    serde_json::Value::Object(
        table
            .inner()
            .iter()
            .map(|(key, value)| (key.to_string(), to_json(value)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_every_width_read_alike() {
        for value in [
            AMQPValue::ShortShortUInt(3),
            AMQPValue::LongInt(3),
            AMQPValue::LongLongInt(3),
        ] {
            let mut table = FieldTable::default();
            table.insert(ATTEMPT.into(), value);
            assert_eq!(get_i64(Some(&table), ATTEMPT), Some(3));
        }
        assert_eq!(get_i64(None, ATTEMPT), None);
    }
}
