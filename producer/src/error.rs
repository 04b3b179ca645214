//! Everything a command can fail with, and the process exit code each
//! failure maps to.

use ingest_shared::ContractError;
use ingest_shared::topology::TopologyError;
use ingest_shared::window::WindowError;

use crate::management::ManagementError;

/// How `ingestctl` exits; `docs/operations.md` documents the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the command did what was asked.
    Ok,
    /// 1: the command failed (broker, network, a publish that was not
    /// confirmed, a dead letter that was not found).
    Failure,
    /// 2: bad usage or input, or a refused destructive command; nothing was done.
    Usage,
    /// 3: the fleet is unhealthy or the broker's topology differs from the expected one.
    Unhealthy,
}

impl Exit {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Unhealthy => 3,
        }
    }
}

/// Why a command failed. Each variant names the object it failed on.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The command line asks for something impossible or refused.
    #[error("{0}")]
    Usage(String),
    /// A line of NDJSON input is not a valid job.
    #[error("line {line} of standard input is not a valid job")]
    InvalidLine {
        /// 1-based line number.
        line: usize,
        /// The contract rule the line breaks.
        #[source]
        source: ContractError,
    },
    /// A job built from the arguments breaks the contract.
    #[error("the job for device {device:?} from {start} to {end} is invalid")]
    InvalidJob {
        /// Device as given.
        device: String,
        /// Window start, canonical form.
        start: String,
        /// Window end, canonical form.
        end: String,
        /// The contract rule the job breaks.
        #[source]
        source: ContractError,
    },
    /// `--from`, `--to` and `--window` give no windows.
    #[error("the requested range cannot be split into windows")]
    InvalidRange(#[source] WindowError),
    /// Reading standard input failed.
    #[error("reading standard input failed")]
    Stdin(#[source] std::io::Error),
    /// Writing to standard output failed (e.g. a closed pipe).
    #[error("writing to standard output failed")]
    Output(#[source] std::io::Error),
    /// The broker could not be reached.
    #[error("connecting to RabbitMQ at {url} failed")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// What the client reported.
        #[source]
        source: lapin::Error,
    },
    /// A broker operation failed.
    #[error("{action} failed")]
    Broker {
        /// What was being done, e.g. `declaring queue t-ingest.dead`.
        action: String,
        /// What the broker or client reported.
        #[source]
        source: lapin::Error,
    },
    /// Declaring the topology failed.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The management API failed.
    #[error(transparent)]
    Management(#[from] ManagementError),
    /// Some messages were returned, nacked or not confirmed.
    #[error("{} of {total} messages were not published:\n{}", .failures.len(), .failures.join("\n"))]
    NotPublished {
        /// How many were attempted.
        total: usize,
        /// One line per failed message: job id, device and reason.
        failures: Vec<String>,
    },
    /// No dead letter carries the job id asked for.
    #[error("no dead letter with job id {0} in {1}")]
    NotFound(String, String),
}

impl CtlError {
    /// The exit code this failure maps to.
    pub fn exit_code(&self) -> Exit {
        match self {
            CtlError::Usage(_)
            | CtlError::InvalidLine { .. }
            | CtlError::InvalidJob { .. }
            | CtlError::InvalidRange(_) => Exit::Usage,
            _ => Exit::Failure,
        }
    }
}

/// Maps a client error to [`CtlError::Broker`] naming the action.
pub fn broker(action: impl Into<String>) -> impl FnOnce(lapin::Error) -> CtlError {
    let action = action.into();
    move |source| CtlError::Broker { action, source }
}
