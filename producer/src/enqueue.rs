//! `ingestctl enqueue`: builds or reads jobs, validates every one, then
//! publishes them with pipelined publisher confirms.

use std::io::Write;
use std::time::Instant;

use ingest_shared::IngestJob;
use ingest_shared::headers::TRACEPARENT;
use ingest_shared::topology::JOBS_ROUTING_KEY;
use lapin::BasicProperties;
use lapin::options::ConfirmSelectOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};

use crate::Context;
use crate::cli::EnqueueArgs;
use crate::error::{CtlError, Exit, broker};
use crate::plan;
use crate::publish::{ConfirmWindow, PublishOutcome, PublishTally};

/// AMQP `delivery_mode` of a persistent message.
const PERSISTENT: u8 = 2;

/// Runs `enqueue`: validation errors exit 2 before anything is published;
/// any job not confirmed makes the command fail, naming it.
pub async fn run(context: &Context, args: EnqueueArgs) -> Result<Exit, CtlError> {
    let jobs = collect_jobs(&args)?;
    if args.dry_run {
        write_ndjson(&jobs)?;
        eprintln!("dry run: {} jobs, nothing published", jobs.len());
        return Ok(Exit::Ok);
    }

    let connection = context.connect().await?;
    let channel = connection
        .create_channel()
        .await
        .map_err(broker("opening a channel"))?;
    if !args.no_declare {
        context.topology.declare(&channel).await?;
    }
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(broker("enabling publisher confirms"))?;

    let started = Instant::now();
    let (tally, failures) = publish_jobs(context, channel, &jobs, &args).await;
    eprintln!(
        "jobs={} confirmed={} returned={} nacked={} seconds={:.3}",
        jobs.len(),
        tally.confirmed,
        tally.returned,
        tally.nacked,
        started.elapsed().as_secs_f64()
    );
    // Closing waits for the broker, so nothing is cut off mid-frame; a failure
    // here changes nothing about the confirms already counted.
    let _ = connection.close(200, "done".into()).await;
    if failures.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(CtlError::NotPublished {
            total: jobs.len(),
            failures,
        })
    }
}

fn collect_jobs(args: &EnqueueArgs) -> Result<Vec<IngestJob>, CtlError> {
    if args.stdin.is_some() {
        return plan::jobs_from_ndjson(std::io::stdin().lock());
    }
    // clap requires --from and --to unless `-` is given.
    let (Some(from), Some(to)) = (args.from, args.to) else {
        return Err(CtlError::Usage("--from and --to are required".into()));
    };
    plan::jobs_from_range(
        &args.devices,
        from,
        to,
        args.window,
        args.requested_by.as_deref(),
    )
}

fn write_ndjson(jobs: &[IngestJob]) -> Result<(), CtlError> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for job in jobs {
        out.write_all(&job.to_body()).map_err(CtlError::Output)?;
        out.write_all(b"\n").map_err(CtlError::Output)?;
    }
    out.flush().map_err(CtlError::Output)
}

/// Publishes every job, returning the tally and one line per failed job.
async fn publish_jobs(
    context: &Context,
    channel: lapin::Channel,
    jobs: &[IngestJob],
    args: &EnqueueArgs,
) -> (PublishTally, Vec<String>) {
    let mut window = ConfirmWindow::new(
        channel,
        &context.topology.exchange(),
        JOBS_ROUTING_KEY,
        args.publish.max_in_flight,
        args.publish.confirm_timeout,
    );
    let mut tally = PublishTally::default();
    let mut failures = Vec::new();
    let mut settle = |(index, outcome): (usize, PublishOutcome)| {
        tally.record(&outcome);
        if !outcome.is_confirmed() {
            let job: &IngestJob = &jobs[index];
            failures.push(format!(
                "  job {} (device {}): {outcome}",
                job.job_id, job.device
            ));
        }
    };

    for (index, job) in jobs.iter().enumerate() {
        while window.is_full() {
            if let Some(done) = window.next().await {
                settle(done);
            }
        }
        let properties = job_properties(job, args.traceparent.as_deref());
        window.publish(index, &job.to_body(), properties).await;
    }
    while let Some(done) = window.next().await {
        settle(done);
    }
    // Every confirm is in; a failing close cannot change what was counted.
    let _ = window.close().await;
    (tally, failures)
}

/// The contract's envelope: JSON, persistent, message id = job id.
fn job_properties(job: &IngestJob, traceparent: Option<&str>) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(PERSISTENT)
        .with_message_id(job.job_id.to_string().into());
    match traceparent {
        Some(trace) => {
            let mut headers = FieldTable::default();
            headers.insert(
                TRACEPARENT.into(),
                AMQPValue::LongString(LongString::from(trace)),
            );
            properties.with_headers(headers)
        }
        None => properties,
    }
}
