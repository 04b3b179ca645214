//! A fleet's dead-letter queue as an operator meets it: dead letters put
//! straight into it, copies taken to compare it before and after a command,
//! `ingestctl` as a process that can be killed, and the management API's view.

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use factory_sim::SimConfig;
use ingest_shared::{IngestJob, SecretUrl, broker, headers};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use serde_json::Value;

use crate::fleet::{AMQP_URL, Fleet, MANAGEMENT_URL, TEST_RETRY_DELAYS};
use crate::tsdb::{assert_exactly_the_simulated_readings, wait_for_points};

/// The header the broker adds when it redelivers a message: delivery
/// metadata, not part of a dead letter.
pub const DELIVERY_COUNT: &str = "x-delivery-count";

/// A dead letter as stored, without the broker's delivery metadata: what
/// reading the queue must never change.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLetter {
    /// The `message_id` property.
    pub message_id: Option<String>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// Every header except [`DELIVERY_COUNT`], as JSON.
    pub headers: Value,
}

impl StoredLetter {
    /// The job id as `ingestctl` finds it: the body's `job_id`, else the
    /// message id.
    pub fn job_id(&self) -> Option<String> {
        let body: Option<Value> = serde_json::from_slice(&self.body).ok();
        body.and_then(|b| b["job_id"].as_str().map(str::to_owned))
            .or_else(|| self.message_id.clone())
    }

    /// The body's `device`, when the body is a JSON object that has one.
    pub fn device(&self) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body["device"].as_str().map(str::to_owned)
    }
}

/// A dead letter to put into the queue.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// The `message_id` property.
    pub message_id: Option<String>,
    /// Its headers.
    pub headers: FieldTable,
}

impl NewDeadLetter {
    /// A job that a worker gave up on, with the headers the worker writes.
    pub fn of_job(job: &IngestJob, failure: &Failure, fleet: &Fleet) -> Self {
        Self {
            body: job.to_body(),
            message_id: Some(job.job_id.to_string()),
            headers: failure.headers(fleet),
        }
    }
}

/// Why a worker gave up on a job, as its dead-letter headers say.
#[derive(Debug, Clone)]
pub struct Failure {
    /// `transient` or `permanent`.
    pub class: String,
    /// The error chain.
    pub error: String,
    /// Attempts made.
    pub attempts: i64,
    /// Time of the last failed attempt.
    pub last_failure: DateTime<Utc>,
}

impl Failure {
    /// The headers a worker of `fleet` writes for this failure.
    pub fn headers(&self, fleet: &Fleet) -> FieldTable {
        let first_failure = self.last_failure - TimeDelta::seconds(self.attempts);
        let mut table = FieldTable::default();
        let mut text = |name: &str, value: &str| {
            table.insert(name.into(), AMQPValue::LongString(LongString::from(value)));
        };
        text(headers::ERROR_CLASS, &self.class);
        text(headers::ERROR, &self.error);
        text(headers::FIRST_FAILURE, &first_failure.to_rfc3339());
        text(headers::LAST_FAILURE, &self.last_failure.to_rfc3339());
        text(headers::WORKER, &format!("{}w-seeded", fleet.prefix));
        text(headers::SOURCE_QUEUE, &fleet.topology.work_queue());
        table.insert(
            headers::ATTEMPTS.into(),
            AMQPValue::LongLongInt(self.attempts),
        );
        table.insert(
            headers::ATTEMPT.into(),
            AMQPValue::LongLongInt(self.attempts),
        );
        table
    }
}

/// Direct access to one fleet's dead-letter queue, beside `ingestctl`.
pub struct DeadLetterQueue {
    /// The queue's name.
    pub name: String,
    connection: Connection,
    channel: Channel,
}

