//! `ingest-worker`: parses its settings, starts logging and runs the worker.

use std::process::ExitCode;

use clap::Parser;
use ingest_worker::config::WorkerConfig;

#[tokio::main]
async fn main() -> ExitCode {
    let config = WorkerConfig::parse();
    ingest_shared::telemetry::init(config.log_format, "info");
    match ingest_worker::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "worker failed");
            eprintln!("ingest-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}
