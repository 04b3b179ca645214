//! One repetition of every scenario, in the order of the list, each
//! recording its figures. Repetitions interleave the scenarios, so a slow
//! spell on the shared machine touches every figure alike.

use std::path::PathBuf;
use std::time::Duration;

use crate::broker::Broker;
use crate::ceiling::{Throughput, broker_ceiling, tsdb_ceiling};
use crate::config::{BenchConfig, Sizes};
use crate::cpu::{Component, CpuUse};
use crate::drain::{DrainRun, Drained, drain};
use crate::fleet::Sim;
use crate::latency;
use crate::plan::JobPlan;
use crate::proxy::{ProxyMode, TsdbProxy};
use crate::stats::Samples;

/// Readings in one hour at one per second: the size of a typical job.
pub const HOUR_READINGS: i64 = 3_600;

/// Longest any single drain may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// What every scenario shares.
pub struct Bench {
    /// The harness's settings.
    pub config: BenchConfig,
    /// The sizes of this run.
    pub sizes: Sizes,
    /// Short random id naming this run's queues and devices.
    pub run_id: String,
    /// The harness's broker connection.
    pub broker: Broker,
    /// Client for `/metrics` scrapes.
    pub http: reqwest::Client,
    /// The simulator's base URL.
    pub sim_url: String,
    /// The simulator's process id.
    pub sim_pid: u32,
    /// Where the binaries are.
    pub bin_dir: PathBuf,
    /// Where processes write their logs.
    pub log_dir: PathBuf,
}

impl Bench {
    /// Connects to the broker; the simulator is already running.
    pub async fn new(config: &BenchConfig, sizes: Sizes, sim: &Sim) -> anyhow::Result<Self> {
        Ok(Self {
            broker: Broker::connect(&config.amqp_url).await?,
            config: config.clone(),
            sizes,
            run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            http: reqwest::Client::new(),
            sim_url: sim.base_url.clone(),
            sim_pid: sim.pid,
            bin_dir: config.bin_dir.clone(),
            log_dir: config.out_dir.join("logs"),
        })
    }

    /// Closes the broker connection.
    pub async fn close(self) {
        self.broker.close().await;
    }

    /// Every repetition of every scenario.
    pub async fn run_all(&self, samples: &mut Samples) -> anyhow::Result<()> {
        for repetition in 0..self.sizes.runs {
            eprintln!("bench: run {} of {}", repetition + 1, self.sizes.runs);
            self.repetition(repetition, samples).await?;
        }
        Ok(())
    }

    async fn repetition(&self, rep: u32, samples: &mut Samples) -> anyhow::Result<()> {
        let wants = |name| self.config.wants(name);
        let broker = match wants("broker") {
            true => Some(self.broker_ceiling(rep, samples).await?),
            false => None,
        };
        if wants("empty") {
            let empty = self.per_job_overhead(rep, samples).await?;
            if let Some(broker) = broker {
                samples.push("ratio_empty_to_broker", empty / broker);
            }
        }

        let tsdb = match wants("tsdb") {
            true => Some(self.tsdb_ceiling(rep, samples).await?),
            false => None,
        };
        let readings = match wants("readings") {
            true => Some(self.readings(rep, samples).await?),
            false => None,
        };
        if let (Some(tsdb), Some(readings)) = (tsdb, &readings) {
            samples.push(
                "ratio_readings_to_tsdb",
                readings.readings_per_second / tsdb,
            );
        }

        if wants("scale") {
            self.scale_out(rep, samples, readings.as_ref()).await?;
        }
        if wants("slow") {
            self.slow_tsdb(rep, samples).await?;
        }
        if wants("memory") {
            self.memory(rep, samples).await?;
        }
        if wants("latency") {
            let saturated = readings.map_or(2.0 * self.config.latency_rate, |r| r.jobs_per_second);
            self.latency(rep, samples, saturated).await?;
        }
        Ok(())
    }

    /// (1) The broker alone: a no-op consumer with per-message acks.
    async fn broker_ceiling(&self, rep: u32, samples: &mut Samples) -> anyhow::Result<f64> {
        step("(1) broker ceiling");
        let jobs = JobPlan::new(&self.run_id, "broker", rep).empty_jobs(self.sizes.broker_messages);
        let prefix = format!("bench-{}-broker-r{rep}.", self.run_id);
        let result = broker_ceiling(self, &prefix, &jobs, self.sizes.empty_prefetch).await?;
        samples.push("broker_msgs_per_s", result.per_second);
        record_cpu(samples, "broker", &result.cpu, result.units);
        Ok(result.per_second)
    }

