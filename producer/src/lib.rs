//! `ingestctl`, the operator CLI of the ingestion fleet, as a library the
//! thin binary calls.
//!
//! - [`cli`]: the command line — global settings and every subcommand.
//! - [`error`]: what can go wrong, and the exit code each failure maps to.
//! - [`plan`]: turning `enqueue` arguments or NDJSON input into validated jobs.
//! - [`publish`]: publishing with many publisher confirms in flight at once.
//! - [`enqueue`]: the `enqueue` command.
//! - [`dead_letter`]: one dead letter as read from the queue, and its views.
//! - [`select`]: which dead letters a command acts on (ids, `--all`, filters).
//! - [`hold`]: reading the dead-letter queue without changing it.
//! - [`history`]: the headers a replayed job carries back to the work queue.
//! - [`inspect`]: the read-only commands `dlq list`, `dlq show`, `dlq export`.
//! - [`replay`]: `dlq replay`, moving dead letters back to the work queue.
//! - [`purge`]: `dlq purge`, deleting dead letters.
//! - [`render`]: tables, colours and time formats for people and scripts.
//! - [`management`]: the RabbitMQ management HTTP API client.
//! - [`status`]: the `status` command.
//! - [`topology_check`]: `topology apply` and `topology check`.

pub mod cli;
pub mod dead_letter;
pub mod enqueue;
pub mod error;
pub mod history;
pub mod hold;
pub mod inspect;
pub mod management;
pub mod plan;
pub mod publish;
pub mod purge;
pub mod render;
pub mod replay;
pub mod select;
pub mod status;
pub mod topology_check;

use ingest_shared::{SecretUrl, Topology};
use lapin::Connection;

pub use cli::Cli;
pub use error::{CtlError, Exit};

/// Name under which `ingestctl` connections show in the broker's connection list.
pub const CONNECTION_NAME: &str = "ingestctl";

/// What every command needs from the global flags.
#[derive(Debug, Clone)]
pub struct Context {
    /// Broker URL; its password never reaches output or logs.
    pub amqp_url: SecretUrl,
    /// The fleet's exchange and queues under the configured prefix.
    pub topology: Topology,
    /// Where and how to reach the management API.
    pub management: management::ManagementConfig,
}

impl Context {
    /// Builds the context from the parsed global flags.
    pub fn from_cli(cli: &Cli) -> Self {
        let global = &cli.global;
        Self {
            amqp_url: global.amqp_url.clone(),
            topology: Topology::new(global.prefix.clone(), &global.retry_delays),
            management: management::ManagementConfig {
                base_url: global.management_url.clone(),
                user: global.management_user.clone(),
                password: global.management_password.clone(),
                amqp_url: global.amqp_url.clone(),
            },
        }
    }

    /// Opens a broker connection named [`CONNECTION_NAME`].
    pub async fn connect(&self) -> Result<Connection, CtlError> {
        ingest_shared::broker::connect(&self.amqp_url, CONNECTION_NAME)
            .await
            .map_err(|source| CtlError::Connect {
                url: self.amqp_url.to_string(),
                source,
            })
    }
}

/// Runs the parsed command and returns how the process should exit.
pub async fn run(cli: Cli) -> Result<Exit, CtlError> {
    let context = Context::from_cli(&cli);
    match cli.command {
        cli::Command::Enqueue(args) => enqueue::run(&context, args).await,
        cli::Command::Dlq(command) => match command {
            cli::DlqCommand::List(args) => inspect::list(&context, args).await,
            cli::DlqCommand::Show(args) => inspect::show(&context, args).await,
            cli::DlqCommand::Export(args) => inspect::export(&context, args).await,
            cli::DlqCommand::Replay(args) => replay::run(&context, args).await,
            cli::DlqCommand::Purge(args) => purge::run(&context, args).await,
        },
        cli::Command::Status(args) => status::run(&context, args).await,
        cli::Command::Topology(command) => match command {
            cli::TopologyCommand::Apply => topology_check::apply(&context).await,
            cli::TopologyCommand::Check(args) => topology_check::check(&context, args).await,
        },
    }
}
