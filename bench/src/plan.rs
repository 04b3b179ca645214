//! The jobs each scenario enqueues. Device ids carry the run's id and the
//! scenario's name, so no two runs write the same series; ranges lie about
//! two days back, old enough to be complete and well inside any retention.

use chrono::{DateTime, Duration, DurationRound, Utc};
use ingest_shared::IngestJob;

/// Devices a scenario spreads its jobs over. Few devices with many hours
/// each keeps the number of new series per run small, as in production.
const DEVICES_PER_SCENARIO: usize = 8;

/// Names devices and places ranges for one repetition of one scenario.
#[derive(Debug, Clone)]
pub struct JobPlan {
    device_prefix: String,
    anchor: DateTime<Utc>,
}

impl JobPlan {
    /// A plan whose devices are named `<run_id>-<scenario>-<repetition>-dN`.
    pub fn new(run_id: &str, scenario: &str, repetition: u32) -> Self {
        // Truncating to the hour cannot fail for a time this close to now.
        let now = Utc::now()
            .duration_trunc(Duration::hours(1))
            .expect("now fits in a DateTime");
        Self {
            device_prefix: format!("b{run_id}-{scenario}-r{repetition}"),
            anchor: now - Duration::hours(40),
        }
    }

    fn device(&self, index: usize) -> String {
        format!("{}-d{index}", self.device_prefix)
    }

    /// `count` jobs whose range, half a second between two whole seconds,
    /// holds no reading: one factory call each and nothing to write.
    pub fn empty_jobs(&self, count: usize) -> Vec<IngestJob> {
        (0..count)
            .map(|i| {
                let second = (i / DEVICES_PER_SCENARIO) as i64;
                let start = self.anchor + Duration::seconds(second) + Duration::milliseconds(250);
                let device = self.device(i % DEVICES_PER_SCENARIO);
                IngestJob::new(&device, start, start + Duration::milliseconds(500))
            })
            .collect()
    }

    /// `count` jobs of `readings` seconds each (one reading per second),
    /// spread over the scenario's devices, each device's ranges back to back.
    pub fn reading_jobs(&self, count: usize, readings: i64) -> Vec<IngestJob> {
        (0..count)
            .map(|i| {
                let slot = (i / DEVICES_PER_SCENARIO) as i32 + 1;
                let end = self.anchor - Duration::seconds(readings) * (slot - 1);
                let start = end - Duration::seconds(readings);
                IngestJob::new(&self.device(i % DEVICES_PER_SCENARIO), start, end)
            })
            .collect()
    }

    /// One job of `readings` seconds on a device of its own, so that each
    /// write names the job it belongs to (the latency run matches them).
    pub fn solo_job(&self, index: usize, readings: i64) -> IngestJob {
        let start = self.anchor - Duration::seconds(readings);
        IngestJob::new(
            &self.device(index),
            start,
            start + Duration::seconds(readings),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_jobs_fall_between_two_whole_seconds() {
        for job in JobPlan::new("x", "empty", 0).empty_jobs(20) {
            assert_eq!(job.start.timestamp_subsec_millis(), 250);
            assert_eq!(job.end - job.start, Duration::milliseconds(500));
        }
    }

    #[test]
    fn reading_jobs_never_overlap_on_one_device() {
        let jobs = JobPlan::new("x", "readings", 0).reading_jobs(40, 3600);
        for (a, first) in jobs.iter().enumerate() {
            for second in &jobs[a + 1..] {
                let overlap = first.device == second.device
                    && first.start < second.end
                    && second.start < first.end;
                assert!(!overlap, "{first:?} overlaps {second:?}");
            }
        }
    }

    #[test]
    fn ranges_stay_between_one_and_five_days_back() {
        let jobs = JobPlan::new("x", "readings", 0).reading_jobs(512, 3600);
        let now = Utc::now();
        for job in jobs {
            assert!(job.end < now - Duration::hours(24));
            assert!(job.start > now - Duration::days(5));
        }
    }
}