impl std::fmt::Debug for DeadLetterQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterQueue")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl DeadLetterQueue {
    /// Opens a connection of its own to `fleet`'s dead-letter queue.
    pub async fn open(fleet: &Fleet) -> Self {
        let name = fleet.topology.dead_queue();
        let connection = broker::connect(&SecretUrl::new(AMQP_URL), &format!("test {name}"))
            .await
            .expect("RabbitMQ answers on 127.0.0.1:5672 (run scripts/services)");
        let channel = connection.create_channel().await.expect("open a channel");
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("enable confirms");
        Self {
            name,
            connection,
            channel,
        }
    }

    /// Publishes dead letters straight to the queue, in order, with many
    /// confirms outstanding at once, and waits for every confirm.
    pub async fn put_all(&self, letters: &[NewDeadLetter]) {
        let mut confirms = Vec::with_capacity(letters.len());
        for letter in letters {
            let mut properties = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_headers(letter.headers.clone());
            if let Some(id) = &letter.message_id {
                properties = properties.with_message_id(id.as_str().into());
            }
            confirms.push(self.publish(&letter.body, properties).await);
        }
        for confirm in confirms {
            let confirmation = confirm.await.expect("a confirm");
            assert!(
                matches!(confirmation, Confirmation::Ack(None)),
                "dead letter not confirmed: {confirmation:?}"
            );
        }
    }

    /// Copies the queue in order, leaving it as it was.
    ///
    /// A quorum queue cannot be peeked, so every message is taken, copied
    /// back to the queue's tail with the same properties (less the broker's
    /// delivery count), and only then acked. Call it while nothing else
    /// consumes or publishes to the queue.
    pub async fn copy(&self) -> Vec<StoredLetter> {
        let mut taken = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(self.name.as_str().into(), BasicGetOptions { no_ack: false })
            .await
            .expect("basic.get")
        {
            taken.push(message.delivery);
        }

        let mut confirms = Vec::with_capacity(taken.len());
        let mut letters = Vec::with_capacity(taken.len());
        for delivery in &taken {
            let mut table = FieldTable::default();
            for (key, value) in delivery.properties.headers().iter().flat_map(|t| t.inner()) {
                if key.as_str() != DELIVERY_COUNT {
                    table.insert(key.clone(), value.clone());
                }
            }
            letters.push(StoredLetter {
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string()),
                body: delivery.data.clone(),
                headers: headers::table_to_json(&table),
            });
            let properties = delivery.properties.clone().with_headers(table);
            confirms.push(self.publish(&delivery.data, properties).await);
        }
        for confirm in confirms {
            let confirmation = confirm.await.expect("a confirm");
            assert!(matches!(confirmation, Confirmation::Ack(None)));
        }
        for delivery in taken {
            delivery
                .ack(BasicAckOptions::default())
                .await
                .expect("ack a copied message");
        }
        letters
    }

    /// Messages ready in the queue now.
    pub async fn count(&self) -> u32 {
        crate::fleet::ready_count(&self.connection, &self.name).await
    }

    /// Waits until the queue holds at least `count` messages; returns the
    /// count seen last.
    pub async fn wait_for(&self, count: u32, timeout: Duration) -> u32 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.count().await;
            if seen >= count || tokio::time::Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the count has not changed for `quiet` (the broker has
    /// taken back what a killed reader held); returns it.
    pub async fn wait_until_settled(&self, quiet: Duration, timeout: Duration) -> u32 {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = self.count().await;
        let mut since = tokio::time::Instant::now();
        while since.elapsed() < quiet {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} never settled; last count {last}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.count().await;
            if now != last {
                last = now;
                since = tokio::time::Instant::now();
            }
        }
        last
    }

    async fn publish(&self, body: &[u8], properties: BasicProperties) -> lapin::PublisherConfirm {
        self.channel
            .basic_publish(
                "".into(),
                self.name.as_str().into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .expect("publish to the dead-letter queue")
    }
}

/// Sorted by job id and body, so that two copies compare message by message
/// whatever order the broker returned them in.
pub fn sorted(mut letters: Vec<StoredLetter>) -> Vec<StoredLetter> {
    letters.sort_by(|a, b| (a.job_id(), &a.body).cmp(&(b.job_id(), &b.body)));
    letters
}

