//! Output for people and for scripts: tables and colour only on a terminal,
//! tab-separated columns in a pipe, and the time formats every view shares.

use std::io::IsTerminal;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};

use crate::dead_letter::DeadLetter;

/// Longest error text in a `dlq list` row, in characters.
pub const ERROR_COLUMN_CHARS: usize = 60;

/// How tables are written: boxed and coloured, or plain for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A terminal: box drawing, colour unless `NO_COLOR` is set.
    Terminal {
        /// Whether to colour cells.
        colour: bool,
    },
    /// A pipe or file: one header line, then tab-separated rows.
    Plain,
}

impl Style {
    /// The style for standard output as it is now.
    pub fn for_stdout() -> Self {
        if std::io::stdout().is_terminal() {
            Style::Terminal {
                colour: std::env::var_os("NO_COLOR").is_none(),
            }
        } else {
            Style::Plain
        }
    }
}

/// One table cell's text and its optional colour on a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The text.
    pub text: String,
    /// Colour on a colour terminal.
    pub colour: Option<Color>,
}

impl From<String> for Column {
    fn from(text: String) -> Self {
        Self { text, colour: None }
    }
}

/// Renders rows under a header in the given style; ends with a newline.
pub fn table(header: &[&str], rows: Vec<Vec<Column>>, style: Style) -> String {
    match style {
        Style::Plain => {
            let mut out = header.join("\t");
            out.push('\n');
            for row in rows {
                let cells: Vec<String> =
                    row.into_iter().map(|c| c.text.replace('\t', " ")).collect();
                out.push_str(&cells.join("\t"));
                out.push('\n');
            }
            out
        }
        Style::Terminal { colour } => {
            let mut table = Table::new();
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(header.iter().copied());
            // comfy-table decides colour by its own tty check; the caller
            // already decided, so say so explicitly.
            if colour {
                table.enforce_styling();
            } else {
                table.force_no_tty();
            }
            for row in rows {
                table.add_row(row.into_iter().map(|column| match column.colour {
                    Some(c) if colour => Cell::new(column.text).fg(c),
                    _ => Cell::new(column.text),
                }));
            }
            format!("{table}\n")
        }
    }
}

/// The `dlq list` table.
pub fn dead_letter_table(letters: &[&DeadLetter], now: DateTime<Utc>, style: Style) -> String {
    let header = [
        "JOB ID",
        "DEVICE",
        "RANGE",
        "CLASS",
        "ERROR",
        "ATTEMPTS",
        "FIRST FAILURE",
        "LAST FAILURE",
        "AGE",
    ];
    let rows = letters
        .iter()
        .map(|letter| {
            let class = letter.error_class().unwrap_or("-");
            let colour = match class {
                "permanent" => Some(Color::Red),
                "transient" => Some(Color::Yellow),
                _ => None,
            };
            vec![
                Column::from(letter.job_id()),
                Column::from(letter.device().to_owned()),
                Column::from(range(letter)),
                Column {
                    text: class.to_owned(),
                    colour,
                },
                Column::from(shorten(letter.error().unwrap_or("-"), ERROR_COLUMN_CHARS)),
                Column::from(letter.attempts().map_or("-".into(), |n| n.to_string())),
                Column::from(time(letter.first_failure())),
                Column::from(time(letter.last_failure())),
                Column::from(age(letter.age(now))),
            ]
        })
        .collect();
    table(&header, rows, style)
}

fn range(letter: &DeadLetter) -> String {
    match &letter.job {
        Ok(job) => format!("{} .. {}", time(Some(job.start)), time(Some(job.end))),
        Err(_) => "-".into(),
    }
}

/// The first line of `text`, cut to `max_chars` with an ellipsis.
pub fn shorten(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    let cut = line.lines().count() < text.trim().lines().count();
    if line.chars().count() <= max_chars && !cut {
        return line.to_owned();
    }
    let kept: String = line.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// A time in UTC to the second, or `-`.
pub fn time(time: Option<DateTime<Utc>>) -> String {
    time.map_or("-".into(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// An age in its two largest units (`3h 12m`), or `-`; negative ages (clock
/// skew between worker and operator) show as `0s`.
pub fn age(age: Option<TimeDelta>) -> String {
    let Some(age) = age else {
        return "-".into();
    };
    let seconds = u64::try_from(age.num_seconds()).unwrap_or(0);
    let full = humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string();
    full.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::tests::{letter, text};
    use ingest_shared::headers;

    #[test]
    fn errors_are_cut_to_their_first_line_and_width() {
        assert_eq!(shorten("short", 10), "short");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
        assert_eq!(shorten("first\nCaused by: second", 60), "first…");
    }

    #[test]
    fn ages_keep_two_units() {
        assert_eq!(
            age(Some(TimeDelta::seconds(3 * 3600 + 12 * 60 + 5))),
            "3h 12m"
        );
        assert_eq!(age(Some(TimeDelta::seconds(-5))), "0s");
        assert_eq!(age(None), "-");
    }

    #[test]
    fn plain_tables_are_tab_separated_without_colour() {
        let job = ingest_shared::IngestJob::new(
            "press-1",
            "2026-12-01T00:00:00Z".parse().unwrap(),
            "2026-12-01T01:00:00Z".parse().unwrap(),
        );
        let letter = letter(
            &job.to_body(),
            &[
                (headers::ERROR_CLASS, text("permanent")),
                (headers::ERROR, text("device\tunknown")),
                (headers::LAST_FAILURE, text("2026-12-02T11:00:00Z")),
            ],
        );
        let now = "2026-12-02T12:00:00Z".parse().unwrap();
        let out = dead_letter_table(&[&letter], now, Style::Plain);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("JOB ID\tDEVICE\tRANGE"));
        let cells: Vec<&str> = lines[1].split('\t').collect();
        assert_eq!(cells.len(), 9);
        assert_eq!(cells[0], job.job_id.to_string());
        assert_eq!(cells[2], "2026-12-01T00:00:00Z .. 2026-12-01T01:00:00Z");
        assert_eq!(cells[3], "permanent");
        assert_eq!(cells[4], "device unknown");
        assert_eq!(cells[8], "1h");
        assert!(!out.contains('\u{1b}'), "no escape codes in a pipe");

        let boxed = dead_letter_table(&[&letter], now, Style::Terminal { colour: true });
        assert!(boxed.contains("press-1") && boxed.contains('\u{1b}'));
    }
}
