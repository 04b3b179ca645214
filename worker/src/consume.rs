//! The consumer: one broker session at a time, reconnecting forever with
//! backoff. A session declares the topology, consumes with manual acks and a
//! prefetch, runs each delivery as its own task, pauses while a circuit is
//! open, and drains on shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::StreamExt;
use ingest_shared::{IngestJob, broker, headers};
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::Worker;
use crate::disposition::{Disposer, Fate, attempt_of};
use crate::error::{Dependency, JobError};
use crate::settle::Settler;

/// How long a draining worker keeps its channel open after the last ack.
const ACK_DRAIN_PAUSE: Duration = Duration::from_millis(500);

/// Why a session ended without a drain.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The connection or a channel was lost; reconnecting may help.
    #[error("broker session lost: {0}")]
    Lost(String),
    /// The broker holds a topology that would lose messages; reconnecting
    /// cannot help, an operator must act.
    #[error("the broker's topology does not match the fleet's")]
    Topology(#[source] ingest_shared::topology::TopologyError),
}

/// Runs sessions until shutdown, reconnecting after every loss.
pub async fn run(worker: Arc<Worker>, shutdown: CancellationToken) -> Result<(), SessionError> {
    let mut backoff = reconnect_backoff();
    let mut first = true;
    loop {
        if !first {
            metrics::counter!("ingest_broker_reconnects_total").increment(1);
        }
        first = false;
        let started = Instant::now();
        match session(&worker, &shutdown).await {
            Ok(()) => return Ok(()),
            Err(err @ SessionError::Topology(_)) => return Err(err),
            Err(SessionError::Lost(reason)) => {
                worker.readiness.set(false);
                // A session that lived a while earns a fresh backoff.
                if started.elapsed() > Duration::from_secs(30) {
                    backoff = reconnect_backoff();
                }
                let wait = backoff.next().unwrap_or(Duration::from_secs(30));
                tracing::warn!(%reason, ?wait, "broker session lost; reconnecting");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build()
}

fn lost(context: &str) -> impl FnOnce(lapin::Error) -> SessionError + '_ {
    move |err| SessionError::Lost(format!("{context}: {err}"))
}

async fn session(worker: &Arc<Worker>, shutdown: &CancellationToken) -> Result<(), SessionError> {
    let connection = broker::connect(&worker.amqp_url, &worker.worker_id)
        .await
        .map_err(lost("connecting"))?;

    // Declaring on a channel of its own: a refused declaration closes it.
    let setup = connection
        .create_channel()
        .await
        .map_err(lost("opening a channel"))?;
    if let Err(err) = worker.topology.declare(&setup).await {
        if is_precondition_failed(&err.source) {
            return Err(SessionError::Topology(err));
        }
        return Err(SessionError::Lost(format!("{err}: {}", err.source)));
    }
    let _ = setup.close(200, "topology declared".into()).await;

    let publish = connection
        .create_channel()
        .await
        .map_err(lost("opening a channel"))?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(lost("enabling confirms"))?;

    let consume = connection
        .create_channel()
        .await
        .map_err(lost("opening a channel"))?;
    consume
        .basic_qos(worker.prefetch, BasicQosOptions::default())
        .await
        .map_err(lost("setting the prefetch"))?;
    let disposer = Arc::new(Disposer {
        publish,
        settler: Settler::spawn(consume.clone()),
        topology: worker.topology.clone(),
        worker_id: worker.worker_id.clone(),
        max_attempts: worker.max_attempts,
    });

    let mut run = Session {
        worker: worker.clone(),
        connection,
        consume,
        disposer,
        tracker: TaskTracker::new(),
        hard_stop: CancellationToken::new(),
    };
    let result = run.consume_until_stopped(shutdown).await;
    run.hard_stop.cancel();
    result
}

struct Session {
    worker: Arc<Worker>,
    connection: Connection,
    consume: Channel,
    disposer: Arc<Disposer>,
    tracker: TaskTracker,
    hard_stop: CancellationToken,
}

impl Session {
    async fn consume_until_stopped(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        let mut circuit = self.worker.circuits.watch();
        loop {
            let mut consumer = self.start_consumer().await?;
            self.worker.readiness.set(true);
            tracing::info!(queue = %self.worker.topology.work_queue(), "consuming");

            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => {
                        self.drain(consumer).await;
                        return Ok(());
                    }
                    changed = circuit.changed() => {
                        if changed.is_ok() && *circuit.borrow_and_update() {
                            break;
                        }
                    }
                    delivery = consumer.next() => match delivery {
                        Some(Ok(delivery)) => self.spawn_job(delivery),
                        Some(Err(err)) => return Err(SessionError::Lost(format!("consumer failed: {err}"))),
                        None => return Err(SessionError::Lost("the broker cancelled the consumer".into())),
                    },
                }
            }

            // A circuit is open: stop taking work until the dependency answers.
            self.worker.readiness.set(false);
            self.stop_consumer(consumer).await?;
            if !self.wait_for_dependencies(shutdown).await {
                self.finish_in_flight().await;
                return Ok(());
            }
        }
    }

    async fn start_consumer(&self) -> Result<Consumer, SessionError> {
        self.consume
            .basic_consume(
                self.worker.topology.work_queue().as_str().into(),
                consumer_tag(&self.worker.worker_id).as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(lost("starting the consumer"))
    }

    /// Cancels the consumer and returns deliveries that arrive after the cancel.
    async fn stop_consumer(&self, mut consumer: Consumer) -> Result<(), SessionError> {
        let tag = consumer.tag();
        self.consume
            .basic_cancel(tag.clone(), BasicCancelOptions::default())
            .await
            .map_err(lost("cancelling the consumer"))?;
        // Deliveries already on the wire when the broker took the cancel still
        // arrive; they go back untouched.
        while let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_millis(200), consumer.next()).await
        {
            let settler = &self.disposer.settler;
            settler.delivered(delivery.delivery_tag);
            let _ = settler.requeue(delivery.delivery_tag).await;
        }
        Ok(())
    }

    /// Probes every open dependency with backoff until all answer. Returns
    /// false when shutdown came first.
    async fn wait_for_dependencies(&self, shutdown: &CancellationToken) -> bool {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(Duration::from_secs(15))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            for dependency in self.worker.circuits.open_dependencies() {
                if self.worker.probe(dependency).await {
                    self.worker.circuits.close(dependency);
                }
            }
            if self.worker.circuits.open_dependencies().is_empty() {
                return true;
            }
            let wait = backoff.next().unwrap_or(Duration::from_secs(15));
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn spawn_job(&self, delivery: lapin::message::Delivery) {
        self.disposer.settler.delivered(delivery.delivery_tag);
        let worker = self.worker.clone();
        let disposer = self.disposer.clone();
        let hard_stop = self.hard_stop.clone();
        let attempt = attempt_of(&delivery);
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string());
        let traceparent =
            headers::get_str(delivery.properties.headers().as_ref(), headers::TRACEPARENT)
                .map(str::to_owned);
        let trace_id = traceparent
            .as_deref()
            .and_then(|tp| tp.split('-').nth(1))
            .map(str::to_owned);
        let span = tracing::info_span!(
            "job",
            job_id = message_id.as_deref().unwrap_or("?"),
            device = tracing::field::Empty,
            attempt,
            delivery_tag = delivery.delivery_tag,
            traceparent = traceparent.as_deref(),
            trace_id = trace_id.as_deref(),
        );
        self.tracker.spawn(
            async move {
                let started = Instant::now();
                metrics::gauge!("ingest_jobs_in_flight").increment(1.0);
                let fate = handle(&worker, &disposer, &hard_stop, &delivery, attempt).await;
                metrics::gauge!("ingest_jobs_in_flight").decrement(1.0);
                let (outcome, class) = fate.labels();
                metrics::counter!("ingest_jobs_total", "outcome" => outcome, "class" => class)
                    .increment(1);
                metrics::histogram!("ingest_job_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            .instrument(span),
        );
    }

    /// Stops consuming, lets in-flight jobs finish within the grace period,
    /// returns the rest untouched, and closes the connection.
    async fn drain(&self, consumer: Consumer) {
        self.worker.readiness.set(false);
        tracing::info!(grace = ?self.worker.grace_period, "draining");
        if let Err(err) = self.stop_consumer(consumer).await {
            tracing::warn!(error = %err, "could not cancel the consumer while draining");
        }
        self.finish_in_flight().await;
        // RabbitMQ 3.10 holds back a channel's acks to a quorum queue while
        // many of its commands await consensus and drops them on close; the
        // jobs would be redelivered (harmless, but wasted work). A short
        // pause lets that backlog drain before the channel goes.
        tokio::time::sleep(ACK_DRAIN_PAUSE).await;
        let _ = self.consume.close(200, "worker draining".into()).await;
        let _ = self.connection.close(200, "worker draining".into()).await;
        tracing::info!("drained");
    }

    async fn finish_in_flight(&self) {
        self.tracker.close();
        if tokio::time::timeout(self.worker.grace_period, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                unfinished = self.tracker.len(),
                "grace period over; returning unfinished jobs to the queue"
            );
            self.hard_stop.cancel();
            // Returning a delivery is one frame; give them a moment to go out.
            let _ = tokio::time::timeout(Duration::from_secs(3), self.tracker.wait()).await;
        }
    }
}

/// Works one delivery to its fate. The ingest step may be cut short by
/// `hard_stop` (the job then goes back untouched); settling never is, so a
/// half-made move cannot happen.
async fn handle(
    worker: &Worker,
    disposer: &Disposer,
    hard_stop: &CancellationToken,
    delivery: &lapin::message::Delivery,
    attempt: u32,
) -> Fate {
    let job = match IngestJob::decode(&delivery.data, &worker.limits) {
        Ok(job) => job,
        Err(err) => return disposer.fail(delivery, attempt, &JobError::from(err)).await,
    };
    tracing::Span::current().record("device", job.device.as_str());

    let result = tokio::select! {
        biased;
        _ = hard_stop.cancelled() => return disposer.requeue(delivery).await,
        result = worker.pipeline.ingest(&job) => result,
    };
    match result {
        Ok(report) => {
            worker.circuits.record_success();
            tracing::debug!(
                readings = report.readings,
                points = report.points,
                "job ingested"
            );
            disposer.ack(delivery).await
        }
        Err(err) => {
            if let Some(dependency) = err.outage_of()
                && worker.circuits.record_outage(dependency)
            {
                tracing::warn!(
                    dependency = dependency.as_str(),
                    error = %err.chain(),
                    "dependency down; job returned to the queue without using an attempt"
                );
                return disposer.requeue(delivery).await;
            }
            disposer.fail(delivery, attempt, &err).await
        }
    }
}

fn consumer_tag(worker_id: &str) -> String {
    format!(
        "ingest-worker:{worker_id}:{}",
        uuid::Uuid::new_v4().simple()
    )
}

fn is_precondition_failed(err: &lapin::Error) -> bool {
    matches!(err.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == 406)
}

impl Worker {
    /// Whether a dependency answers its health URL.
    pub async fn probe(&self, dependency: Dependency) -> bool {
        let url = match dependency {
            Dependency::Factory => &self.factory_health_url,
            Dependency::Tsdb => &self.tsdb_health_url,
        };
        crate::fetch::probe(&self.probe_http, url).await
    }
}
