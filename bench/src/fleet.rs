//! The processes under test: one `factory-sim` per bench run and the
//! `ingest-worker`s of each scenario. Each writes its log to a file of its
//! own; its address is read from its start-up line. Children are killed when
//! dropped, so a harness that fails leaves none behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// Longest wait for a process to name its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest wait for a process to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The factory API simulator.
pub struct Sim {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Its base URL, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
}

impl Sim {
    /// Starts `factory-sim` on an ephemeral loopback port, one reading per
    /// second.
    pub async fn start(bin_dir: &Path, log_dir: &Path) -> anyhow::Result<Self> {
        let log = log_dir.join("factory-sim.log");
        let mut command = Command::new(bin_dir.join("factory-sim"));
        command
            .args(["--listen", "127.0.0.1:0", "--interval", "1s"])
            .env("RUST_LOG", "warn,factory_sim=info");
        let (child, pid) = spawn(command, &log)?;
        let mut sim = Self {
            child,
            pid,
            base_url: String::new(),
        };
        let addr = wait_for_address(&mut sim.child, &log, "factory-sim listening").await?;
        sim.base_url = format!("http://{addr}");
        Ok(sim)
    }

    /// Stops it with SIGTERM, killing it when it does not exit in time.
    pub async fn stop(mut self) {
        terminate(&mut self.child, self.pid).await;
    }
}

/// How a worker process is started.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The scenario's topology prefix.
    pub prefix: String,
    /// AMQP URL of the broker.
    pub amqp_url: String,
    /// Base URL of the factory API.
    pub factory_url: String,
    /// Write URL of the TSDB (or of the harness's proxy).
    pub tsdb_write_url: String,
    /// `--prefetch`.
    pub prefetch: u16,
    /// `--batch-points`.
    pub batch_points: u32,
    /// `--page-limit`.
    pub page_limit: u32,
}

/// One running `ingest-worker`.
pub struct WorkerProcess {
    child: Child,
    /// Its process id.
    pub pid: u32,
    metrics_url: String,
    /// Its log file.
    pub log: PathBuf,
}

/// What a worker's `/metrics` counted so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerCounters {
    /// Jobs settled, whatever their fate.
    pub settled: u64,
    /// Jobs acked after ingesting.
    pub acked: u64,
    /// Readings fetched from the factory API.
    pub readings: u64,
    /// Points the TSDB accepted.
    pub points: u64,
}

impl WorkerCounters {
    fn add(&mut self, other: WorkerCounters) {
        self.settled += other.settled;
        self.acked += other.acked;
        self.readings += other.readings;
        self.points += other.points;
    }
}

impl WorkerProcess {
    /// Starts a worker and waits until it serves `/metrics`. Logs are JSON at
    /// the worker's default level (`info`), as in production.
    pub async fn start(bin_dir: &Path, spec: &WorkerSpec, log: PathBuf) -> anyhow::Result<Self> {
        let mut command = Command::new(bin_dir.join("ingest-worker"));
        command
            .arg("--amqp-url")
            .arg(&spec.amqp_url)
            .arg("--prefix")
            .arg(&spec.prefix)
            .arg("--factory-url")
            .arg(&spec.factory_url)
            .arg("--tsdb-write-url")
            .arg(&spec.tsdb_write_url)
            .arg("--prefetch")
            .arg(spec.prefetch.to_string())
            .arg("--batch-points")
            .arg(spec.batch_points.to_string())
            .arg("--page-limit")
            .arg(spec.page_limit.to_string())
            .args(["--http-addr", "127.0.0.1:0", "--log-format", "json"])
            .args(["--grace-period", "5s"])
            .env_remove("RUST_LOG");
        let (mut child, pid) = spawn(command, &log)?;
        let addr = wait_for_address(&mut child, &log, "worker starting").await?;
        Ok(Self {
            child,
            pid,
            metrics_url: format!("http://{addr}/metrics"),
            log,
        })
    }

