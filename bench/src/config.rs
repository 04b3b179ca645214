//! The harness's settings, and the sizes of a full run and of a `--quick`
//! one. Every scenario's size lives in [`Sizes`], so the doc can print them.

use std::path::PathBuf;

use clap::Parser;
use ingest_shared::SecretUrl;
use serde::Serialize;

/// Measures the ingestion fleet against the broker's and the TSDB's
/// ceilings. Expects RabbitMQ and VictoriaMetrics up (`scripts/services`)
/// and release builds of `ingest-worker` and `factory-sim` in `--bin-dir`.
#[derive(Debug, Clone, Parser)]
#[command(name = "ingest-bench")]
pub struct BenchConfig {
    /// Tiny sizes, one run, no plot and no doc: proves the harness works in
    /// a few seconds. Missed targets are reported but never fail it.
    #[arg(long)]
    pub quick: bool,

    /// Runs of every scenario; each figure is their median. Default: 3, or 1
    /// with `--quick`.
    #[arg(long, env = "BENCH_RUNS")]
    pub runs: Option<u32>,

    /// Folder holding the release `ingest-worker` and `factory-sim`.
    #[arg(long, env = "BENCH_BIN_DIR", default_value = "target/release")]
    pub bin_dir: PathBuf,

    /// Folder of the JSON results and the processes' logs (git-ignored).
    #[arg(long, env = "BENCH_OUT_DIR", default_value = "bench-results")]
    pub out_dir: PathBuf,

    /// The doc whose generated section a full run rewrites.
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub doc: PathBuf,

    /// The plot a full run draws.
    #[arg(long, default_value = "docs/benchmarks.png")]
    pub plot: PathBuf,

    /// TrueType font of the plot's text (Debian: `fonts-dejavu-core`).
    #[arg(
        long,
        env = "BENCH_FONT",
        default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    )]
    pub font: PathBuf,

    /// AMQP URL of the broker.
    #[arg(
        long,
        env = "BENCH_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: SecretUrl,

    /// Base URL of the RabbitMQ management API (for its version only).
    #[arg(
        long,
        env = "BENCH_MANAGEMENT_URL",
        default_value = "http://127.0.0.1:15672"
    )]
    pub management_url: String,

    /// Only these scenarios, comma-separated (for profiling one at a time):
    /// broker, empty, tsdb, readings, scale, slow, memory, latency. The
    /// latency run paces at half of `readings` when that ran, else at
    /// `--latency-rate`. Default: all.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,

    /// Jobs per second of the latency run when `readings` is not run.
    #[arg(long, default_value_t = 50.0)]
    pub latency_rate: f64,

    /// Base URL of VictoriaMetrics; writes go to `<url>/write`.
    #[arg(long, env = "BENCH_TSDB_URL", default_value = "http://127.0.0.1:8428")]
    pub tsdb_url: String,
}

impl BenchConfig {
    /// Whether the scenario named `name` is to run.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == name)
    }

    /// The sizes of this run.
    pub fn sizes(&self) -> Sizes {
        let mut sizes = if self.quick {
            Sizes::quick()
        } else {
            Sizes::full()
        };
        if let Some(runs) = self.runs {
            sizes.runs = runs.max(1);
        }
        sizes
    }
}

/// How much work each scenario does. Prefetch is also the TSDB ceiling's
/// concurrency, so that both sides have the same work in flight.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Repetitions of every scenario.
    pub runs: u32,
    /// (1) Messages the no-op consumer drains.
    pub broker_messages: usize,
    /// (1) and (2): prefetch of the no-op consumer and of the worker.
    pub empty_prefetch: u16,
    /// (2) Jobs whose range holds no reading.
    pub empty_jobs: usize,
    /// (3), (4), (6), (7): worker prefetch and TSDB ceiling concurrency.
    pub readings_prefetch: u16,
    /// (3), (4), (6): jobs of 3,600 readings.
    pub reading_jobs: usize,
    /// Points per TSDB write, for the worker and the TSDB ceiling.
    pub batch_points: u32,
    /// Readings per factory API page.
    pub page_limit: u32,
    /// (5) Jobs in flight (worker prefetch) behind the slow TSDB.
    pub slow_in_flight: Vec<u16>,
    /// (5) Jobs per level, in multiples of the level's in-flight count.
    pub slow_waves: usize,
    /// (5) Readings per job behind the slow TSDB (one write each).
    pub slow_job_readings: i64,
    /// (8) Prefetch of the memory run behind the slow TSDB.
    pub memory_prefetch: u16,
    /// (8) Jobs of 3,600 readings in the memory run.
    pub memory_jobs: usize,
    /// (6) Worker processes.
    pub workers: Vec<usize>,
    /// (7) Seconds of paced publishing per run.
    pub latency_seconds: f64,
    /// The slow TSDB's answer time, in milliseconds.
    pub slow_write_ms: u64,
}

impl Sizes {
    /// A full run: about three to six minutes on two cores.
    pub fn full() -> Self {
        Self {
            runs: 3,
            broker_messages: 50_000,
            empty_prefetch: 256,
            empty_jobs: 20_000,
            readings_prefetch: 32,
            reading_jobs: 240,
            batch_points: 5_000,
            page_limit: 1_000,
            slow_in_flight: vec![1, 16, 64, 256],
            slow_waves: 4,
            slow_job_readings: 60,
            memory_prefetch: 256,
            memory_jobs: 512,
            workers: vec![1, 2, 4],
            latency_seconds: 8.0,
            slow_write_ms: 500,
        }
    }

    /// A `--quick` run: every scenario once, tiny, to prove the harness.
    pub fn quick() -> Self {
        Self {
            runs: 1,
            broker_messages: 2_000,
            empty_prefetch: 256,
            empty_jobs: 500,
            readings_prefetch: 32,
            reading_jobs: 6,
            batch_points: 5_000,
            page_limit: 1_000,
            slow_in_flight: vec![1, 16],
            slow_waves: 2,
            slow_job_readings: 60,
            memory_prefetch: 32,
            memory_jobs: 32,
            workers: vec![1, 2],
            latency_seconds: 1.5,
            slow_write_ms: 500,
        }
    }
}
