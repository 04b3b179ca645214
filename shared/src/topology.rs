//! Names and arguments of every exchange and queue of the fleet, and their
//! idempotent declaration. `docs/contract.md` holds the same table in prose.

use std::time::Duration;

use lapin::Channel;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};

/// Routing key of the work queue's binding.
pub const JOBS_ROUTING_KEY: &str = "jobs";

/// Routing key of the dead-letter queue's binding.
pub const DEAD_ROUTING_KEY: &str = "dead";

/// Delay tiers when none are configured: 5 s, 30 s, 2 min, 10 min.
pub const DEFAULT_RETRY_DELAYS: [Duration; 4] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];

/// The fleet's broker objects under one name prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    delays: Vec<DelayTier>,
}

/// One delay queue: jobs wait in it for `delay`, then the broker sends them
/// back to the work queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayTier {
    /// Queue name, e.g. `ingest.delay.30s`.
    pub queue: String,
    /// Routing key on the fleet's exchange, e.g. `delay.30s`.
    pub routing_key: String,
    /// How long a job waits in this tier.
    pub delay: Duration,
}

/// A queue as the fleet expects to find it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// Full queue name, prefix included.
    pub name: String,
    /// Routing key binding it to the fleet's exchange.
    pub routing_key: String,
    /// The `x-` arguments it is declared with.
    pub arguments: FieldTable,
}

/// A declaration the broker refused.
#[derive(Debug, thiserror::Error)]
#[error("declaring {object} failed")]
pub struct TopologyError {
    /// The exchange, queue or binding, e.g. `queue ingest.jobs`.
    pub object: String,
    /// What the broker said, e.g. an inequivalent argument.
    #[source]
    pub source: lapin::Error,
}

impl Topology {
    /// The topology under `prefix` with the given delay tiers (in order of attempts).
    pub fn new(prefix: impl Into<String>, retry_delays: &[Duration]) -> Self {
        let prefix = prefix.into();
        let delays = retry_delays
            .iter()
            .map(|&delay| {
                let label = tier_label(delay);
                DelayTier {
                    queue: format!("{prefix}ingest.delay.{label}"),
                    routing_key: format!("delay.{label}"),
                    delay,
                }
            })
            .collect();
        Self { prefix, delays }
    }

    /// The name prefix (may be empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The direct exchange every job is published to.
    pub fn exchange(&self) -> String {
        format!("{}ingest", self.prefix)
    }

    /// The quorum queue workers consume.
    pub fn work_queue(&self) -> String {
        format!("{}ingest.jobs", self.prefix)
    }

    /// The quorum queue of jobs that will not be retried.
    pub fn dead_queue(&self) -> String {
        format!("{}ingest.dead", self.prefix)
    }

    /// The delay tiers, first retry first.
    pub fn delay_tiers(&self) -> &[DelayTier] {
        &self.delays
    }

    /// The tier a job waits in after its `failed_attempt`-th attempt failed
    /// (1-based); attempts past the last tier reuse the last one. `None` when
    /// no tiers are configured.
    pub fn delay_after(&self, failed_attempt: u32) -> Option<&DelayTier> {
        let index = (failed_attempt.max(1) - 1) as usize;
        self.delays.get(index).or(self.delays.last())
    }

