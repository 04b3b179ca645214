//! One isolated fleet per test: its own topology prefix, device ids,
//! simulator and workers, on the shared broker and TSDB.

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use factory_sim::{SimConfig, SimHandle};
use futures_util::StreamExt;
use ingest_shared::{IngestJob, SecretUrl, Topology, broker};
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use crate::proxy::Proxy;
use crate::tsdb::TSDB_URL;
use crate::worker::WorkerProcess;

/// Broker URL used by every test.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Management API of the broker.
pub const MANAGEMENT_URL: &str = "http://127.0.0.1:15672";

/// Delay tiers of test fleets: short, so that a job passes all of them in
/// seconds.
pub const TEST_RETRY_DELAYS: &str = "200ms,400ms,600ms,800ms";

/// A dead letter as a test reads it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// Its headers.
    pub headers: FieldTable,
}

impl DeadLetter {
    /// A text header.
    pub fn text(&self, name: &str) -> Option<String> {
        ingest_shared::headers::get_str(Some(&self.headers), name).map(str::to_owned)
    }

    /// An integer header.
    pub fn long(&self, name: &str) -> Option<i64> {
        ingest_shared::headers::get_i64(Some(&self.headers), name)
    }
}

/// One test's fleet.
pub struct Fleet {
    /// Name prefix of its exchange and queues, and of its device ids.
    pub prefix: String,
    /// Its topology.
    pub topology: Topology,
    /// The factory API simulator.
    pub sim: SimHandle,
    /// Workers started so far (stopped ones stay, for their logs).
    pub workers: Vec<WorkerProcess>,
    /// A proxy in front of the TSDB that the workers write through.
    pub tsdb_proxy: Proxy,
    /// Extra flags every new worker gets.
    pub worker_args: Vec<String>,
    connection: Connection,
    channel: Channel,
}

impl Fleet {
    /// Starts a fleet with a default simulator.
    pub async fn start() -> Self {
        Self::start_with(SimConfig::default()).await
    }

    /// Starts a fleet whose simulator uses `sim_config`.
    pub async fn start_with(sim_config: SimConfig) -> Self {
        Self::start_prefixed(new_prefix(), sim_config, true).await
    }

    /// Starts a fleet whose simulator knows only the devices `names` (as
    /// [`Fleet::device`] spells them); every other id answers 404.
    pub async fn start_with_known_devices(names: &[&str]) -> Self {
        let prefix = new_prefix();
        let devices = names.iter().map(|name| format!("{prefix}{name}")).collect();
        let sim_config = SimConfig {
            devices,
            ..SimConfig::default()
        };
        Self::start_prefixed(prefix, sim_config, true).await
    }

    /// Starts a fleet without declaring its topology, for tests that
    /// declare conflicting queues first; publishing needs the topology.
    pub async fn start_undeclared() -> Self {
        Self::start_prefixed(new_prefix(), SimConfig::default(), false).await
    }

    async fn start_prefixed(prefix: String, sim_config: SimConfig, declare: bool) -> Self {
        let delays: Vec<Duration> = TEST_RETRY_DELAYS
            .split(',')
            .map(|d| humantime::parse_duration(d).expect("valid delays"))
            .collect();
        let topology = Topology::new(prefix.clone(), &delays);
        let connection = broker::connect(&SecretUrl::new(AMQP_URL), &format!("test {prefix}"))
            .await
            .expect("RabbitMQ answers on 127.0.0.1:5672 (run scripts/services)");
        let channel = connection.create_channel().await.expect("open a channel");
        if declare {
            topology
                .declare(&channel)
                .await
                .expect("declare the topology");
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("enable confirms");
        let sim = factory_sim::spawn(sim_config)
            .await
            .expect("start the simulator");
        let tsdb_addr = "127.0.0.1:8428".parse().expect("a socket address");
        Self {
            prefix,
            topology,
            sim,
            workers: Vec::new(),
            tsdb_proxy: Proxy::start(tsdb_addr).await,
            worker_args: Vec::new(),
            connection,
            channel,
        }
    }

    /// A device id unique to this fleet.
    pub fn device(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The flags that point a worker at this fleet.
    pub fn base_worker_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "--amqp-url",
            AMQP_URL,
            "--prefix",
            &self.prefix,
            "--factory-url",
            &self.sim.base_url(),
            "--tsdb-write-url",
            &format!("http://{}/write", self.tsdb_proxy.addr()),
            "--tsdb-health-url",
            &format!("http://{}/health", self.tsdb_proxy.addr()),
            "--retry-delays",
            TEST_RETRY_DELAYS,
            "--call-retry-budget",
            "1s",
            "--log-format",
            "json",
        ]
        .map(String::from)
        .to_vec();
        args.extend(self.worker_args.iter().cloned());
        args
    }