    /// (2) The worker on jobs with nothing to write.
    async fn per_job_overhead(&self, rep: u32, samples: &mut Samples) -> anyhow::Result<f64> {
        step("(2) per-job overhead");
        let jobs = JobPlan::new(&self.run_id, "empty", rep).empty_jobs(self.sizes.empty_jobs);
        let drained = self
            .drain(
                format!("empty-r{rep}"),
                1,
                self.sizes.empty_prefetch,
                jobs,
                None,
            )
            .await?;
        samples.push("empty_jobs_per_s", drained.jobs_per_second);
        record_cpu(samples, "empty", &drained.cpu, drained.counters.settled);
        Ok(drained.jobs_per_second)
    }

    /// (3) The TSDB alone, fed the worker's own bodies.
    async fn tsdb_ceiling(&self, rep: u32, samples: &mut Samples) -> anyhow::Result<f64> {
        step("(3) TSDB ceiling");
        let jobs = JobPlan::new(&self.run_id, "tsdb", rep)
            .reading_jobs(self.sizes.reading_jobs, HOUR_READINGS);
        let concurrency = usize::from(self.sizes.readings_prefetch);
        let result: Throughput = tsdb_ceiling(self, &jobs, concurrency).await?;
        samples.push("tsdb_points_per_s", result.per_second);
        record_cpu(samples, "tsdb", &result.cpu, result.units);
        Ok(result.per_second)
    }

    /// (4) The worker on one-hour jobs, end to end; also (6) at one worker.
    async fn readings(&self, rep: u32, samples: &mut Samples) -> anyhow::Result<Drained> {
        step("(4) readings throughput");
        let jobs = JobPlan::new(&self.run_id, "readings", rep)
            .reading_jobs(self.sizes.reading_jobs, HOUR_READINGS);
        let prefetch = self.sizes.readings_prefetch;
        let drained = self
            .drain(format!("readings-r{rep}"), 1, prefetch, jobs, None)
            .await?;
        samples.push("readings_per_s", drained.readings_per_second);
        samples.push("rss_mib_readings", max(&drained.peak_rss_mib));
        record_cpu(samples, "readings", &drained.cpu, drained.counters.readings);
        Ok(drained)
    }

    /// (6) Several worker processes on the jobs of (4).
    async fn scale_out(
        &self,
        rep: u32,
        samples: &mut Samples,
        one: Option<&Drained>,
    ) -> anyhow::Result<()> {
        for &workers in &self.sizes.workers {
            let drained = if let (1, Some(one)) = (workers, one) {
                one.clone()
            } else {
                step(&format!("(6) scale-out, {workers} workers"));
                let jobs = JobPlan::new(&self.run_id, &format!("scale{workers}"), rep)
                    .reading_jobs(self.sizes.reading_jobs, HOUR_READINGS);
                let prefetch = self.sizes.readings_prefetch;
                let label = format!("scale{workers}-r{rep}");
                self.drain(label, workers, prefetch, jobs, None).await?
            };
            samples.push(
                format!("scale_readings_per_s_w{workers}"),
                drained.readings_per_second,
            );
            samples.push(
                format!("scale_rss_mib_w{workers}"),
                max(&drained.peak_rss_mib),
            );
            samples.push(
                format!("scale_busy_cores_w{workers}"),
                drained.cpu.busy_cores(),
            );
            record_cpu(
                samples,
                &format!("scale{workers}"),
                &drained.cpu,
                drained.counters.readings,
            );
        }
        Ok(())
    }

    /// (5) Writes per second behind a TSDB that answers after 500 ms, at
    /// each in-flight level; jobs are small so that only waiting is measured.
    async fn slow_tsdb(&self, rep: u32, samples: &mut Samples) -> anyhow::Result<()> {
        for &in_flight in &self.sizes.slow_in_flight {
            step(&format!("(5) slow TSDB, {in_flight} in flight"));
            let count = (usize::from(in_flight) * self.sizes.slow_waves).max(4);
            let jobs = JobPlan::new(&self.run_id, &format!("slow{in_flight}"), rep)
                .reading_jobs(count, self.sizes.slow_job_readings);
            let (drained, writes_per_second) = self
                .drain_slow(format!("slow{in_flight}-r{rep}"), in_flight, jobs)
                .await?;
            let ideal = f64::from(in_flight) / self.slow_write_seconds();
            samples.push(format!("slow_writes_per_s_{in_flight}"), writes_per_second);
            samples.push(
                format!("slow_efficiency_{in_flight}"),
                writes_per_second / ideal,
            );
            samples.push(
                format!("slow_rss_mib_{in_flight}"),
                max(&drained.peak_rss_mib),
            );
        }
        Ok(())
    }