    /// Every queue with its binding and arguments: work, dead, then delays.
    pub fn queues(&self) -> Vec<QueueSpec> {
        let exchange = self.exchange();
        let mut queues = vec![
            QueueSpec {
                name: self.work_queue(),
                routing_key: JOBS_ROUTING_KEY.into(),
                arguments: table([
                    ("x-queue-type", text("quorum")),
                    ("x-dead-letter-exchange", text(&exchange)),
                    ("x-dead-letter-routing-key", text(DEAD_ROUTING_KEY)),
                ]),
            },
            QueueSpec {
                name: self.dead_queue(),
                routing_key: DEAD_ROUTING_KEY.into(),
                arguments: table([("x-queue-type", text("quorum"))]),
            },
        ];
        for tier in &self.delays {
            let ttl_ms = i64::try_from(tier.delay.as_millis()).unwrap_or(i64::MAX);
            queues.push(QueueSpec {
                name: tier.queue.clone(),
                routing_key: tier.routing_key.clone(),
                arguments: table([
                    ("x-queue-type", text("quorum")),
                    ("x-message-ttl", AMQPValue::LongLongInt(ttl_ms)),
                    ("x-dead-letter-exchange", text(&exchange)),
                    ("x-dead-letter-routing-key", text(JOBS_ROUTING_KEY)),
                    // A job leaving a delay tier must not be lost on its way
                    // back; at-least-once dead-lettering needs reject-publish.
                    ("x-dead-letter-strategy", text("at-least-once")),
                    ("x-overflow", text("reject-publish")),
                ]),
            });
        }
        queues
    }

    /// Declares the exchange, every queue and every binding. Idempotent: a
    /// second call changes nothing. Fails, naming the object, when the broker
    /// holds one with other arguments (the channel is then closed by the broker).
    pub async fn declare(&self, channel: &Channel) -> Result<(), TopologyError> {
        let exchange = self.exchange();
        channel
            .exchange_declare(
                exchange.as_str().into(),
                lapin::ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|source| TopologyError {
                object: format!("exchange {exchange}"),
                source,
            })?;

        for queue in self.queues() {
            channel
                .queue_declare(
                    queue.name.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    queue.arguments.clone(),
                )
                .await
                .map_err(|source| TopologyError {
                    object: format!("queue {}", queue.name),
                    source,
                })?;
            channel
                .queue_bind(
                    queue.name.as_str().into(),
                    exchange.as_str().into(),
                    queue.routing_key.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|source| TopologyError {
                    object: format!("binding {} -> {}", queue.routing_key, queue.name),
                    source,
                })?;
        }
        Ok(())
    }
}

/// `5s`, `30s`, `2m`, `1h30m`: the tier's delay without spaces.
fn tier_label(delay: Duration) -> String {
    humantime::format_duration(delay)
        .to_string()
        .replace(' ', "")
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

fn table<const N: usize>(entries: [(&str, AMQPValue); N]) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in entries {
        table.insert(key.into(), value);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let topology = Topology::new("t1-", &DEFAULT_RETRY_DELAYS);
        assert_eq!(topology.exchange(), "t1-ingest");
        assert_eq!(topology.work_queue(), "t1-ingest.jobs");
        assert_eq!(topology.dead_queue(), "t1-ingest.dead");
        let tiers: Vec<_> = topology
            .delay_tiers()
            .iter()
            .map(|t| t.queue.as_str())
            .collect();
        assert_eq!(
            tiers,
            [
                "t1-ingest.delay.5s",
                "t1-ingest.delay.30s",
                "t1-ingest.delay.2m",
                "t1-ingest.delay.10m"
            ]
        );
    }

    #[test]
    fn attempts_past_the_last_tier_reuse_it() {
        let topology = Topology::new("", &DEFAULT_RETRY_DELAYS);
        let delay = |attempt| topology.delay_after(attempt).map(|t| t.delay.as_secs());
        assert_eq!(delay(1), Some(5));
        assert_eq!(delay(4), Some(600));
        assert_eq!(delay(9), Some(600));
        assert_eq!(Topology::new("", &[]).delay_after(1), None);
    }

    #[test]
    fn delay_queues_send_jobs_back_to_the_work_queue() {
        let topology = Topology::new("", &[Duration::from_millis(1500)]);
        let queues = topology.queues();
        let delay = &queues[2];
        assert_eq!(delay.name, "ingest.delay.1s500ms");
        let args = delay.arguments.inner();
        assert_eq!(args["x-message-ttl"], AMQPValue::LongLongInt(1500));
        assert_eq!(args["x-dead-letter-routing-key"], text("jobs"));
        assert_eq!(
            queues[0].arguments.inner()["x-dead-letter-routing-key"],
            text("dead")
        );
    }
}
