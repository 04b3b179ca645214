//! What operators and orchestrators see of a worker: `/healthz`, `/readyz`
//! and `/metrics` (Prometheus text format) on one HTTP listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Whether the worker is consuming; shared by the consumer loop and `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the worker ready (consuming) or not (connecting, paused, draining).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Whether the worker is consuming.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Installs the process-wide Prometheus recorder. Call once, before any
/// metric is touched.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("ingest_job_duration_seconds".into()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ],
        )?
        .install_recorder()?;
    describe_metrics();
    Ok(handle)
}

fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "ingest_jobs_total",
        "Jobs settled, by outcome and error class"
    );
    describe_histogram!(
        "ingest_job_duration_seconds",
        Unit::Seconds,
        "Time from delivery to settlement"
    );
    describe_counter!(
        "ingest_readings_fetched_total",
        "Readings received from the factory API"
    );
    describe_counter!("ingest_points_written_total", "Points the TSDB accepted");
    describe_counter!(
        "ingest_ack_frames_total",
        "Ack frames sent; fewer than acked jobs when runs are folded into one"
    );
    describe_counter!(
        "ingest_readings_invalid_total",
        "Readings that could not become points"
    );
    describe_counter!(
        "ingest_fetch_errors_total",
        "Failed factory API calls, by class"
    );
    describe_counter!("ingest_write_errors_total", "Failed TSDB writes, by class");
    describe_gauge!("ingest_jobs_in_flight", "Jobs being worked on");
    describe_gauge!(
        "ingest_circuit_open",
        "1 while the dependency's circuit is open"
    );
    describe_counter!(
        "ingest_broker_reconnects_total",
        "Broker sessions started after a loss"
    );
}

/// Serves the endpoints until `stop` fires. The listener is bound by the
/// caller so that a port taken is a start-up error.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    readiness: Readiness,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(move || std::future::ready(metrics.render())),
        )
        .with_state(readiness);
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, &'static str) {
    if readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Binds the listener, naming the address when it is taken.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on --http-addr {addr}"))
}