    /// Starts one more worker with the fleet's flags plus `extra`; returns
    /// its index in [`Fleet::workers`].
    pub async fn start_worker(&mut self, extra: &[&str]) -> usize {
        let mut args = self.base_worker_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let id = format!("{}w{}", self.prefix, self.workers.len());
        self.workers.push(WorkerProcess::start(&id, &args).await);
        self.workers.len() - 1
    }

    /// Starts one more worker with the fleet's flags, each of `settings`
    /// replacing the fleet's value of that flag (or added); returns its index.
    pub async fn start_worker_setting(&mut self, settings: &[(&str, &str)]) -> usize {
        let mut args = self.base_worker_args();
        for &(flag, value) in settings {
            set_flag(&mut args, flag, value);
        }
        let id = format!("{}w{}", self.prefix, self.workers.len());
        self.workers.push(WorkerProcess::start(&id, &args).await);
        self.workers.len() - 1
    }

    /// Like [`Fleet::start_worker`], but returns as soon as the process runs,
    /// for workers expected never to become ready.
    pub fn spawn_worker(&mut self, extra: &[&str]) -> usize {
        let mut args = self.base_worker_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let id = format!("{}w{}", self.prefix, self.workers.len());
        self.workers.push(WorkerProcess::spawn(&id, &args));
        self.workers.len() - 1
    }

    /// Publishes a job as `ingestctl` would.
    pub async fn publish_job(&self, job: &IngestJob) {
        self.publish_raw(
            &job.to_body(),
            Some(&job.job_id.to_string()),
            FieldTable::default(),
        )
        .await;
    }

