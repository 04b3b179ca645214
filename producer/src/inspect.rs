//! The read-only dead-letter commands: `dlq list`, `dlq show`, `dlq export`.
//! Each holds the whole queue unacknowledged, reads it, and hands every
//! message back (see [`crate::hold`]); none acks anything.

use std::io::Write;

use chrono::Utc;
use ingest_shared::headers::{self, REPLAY_HISTORY};
use lapin::types::AMQPValue;

use crate::Context;
use crate::cli::{ExportArgs, ListArgs, ShowArgs};
use crate::dead_letter::{BROKER_DELIVERY_HEADERS, DeadLetter, header_text};
use crate::error::{CtlError, Exit};
use crate::hold::{self, HeldLetters};
use crate::render::{self, Style};
use crate::select::Selection;

/// `dlq list`: a table on a terminal, tab-separated in a pipe, NDJSON with `--json`.
pub async fn list(context: &Context, args: ListArgs) -> Result<Exit, CtlError> {
    let selection = Selection::filtered(args.filter);
    let now = Utc::now();
    let held = read(context, args.read.read_idle_timeout).await?;
    let chosen: Vec<&DeadLetter> = selection
        .choose(held.letters.iter().map(|h| &h.letter), now)
        .into_iter()
        .map(|index| &held.letters[index].letter)
        .collect();

    let output = if args.json {
        chosen
            .iter()
            .map(|letter| format!("{}\n", letter.to_json()))
            .collect()
    } else {
        render::dead_letter_table(&chosen, now, Style::for_stdout())
    };
    let summary = format!(
        "{} of {} dead letters shown",
        chosen.len(),
        held.letters.len()
    );
    held.release().await?;
    write_stdout(output.as_bytes())?;
    eprintln!("{summary}");
    Ok(Exit::Ok)
}

/// `dlq show`: every header, the body pretty-printed, the full error chain.
pub async fn show(context: &Context, args: ShowArgs) -> Result<Exit, CtlError> {
    let held = read(context, args.read.read_idle_timeout).await?;
    let matching: Vec<&DeadLetter> = held
        .letters
        .iter()
        .map(|h| &h.letter)
        .filter(|letter| letter.job_id() == args.job_id)
        .collect();
    let output: String = if args.json {
        matching
            .iter()
            .map(|letter| format!("{}\n", letter.to_json()))
            .collect()
    } else {
        matching
            .iter()
            .map(|letter| describe(letter))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let found = !matching.is_empty();
    held.release().await?;
    if !found {
        return Err(CtlError::NotFound(
            args.job_id,
            context.topology.dead_queue(),
        ));
    }
    write_stdout(output.as_bytes())?;
    Ok(Exit::Ok)
}

/// `dlq export`: each chosen dead letter as its job body plus `dead_letter`
/// headers, one per line; bodies that are not JSON objects are skipped with
/// a warning, since no enqueue could take them.
pub async fn export(context: &Context, args: ExportArgs) -> Result<Exit, CtlError> {
    let selection = Selection::filtered(args.filter);
    let held = read(context, args.read.read_idle_timeout).await?;
    let mut output = String::new();
    let mut skipped = 0;
    for index in selection.choose(held.letters.iter().map(|h| &h.letter), Utc::now()) {
        let letter = &held.letters[index].letter;
        match letter.export_line() {
            Some(line) => {
                output.push_str(&line.to_string());
                output.push('\n');
            }
            None => {
                skipped += 1;
                eprintln!(
                    "skipped dead letter {}: its body is not a JSON object ({} bytes)",
                    letter.job_id(),
                    letter.body.len()
                );
            }
        }
    }
    held.release().await?;
    write_stdout(output.as_bytes())?;
    if skipped > 0 {
        eprintln!("{skipped} dead letters skipped");
    }
    Ok(Exit::Ok)
}

async fn read(context: &Context, idle: std::time::Duration) -> Result<HeldLetters, CtlError> {
    let connection = context.connect().await?;
    hold::hold_all(&connection, &context.topology.dead_queue(), idle).await
}

fn write_stdout(bytes: &[u8]) -> Result<(), CtlError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(CtlError::Output)
}

/// The text `dlq show` prints for one dead letter.
pub fn describe(letter: &DeadLetter) -> String {
    let mut out = format!("Dead letter {}\n", letter.job_id());
    out.push_str(&format!("  device:          {}\n", letter.device()));
    out.push_str(&format!("  body:            {} bytes, ", letter.body.len()));
    match &letter.job {
        Ok(_) => out.push_str("a valid job\n"),
        Err(err) => out.push_str(&format!(
            "NOT a valid job: {}\n",
            crate::dead_letter::error_chain(err)
        )),
    }
    let properties = &letter.properties;
    let property = |value: Option<String>| value.unwrap_or_else(|| "-".into());
    out.push_str(&format!(
        "  message id:      {}\n  content type:    {}\n  delivery mode:   {}\n",
        property(properties.message_id().as_ref().map(|v| v.to_string())),
        property(properties.content_type().as_ref().map(|v| v.to_string())),
        property(properties.delivery_mode().map(|v| v.to_string())),
    ));
    if let Some(count) = letter.delivery_count() {
        out.push_str(&format!(
            "  x-delivery-count {count} (added by the broker on redelivery; not part of the dead letter)\n"
        ));
    }

    out.push_str("\nHeaders\n");
    for (key, value) in letter.headers().into_iter().flatten() {
        let name = key.as_str();
        if name == REPLAY_HISTORY || BROKER_DELIVERY_HEADERS.contains(&name) {
            continue;
        }
        let text = header_text(value).replace('\n', "\n    ");
        out.push_str(&format!("  {name}: {text}\n"));
    }

    out.push_str("\nError chain\n");
    for line in letter
        .error()
        .unwrap_or("(no x-ingest-error header)")
        .lines()
    {
        out.push_str(&format!("  {line}\n"));
    }

    if let Some(AMQPValue::FieldArray(history)) =
        letter.headers().and_then(|h| h.inner().get(REPLAY_HISTORY))
    {
        out.push_str("\nReplay history (oldest first)\n");
        for (number, entry) in history.as_slice().iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", number + 1, headers::to_json(entry)));
        }
    }

    out.push_str("\nBody\n");
    let body = match serde_json::from_slice::<serde_json::Value>(&letter.body) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap_or_else(|_| letter.body_escaped()),
        Err(_) => letter.body_escaped(),
    };
    for line in body.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::tests::{letter, text};

    #[test]
    fn show_prints_every_header_the_chain_and_the_raw_body() {
        let letter = letter(
            b"{\"version\":1,\0",
            &[
                (headers::ERROR, text("fetch failed\nCaused by: timeout")),
                (headers::WORKER, text("worker-3")),
                ("x-delivery-count", AMQPValue::LongLongInt(1)),
            ],
        );
        let text = describe(&letter);
        assert!(text.contains("x-ingest-worker: worker-3"), "{text}");
        assert!(text.contains("  Caused by: timeout"), "{text}");
        assert!(text.contains("{\"version\":1,\\0"), "{text}");
        assert!(text.contains("NOT a valid job"), "{text}");
        assert!(text.contains("not part of the dead letter"), "{text}");
    }
}
