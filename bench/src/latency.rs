//! Enqueue → ack latency at a paced rate. Each job has a device of its own;
//! the worker writes through a proxy that forwards to the real TSDB and
//! notes when the TSDB accepted each device's points. The worker acks in the
//! same task right after that answer, so the stamp is the ack's time less
//! one frame written to a local socket.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::broker::{publish, settle};
use crate::drain::DrainRun;
use crate::fleet::{WorkerProcess, tail};
use crate::plan::JobPlan;
use crate::proxy::{ProxyMode, TsdbProxy};
use crate::scenarios::Bench;
use crate::stats::percentile_of_sorted;

/// Longest wait, after the last publish, for every job to be written.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The latencies of one paced run.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Jobs measured.
    pub jobs: usize,
    /// The rate they were published at, per second.
    pub rate: f64,
}

/// Publishes jobs of `readings` readings at `rate` per second for `seconds`
/// to one running worker and measures each from publish to its write.
pub async fn paced(
    bench: &Bench,
    plan: &JobPlan,
    rate: f64,
    seconds: f64,
    readings: i64,
) -> anyhow::Result<Latencies> {
    let proxy =
        TsdbProxy::start(ProxyMode::Stamp(format!("{}/write", bench.config.tsdb_url))).await?;
    let label = "latency".to_owned();
    let prefix = format!("bench-{}-{label}.", bench.run_id);
    let topology = bench.broker.declare(&prefix).await?;
    let run = DrainRun {
        label,
        workers: 1,
        prefetch: bench.sizes.readings_prefetch,
        jobs: Vec::new(),
        tsdb_write_url: proxy.write_url(),
        timeout: SETTLE_TIMEOUT,
    };
    let result = async {
        let log = bench.log_dir.join("latency-w0.log");
        let worker =
            WorkerProcess::start(&bench.bin_dir, &bench.worker_spec(&prefix, &run), log).await?;
        let measured =
            publish_and_wait(bench, plan, &topology, &proxy, rate, seconds, readings).await;
        let measured = measured.map_err(|err| {
            let log = std::fs::read_to_string(&worker.log).unwrap_or_default();
            err.context(format!("worker log ends with:\n{}", tail(&log, 8)))
        });
        worker.stop().await;
        measured
    }
    .await;
    bench.broker.remove(&topology).await;
    result
}

async fn publish_and_wait(
    bench: &Bench,
    plan: &JobPlan,
    topology: &ingest_shared::Topology,
    proxy: &TsdbProxy,
    rate: f64,
    seconds: f64,
    readings: i64,
) -> anyhow::Result<Latencies> {
    let channel = bench.broker.publisher().await?;
    let count = ((rate * seconds).ceil() as usize).max(5);
    let mut published = HashMap::with_capacity(count);
    let mut confirms = FuturesUnordered::new();
    let start = tokio::time::Instant::now();
    for index in 0..count {
        tokio::time::sleep_until(start + Duration::from_secs_f64(index as f64 / rate)).await;
        let job = plan.solo_job(index, readings);
        published.insert(job.device.clone(), Instant::now());
        confirms.push(publish(&channel, topology, &job).await?);
    }
    while let Some(confirm) = confirms.next().await {
        settle(Some(confirm))?;
    }

    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let latencies = loop {
        let answered: HashMap<String, Instant> = proxy
            .writes()
            .into_iter()
            .filter_map(|w| Some((w.device?, w.answered)))
            .collect();
        let mut latencies: Vec<f64> = published
            .iter()
            .filter_map(|(device, at)| {
                let done = answered.get(device)?;
                Some(done.duration_since(*at).as_secs_f64() * 1000.0)
            })
            .collect();
        if latencies.len() == count {
            latencies.sort_by(f64::total_cmp);
            break latencies;
        }
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} paced jobs were written",
                latencies.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = channel.close(200, "paced".into()).await;
    Ok(Latencies {
        p50_ms: percentile_of_sorted(&latencies, 50.0),
        p99_ms: percentile_of_sorted(&latencies, 99.0),
        jobs: count,
        rate,
    })
}
