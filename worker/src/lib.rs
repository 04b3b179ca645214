//! The ingestion worker: consumes jobs from RabbitMQ, fetches each device's
//! readings from the factory API, writes them to the TSDB, and settles the
//! delivery only once the data is stored.
//!
//! The modules follow a job through the worker:
//! - [`config`]: settings, from flags and environment.
//! - [`consume`]: broker sessions, reconnects, pausing and draining.
//! - [`fetch`]: the factory API client, with retries inside an attempt.
//! - [`transform`]: readings to InfluxDB line protocol.
//! - [`store`]: batched, compressed TSDB writes.
//! - [`process`]: one job through fetch, transform and store.
//! - [`disposition`]: ack, retry through a delay queue, dead-letter, requeue.
//! - [`settle`]: the consume channel's acks and nacks, runs folded into one.
//! - [`circuit`]: pausing while a dependency is down.
//! - [`error`]: what failed, and whether it is worth retrying.
//! - [`observe`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`shutdown`]: turning SIGTERM and SIGINT into a drain.

pub mod circuit;
pub mod config;
pub mod consume;
pub mod disposition;
pub mod error;
pub mod fetch;
pub mod observe;
pub mod process;
pub mod settle;
pub mod shutdown;
pub mod store;
pub mod transform;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ingest_shared::{Limits, SecretUrl, Topology};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::circuit::Circuits;
use crate::config::WorkerConfig;
use crate::fetch::{FactoryClient, PageBudget};
use crate::observe::Readiness;
use crate::process::Pipeline;
use crate::store::TsdbWriter;

/// Bytes of one reading in a factory page, for sizing the page budget
/// before the first page has been seen (the legacy shape with three
/// measurements takes about 290).
const READING_BYTES: usize = 300;

/// Everything a worker's sessions and jobs share.
#[derive(Debug)]
pub struct Worker {
    /// Broker URL (password redacted when printed).
    pub amqp_url: SecretUrl,
    /// This worker's id in logs and dead letters.
    pub worker_id: String,
    /// The fleet's exchange and queues.
    pub topology: Topology,
    /// Deliveries in flight at most.
    pub prefetch: u16,
    /// Attempts before a transient failure is dead-lettered.
    pub max_attempts: u32,
    /// Time a drain waits for in-flight jobs.
    pub grace_period: Duration,
    /// Contract limits applied to every job.
    pub limits: Limits,
    /// Fetch, transform and store.
    pub pipeline: Pipeline,
    /// Circuit breakers of the factory API and the TSDB.
    pub circuits: Circuits,
    /// What `/readyz` reports.
    pub readiness: Readiness,
    /// Probed while the factory API's circuit is open.
    pub factory_health_url: Url,
    /// Probed while the TSDB's circuit is open.
    pub tsdb_health_url: Url,
    /// Client for probes, with short timeouts.
    pub probe_http: reqwest::Client,
}

impl Worker {
    /// Builds the worker's shared parts from its configuration.
    pub fn new(config: &WorkerConfig, readiness: Readiness) -> anyhow::Result<Self> {
        config.validate()?;
        let factory_url = parse_url(&config.factory_url, "factory-url")?;
        let tsdb_write_url = parse_url(&config.tsdb_write_url, "tsdb-write-url")?;
        let factory_health_url = match &config.factory_health_url {
            Some(url) => parse_url(url, "factory-health-url")?,
            None => factory_url.join("healthz")?,
        };
        let tsdb_health_url = match &config.tsdb_health_url {
            Some(url) => parse_url(url, "tsdb-health-url")?,
            None => tsdb_write_url.join("/health")?,
        };

        // One pooled client per dependency, shared by every job: connections
        // are reused across jobs, and each call is bounded by its timeout.
        let fetch_http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.fetch_timeout)
            .pool_max_idle_per_host(usize::from(config.prefetch).max(8))
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let write_http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.write_timeout)
            .pool_max_idle_per_host(usize::from(config.prefetch).max(8))
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let probe_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .context("building the HTTP client")?;

        let retry = fetch::call_retry_policy(config.call_retry_budget);
        // Pages in flight are bounded in bytes: as many full pages as two per
        // core (parsing is what they wait for), or many more small ones.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let full_page = config.page_limit as usize * READING_BYTES;
        let page_budget = PageBudget::new(cores * 2 * full_page, full_page);
        let pipeline = Pipeline {
            factory: FactoryClient::new(
                fetch_http,
                factory_url,
                config.page_limit,
                retry,
                Arc::new(page_budget),
            ),
            tsdb: TsdbWriter::new(write_http, &tsdb_write_url, config.tsdb_gzip, retry),
            batch_points: config.batch_points as usize,
            skip_invalid_readings: config.skip_invalid_readings,
        };

        Ok(Self {
            amqp_url: config.amqp_url.clone(),
            worker_id: config.worker_id(),
            topology: Topology::new(config.prefix.clone(), &config.retry_delays),
            prefetch: config.prefetch,
            max_attempts: config.max_attempts,
            grace_period: config.grace_period,
            limits: Limits {
                max_span: config.max_span,
            },
            pipeline,
            circuits: Circuits::new(config.circuit_threshold),
            readiness,
            factory_health_url,
            tsdb_health_url,
            probe_http,
        })
    }
}

fn parse_url(url: &SecretUrl, setting: &str) -> anyhow::Result<Url> {
    Url::parse(url.expose()).with_context(|| format!("--{setting} is not a URL: {url}"))
}

/// Runs a worker until SIGTERM or SIGINT has drained it.
pub async fn run(config: WorkerConfig) -> anyhow::Result<()> {
    let metrics = observe::install_metrics()?;
    let readiness = Readiness::default();
    let worker = Arc::new(Worker::new(&config, readiness.clone())?);
    let listener = observe::bind(config.http_addr).await?;
    let http_addr = listener.local_addr()?;
    tracing::info!(
        worker_id = %worker.worker_id,
        amqp_url = %worker.amqp_url,
        %http_addr,
        prefetch = worker.prefetch,
        "worker starting"
    );

    let shutdown = CancellationToken::new();
    shutdown::listen(shutdown.clone())?;
    let http_stop = CancellationToken::new();
    let http = tokio::spawn(observe::serve(
        listener,
        metrics,
        readiness,
        http_stop.clone(),
    ));

    let result = consume::run(worker, shutdown).await;
    http_stop.cancel();
    let _ = http.await;
    result.context("the worker stopped")
}
