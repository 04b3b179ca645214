//! The command line: global settings with environment fallbacks, and every
//! subcommand with its flags. Parsing only; the commands live elsewhere.

use std::convert::Infallible;
use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use ingest_shared::SecretUrl;
use ingest_shared::telemetry::LogFormat;

use crate::select::ErrorClass;

/// Operator CLI of the ingestion fleet: enqueue jobs, inspect, replay and
/// purge dead letters, check the broker.
///
/// Exit codes: 0 ok, 1 failure, 2 usage error or refused, 3 unhealthy or
/// topology mismatch.
#[derive(Debug, Parser)]
#[command(name = "ingestctl", version)]
pub struct Cli {
    /// Settings every command shares.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every command shares; each has an environment fallback.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// AMQP URL of the broker; its password is never printed.
    #[arg(
        long,
        env = "INGEST_AMQP_URL",
        global = true,
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: SecretUrl,

    /// Prefix of every exchange and queue name (tests and tenants share a broker).
    #[arg(long, env = "INGEST_PREFIX", global = true, default_value = "")]
    pub prefix: String,

    /// Delay tiers of the retry queues, comma separated humantime durations;
    /// they name the delay queues and must match the workers' setting.
    #[arg(
        long,
        env = "INGEST_RETRY_DELAYS",
        global = true,
        value_delimiter = ',',
        value_parser = humantime::parse_duration,
        default_value = "5s,30s,2m,10m"
    )]
    pub retry_delays: Vec<Duration>,

    /// Base URL of the RabbitMQ management API.
    #[arg(
        long,
        env = "INGEST_MANAGEMENT_URL",
        global = true,
        default_value = "http://127.0.0.1:15672"
    )]
    pub management_url: String,

    /// User of the management API.
    #[arg(
        long,
        env = "INGEST_MANAGEMENT_USER",
        global = true,
        default_value = "guest"
    )]
    pub management_user: String,

    /// Password of the management API; never printed.
    #[arg(
        long,
        env = "INGEST_MANAGEMENT_PASSWORD",
        global = true,
        default_value = "guest",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub management_password: Password,

    /// Log format on standard error; the level comes from RUST_LOG (default `warn`).
    #[arg(
        long,
        env = "INGEST_LOG_FORMAT",
        global = true,
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
}

/// A password that `Debug` and `Display` never show.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The password itself, for the one call that authenticates.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Password {
    type Err = Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish ingestion jobs: one per device and window, or NDJSON from stdin (`enqueue -`).
    Enqueue(EnqueueArgs),
    /// Inspect, export, replay and purge dead letters.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Queue depths, consumers and rates from the management API; exit 3 when unhealthy.
    Status(StatusArgs),
    /// Declare or verify the exchange, queues and bindings.
    #[command(subcommand)]
    Topology(TopologyCommand),
}

/// Flags of `enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// `-` reads NDJSON job bodies from standard input instead of building
    /// jobs from --device/--from/--to.
    #[arg(value_name = "-", value_parser = ["-"], conflicts_with_all = ["devices", "from", "to", "requested_by"])]
    pub stdin: Option<String>,

    /// Device to ingest; repeat for several, jobs follow the order given.
    #[arg(
        long = "device",
        value_name = "DEVICE",
        required_unless_present = "stdin"
    )]
    pub devices: Vec<String>,

    /// Start of the range (inclusive): RFC 3339, or a date meaning midnight UTC.
    #[arg(long, value_parser = parse_time, required_unless_present = "stdin")]
    pub from: Option<DateTime<Utc>>,

    /// End of the range (exclusive): RFC 3339, or a date meaning midnight UTC.
    #[arg(long, value_parser = parse_time, required_unless_present = "stdin")]
    pub to: Option<DateTime<Utc>>,

    /// Length of each job's window; the last one is cut at --to.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub window: Duration,

    /// Who or what asks, stored in each job (at most 256 characters).
    #[arg(long)]
    pub requested_by: Option<String>,

    /// W3C trace context to attach as the `traceparent` header.
    #[arg(long)]
    pub traceparent: Option<String>,

    /// Print the jobs as NDJSON on stdout and publish nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Publish without declaring the topology first (for users without
    /// configure permission, or to test routing).
    #[arg(long)]
    pub no_declare: bool,

    /// Publisher settings.
    #[command(flatten)]
    pub publish: PublishArgs,
}

/// How many publishes may await their confirm, and for how long.
#[derive(Debug, Clone, Copy, Args)]
pub struct PublishArgs {
    /// How long to wait for the broker to confirm one publish.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub confirm_timeout: Duration,

    /// Most publishes awaiting their confirm at once.
    #[arg(long, default_value = "1000")]
    pub max_in_flight: NonZeroUsize,
}

/// The `dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// A table of dead letters (read-only); `--json` for one object per line.
    List(ListArgs),
    /// Everything about the dead letters of one job id (read-only).
    Show(ShowArgs),
    /// NDJSON that `ingestctl enqueue -` takes back (read-only).
    Export(ExportArgs),
    /// Move chosen dead letters back to the work queue.
    Replay(ReplayArgs),
    /// Delete chosen dead letters; needs --yes.
    Purge(PurgeArgs),
}