    /// (8) Peak memory at the largest prefetch with one-hour jobs behind the
    /// slow TSDB, where every job in flight holds a whole batch.
    async fn memory(&self, rep: u32, samples: &mut Samples) -> anyhow::Result<()> {
        let prefetch = self.sizes.memory_prefetch;
        step(&format!(
            "(8) memory, prefetch {prefetch}, one-hour jobs, slow TSDB"
        ));
        let jobs = JobPlan::new(&self.run_id, "memory", rep)
            .reading_jobs(self.sizes.memory_jobs, HOUR_READINGS);
        let (drained, writes_per_second) = self
            .drain_slow(format!("memory-r{rep}"), prefetch, jobs)
            .await?;
        samples.push("memory_rss_mib", max(&drained.peak_rss_mib));
        samples.push("memory_writes_per_s", writes_per_second);
        samples.push("memory_busy_cores", drained.cpu.busy_cores());
        record_cpu(samples, "memory", &drained.cpu, drained.counters.readings);
        Ok(())
    }

    /// (7) Enqueue → ack at half the rate (4) sustained in this repetition.
    async fn latency(&self, rep: u32, samples: &mut Samples, saturated: f64) -> anyhow::Result<()> {
        step("(7) latency at half saturation");
        let plan = JobPlan::new(&self.run_id, "latency", rep);
        let rate = (saturated / 2.0).max(1.0);
        let measured =
            latency::paced(self, &plan, rate, self.sizes.latency_seconds, HOUR_READINGS).await?;
        samples.push("latency_rate_jobs_per_s", measured.rate);
        samples.push("latency_p50_ms", measured.p50_ms);
        samples.push("latency_p99_ms", measured.p99_ms);
        samples.push("latency_jobs", measured.jobs as f64);
        Ok(())
    }

    async fn drain(
        &self,
        label: String,
        workers: usize,
        prefetch: u16,
        jobs: Vec<ingest_shared::IngestJob>,
        tsdb_write_url: Option<String>,
    ) -> anyhow::Result<Drained> {
        let run = DrainRun {
            label,
            workers,
            prefetch,
            jobs,
            tsdb_write_url: tsdb_write_url
                .unwrap_or_else(|| format!("{}/write", self.config.tsdb_url)),
            timeout: DRAIN_TIMEOUT,
        };
        drain(self, &run).await
    }

    /// A drain behind the slow proxy; writes per second are the proxy's:
    /// writes answered over the time from the first write's arrival to the
    /// last answer.
    async fn drain_slow(
        &self,
        label: String,
        prefetch: u16,
        jobs: Vec<ingest_shared::IngestJob>,
    ) -> anyhow::Result<(Drained, f64)> {
        let delay = Duration::from_millis(self.sizes.slow_write_ms);
        let proxy = TsdbProxy::start(ProxyMode::Slow(delay)).await?;
        let drained = self
            .drain(label, 1, prefetch, jobs, Some(proxy.write_url()))
            .await?;
        let writes = proxy.writes();
        let first = writes.iter().map(|w| w.arrived).min();
        let last = writes.iter().map(|w| w.answered).max();
        let per_second = match (first, last) {
            (Some(first), Some(last)) if last > first => {
                writes.len() as f64 / last.duration_since(first).as_secs_f64()
            }
            _ => 0.0,
        };
        Ok((drained, per_second))
    }

    fn slow_write_seconds(&self) -> f64 {
        self.sizes.slow_write_ms as f64 / 1000.0
    }
}

/// CPU per component in milliseconds per 1,000 units, and busy cores.
fn record_cpu(samples: &mut Samples, scenario: &str, cpu: &CpuUse, units: u64) {
    let per_thousand = 1_000.0 / units.max(1) as f64;
    for component in Component::ALL {
        let ms = cpu.of(component) * 1_000.0 * per_thousand;
        samples.push(format!("cpu.{scenario}.{}", component.as_str()), ms);
    }
    samples.push(format!("cores.{scenario}"), cpu.busy_cores());
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

fn step(what: &str) {
    eprintln!("bench:   {what}");
}
