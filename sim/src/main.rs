//! `factory-sim`: serves the simulated factory API until SIGTERM or SIGINT.

use anyhow::Context;
use clap::Parser;
use factory_sim::{FaultSettings, SimConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// A simulator of the factory data API with injectable faults.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SIM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Time between two readings of a device; a whole number of
    /// milliseconds, such as `1s` or `250ms`.
    #[arg(long, env = "SIM_INTERVAL", default_value = "1s")]
    #[arg(value_parser = humantime::parse_duration)]
    interval: Duration,

    /// Comma-separated device ids that exist; empty means every valid id.
    #[arg(long, env = "SIM_DEVICES", value_delimiter = ',')]
    devices: Vec<String>,

    /// Seed of the draws that decide which requests get a rate-based fault.
    #[arg(long, env = "SIM_SEED", default_value_t = 0)]
    seed: u64,

    /// Delay added to every reading request, such as `50ms`.
    #[arg(long, env = "SIM_LATENCY", default_value = "0s")]
    #[arg(value_parser = humantime::parse_duration)]
    latency: Duration,

    /// Fraction (0 to 1) of reading requests answering 500.
    #[arg(long, env = "SIM_ERROR_RATE", default_value_t = 0.0)]
    error_rate: f64,

    /// Fraction (0 to 1) of reading requests answering 429.
    #[arg(long, env = "SIM_RATE_LIMIT_RATE", default_value_t = 0.0)]
    rate_limit_rate: f64,

    /// `Retry-After` sent with an injected 429, in whole seconds, such as `2s`.
    #[arg(long, env = "SIM_RETRY_AFTER", default_value = "1s")]
    #[arg(value_parser = humantime::parse_duration)]
    retry_after: Duration,

    /// Fraction (0 to 1) of reading requests answering 200 with a non-JSON
    /// body.
    #[arg(long, env = "SIM_MALFORMED_RATE", default_value_t = 0.0)]
    malformed_rate: f64,

    /// Fraction (0 to 1) of reading requests answering 200 with half a JSON
    /// body.
    #[arg(long, env = "SIM_TRUNCATED_RATE", default_value_t = 0.0)]
    truncated_rate: f64,

    /// Delay between a page's headers and its body, such as `30s`.
    #[arg(long, env = "SIM_SLOW_BODY", default_value = "0s")]
    #[arg(value_parser = humantime::parse_duration)]
    slow_body: Duration,

    /// Answer every reading request with 503.
    #[arg(long, env = "SIM_OUTAGE")]
    outage: bool,
}

impl Args {
    fn into_config(self) -> anyhow::Result<SimConfig> {
        if self.retry_after.subsec_nanos() != 0 {
            anyhow::bail!(
                "--retry-after must be whole seconds, got {}",
                humantime::format_duration(self.retry_after)
            );
        }
        let faults = FaultSettings {
            latency_ms: millis("--latency", self.latency)?,
            error_rate: self.error_rate,
            rate_limit_rate: self.rate_limit_rate,
            retry_after_secs: self.retry_after.as_secs(),
            malformed_rate: self.malformed_rate,
            truncated_rate: self.truncated_rate,
            slow_body_ms: millis("--slow-body", self.slow_body)?,
            outage: self.outage,
        };
        Ok(SimConfig {
            interval: self.interval,
            devices: self.devices.into_iter().filter(|d| !d.is_empty()).collect(),
            faults,
            seed: self.seed,
        })
    }
}

fn millis(flag: &str, duration: Duration) -> anyhow::Result<u64> {
    u64::try_from(duration.as_millis()).with_context(|| format!("{flag} is too long"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();

    let listen = args.listen;
    let config = args.into_config()?;
    config.validate().context("invalid settings")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let devices = config.devices.len();
    let interval = humantime::format_duration(config.interval).to_string();
    tracing::info!(%addr, %interval, devices, "factory-sim listening");

    factory_sim::serve_with_shutdown(listener, config, shutdown_signal())
        .await
        .context("factory-sim stopped with an error")?;
    tracing::info!("factory-sim stopped");
    Ok(())
}

/// Completes on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                // Without a SIGTERM handler the process still stops on SIGINT.
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
