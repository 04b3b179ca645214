//! The broker side of a scenario: a topology under a prefix of its own,
//! filled with jobs before the consumers start, and deleted afterwards.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use ingest_shared::topology::{DEFAULT_RETRY_DELAYS, JOBS_ROUTING_KEY};
use ingest_shared::{IngestJob, SecretUrl, Topology, broker};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeleteOptions,
};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

/// Publishes whose confirms may be outstanding at once while filling.
const CONFIRM_WINDOW: usize = 2_000;

/// Longest wait for one confirm.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// The harness's own broker connection.
pub struct Broker {
    connection: Connection,
}

impl Broker {
    /// Connects to the broker at `url`.
    pub async fn connect(url: &SecretUrl) -> anyhow::Result<Self> {
        let connection = broker::connect(url, "ingest-bench")
            .await
            .with_context(|| format!("connecting to {url}"))?;
        Ok(Self { connection })
    }

    /// Declares the fleet's topology under `prefix`, with the delay tiers
    /// the worker declares by default (the two must agree).
    pub async fn declare(&self, prefix: &str) -> anyhow::Result<Topology> {
        let topology = Topology::new(prefix, &DEFAULT_RETRY_DELAYS);
        let channel = self.channel().await?;
        topology
            .declare(&channel)
            .await
            .with_context(|| format!("declaring the topology under {prefix:?}"))?;
        let _ = channel.close(200, "declared".into()).await;
        Ok(topology)
    }

    /// Publishes every job as the contract says (persistent, mandatory,
    /// confirmed) and returns once the broker confirmed them all.
    pub async fn fill(&self, topology: &Topology, jobs: &[IngestJob]) -> anyhow::Result<()> {
        let channel = self.publisher().await?;
        let mut pending = FuturesUnordered::new();
        for job in jobs {
            if pending.len() >= CONFIRM_WINDOW {
                settle(pending.next().await)?;
            }
            pending.push(publish(&channel, topology, job).await?);
        }
        while let Some(confirm) = pending.next().await {
            settle(Some(confirm))?;
        }
        let _ = channel.close(200, "filled".into()).await;
        Ok(())
    }

    /// A channel in confirm mode for paced publishing.
    pub async fn publisher(&self) -> anyhow::Result<Channel> {
        let channel = self.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling publisher confirms")?;
        Ok(channel)
    }

    /// Deletes the topology's queues and exchange; errors are ignored, as
    /// this also runs after failures.
    pub async fn remove(&self, topology: &Topology) {
        let Ok(channel) = self.channel().await else {
            return;
        };
        for queue in topology.queues() {
            let _ = channel
                .queue_delete(queue.name.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = channel
            .exchange_delete(
                topology.exchange().as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = channel.close(200, "removed".into()).await;
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self.connection.close(200, "bench done".into()).await;
    }

    async fn channel(&self) -> anyhow::Result<Channel> {
        self.connection
            .create_channel()
            .await
            .context("opening a channel")
    }
}

/// The confirm of one job in flight.
pub type PendingConfirm =
    std::pin::Pin<Box<dyn Future<Output = anyhow::Result<Confirmation>> + Send>>;

/// Publishes one job and returns its confirm, not yet awaited.
pub async fn publish(
    channel: &Channel,
    topology: &Topology,
    job: &IngestJob,
) -> anyhow::Result<PendingConfirm> {
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(job.job_id.to_string().into());
    let confirm = channel
        .basic_publish(
            topology.exchange().as_str().into(),
            JOBS_ROUTING_KEY.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &job.to_body(),
            properties,
        )
        .await
        .context("publishing a job")?;
    Ok(Box::pin(async move {
        tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
            .await
            .context("waiting for a publisher confirm")?
            .context("publisher confirm")
    }))
}

/// Fails unless the broker took the message.
pub fn settle(confirm: Option<anyhow::Result<Confirmation>>) -> anyhow::Result<()> {
    match confirm {
        None => Ok(()),
        Some(Ok(Confirmation::Ack(None))) => Ok(()),
        Some(Ok(other)) => bail!("the broker did not take a job: {other:?}"),
        Some(Err(err)) => Err(err),
    }
}
