//! `dlq replay`: republishes chosen dead letters to the work queue with
//! publisher confirms, and acks each in the dead-letter queue only after the
//! broker confirmed its republish — so an interruption can leave a job both
//! replayed and still dead-lettered, but never neither.

use std::io::IsTerminal;
use std::time::Instant;

use chrono::Utc;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ingest_shared::topology::JOBS_ROUTING_KEY;
use lapin::options::ConfirmSelectOptions;

use crate::Context;
use crate::cli::ReplayArgs;
use crate::error::{CtlError, Exit, broker};
use crate::history::replay_headers;
use crate::hold::{self, HeldLetters};
use crate::publish::{ConfirmWindow, PublishTally};
use crate::select::Selection;

/// Runs `dlq replay`.
pub async fn run(context: &Context, args: ReplayArgs) -> Result<Exit, CtlError> {
    let selection = Selection::explicit(args.job_ids.clone(), args.all, args.filter.clone())?;
    let reset_attempts = !args.keep_attempts;
    let connection = context.connect().await?;
    let held = hold::hold_all(
        &connection,
        &context.topology.dead_queue(),
        args.read.read_idle_timeout,
    )
    .await?;
    let chosen = selection.choose(held.letters.iter().map(|h| &h.letter), Utc::now());

    if args.dry_run {
        for &index in &chosen {
            let letter = &held.letters[index].letter;
            println!(
                "would replay {} (device {}, {})",
                letter.job_id(),
                letter.device(),
                letter.error_class().unwrap_or("no error class")
            );
        }
        let total = held.letters.len();
        held.release().await?;
        eprintln!(
            "dry run: {} of {total} dead letters would move to {}",
            chosen.len(),
            context.topology.work_queue()
        );
        return Ok(Exit::Ok);
    }

    let started = Instant::now();
    let outcome = republish(context, &connection, &held, &chosen, &args, reset_attempts).await;
    let total = held.letters.len();
    held.release().await?;
    let (tally, failures) = outcome?;
    eprintln!(
        "replayed={} failed={} left={} seconds={:.3}",
        tally.confirmed,
        failures.len(),
        total - tally.confirmed,
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err(CtlError::NotPublished {
            total: chosen.len(),
            failures,
        })
    }
}

/// Republishes the chosen letters through a confirm window and acks each
/// one whose republish the broker confirmed.
async fn republish(
    context: &Context,
    connection: &lapin::Connection,
    held: &HeldLetters,
    chosen: &[usize],
    args: &ReplayArgs,
    reset_attempts: bool,
) -> Result<(PublishTally, Vec<String>), CtlError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(broker("opening the publishing channel"))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(broker("enabling publisher confirms"))?;
    let mut window = ConfirmWindow::new(
        channel,
        &context.topology.exchange(),
        JOBS_ROUTING_KEY,
        args.publish.max_in_flight,
        args.publish.confirm_timeout,
    );
    let progress = progress_bar(chosen.len());
    let mut tally = PublishTally::default();
    let mut failures = Vec::new();
    let replayed_at = Utc::now();

    for &index in chosen {
        while window.is_full() {
            if let Some((done, outcome)) = window.next().await {
                settle(held, done, outcome, &mut tally, &mut failures, &progress).await?;
            }
        }
        let letter = &held.letters[index].letter;
        let headers = replay_headers(letter.headers(), replayed_at, reset_attempts);
        let properties = letter.properties.clone().with_headers(headers);
        window.publish(index, &letter.body, properties).await;
    }
    while let Some((done, outcome)) = window.next().await {
        settle(held, done, outcome, &mut tally, &mut failures, &progress).await?;
    }
    progress.finish_and_clear();
    // Every confirm is in and settled; a failing close changes nothing.
    let _ = window.close().await;
    Ok((tally, failures))
}

/// Acks a confirmed republish in the dead-letter queue; records a failure
/// otherwise, leaving that dead letter to go back to the queue.
async fn settle(
    held: &HeldLetters,
    index: usize,
    outcome: crate::publish::PublishOutcome,
    tally: &mut PublishTally,
    failures: &mut Vec<String>,
    progress: &ProgressBar,
) -> Result<(), CtlError> {
    tally.record(&outcome);
    progress.inc(1);
    let held_letter = &held.letters[index];
    if outcome.is_confirmed() {
        held.ack(held_letter.delivery_tag).await
    } else {
        let letter = &held_letter.letter;
        failures.push(format!(
            "  job {} (device {}): {outcome}; it stays in the dead-letter queue",
            letter.job_id(),
            letter.device()
        ));
        Ok(())
    }
}

/// A bar on standard error, drawn only when standard output is a terminal.
fn progress_bar(length: usize) -> ProgressBar {
    let bar = ProgressBar::new(length as u64);
    if std::io::stdout().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} replayed ({per_sec}, {eta} left)")
        {
            bar.set_style(style);
        }
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}
