//! Turning `enqueue` arguments, or NDJSON on standard input, into jobs that
//! a worker would accept — all of them validated before anything is published.

use std::io::BufRead;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ingest_shared::job::canonical_time;
use ingest_shared::window::split_windows;
use ingest_shared::{ContractError, IngestJob, Limits};

use crate::error::CtlError;

/// One job per device and window: devices in the order given, each device's
/// windows in time order. Every job is validated as a worker would.
pub fn jobs_from_range(
    devices: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    window: Duration,
    requested_by: Option<&str>,
) -> Result<Vec<IngestJob>, CtlError> {
    let window = TimeDelta::from_std(window)
        .map_err(|_| CtlError::Usage(format!("--window {window:?} is too long")))?;
    let windows = split_windows(from, to, window).map_err(CtlError::InvalidRange)?;

    let mut jobs = Vec::with_capacity(devices.len() * windows.len());
    for device in devices {
        for &(start, end) in &windows {
            let mut job = IngestJob::new(device, start, end);
            job.requested_by = requested_by.map(str::to_owned);
            validate(&job).map_err(|source| CtlError::InvalidJob {
                device: device.clone(),
                start: canonical_time(start),
                end: canonical_time(end),
                source,
            })?;
            jobs.push(job);
        }
    }
    Ok(jobs)
}

/// Decodes NDJSON job bodies, one per line (blank lines skipped), naming the
/// first bad line. Unknown fields are ignored, as every decoder does.
pub fn jobs_from_ndjson(input: impl BufRead) -> Result<Vec<IngestJob>, CtlError> {
    let mut jobs = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line = line.map_err(CtlError::Stdin)?;
        if line.trim().is_empty() {
            continue;
        }
        let job = IngestJob::decode(line.as_bytes(), &Limits::default()).map_err(|source| {
            CtlError::InvalidLine {
                line: index + 1,
                source,
            }
        })?;
        jobs.push(job);
    }
    Ok(jobs)
}

/// Checks a job exactly as a worker's decoder would, on its canonical body.
fn validate(job: &IngestJob) -> Result<(), ContractError> {
    IngestJob::decode(&job.to_body(), &Limits::default()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_time;

    #[test]
    fn jobs_go_device_by_device_in_time_order() {
        let devices = ["b".to_owned(), "a".to_owned()];
        let jobs = jobs_from_range(
            &devices,
            parse_time("2026-12-01T00:00:00Z").unwrap(),
            parse_time("2026-12-01T02:30:00Z").unwrap(),
            Duration::from_secs(3600),
            Some("ops"),
        )
        .unwrap();
        let got: Vec<_> = jobs
            .iter()
            .map(|job| (job.device.as_str(), canonical_time(job.start)))
            .collect();
        assert_eq!(
            got,
            [
                ("b", "2026-12-01T00:00:00Z".to_owned()),
                ("b", "2026-12-01T01:00:00Z".to_owned()),
                ("b", "2026-12-01T02:00:00Z".to_owned()),
                ("a", "2026-12-01T00:00:00Z".to_owned()),
                ("a", "2026-12-01T01:00:00Z".to_owned()),
                ("a", "2026-12-01T02:00:00Z".to_owned()),
            ]
        );
        assert_eq!(jobs[0].requested_by.as_deref(), Some("ops"));
    }

    #[test]
    fn a_bad_device_is_refused_naming_it() {
        let err = jobs_from_range(
            &["ok".to_owned(), "../admin".to_owned()],
            parse_time("2026-12-01").unwrap(),
            parse_time("2026-12-02").unwrap(),
            Duration::from_secs(3600),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, CtlError::InvalidJob { ref device, .. } if device == "../admin"));
    }

    #[test]
    fn a_window_over_the_span_limit_is_refused() {
        let err = jobs_from_range(
            &["a".to_owned()],
            parse_time("2026-12-01").unwrap(),
            parse_time("2026-12-31").unwrap(),
            Duration::from_secs(30 * 24 * 3600),
            None,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            CtlError::InvalidJob {
                source: ContractError::SpanTooLong { .. },
                ..
            }
        ));
    }

    #[test]
    fn ndjson_names_the_bad_line_and_ignores_unknown_fields() {
        let good = IngestJob::new(
            "d1",
            parse_time("2026-12-01").unwrap(),
            parse_time("2026-12-02").unwrap(),
        );
        let mut extended: serde_json::Value = serde_json::from_slice(&good.to_body()).unwrap();
        extended["dead_letter"] = serde_json::json!({"x-ingest-error": "boom"});
        let input = format!("{extended}\n\n{{\"version\":1}}\n");
        let err = jobs_from_ndjson(input.as_bytes()).unwrap_err();
        assert!(
            matches!(err, CtlError::InvalidLine { line: 3, .. }),
            "{err}"
        );

        let jobs = jobs_from_ndjson(format!("{extended}\n").as_bytes()).unwrap();
        assert_eq!(jobs, [good]);
    }
}
