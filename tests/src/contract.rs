//! Job bodies that break the job contract (`docs/contract.md`), one per
//! rule, for tests that check what a worker makes of them.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

/// A body breaking one rule, named as a scenario says it: `invalid JSON`,
/// `version 2`, `a body of 70000 bytes`, `a reversed range`, `a range of 7
/// days and 1 hour`, or `device "<id>"` for a device id of its own. The
/// times are `end` and the hour before it.
pub fn bad_job_body(problem: &str, end: DateTime<Utc>) -> Vec<u8> {
    let start = end - TimeDelta::hours(1);
    let mut job = job_value("press-07", start, end);
    match problem {
        "invalid JSON" => return br#"{"version": 1, "job_id": "#.to_vec(),
        "version 2" => job["version"] = json!(2),
        "a reversed range" => {
            job["start"] = json!(end.to_rfc3339());
            job["end"] = json!(start.to_rfc3339());
        }
        "a range of 7 days and 1 hour" => {
            let start = end - TimeDelta::days(7) - TimeDelta::hours(1);
            job["start"] = json!(start.to_rfc3339());
        }
        "a body of 70000 bytes" => {
            // Unknown fields are allowed, so only the size rule can object.
            let bare = serde_json::to_vec(&job).expect("a job serializes").len();
            let padding = 70_000 - bare - r#","padding":"""#.len();
            job["padding"] = json!("x".repeat(padding));
        }
        other => {
            let device = other
                .strip_prefix("device \"")
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_else(|| panic!("no bad job body is named {other:?}"));
            job = job_value(device, start, end);
        }
    }
    serde_json::to_vec(&job).expect("a job serializes")
}

fn job_value(device: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Value {
    json!({
        "version": 1,
        "job_id": uuid::Uuid::new_v4().to_string(),
        "device": device,
        "start": start.to_rfc3339(),
        "end": end.to_rfc3339(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oversized_body_has_the_size_it_is_named_for() {
        assert_eq!(
            bad_job_body("a body of 70000 bytes", Utc::now()).len(),
            70_000
        );
    }
}
