//! The broker's management API: queue counters as the broker reports them,
//! declarations that clash with the fleet's topology, and the queues a test
//! left behind.

use std::time::Duration;

use ingest_shared::{SecretUrl, broker};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde::Deserialize;

use crate::fleet::{AMQP_URL, MANAGEMENT_URL};

/// How often the broker refreshes the counters the management API reports
/// (RabbitMQ's default `collect_statistics_interval`). A count read through
/// the API may be this old.
pub const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// A queue's messages, as the management API last heard of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct QueueStats {
    /// Waiting to be delivered.
    #[serde(rename = "messages_ready", default)]
    pub ready: u64,
    /// Delivered to a consumer and not yet settled.
    #[serde(rename = "messages_unacknowledged", default)]
    pub unacked: u64,
}

/// The counters of one queue of the default vhost.
pub async fn queue_stats(queue: &str) -> QueueStats {
    reqwest::Client::new()
        .get(format!("{MANAGEMENT_URL}/api/queues/%2F/{queue}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .expect("management API answers")
        .error_for_status()
        .unwrap_or_else(|err| panic!("queue {queue} is unknown to the management API: {err}"))
        .json()
        .await
        .expect("a queue is a JSON object")
}

/// Names of the default vhost's queues that start with `prefix`.
pub async fn queues_named_with(prefix: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Queue {
        name: String,
    }
    let Ok(response) = reqwest::Client::new()
        .get(format!("{MANAGEMENT_URL}/api/queues/%2F?columns=name"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
    else {
        return Vec::new();
    };
    let queues: Vec<Queue> = response.json().await.unwrap_or_default();
    queues
        .into_iter()
        .map(|queue| queue.name)
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// Declares a durable classic queue without arguments: what an operator's
/// hand-made queue of the fleet's name would look like.
pub async fn declare_classic_queue(queue: &str) {
    let connection = broker::connect(&SecretUrl::new(AMQP_URL), "test declares a classic queue")
        .await
        .expect("RabbitMQ answers");
    let channel = connection.create_channel().await.expect("open a channel");
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare a classic queue");
    let _ = connection.close(200, "declared".into()).await;
}

/// The queues' state while a job waits for its next attempt.
#[derive(Debug, Clone, Copy)]
pub struct ParkedRetry {
    /// Messages ready in the delay queue, counted by the broker just now.
    pub delay_ready: u32,
    /// The work queue's counters, reported after the job moved.
    pub work: QueueStats,
}

/// Waits until a job sits in `delay_queue`, then reads the work queue's
/// counters once they are known to be newer than the move (one
/// [`STATS_INTERVAL`] later), and checks that the job still waits. The
/// delay tier must outlast that interval.
pub async fn observe_parked_retry(
    fleet: &crate::fleet::Fleet,
    delay_queue: &str,
    timeout: Duration,
) -> ParkedRetry {
    let deadline = tokio::time::Instant::now() + timeout;
    while fleet.ready_count(delay_queue).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no job reached {delay_queue} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved = tokio::time::Instant::now();

    tokio::time::sleep_until(moved + STATS_INTERVAL + Duration::from_millis(500)).await;
    let work = queue_stats(&fleet.topology.work_queue()).await;
    let delay_ready = fleet.ready_count(delay_queue).await;
    assert!(
        delay_ready > 0,
        "the job left {delay_queue} before the work queue's counters caught up; \
         use a delay tier longer than {STATS_INTERVAL:?}"
    );
    ParkedRetry { delay_ready, work }
}

/// Waits until the management API lists a connection named after each of
/// `names` (it learns of new connections late); returns how many it lists.
pub async fn wait_for_connections(names: &[&str], timeout: Duration) -> usize {
    #[derive(Deserialize)]
    struct Connection {
        client_properties: ClientProperties,
    }
    #[derive(Deserialize)]
    struct ClientProperties {
        #[serde(default)]
        connection_name: String,
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let connections: Vec<Connection> = reqwest::Client::new()
            .get(format!("{MANAGEMENT_URL}/api/connections"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .expect("management API answers")
            .json()
            .await
            .expect("connections are JSON");
        let listed = names
            .iter()
            .filter(|name| {
                connections
                    .iter()
                    .any(|c| c.client_properties.connection_name == **name)
            })
            .count();
        if listed == names.len() || tokio::time::Instant::now() >= deadline {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
