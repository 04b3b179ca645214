//! The worker draining a queue filled before it starts: the scenario behind
//! the per-job overhead, the readings throughput, the scale-out, the slow
//! TSDB and the memory figures.

use std::time::{Duration, Instant};

use anyhow::bail;
use ingest_shared::IngestJob;

use crate::cpu::{CpuMeter, CpuUse};
use crate::fleet::{WorkerCounters, WorkerProcess, WorkerSpec, tail, total_counters};
use crate::scenarios::Bench;

/// How often the workers' counters are read while they drain.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One drain: which jobs, how many workers, which prefetch, which TSDB.
#[derive(Debug, Clone)]
pub struct DrainRun {
    /// Names the topology prefix and the log files.
    pub label: String,
    /// Worker processes.
    pub workers: usize,
    /// `--prefetch` of each worker.
    pub prefetch: u16,
    /// The jobs, enqueued before any worker starts.
    pub jobs: Vec<IngestJob>,
    /// Where the workers write.
    pub tsdb_write_url: String,
    /// Longest the drain may take.
    pub timeout: Duration,
}

/// What a drain measured.
#[derive(Debug, Clone)]
pub struct Drained {
    /// Jobs settled per second, from the first settlement to the last.
    pub jobs_per_second: f64,
    /// Readings fetched per second over the same window.
    pub readings_per_second: f64,
    /// Counters summed over the workers at the end.
    pub counters: WorkerCounters,
    /// Peak resident set of each worker, in MiB.
    pub peak_rss_mib: Vec<f64>,
    /// CPU per component, from the workers' start to the last settlement.
    pub cpu: CpuUse,
}

/// Enqueues the jobs under a fresh prefix, starts the workers, waits until
/// every job is settled, stops the workers and deletes the queues, also
/// when something failed.
pub async fn drain(bench: &Bench, run: &DrainRun) -> anyhow::Result<Drained> {
    let prefix = format!("bench-{}-{}.", bench.run_id, run.label);
    let topology = bench.broker.declare(&prefix).await?;
    let result = async {
        bench.broker.fill(&topology, &run.jobs).await?;
        let mut workers = Vec::with_capacity(run.workers);
        for index in 0..run.workers {
            let log = bench.log_dir.join(format!("{}-w{index}.log", run.label));
            workers.push(
                WorkerProcess::start(&bench.bin_dir, &bench.worker_spec(&prefix, run), log).await?,
            );
        }
        let measured = measure(bench, run, &mut workers).await;
        futures_util::future::join_all(workers.into_iter().map(WorkerProcess::stop)).await;
        measured
    }
    .await;
    bench.broker.remove(&topology).await;
    result
}

async fn measure(
    bench: &Bench,
    run: &DrainRun,
    workers: &mut [WorkerProcess],
) -> anyhow::Result<Drained> {
    let pids: Vec<u32> = workers.iter().map(|w| w.pid).collect();
    let meter = CpuMeter::new(bench.sim_pid, &pids);
    let before = meter.sample();
    let started = Instant::now();
    let jobs = run.jobs.len() as u64;
    let mut first: Option<(Instant, u64)> = None;

    let (ended, counters) = loop {
        let counters = total_counters(workers, &bench.http).await?;
        let now = Instant::now();
        if first.is_none() && counters.settled > 0 {
            first = Some((now, counters.settled));
        }
        if counters.settled >= jobs {
            break (now, counters);
        }
        if now.duration_since(started) > run.timeout {
            bail!(
                "{}: {} of {jobs} jobs settled after {:?}; worker log ends with:\n{}",
                run.label,
                counters.settled,
                run.timeout,
                log_tail(&workers[0])
            );
        }
        for worker in workers.iter_mut() {
            if worker.has_exited() {
                bail!(
                    "{}: a worker exited while draining:\n{}",
                    run.label,
                    log_tail(worker)
                );
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let cpu = meter.sample().since(&before);
    let peak_rss_mib = workers
        .iter()
        .map(|w| w.peak_rss_kib().unwrap_or(0) as f64 / 1024.0)
        .collect();

    // The rate runs from the first settlement seen to the last, so that
    // process start and broker connection stay out of it.
    let jobs_per_second = match first {
        Some((at, settled)) if settled < jobs && ended > at => {
            (jobs - settled) as f64 / ended.duration_since(at).as_secs_f64()
        }
        _ => jobs as f64 / ended.duration_since(started).as_secs_f64().max(1e-9),
    };
    Ok(Drained {
        jobs_per_second,
        readings_per_second: counters.readings as f64 * jobs_per_second / jobs.max(1) as f64,
        counters,
        peak_rss_mib,
        cpu,
    })
}

fn log_tail(worker: &WorkerProcess) -> String {
    tail(&std::fs::read_to_string(&worker.log).unwrap_or_default(), 8)
}

impl Bench {
    /// The worker settings of a drain under `prefix`.
    pub fn worker_spec(&self, prefix: &str, run: &DrainRun) -> WorkerSpec {
        WorkerSpec {
            prefix: prefix.to_owned(),
            amqp_url: self.config.amqp_url.expose().to_owned(),
            factory_url: self.sim_url.clone(),
            tsdb_write_url: run.tsdb_write_url.clone(),
            prefetch: run.prefetch,
            batch_points: self.sizes.batch_points,
            page_limit: self.sizes.page_limit,
        }
    }
}
