//! A worker as a real process, so that tests can signal and kill it the way
//! an orchestrator would.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running `ingest-worker`. Killed when dropped.
pub struct WorkerProcess {
    child: Child,
    /// `host:port` of its HTTP listener.
    pub http_addr: String,
    /// Its `--worker-id`, also its broker connection name.
    pub worker_id: String,
    /// File its standard error (the logs) goes to.
    pub log_path: PathBuf,
}

impl WorkerProcess {
    /// Starts a worker with `args` (on top of the address and id flags this
    /// sets) and waits until `/readyz` says it consumes.
    pub async fn start(worker_id: &str, args: &[String]) -> Self {
        let worker = Self::spawn(worker_id, args);
        worker.wait_ready(Duration::from_secs(20)).await;
        worker
    }

    /// Starts a worker with `args` without waiting for it to be ready.
    pub fn spawn(worker_id: &str, args: &[String]) -> Self {
        let port = free_port();
        let http_addr = format!("127.0.0.1:{port}");
        let log_path = crate::log_dir().join(format!("{worker_id}.log"));
        let log = std::fs::File::create(&log_path).expect("create the worker's log file");
        let child = Command::new(crate::binary("ingest-worker"))
            .args(args)
            .args(["--http-addr", &http_addr, "--worker-id", worker_id])
            .env("RUST_LOG", "info,ingest_worker=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start ingest-worker");
        Self {
            child,
            http_addr,
            worker_id: worker_id.to_owned(),
            log_path,
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.readyz().await != Some(200) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "worker {} not ready within {timeout:?}; log:\n{}",
                self.worker_id,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The status `/readyz` answers, or `None` when nothing answers.
    pub async fn readyz(&self) -> Option<u16> {
        self.get("/readyz").await.map(|(status, _)| status)
    }

    /// The status of any path of its HTTP listener.
    pub async fn get_status(&self, path: &str) -> Option<u16> {
        self.get(path).await.map(|(status, _)| status)
    }

    /// The body of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// The value of one sample of `/metrics`, e.g.
    /// `ingest_jobs_total{outcome="acked",class="none"}`; 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        sample_value(&self.metrics().await, sample)
    }

    /// Waits until `sample` of `/metrics` is at least `value`, or the
    /// timeout passes. Returns the value seen last.
    pub async fn wait_for_metric(&self, sample: &str, value: f64, timeout: Duration) -> f64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.metric(sample).await;
            if seen >= value || tokio::time::Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::Client::new()
            .get(format!("http://{}{path}", self.http_addr))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    }

    /// Sends SIGTERM, as an orchestrator stopping the pod does.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends SIGKILL: the process dies at once, wherever it is.
    pub fn kill(&self) {
        self.signal("KILL");
    }

    fn signal(&self, name: &str) {
        if let Some(pid) = self.child.id() {
            let status = std::process::Command::new("kill")
                .args([format!("-{name}"), pid.to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -{name} {pid} failed");
        }
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Its logs so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

/// The value of `sample` in a Prometheus text exposition; 0 when absent.
pub fn sample_value(exposition: &str, sample: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind a loopback port")
}
