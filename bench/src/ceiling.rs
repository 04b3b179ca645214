//! The ceilings the fleet is measured against, taken without the worker:
//! the broker drained by a consumer that does nothing but ack, and the TSDB
//! fed pre-encoded batches by a client that does nothing but post them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use backon::ExponentialBuilder;
use futures_util::StreamExt;
use ingest_shared::{IngestJob, broker};
use ingest_worker::fetch::{FactoryClient, PageBudget};
use ingest_worker::store::{Batch, TsdbWriter};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::task::JoinSet;
use url::Url;

use crate::cpu::{CpuMeter, CpuUse};
use crate::scenarios::Bench;

/// Longest wait for the next delivery before the run is declared stuck.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A rate and the CPU it took.
#[derive(Debug, Clone)]
pub struct Throughput {
    /// Units (messages, points) per second.
    pub per_second: f64,
    /// Units done.
    pub units: u64,
    /// CPU per component over the measurement.
    pub cpu: CpuUse,
}

/// Drains `jobs` from a fresh queue with a consumer that acks each delivery
/// in a task of its own, as the worker does, and nothing else.
pub async fn broker_ceiling(
    bench: &Bench,
    prefix: &str,
    jobs: &[IngestJob],
    prefetch: u16,
) -> anyhow::Result<Throughput> {
    let topology = bench.broker.declare(prefix).await?;
    let result = async {
        bench.broker.fill(&topology, jobs).await?;
        consume_and_ack(bench, &topology.work_queue(), jobs.len(), prefetch).await
    }
    .await;
    bench.broker.remove(&topology).await;
    result
}

async fn consume_and_ack(
    bench: &Bench,
    queue: &str,
    messages: usize,
    prefetch: u16,
) -> anyhow::Result<Throughput> {
    let connection = broker::connect(&bench.config.amqp_url, "ingest-bench:no-op-consumer")
        .await
        .context("connecting the no-op consumer")?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let meter = CpuMeter::new(bench.sim_pid, &[]);
    let before = meter.sample();
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "ingest-bench:no-op".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("starting the no-op consumer")?;

    let mut acks = JoinSet::new();
    let mut first = None;
    for received in 0..messages {
        let delivery = match tokio::time::timeout(DELIVERY_TIMEOUT, consumer.next()).await {
            Ok(Some(Ok(delivery))) => delivery,
            Ok(Some(Err(err))) => return Err(err).context("the no-op consumer failed"),
            Ok(None) => bail!("the broker cancelled the no-op consumer"),
            Err(_) => bail!("no delivery for {DELIVERY_TIMEOUT:?} after {received}"),
        };
        first.get_or_insert_with(Instant::now);
        acks.spawn(async move { delivery.ack(BasicAckOptions::default()).await });
        // Finished acks are reaped as we go so the set stays small.
        while let Some(done) = acks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = acks.join_next().await {
        done??;
    }
    let elapsed = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let cpu = meter.sample().since(&before);
    let _ = connection.close(200, "drained".into()).await;
    Ok(Throughput {
        per_second: messages as f64 / elapsed.max(1e-9),
        units: messages as u64,
        cpu,
    })
}

/// Writes the points of `jobs` straight to the TSDB, `concurrency` writes at
/// a time. The bodies are fetched and encoded beforehand by the worker's own
/// client and encoder, batch for batch as the worker would send them; only
/// the writes are timed.
pub async fn tsdb_ceiling(
    bench: &Bench,
    jobs: &[IngestJob],
    concurrency: usize,
) -> anyhow::Result<Throughput> {
    let bodies = encode_like_the_worker(bench, jobs).await?;
    let points: usize = bodies.iter().map(|(_, points)| points).sum();
    let url = format!("{}/write?precision=ms", bench.config.tsdb_url);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()?;

    let meter = CpuMeter::new(bench.sim_pid, &[]);
    let before = meter.sample();
    let started = Instant::now();
    let mut writes = futures_util::stream::iter(bodies)
        .map(|(body, _)| {
            let request = http
                .post(&url)
                .header("content-encoding", "gzip")
                .timeout(Duration::from_secs(30))
                .body(body);
            async move { request.send().await?.error_for_status() }
        })
        .buffer_unordered(concurrency);
    while let Some(result) = writes.next().await {
        result.context("writing to the TSDB")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Throughput {
        per_second: points as f64 / elapsed.max(1e-9),
        units: points as u64,
        cpu: meter.sample().since(&before),
    })
}

/// The worker's write bodies for `jobs`: pages fetched and encoded by its
/// factory client, appended to batches by its TSDB writer, cut at the same
/// size.
async fn encode_like_the_worker(
    bench: &Bench,
    jobs: &[IngestJob],
) -> anyhow::Result<Vec<(bytes::Bytes, usize)>> {
    let factory = FactoryClient::new(
        reqwest::Client::new(),
        Url::parse(&bench.sim_url)?,
        bench.sizes.page_limit,
        ExponentialBuilder::default(),
        Arc::new(PageBudget::new(1, 1)),
    );
    let write_url = Url::parse(&format!("{}/write", bench.config.tsdb_url))?;
    let writer = TsdbWriter::new(
        reqwest::Client::new(),
        &write_url,
        true,
        ExponentialBuilder::default(),
    );
    let batch_points = bench.sizes.batch_points as usize;
    let mut bodies = Vec::new();
    for job in jobs {
        let mut batch = Batch::default();
        let mut cursor: Option<String> = None;
        loop {
            let page = factory
                .fetch_page(&job.device, job.start, job.end, cursor.as_deref())
                .await?;
            writer.append(&mut batch, &page.lines, page.summary.points as usize)?;
            if batch.points() >= batch_points {
                bodies.push(batch.take());
            }
            match page.summary.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if !batch.is_empty() {
            bodies.push(batch.take());
        }
    }
    Ok(bodies)
}
