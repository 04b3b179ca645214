//! Which dead letters a command acts on: job ids, `--all`, or filters on
//! device, error class, error text and age, all of which must hold.

use chrono::{DateTime, TimeDelta, Utc};

use crate::cli::FilterArgs;
use crate::dead_letter::DeadLetter;
use crate::error::CtlError;

pub use ingest_shared::headers::ErrorClass;

/// A choice of dead letters.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    job_ids: Vec<String>,
    filter: FilterArgs,
}

impl Selection {
    /// Everything that passes `filter` (for the read-only commands, where no
    /// criteria means all).
    pub fn filtered(filter: FilterArgs) -> Self {
        Self {
            job_ids: Vec::new(),
            filter,
        }
    }

    /// The choice of a destructive command, which must be explicit: job ids,
    /// filters, or `--all` alone.
    pub fn explicit(job_ids: Vec<String>, all: bool, filter: FilterArgs) -> Result<Self, CtlError> {
        let has_criteria = !job_ids.is_empty() || has_criteria(&filter);
        match (all, has_criteria) {
            (true, true) => Err(CtlError::Usage(
                "--all cannot be combined with job ids or filters".into(),
            )),
            (false, false) => Err(CtlError::Usage(
                "choose dead letters: give job ids, a filter (--device, --class, \
                 --error-contains, --older-than, --newer-than, --limit) or --all"
                    .into(),
            )),
            _ => Ok(Self { job_ids, filter }),
        }
    }

    /// Whether one dead letter is chosen, ignoring `--limit`.
    pub fn matches(&self, letter: &DeadLetter, now: DateTime<Utc>) -> bool {
        let filter = &self.filter;
        let id_holds = self.job_ids.is_empty() || self.job_ids.contains(&letter.job_id());
        let device_holds =
            filter.devices.is_empty() || filter.devices.iter().any(|d| d == letter.device());
        let class_holds = filter
            .class
            .is_none_or(|class| letter.error_class() == Some(class.as_str()));
        let error_holds = filter.error_contains.as_ref().is_none_or(|needle| {
            let error = letter.error().unwrap_or_default().to_lowercase();
            error.contains(&needle.to_lowercase())
        });
        // A dead letter without a readable last failure has no age, so no
        // age filter can be said to hold for it.
        let age = letter.age(now);
        let older_holds = filter
            .older_than
            .is_none_or(|older| age.is_some_and(|age| age > delta(older)));
        let newer_holds = filter
            .newer_than
            .is_none_or(|newer| age.is_some_and(|age| age < delta(newer)));
        id_holds && device_holds && class_holds && error_holds && older_holds && newer_holds
    }

    /// Indices of the chosen letters in queue order, at most `--limit`.
    pub fn choose<'a>(
        &self,
        letters: impl IntoIterator<Item = &'a DeadLetter>,
        now: DateTime<Utc>,
    ) -> Vec<usize> {
        letters
            .into_iter()
            .enumerate()
            .filter(|(_, letter)| self.matches(letter, now))
            .map(|(index, _)| index)
            .take(self.filter.limit.unwrap_or(usize::MAX))
            .collect()
    }
}

fn has_criteria(filter: &FilterArgs) -> bool {
    !filter.devices.is_empty()
        || filter.class.is_some()
        || filter.error_contains.is_some()
        || filter.older_than.is_some()
        || filter.newer_than.is_some()
        || filter.limit.is_some()
}

fn delta(duration: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::tests::{letter, text};
    use ingest_shared::headers;
    use std::time::Duration;

    const NOW: &str = "2026-12-02T12:00:00Z";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(NOW)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn dead(device: &str, class: &str, error: &str, last_failure: &str) -> DeadLetter {
        let body = ingest_shared::IngestJob::new(
            device,
            "2026-12-01T00:00:00Z".parse().unwrap(),
            "2026-12-01T01:00:00Z".parse().unwrap(),
        )
        .to_body();
        letter(
            &body,
            &[
                (headers::ERROR_CLASS, text(class)),
                (headers::ERROR, text(error)),
                (headers::LAST_FAILURE, text(last_failure)),
            ],
        )
    }

    fn letters() -> Vec<DeadLetter> {
        vec![
            dead(
                "press-1",
                "transient",
                "HTTP 503 from factory",
                "2026-12-02T11:59:00Z",
            ),
            dead(
                "press-2",
                "permanent",
                "device unknown",
                "2026-12-01T12:00:00Z",
            ),
            dead(
                "press-1",
                "permanent",
                "Device Unknown",
                "2026-12-02T09:00:00Z",
            ),
            letter(b"garbage", &[]),
        ]
    }

    fn chosen(filter: FilterArgs) -> Vec<usize> {
        Selection::filtered(filter).choose(&letters(), now())
    }

    #[test]
    fn no_criteria_chooses_everything_for_reading() {
        assert_eq!(chosen(FilterArgs::default()), [0, 1, 2, 3]);
    }

    #[test]
    fn every_criterion_must_hold() {
        let filter = FilterArgs {
            devices: vec!["press-1".into()],
            class: Some(ErrorClass::Permanent),
            ..FilterArgs::default()
        };
        assert_eq!(chosen(filter), [2]);
        let filter = FilterArgs {
            error_contains: Some("device unknown".into()),
            ..FilterArgs::default()
        };
        assert_eq!(chosen(filter), [1, 2]);
        let undecodable = FilterArgs {
            devices: vec!["?".into()],
            ..FilterArgs::default()
        };
        assert_eq!(chosen(undecodable), [3]);
    }

    #[test]
    fn ages_count_from_the_last_failure_and_unknown_ages_never_match() {
        let older = FilterArgs {
            older_than: Some(Duration::from_secs(3600)),
            ..FilterArgs::default()
        };
        assert_eq!(chosen(older), [1, 2]);
        let newer = FilterArgs {
            newer_than: Some(Duration::from_secs(3600)),
            limit: Some(5),
            ..FilterArgs::default()
        };
        assert_eq!(chosen(newer), [0]);
        let limited = FilterArgs {
            limit: Some(2),
            ..FilterArgs::default()
        };
        assert_eq!(chosen(limited), [0, 1]);
    }

    #[test]
    fn destructive_commands_need_an_explicit_choice() {
        assert!(Selection::explicit(vec![], false, FilterArgs::default()).is_err());
        assert!(Selection::explicit(vec!["x".into()], true, FilterArgs::default()).is_err());
        assert!(Selection::explicit(vec![], true, FilterArgs::default()).is_ok());
        let ids = Selection::explicit(vec![letters()[1].job_id()], false, FilterArgs::default());
        assert_eq!(ids.unwrap().choose(&letters(), now()), [1]);
    }
}