/// Gives `fleet` a simulator that knows only `devices` (fleet-local names),
/// so that any other device is unknown to the factory (404). Call it before
/// starting workers: they take the simulator's URL at start.
pub async fn restrict_factory_to(fleet: &mut Fleet, devices: &[&str]) {
    let config = SimConfig {
        devices: devices.iter().map(|name| fleet.device(name)).collect(),
        ..SimConfig::default()
    };
    fleet.sim = factory_sim::spawn(config)
        .await
        .expect("start the simulator");
}

/// `count` consecutive jobs of `span` each for `device`, starting a day ago.
pub fn consecutive_jobs(device: &str, count: usize, span: TimeDelta) -> Vec<IngestJob> {
    let (start, _) = crate::fleet::recent_range(1);
    (0..count)
        .map(|i| {
            let from = start + span * i32::try_from(i).expect("a small count");
            IngestJob::new(device, from, from + span)
        })
        .collect()
}

/// A job's `[start, end)`.
type TimeRange = (DateTime<Utc>, DateTime<Utc>);

/// Checks that the TSDB holds every reading of `jobs` exactly once with its
/// value, device by device; each device's jobs must cover one range without
/// gaps, so that nothing else of that device may be stored. Returns the
/// readings checked.
pub async fn assert_jobs_ingested_once(jobs: &[IngestJob], timeout: Duration) -> usize {
    let mut ranges: BTreeMap<&str, Vec<TimeRange>> = BTreeMap::new();
    for job in jobs {
        ranges
            .entry(job.device.as_str())
            .or_default()
            .push((job.start, job.end));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut readings = 0;
    for (device, mut windows) in ranges {
        windows.sort();
        windows.dedup();
        for pair in windows.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "{device}: jobs leave a gap");
        }
        let (start, end) = (windows[0].0, windows[windows.len() - 1].1);
        let expected = usize::try_from((end - start).num_seconds()).expect("a forward range");
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        wait_for_points(device, 3 * expected, left).await;
        readings +=
            assert_exactly_the_simulated_readings(device, start, end, Duration::from_secs(1)).await;
    }
    readings
}

/// An operator's command line, written with fleet-local device names:
/// every value after `--device` (other than `?`) becomes the fleet's id.
pub fn operator_args(fleet: &Fleet, command_line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut device_follows = false;
    for word in command_line.split_whitespace() {
        let is_device = device_follows && word != "?";
        args.push(if is_device {
            fleet.device(word)
        } else {
            word.to_owned()
        });
        device_follows = word == "--device";
    }
    args
}

