//! `dlq purge`: deletes chosen dead letters, refusing without `--yes`.

use chrono::Utc;

use crate::Context;
use crate::cli::PurgeArgs;
use crate::error::{CtlError, Exit};
use crate::hold;
use crate::select::Selection;

/// Runs `dlq purge`: acks the chosen held messages, hands the rest back.
pub async fn run(context: &Context, args: PurgeArgs) -> Result<Exit, CtlError> {
    let selection = Selection::explicit(args.job_ids, args.all, args.filter)?;
    if !args.yes {
        return Err(CtlError::Usage(
            "refusing to purge without --yes; nothing was deleted (try `dlq list` with the \
             same filters first)"
                .into(),
        ));
    }

    let connection = context.connect().await?;
    let held = hold::hold_all(
        &connection,
        &context.topology.dead_queue(),
        args.read.read_idle_timeout,
    )
    .await?;
    let chosen = selection.choose(held.letters.iter().map(|h| &h.letter), Utc::now());
    let total = held.letters.len();
    for &index in &chosen {
        held.ack(held.letters[index].delivery_tag).await?;
    }
    // The release's channel close returns only after the broker processed
    // every ack above, so the count printed below is what was deleted.
    held.release().await?;
    println!(
        "purged {} of {total} dead letters from {}",
        chosen.len(),
        context.topology.dead_queue()
    );
    Ok(Exit::Ok)
}