/// Criteria that pick dead letters; all given criteria must hold.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Only this device (repeat for any of several); `?` matches bodies that do not decode.
    #[arg(long = "device", value_name = "DEVICE")]
    pub devices: Vec<String>,

    /// Only this error class.
    #[arg(long, value_enum)]
    pub class: Option<ErrorClass>,

    /// Only errors containing this text (case-insensitive).
    #[arg(long)]
    pub error_contains: Option<String>,

    /// Only dead letters whose last failure is older than this (e.g. `2h`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Option<Duration>,

    /// Only dead letters whose last failure is newer than this (e.g. `30m`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub newer_than: Option<Duration>,

    /// At most this many dead letters, in queue order.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// How the dead-letter queue is read.
#[derive(Debug, Clone, Copy, Args)]
pub struct ReadArgs {
    /// Stop reading when no message arrived for this long, even if fewer than
    /// the queue's count arrived (another reader holds some).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub read_idle_timeout: Duration,
}

/// Flags of `dlq list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Which dead letters.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// One JSON object per line (body plus headers) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Reading settings.
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Flags of `dlq show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Job id (the message id, or the body's `job_id`).
    pub job_id: String,
    /// One JSON object per matching dead letter instead of text.
    #[arg(long)]
    pub json: bool,
    /// Reading settings.
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Flags of `dlq export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which dead letters.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Reading settings.
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Flags of `dlq replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Job ids to replay.
    pub job_ids: Vec<String>,
    /// Replay every dead letter.
    #[arg(long)]
    pub all: bool,
    /// Which dead letters, when no ids are given.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Remove the attempt header so the job starts over at attempt 1 (the default).
    #[arg(long, overrides_with = "keep_attempts")]
    pub reset_attempts: bool,
    /// Keep the attempt header `x-ingest-attempt` as it was.
    #[arg(long, overrides_with = "reset_attempts")]
    pub keep_attempts: bool,
    /// Say what would move, move nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Publisher settings.
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Reading settings.
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Flags of `dlq purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Job ids to delete.
    pub job_ids: Vec<String>,
    /// Delete every dead letter.
    #[arg(long)]
    pub all: bool,
    /// Which dead letters, when no ids are given.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Confirm the deletion; without it nothing is deleted (exit 2).
    #[arg(long)]
    pub yes: bool,
    /// Reading settings.
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Flags of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The `topology` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// Declare the exchange, every queue and binding (idempotent).
    Apply,
    /// Compare the broker's objects with the expected ones; exit 3 on any difference.
    Check(CheckArgs),
}

/// Flags of `topology check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses RFC 3339, or a plain `YYYY-MM-DD` meaning midnight UTC.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        .ok_or_else(|| {
            format!("{text:?} is neither RFC 3339 (2026-12-01T00:00:00Z) nor a date (2026-12-01)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn plain_dates_mean_midnight_utc() {
        let time = parse_time("2026-12-01").unwrap();
        assert_eq!(time.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        let offset = parse_time("2026-12-01T01:00:00+01:00").unwrap();
        assert_eq!(offset, time);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn enqueue_takes_devices_in_order_and_defaults() {
        let cli = Cli::try_parse_from([
            "ingestctl",
            "enqueue",
            "--device",
            "b",
            "--device",
            "a",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-02",
        ])
        .unwrap();
        let Command::Enqueue(args) = cli.command else {
            panic!("not enqueue");
        };
        assert_eq!(args.devices, ["b", "a"]);
        assert_eq!(args.window, Duration::from_secs(3600));
        assert_eq!(args.publish.max_in_flight.get(), 1000);
        assert_eq!(cli.global.retry_delays.len(), 4);
    }

    #[test]
    fn enqueue_stdin_excludes_range_flags() {
        assert!(Cli::try_parse_from(["ingestctl", "enqueue", "-"]).is_ok());
        assert!(Cli::try_parse_from(["ingestctl", "enqueue", "-", "--device", "a"]).is_err());
        assert!(Cli::try_parse_from(["ingestctl", "enqueue", "x"]).is_err());
        assert!(Cli::try_parse_from(["ingestctl", "enqueue"]).is_err());
    }

    #[test]
    fn global_flags_may_follow_the_subcommand_and_hide_the_password() {
        let cli = Cli::try_parse_from([
            "ingestctl",
            "status",
            "--prefix",
            "t-",
            "--retry-delays",
            "1s,2m",
            "--management-password",
            "hunter2",
        ])
        .unwrap();
        assert_eq!(cli.global.prefix, "t-");
        assert_eq!(
            cli.global.retry_delays,
            [Duration::from_secs(1), Duration::from_secs(120)]
        );
        assert!(!format!("{cli:?}").contains("hunter2"));
        assert!(!format!("{cli:?}").contains("guest:guest"));
    }

    #[test]
    fn keep_attempts_turns_reset_off() {
        let cli = Cli::try_parse_from(["ingestctl", "dlq", "replay", "--all", "--keep-attempts"])
            .unwrap();
        let Command::Dlq(DlqCommand::Replay(args)) = cli.command else {
            panic!("not replay");
        };
        assert!(args.keep_attempts && args.all);
    }
}
