//! One job's path through the pipeline: every page fetched and encoded,
//! every batch written. Nothing here touches the broker; the caller settles
//! the delivery with the result.

use ingest_shared::IngestJob;

use crate::error::{InvalidReadings, JobError};
use crate::fetch::FactoryClient;
use crate::store::{Batch, TsdbWriter};

/// Counts of one finished job.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobReport {
    /// Readings the factory API served for the range.
    pub readings: u64,
    /// Points the TSDB accepted.
    pub points: u64,
    /// Readings skipped as invalid (only with `--skip-invalid-readings`).
    pub skipped: u64,
}

/// The fetch → transform → store pipeline shared by every job of a worker.
#[derive(Debug)]
pub struct Pipeline {
    /// Factory API client.
    pub factory: FactoryClient,
    /// TSDB writer.
    pub tsdb: TsdbWriter,
    /// Points per write request.
    pub batch_points: usize,
    /// Write the valid readings of a job with invalid ones instead of failing it.
    pub skip_invalid_readings: bool,
}

impl Pipeline {
    /// Ingests one job. Returns only once every point of the range is
    /// accepted by the TSDB; any error leaves the job to be retried or
    /// dead-lettered, and a rerun rewrites the same points (idempotent).
    ///
    /// By default the first invalid reading stops all further writes, but the
    /// remaining pages are still read so that the error can give the count.
    pub async fn ingest(&self, job: &IngestJob) -> Result<JobReport, JobError> {
        let mut report = JobReport::default();
        let mut batch = Batch::default();
        let mut cursor: Option<String> = None;
        let mut invalid: Option<InvalidReadings> = None;

        loop {
            let page = self
                .factory
                .fetch_page(&job.device, job.start, job.end, cursor.as_deref())
                .await?;
            let summary = page.summary;
            metrics::counter!("ingest_readings_fetched_total").increment(summary.readings);

            if let Some((index, reason)) = summary.first_invalid {
                let tally = invalid.get_or_insert(InvalidReadings {
                    count: 0,
                    index: report.readings + index,
                    reason,
                });
                tally.count += summary.invalid;
            }
            report.readings += summary.readings;

            if self.skip_invalid_readings || invalid.is_none() {
                self.tsdb
                    .append(&mut batch, &page.lines, summary.points as usize)?;
                if batch.points() >= self.batch_points {
                    let (body, points) = batch.take();
                    self.tsdb.write(body, points).await?;
                    report.points += points as u64;
                }
            }

            match summary.next_cursor {
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => break,
            }
        }

        match invalid {
            Some(invalid) if !self.skip_invalid_readings => return Err(invalid.into()),
            Some(invalid) => {
                report.skipped = invalid.count;
                metrics::counter!("ingest_readings_invalid_total").increment(invalid.count);
                tracing::warn!(
                    skipped = invalid.count,
                    first = invalid.index,
                    reason = %invalid.reason,
                    "invalid readings skipped"
                );
            }
            None => {}
        }
        if !batch.is_empty() {
            let (body, points) = batch.take();
            self.tsdb.write(body, points).await?;
            report.points += points as u64;
        }
        Ok(report)
    }
}