    /// Publishes any body to the work queue, with confirms.
    pub async fn publish_raw(&self, body: &[u8], message_id: Option<&str>, headers: FieldTable) {
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_headers(headers);
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        let confirmation = self
            .channel
            .basic_publish(
                self.topology.exchange().as_str().into(),
                "jobs".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(
            matches!(confirmation, Confirmation::Ack(None)),
            "job not confirmed: {confirmation:?}"
        );
    }

    /// Runs `ingestctl` against this fleet's prefix; returns (status, stdout, stderr).
    pub async fn ingestctl(&self, args: &[&str]) -> (std::process::ExitStatus, String, String) {
        let output = tokio::process::Command::new(crate::binary("ingestctl"))
            .args(["--amqp-url", AMQP_URL, "--prefix", &self.prefix])
            .args(["--retry-delays", TEST_RETRY_DELAYS])
            .args(args)
            .output()
            .await
            .expect("run ingestctl");
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Messages ready in a queue (not counting unacked ones).
    pub async fn ready_count(&self, queue: &str) -> u32 {
        ready_count(&self.connection, queue).await
    }

    /// Takes every dead letter out of the dead-letter queue.
    pub async fn take_dead_letters(&self) -> Vec<DeadLetter> {
        let mut letters = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(
                self.topology.dead_queue().as_str().into(),
                BasicGetOptions::default(),
            )
            .await
            .expect("basic.get")
        {
            message
                .ack(BasicAckOptions::default())
                .await
                .expect("ack a dead letter");
            letters.push(DeadLetter {
                body: message.delivery.data.clone(),
                headers: message
                    .delivery
                    .properties
                    .headers()
                    .clone()
                    .unwrap_or_default(),
            });
        }
        letters
    }

    /// Waits until the dead-letter queue holds `count` messages.
    pub async fn wait_for_dead_letters(&self, count: u32, timeout: Duration) -> u32 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.ready_count(&self.topology.dead_queue()).await;
            if seen >= count || tokio::time::Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Consumes everything from the work queue with a throwaway consumer
    /// until it has been idle for `idle`; returns the bodies (for tests that
    /// run no worker).
    pub async fn drain_work_queue(&self, idle: Duration) -> Vec<Vec<u8>> {
        let channel = self
            .connection
            .create_channel()
            .await
            .expect("open a channel");
        let mut consumer = channel
            .basic_consume(
                self.topology.work_queue().as_str().into(),
                "test-drain".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let mut bodies = Vec::new();
        while let Ok(Some(Ok(delivery))) = tokio::time::timeout(idle, consumer.next()).await {
            delivery.ack(BasicAckOptions::default()).await.expect("ack");
            bodies.push(delivery.data);
        }
        let _ = channel.close(200, "done".into()).await;
        bodies
    }

    /// Closes every broker connection of this fleet's workers through the
    /// management API, as an operator or a broker restart would.
    pub async fn close_worker_connections(&self) -> usize {
        let http = reqwest::Client::new();
        let connections: Vec<serde_json::Value> = http
            .get(format!("{MANAGEMENT_URL}/api/connections"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .expect("management API answers")
            .json()
            .await
            .expect("connections are JSON");
        let mut closed = 0;
        for connection in connections {
            let client_name = connection["client_properties"]["connection_name"]
                .as_str()
                .unwrap_or_default();
            let is_ours = self.workers.iter().any(|w| w.worker_id == client_name);
            let Some(name) = connection["name"].as_str().filter(|_| is_ours) else {
                continue;
            };
            let encoded = percent_encode(name);
            let response = http
                .delete(format!("{MANAGEMENT_URL}/api/connections/{encoded}"))
                .basic_auth("guest", Some("guest"))
                .header("X-Reason", "test closes worker connections")
                .send()
                .await
                .expect("management API answers");
            if response.status().is_success() {
                closed += 1;
            }
        }
        closed
    }

    /// Deletes the fleet's queues and exchange.
    pub async fn clean_up(self) {
        drop(self.workers);
        for queue in self.topology.queues() {
            let _ = self
                .channel
                .queue_delete(queue.name.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        // Workers started with other delay tiers declared queues the
        // fleet's topology does not list.
        for queue in crate::management::queues_named_with(&self.prefix).await {
            let _ = self
                .channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = self
            .channel
            .exchange_delete(
                self.topology.exchange().as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = self.connection.close(200, "test done".into()).await;
    }
}

/// Messages ready in a queue (not counting unacked ones), by a passive
/// declaration on a channel of its own.
pub async fn ready_count(connection: &Connection, queue: &str) -> u32 {
    let channel = connection.create_channel().await.expect("open a channel");
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|err| panic!("queue {queue} exists: {err}"));
    let _ = channel.close(200, "done".into()).await;
    declared.message_count()
}

/// An hour-aligned range of `hours` hours that ended a day ago: old enough
/// to be complete, recent enough for any TSDB retention.
pub fn recent_range(hours: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    let end = (Utc::now() - TimeDelta::days(1))
        .duration_trunc(TimeDelta::hours(1))
        .expect("an hour fits any timestamp");
    (end - TimeDelta::hours(hours), end)
}

/// A fresh name prefix: `t` and ten hex digits of a random UUID.
fn new_prefix() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("t{}-", &id[..10])
}

/// Sets `flag` to `value` in a worker's arguments, replacing its earlier
/// value: list flags such as `--retry-delays` would otherwise append.
fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    match args.iter().position(|arg| arg == flag) {
        Some(at) if at + 1 < args.len() => args[at + 1] = value.to_owned(),
        _ => args.extend([flag.to_owned(), value.to_owned()]),
    }
}

/// A header table with one text header.
pub fn text_header(name: &str, value: &str) -> FieldTable {
    let mut table = FieldTable::default();
    table.insert(name.into(), AMQPValue::LongString(value.into()));
    table
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The TSDB's base URL, for tests that talk to it directly.
pub fn tsdb_url() -> &'static str {
    TSDB_URL
}
