//! `ingestctl`: parses the command line, starts logging and runs the command.

use std::process::ExitCode;

use clap::Parser;
use ingest_producer::Cli;

/// Log filter when `RUST_LOG` is unset: a CLI stays quiet unless asked.
const DEFAULT_LOG_FILTER: &str = "warn";

fn main() -> ExitCode {
    let cli = Cli::parse();
    ingest_shared::telemetry::init(cli.global.log_format, DEFAULT_LOG_FILTER);

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            let err = anyhow::Error::new(err).context("starting the async runtime failed");
            eprintln!("error: {err:?}");
            return ExitCode::from(ingest_producer::Exit::Failure.code());
        }
    };
    match runtime.block_on(ingest_producer::run(cli)) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            let code = err.exit_code();
            // The anyhow Debug form prints the whole `Caused by:` chain.
            eprintln!("error: {:?}", anyhow::Error::new(err));
            ExitCode::from(code.code())
        }
    }
}