/// `ingestctl` pointed at `fleet`, not started; killed when dropped.
pub fn ingestctl_command(fleet: &Fleet, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(crate::binary("ingestctl"));
    command
        .args(["--amqp-url", AMQP_URL, "--prefix", &fleet.prefix])
        .args(["--retry-delays", TEST_RETRY_DELAYS])
        .args(["--management-url", MANAGEMENT_URL])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `ingestctl dlq replay --all` one confirm at a time and kills it with
/// SIGKILL once the factory has served `fetched` requests for the replayed
/// jobs. Returns the killed process's exit status.
pub async fn replay_killed_after(fleet: &Fleet, fetched: u64, timeout: Duration) -> ExitStatus {
    // One confirm at a time makes the replay slow enough to stop half-way.
    let mut child = ingestctl_command(fleet, &["dlq", "replay", "--all", "--max-in-flight", "1"])
        .spawn()
        .expect("start ingestctl");
    let deadline = tokio::time::Instant::now() + timeout;
    while fleet.sim.stats().requests < fetched {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay did not get far enough within {timeout:?}"
        );
        if let Some(status) = child.try_wait().expect("poll ingestctl") {
            panic!("the replay ended before it was killed: {status}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().expect("SIGKILL ingestctl");
    child.wait().await.expect("reap ingestctl")
}

/// One queue as the management API reports it, `None` when it does not exist.
pub async fn management_queue(name: &str) -> Option<Value> {
    let response = reqwest::Client::new()
        .get(format!("{MANAGEMENT_URL}/api/queues/%2F/{name}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .expect("the management API answers");
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return None;
    }
    Some(response.json().await.expect("a queue is JSON"))
}

/// What `ingestctl status --json` and the management API said about the
/// fleet's queues in one round.
#[derive(Debug)]
pub struct StatusRound {
    /// `ingestctl status`'s exit code.
    pub exit_code: Option<i32>,
    /// Its JSON report.
    pub report: Value,
    /// Per queue: the counts `status` printed, then the API's.
    pub queues: BTreeMap<String, (QueueCounts, QueueCounts)>,
}

/// One queue's counts as JSON values, so that a missing one shows as null.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueCounts {
    /// Messages ready.
    pub ready: Value,
    /// Messages delivered and not yet settled.
    pub unacked: Value,
    /// Consumers.
    pub consumers: Value,
}

impl StatusRound {
    /// Whether `status` printed the API's numbers for every queue.
    pub fn agrees(&self) -> bool {
        self.queues.values().all(|(status, api)| status == api)
    }

    /// The ready count `status` printed for `queue`.
    pub fn ready(&self, queue: &str) -> Option<u64> {
        self.queues
            .get(queue)
            .and_then(|(status, _)| status.ready.as_u64())
    }

    /// The consumer count `status` printed for `queue`.
    pub fn consumers(&self, queue: &str) -> Option<u64> {
        self.queues
            .get(queue)
            .and_then(|(status, _)| status.consumers.as_u64())
    }
}

/// Runs `ingestctl status --json` and asks the management API about each
/// queue it names.
pub async fn status_round(fleet: &Fleet) -> StatusRound {
    let (status, stdout, stderr) = fleet.ingestctl(&["status", "--json"]).await;
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("status --json printed no JSON ({err}): {stdout}{stderr}"));
    let mut queues = BTreeMap::new();
    for queue in report["queues"].as_array().expect("a list of queues") {
        let name = queue["name"].as_str().expect("a queue name").to_owned();
        let api = management_queue(&name).await.unwrap_or(Value::Null);
        let printed = QueueCounts {
            ready: queue["ready"].clone(),
            unacked: queue["unacked"].clone(),
            consumers: queue["consumers"].clone(),
        };
        let reported = QueueCounts {
            ready: api["messages_ready"].clone(),
            unacked: api["messages_unacknowledged"].clone(),
            consumers: api["consumers"].clone(),
        };
        queues.insert(name, (printed, reported));
    }
    StatusRound {
        exit_code: status.code(),
        report,
        queues,
    }
}

/// Polls [`status_round`] until `settled` holds for a round in which
/// `status` agrees with the management API (its numbers refresh about every
/// 5 s); returns that round, or the last one after `timeout`.
pub async fn wait_for_status(
    fleet: &Fleet,
    timeout: Duration,
    settled: impl Fn(&StatusRound) -> bool,
) -> StatusRound {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let round = status_round(fleet).await;
        if (round.agrees() && settled(&round)) || tokio::time::Instant::now() >= deadline {
            return round;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The rows of `ingestctl dlq list` written to a pipe (a header line, then
/// tab-separated cells), each as column name → cell.
pub fn list_rows(stdout: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .map(|line| line.split('\t').collect())
        .unwrap_or_default();
    lines
        .map(|line| {
            header
                .iter()
                .zip(line.split('\t'))
                .map(|(name, cell)| ((*name).to_owned(), cell.to_owned()))
                .collect()
        })
        .collect()
}

/// The job ids of `ingestctl dlq list --json`, in the order listed.
pub fn listed_job_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            let letter: Value = serde_json::from_str(line).expect("list --json lines are JSON");
            letter["job_id"].as_str().expect("a job id").to_owned()
        })
        .collect()
}
