//! The worker's settings: every one a flag with an environment fallback,
//! validated at start-up with an error that names the setting.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use ingest_shared::SecretUrl;
use ingest_shared::telemetry::LogFormat;

/// Consumes ingestion jobs from RabbitMQ, fetches each device's readings from
/// the factory API and writes them to the time-series database.
#[derive(Debug, Clone, Parser)]
#[command(name = "ingest-worker", version)]
pub struct WorkerConfig {
    /// AMQP URL of the broker. The password is redacted in every log line.
    #[arg(
        long,
        env = "INGEST_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: SecretUrl,

    /// Prefix of every exchange and queue name, so tenants and tests can
    /// share one broker.
    #[arg(long, env = "INGEST_PREFIX", default_value = "")]
    pub prefix: String,

    /// Base URL of the factory data API.
    #[arg(
        long,
        env = "INGEST_FACTORY_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub factory_url: SecretUrl,

    /// URL the factory API answers health probes on while its circuit is
    /// open. Default: `<factory-url>/healthz`.
    #[arg(long, env = "INGEST_FACTORY_HEALTH_URL")]
    pub factory_health_url: Option<SecretUrl>,

    /// InfluxDB line-protocol write endpoint of the TSDB. `precision=ms` is
    /// added to its query.
    #[arg(
        long,
        env = "INGEST_TSDB_WRITE_URL",
        default_value = "http://127.0.0.1:8428/write"
    )]
    pub tsdb_write_url: SecretUrl,

    /// URL the TSDB answers health probes on while its circuit is open.
    /// Default: `/health` on the write URL's host.
    #[arg(long, env = "INGEST_TSDB_HEALTH_URL")]
    pub tsdb_health_url: Option<SecretUrl>,

    /// Deliveries the broker hands this worker before it acks; also the most
    /// jobs it works on at once.
    #[arg(long, env = "INGEST_PREFETCH", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,

    /// Points per TSDB write request.
    #[arg(long, env = "INGEST_BATCH_POINTS", default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_points: u32,

    /// Readings asked for per factory API page (the API allows 1 to 10,000).
    #[arg(long, env = "INGEST_PAGE_LIMIT", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub page_limit: u32,

    /// Gzip TSDB write bodies.
    #[arg(long, env = "INGEST_TSDB_GZIP", default_value_t = true, action = clap::ArgAction::Set)]
    pub tsdb_gzip: bool,

    /// Time allowed to open a TCP connection to the factory API or the TSDB.
    #[arg(long, env = "INGEST_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// Time allowed for one factory API request, body included.
    #[arg(long, env = "INGEST_FETCH_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub fetch_timeout: Duration,

    /// Time allowed for one TSDB write request.
    #[arg(long, env = "INGEST_WRITE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub write_timeout: Duration,

    /// Longest a single call (one page, one write) keeps retrying inside one
    /// attempt, sleeps included, before the attempt fails.
    #[arg(long, env = "INGEST_CALL_RETRY_BUDGET", default_value = "8s", value_parser = humantime::parse_duration)]
    pub call_retry_budget: Duration,

    /// Attempts before a job that keeps failing transiently is dead-lettered.
    #[arg(long, env = "INGEST_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_attempts: u32,

    /// Delay tiers between attempts, in order; attempts past the last tier
    /// reuse it. Each tier is a broker-side queue, so every worker and
    /// `ingestctl` of one prefix must use the same list.
    #[arg(long, env = "INGEST_RETRY_DELAYS", value_delimiter = ',', value_parser = humantime::parse_duration, default_value = "5s,30s,2m,10m")]
    pub retry_delays: Vec<Duration>,

    /// How long SIGTERM waits for in-flight jobs before returning them to the
    /// queue. Keep it below the orchestrator's kill deadline (Kubernetes: 30 s).
    #[arg(long, env = "INGEST_GRACE_PERIOD", default_value = "25s", value_parser = humantime::parse_duration)]
    pub grace_period: Duration,

    /// Longest range one job may cover; longer jobs are dead-lettered.
    #[arg(long, env = "INGEST_MAX_SPAN", default_value = "7d", value_parser = humantime::parse_duration)]
    pub max_span: Duration,

    /// Consecutive failed jobs, blamed on one dependency, that open its circuit.
    #[arg(long, env = "INGEST_CIRCUIT_THRESHOLD", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub circuit_threshold: u32,

    /// Write the valid readings of a job and count the invalid ones instead
    /// of failing the whole job on the first invalid reading.
    #[arg(long, env = "INGEST_SKIP_INVALID_READINGS", default_value_t = false)]
    pub skip_invalid_readings: bool,

    /// Address of the HTTP listener for /healthz, /readyz and /metrics.
    #[arg(long, env = "INGEST_HTTP_ADDR", default_value = "127.0.0.1:9464")]
    pub http_addr: SocketAddr,

    /// This worker's id in logs and dead-letter headers. Default: host:pid.
    #[arg(long, env = "INGEST_WORKER_ID")]
    pub worker_id: Option<String>,

    /// Log format: `pretty` for people, `json` for log pipelines. The level
    /// filter comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "INGEST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

/// A setting that parsed but cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A URL setting is not an http(s) URL with a host.
    #[error("--{setting} must be an http:// or https:// URL with a host, got {url}")]
    NotHttp { setting: &'static str, url: String },
    /// No retry delay tiers although retries are allowed.
    #[error("--retry-delays must list at least one delay when --max-attempts is over 1")]
    NoRetryDelays,
    /// A delay tier is zero.
    #[error("--retry-delays must not contain a zero delay")]
    ZeroRetryDelay,
}

impl WorkerConfig {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (setting, url) in [
            ("factory-url", Some(&self.factory_url)),
            ("factory-health-url", self.factory_health_url.as_ref()),
            ("tsdb-write-url", Some(&self.tsdb_write_url)),
            ("tsdb-health-url", self.tsdb_health_url.as_ref()),
        ] {
            let Some(url) = url else { continue };
            let parsed = url::Url::parse(url.expose()).ok();
            let is_http = parsed
                .as_ref()
                .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !is_http {
                return Err(ConfigError::NotHttp {
                    setting,
                    url: url.to_string(),
                });
            }
        }
        if self.max_attempts > 1 && self.retry_delays.is_empty() {
            return Err(ConfigError::NoRetryDelays);
        }
        if self.retry_delays.iter().any(Duration::is_zero) {
            return Err(ConfigError::ZeroRetryDelay);
        }
        Ok(())
    }

    /// The worker id: the configured one, or `host:pid`.
    pub fn worker_id(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "worker".into());
            format!("{host}:{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ingest_shared::topology::DEFAULT_RETRY_DELAYS;

    fn parse(args: &[&str]) -> WorkerConfig {
        WorkerConfig::try_parse_from(std::iter::once("ingest-worker").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = parse(&[]);
        assert_eq!(config.prefetch, 32);
        assert_eq!(config.batch_points, 5000);
        assert_eq!(config.grace_period, Duration::from_secs(25));
        assert_eq!(config.retry_delays, DEFAULT_RETRY_DELAYS);
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains("guest:guest"));
    }

    #[test]
    fn a_non_http_tsdb_url_is_named() {
        let config = parse(&["--tsdb-write-url", "ftp://x/write"]);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("--tsdb-write-url"), "{err}");
    }

    #[test]
    fn retry_delays_parse_as_a_list() {
        let config = parse(&["--retry-delays", "100ms,1s"]);
        assert_eq!(
            config.retry_delays,
            [Duration::from_millis(100), Duration::from_secs(1)]
        );
    }
}
