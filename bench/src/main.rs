//! `ingest-bench`: parses its flags and runs the benchmark.

use std::process::ExitCode;

use clap::Parser;
use ingest_bench::config::BenchConfig;

#[tokio::main]
async fn main() -> ExitCode {
    let config = BenchConfig::parse();
    let quick = config.quick;
    match ingest_bench::run(config).await {
        Ok(outcome) if outcome.missed_targets > 0 && !quick => {
            eprintln!(
                "ingest-bench: {} target(s) missed; see the table above",
                outcome.missed_targets
            );
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ingest-bench: the harness failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}
