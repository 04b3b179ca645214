//! Helpers giving each test its own topology prefix on the shared broker,
//! running the built `ingestctl`, and reading queues directly.

use std::process::{Output, Stdio};
use std::time::Duration;

use ingest_shared::Topology;
use ingest_shared::topology::DEFAULT_RETRY_DELAYS;
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// The broker every test shares.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Its management API.
pub const MANAGEMENT_URL: &str = "http://127.0.0.1:15672";

/// One test's topology: its own prefix, deleted when dropped (even on panic).
pub struct TestBroker {
    /// The prefix, `t-<uuid>-`.
    pub prefix: String,
    /// The names under it.
    pub topology: Topology,
    /// A connection for the test's own reads and writes.
    pub connection: Connection,
    /// A confirm-mode channel on it.
    pub channel: Channel,
}

/// A message as read back from a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Body bytes.
    pub body: Vec<u8>,
    /// Message id property.
    pub message_id: Option<String>,
    /// Headers as JSON, the broker's `x-delivery-count` left out.
    pub headers: Value,
    /// Content type property.
    pub content_type: Option<String>,
    /// Delivery mode property.
    pub delivery_mode: Option<u8>,
}

impl TestBroker {
    /// A fresh prefix; nothing declared yet.
    pub async fn new() -> Self {
        let prefix = format!("t-{}-", uuid::Uuid::new_v4().simple());
        let topology = Topology::new(prefix.clone(), &DEFAULT_RETRY_DELAYS);
        let connection = Connection::connect(AMQP_URL, ConnectionProperties::default())
            .await
            .expect("the test broker runs on 127.0.0.1:5672");
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self {
            prefix,
            topology,
            connection,
            channel,
        }
    }

    /// A fresh prefix with the whole topology declared.
    pub async fn declared() -> Self {
        let broker = Self::new().await;
        broker.topology.declare(&broker.channel).await.unwrap();
        broker
    }

    /// Runs `ingestctl` with this prefix and the given standard input.
    pub async fn ingestctl(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut command = self.command(args);
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command.spawn().expect("ingestctl starts");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input).await.unwrap();
            drop(pipe);
        }
        child.wait_with_output().await.unwrap()
    }

    /// The command, not started: prefix and broker settings in its environment.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ingestctl"));
        command
            .args(args)
            .env("INGEST_PREFIX", &self.prefix)
            .env("INGEST_AMQP_URL", AMQP_URL)
            .env("INGEST_MANAGEMENT_URL", MANAGEMENT_URL)
            .env_remove("RUST_LOG")
            .env_remove("INGEST_RETRY_DELAYS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Publishes one message straight to a queue, waiting for its confirm.
    pub async fn put(&self, queue: &str, body: &[u8], properties: BasicProperties) {
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(confirm, Confirmation::Ack(None));
    }

    /// Publishes a dead letter as a worker would: body plus failure headers.
    pub async fn put_dead(
        &self,
        body: &[u8],
        message_id: Option<&str>,
        headers: &[(&str, AMQPValue)],
    ) {
        let mut table = FieldTable::default();
        for (key, value) in headers {
            table.insert((*key).into(), value.clone());
        }
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2)
            .with_headers(table);
        if let Some(id) = message_id {
            properties = properties.with_message_id(id.into());
        }
        self.put(&self.topology.dead_queue(), body, properties)
            .await;
    }

    /// Ready messages of a queue, as the broker reports them now.
    pub async fn count(&self, queue: &str) -> u32 {
        self.count_and_consumers(queue).await.0
    }

    /// Ready messages and consumers of a queue.
    pub async fn count_and_consumers(&self, queue: &str) -> (u32, u32) {
        let channel = self.connection.create_channel().await.unwrap();
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
            .unwrap();
        let _ = channel.close(200, "done".into()).await;
        (declared.message_count(), declared.consumer_count())
    }

    /// Takes every message of a queue for good, in queue order.
    pub async fn drain(&self, queue: &str) -> Vec<Message> {
        let mut messages = Vec::new();
        while let Some(got) = self
            .channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let delivery = got.delivery;
            let mut headers = delivery
                .properties
                .headers()
                .as_ref()
                .map(ingest_shared::headers::table_to_json)
                .unwrap_or(Value::Object(Default::default()));
            if let Some(map) = headers.as_object_mut() {
                map.remove("x-delivery-count");
            }
            messages.push(Message {
                body: delivery.data,
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|v| v.to_string()),
                headers,
                content_type: delivery
                    .properties
                    .content_type()
                    .as_ref()
                    .map(|v| v.to_string()),
                delivery_mode: *delivery.properties.delivery_mode(),
            });
        }
        messages
    }

    /// `GET /api/queues/%2f/{queue}` from the management API.
    pub async fn management_queue(&self, queue: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{MANAGEMENT_URL}/api/queues/%2F/{queue}"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let topology = self.topology.clone();
        // Drop cannot await; a thread with its own runtime deletes the
        // test's queues and exchange whether the test passed or panicked.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Runtime::new() else {
                return;
            };
            runtime.block_on(delete_topology(&topology));
        });
        let _ = cleanup.join();
    }
}

async fn delete_topology(topology: &Topology) {
    let Ok(connection) = Connection::connect(AMQP_URL, ConnectionProperties::default()).await
    else {
        return;
    };
    for queue in topology.queues() {
        // A fresh channel each time: deleting a queue that does not exist
        // is fine, but an error would close the channel.
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete(queue.name.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    if let Ok(channel) = connection.create_channel().await {
        let _ = channel
            .exchange_delete(
                topology.exchange().as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
}

/// A long-string header value.
pub fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// The worker's dead-letter headers for one failure.
pub fn failure(
    class: &str,
    error: &str,
    attempts: i64,
    last_failure: &str,
) -> Vec<(&'static str, AMQPValue)> {
    use ingest_shared::headers::*;
    vec![
        (ERROR_CLASS, text(class)),
        (ERROR, text(error)),
        (ATTEMPTS, AMQPValue::LongLongInt(attempts)),
        (ATTEMPT, AMQPValue::LongLongInt(attempts)),
        (FIRST_FAILURE, text("2026-12-01T00:00:00Z")),
        (LAST_FAILURE, text(last_failure)),
        (WORKER, text("worker-1")),
        (SOURCE_QUEUE, text("ingest.jobs")),
        (
            TRACEPARENT,
            text("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ),
    ]
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls `check` every 500 ms for up to `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Headers as the JSON that [`TestBroker::drain`] reports.
pub fn headers_json(headers: &[(&str, AMQPValue)]) -> Value {
    let mut table = FieldTable::default();
    for (key, value) in headers {
        table.insert((*key).into(), value.clone());
    }
    ingest_shared::headers::table_to_json(&table)
}
