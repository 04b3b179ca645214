//! The headers a replayed job carries back to the work queue: the dead-letter
//! headers move into `x-ingest-replay-history`, so a job's story is never lost.

use chrono::{DateTime, Utc};
use ingest_shared::headers::{ATTEMPT, DEAD_LETTER_HEADERS, REPLAY_HISTORY};
use ingest_shared::job::canonical_time;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};

use crate::dead_letter::BROKER_DELIVERY_HEADERS;

/// Key of the replay time inside each history entry.
pub const REPLAYED_AT: &str = "replayed-at";

/// Builds the headers of a replayed message from the dead letter's.
///
/// The dead-letter headers present become one new history entry (plus
/// `replayed-at`), appended after the earlier ones; `x-ingest-attempt` is
/// dropped when `reset_attempts`; the broker's delivery metadata is dropped;
/// everything else (`traceparent` included) is kept as it was.
pub fn replay_headers(
    original: Option<&FieldTable>,
    replayed_at: DateTime<Utc>,
    reset_attempts: bool,
) -> FieldTable {
    let mut kept = FieldTable::default();
    let mut entry = FieldTable::default();
    let mut history = FieldArray::default();

    for (key, value) in original.into_iter().flatten() {
        let name = key.as_str();
        if name == REPLAY_HISTORY {
            match value {
                AMQPValue::FieldArray(earlier) => {
                    for item in earlier.as_slice() {
                        history.push(item.clone());
                    }
                }
                // A history that is not an array is kept as its first entry
                // rather than lost.
                other => history.push(other.clone()),
            }
        } else if DEAD_LETTER_HEADERS.contains(&name) {
            entry.insert(key.clone(), value.clone());
        } else if (name == ATTEMPT && reset_attempts) || BROKER_DELIVERY_HEADERS.contains(&name) {
            continue;
        } else {
            kept.insert(key.clone(), value.clone());
        }
    }

    entry.insert(
        REPLAYED_AT.into(),
        AMQPValue::LongString(LongString::from(canonical_time(replayed_at))),
    );
    history.push(AMQPValue::FieldTable(entry));
    kept.insert(REPLAY_HISTORY.into(), AMQPValue::FieldArray(history));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use ingest_shared::headers::{self, table_to_json};
    use serde_json::json;

    fn text(value: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(value))
    }

    fn dead_letter_table(error: &str, attempt: i64) -> FieldTable {
        let mut table = FieldTable::default();
        table.insert(headers::ERROR_CLASS.into(), text("transient"));
        table.insert(headers::ERROR.into(), text(error));
        table.insert(headers::ATTEMPTS.into(), AMQPValue::LongLongInt(attempt));
        table.insert(headers::ATTEMPT.into(), AMQPValue::LongLongInt(attempt));
        table.insert(headers::TRACEPARENT.into(), text("00-abc-def-01"));
        table.insert("x-delivery-count".into(), AMQPValue::LongLongInt(3));
        table
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn dead_letter_headers_move_into_the_history() {
        let headers = replay_headers(
            Some(&dead_letter_table("boom", 5)),
            at("2026-12-02T10:00:00Z"),
            true,
        );
        assert_eq!(
            table_to_json(&headers),
            json!({
                "traceparent": "00-abc-def-01",
                "x-ingest-replay-history": [{
                    "x-ingest-error-class": "transient",
                    "x-ingest-error": "boom",
                    "x-ingest-attempts": 5,
                    "replayed-at": "2026-12-02T10:00:00Z",
                }],
            })
        );
    }

    #[test]
    fn a_second_replay_appends_after_the_first() {
        let first = replay_headers(
            Some(&dead_letter_table("one", 2)),
            at("2026-12-02T10:00:00Z"),
            false,
        );
        // The worker dead-letters the replayed job again, adding fresh headers.
        let mut again = first.clone();
        for (key, value) in dead_letter_table("two", 4).inner() {
            again.insert(key.clone(), value.clone());
        }
        let second = replay_headers(Some(&again), at("2026-12-02T11:00:00Z"), false);
        let json = table_to_json(&second);
        let history = json["x-ingest-replay-history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0]["x-ingest-error"], "one");
        assert_eq!(history[1]["x-ingest-error"], "two");
        assert_eq!(history[1]["replayed-at"], "2026-12-02T11:00:00Z");
        assert_eq!(json["x-ingest-attempt"], 4, "kept without reset");
        assert!(json.get("x-delivery-count").is_none());
    }
}