    /// Reads the worker's counters.
    pub async fn counters(&self, http: &reqwest::Client) -> anyhow::Result<WorkerCounters> {
        let text = http
            .get(&self.metrics_url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("scraping {}", self.metrics_url))?
            .text()
            .await?;
        Ok(parse_counters(&text))
    }

    /// Peak resident set (`VmHWM`) so far, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Whether the process has exited (it should not, before it is stopped).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Drains it with SIGTERM, killing it when it does not exit in time.
    pub async fn stop(mut self) {
        terminate(&mut self.child, self.pid).await;
    }
}

/// The counters of several workers, summed.
pub async fn total_counters(
    workers: &[WorkerProcess],
    http: &reqwest::Client,
) -> anyhow::Result<WorkerCounters> {
    let reads = workers.iter().map(|w| w.counters(http));
    let mut total = WorkerCounters::default();
    for counters in futures_util::future::join_all(reads).await {
        total.add(counters?);
    }
    Ok(total)
}

fn parse_counters(text: &str) -> WorkerCounters {
    let mut counters = WorkerCounters::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let value = value as u64;
        if name.starts_with("ingest_jobs_total{") {
            counters.settled += value;
            if name.contains("outcome=\"acked\"") {
                counters.acked += value;
            }
        } else if name == "ingest_readings_fetched_total" {
            counters.readings += value;
        } else if name == "ingest_points_written_total" {
            counters.points += value;
        }
    }
    counters
}

fn spawn(mut command: Command, log: &Path) -> anyhow::Result<(Child, u32)> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file))
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    let program = command.as_std().get_program().to_owned();
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", program.to_string_lossy()))?;
    let pid = child.id().context("a child that just started has a pid")?;
    Ok((child, pid))
}

/// Waits for the log line holding `marker` and returns the `127.0.0.1:port`
/// it names.
async fn wait_for_address(child: &mut Child, log: &Path, marker: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .filter(|line| line.contains(marker))
            .find_map(loopback_address)
        {
            return Ok(addr);
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "{} exited with {status} before it listened; its log ends with:\n{}",
                log.display(),
                tail(&text, 10)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not log {marker:?} within {START_TIMEOUT:?}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The loopback address after the line's first `addr` key (the worker's
/// line also names the broker's address, under `amqp_url`).
fn loopback_address(line: &str) -> Option<String> {
    let after_key = &line[line.find("addr")?..];
    let start = after_key.find("127.0.0.1:")?;
    let rest = &after_key[start + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("127.0.0.1:{digits}"))
}

/// The last `lines` lines of a log, for error messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

async fn terminate(child: &mut Child, pid: u32) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    if tokio::time::timeout(STOP_TIMEOUT, child.wait())
        .await
        .is_err()
    {
        eprintln!("bench: process {pid} ignored SIGTERM for {STOP_TIMEOUT:?}; killing it");
        let _ = child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_every_outcome_and_single_out_acks() {
        let text = "# TYPE ingest_jobs_total counter\n\
            ingest_jobs_total{outcome=\"acked\",class=\"none\"} 7\n\
            ingest_jobs_total{outcome=\"retried\",class=\"transient\"} 2\n\
            ingest_readings_fetched_total 3600\n\
            ingest_points_written_total 3599\n";
        let counters = parse_counters(text);
        assert_eq!(
            (
                counters.settled,
                counters.acked,
                counters.readings,
                counters.points
            ),
            (9, 7, 3600, 3599)
        );
    }

    #[test]
    fn addresses_are_read_from_json_and_pretty_lines() {
        let json = r#"{"message":"worker starting","amqp_url":"amqp://127.0.0.1:5672","http_addr":"127.0.0.1:40123"}"#;
        assert_eq!(loopback_address(json).as_deref(), Some("127.0.0.1:40123"));
        let pretty = "INFO factory-sim listening addr=127.0.0.1:8080 interval=1s";
        assert_eq!(loopback_address(pretty).as_deref(), Some("127.0.0.1:8080"));
    }
}
