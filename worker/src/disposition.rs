//! Settling a delivery: ack it, send it to a delay queue for a later attempt,
//! dead-letter it with the reason, or return it to the queue. Every path that
//! moves a job publishes the copy and waits for the broker's confirm before
//! the original is acked, so a crash in between duplicates, never loses.

use std::time::Duration;

use chrono::Utc;
use ingest_shared::Topology;
use ingest_shared::headers;
use ingest_shared::topology::DEAD_ROUTING_KEY;
use lapin::message::Delivery;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation};

use crate::error::{ErrorClass, JobError};
use crate::settle::{SettleLost, Settler};

/// Where a job ended up after one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Ingested and acked.
    Acked,
    /// Failed transiently; waiting in a delay queue for its next attempt.
    Retried {
        /// The delay tier it waits in.
        delay: Duration,
    },
    /// In the dead-letter queue with its reason.
    DeadLettered(ErrorClass),
    /// Returned to the work queue untouched (draining, or a dependency's
    /// circuit is open); the attempt does not count.
    Requeued,
    /// The channel died before the delivery could be settled; the broker
    /// redelivers it.
    Abandoned,
}

impl Fate {
    /// `(outcome, class)` labels of `ingest_jobs_total`.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Fate::Acked => ("acked", "none"),
            Fate::Retried { .. } => ("retried", "transient"),
            Fate::DeadLettered(class) => ("dead_lettered", class.as_str()),
            Fate::Requeued => ("requeued", "none"),
            Fate::Abandoned => ("abandoned", "none"),
        }
    }
}

/// Why a job could not be moved.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    /// The channel or connection failed.
    #[error("the broker connection failed")]
    Broker(#[from] lapin::Error),
    /// The copy was confirmed but the original could not be acked; the
    /// broker redelivers it (a duplicate, never a loss).
    #[error("the original delivery could not be acked")]
    Settle(#[from] SettleLost),
    /// The broker could not route the copy (a queue is missing).
    #[error("the broker returned the message to {exchange}/{routing_key} as unroutable")]
    Returned {
        exchange: String,
        routing_key: String,
    },
    /// The broker refused the copy.
    #[error("the broker refused the message to {exchange}/{routing_key}")]
    Nacked {
        exchange: String,
        routing_key: String,
    },
}

/// Settles deliveries of one broker session.
#[derive(Debug)]
pub struct Disposer {
    /// Channel in confirm mode for retries and dead letters.
    pub publish: Channel,
    /// Acks and nacks on the consume channel.
    pub settler: Settler,
    /// Names of the fleet's exchange and queues.
    pub topology: Topology,
    /// Written into dead letters as the worker that gave up.
    pub worker_id: String,
    /// Attempts before a transient failure is dead-lettered.
    pub max_attempts: u32,
}

/// The attempt a delivery is, from our own header (absent means 1).
pub fn attempt_of(delivery: &Delivery) -> u32 {
    headers::get_i64(delivery.properties.headers().as_ref(), headers::ATTEMPT)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

impl Disposer {
    /// Acks a job that was ingested.
    pub async fn ack(&self, delivery: &Delivery) -> Fate {
        match self.settler.ack(delivery.delivery_tag).await {
            Ok(()) => Fate::Acked,
            Err(err) => {
                tracing::warn!(error = %err, "ack failed; the broker will redeliver the job");
                Fate::Abandoned
            }
        }
    }

    /// Sends a failed job on: to a delay queue while attempts remain and the
    /// error is transient, otherwise to the dead-letter queue.
    pub async fn fail(&self, delivery: &Delivery, attempt: u32, err: &JobError) -> Fate {
        let class = err.class();
        let chain = err.chain();
        let result = match (class, self.topology.delay_after(attempt)) {
            (ErrorClass::Transient, Some(tier)) if attempt < self.max_attempts => {
                let headers = self.failure_headers(delivery, class, &chain, Some(attempt + 1));
                let fate = Fate::Retried { delay: tier.delay };
                self.move_to(delivery, &tier.routing_key, headers)
                    .await
                    .map(|()| fate)
            }
            _ => {
                let mut headers = self.failure_headers(delivery, class, &chain, None);
                insert_long(&mut headers, headers::ATTEMPTS, attempt.into());
                insert_text(&mut headers, headers::WORKER, &self.worker_id);
                insert_text(
                    &mut headers,
                    headers::SOURCE_QUEUE,
                    &self.topology.work_queue(),
                );
                self.move_to(delivery, DEAD_ROUTING_KEY, headers)
                    .await
                    .map(|()| Fate::DeadLettered(class))
            }
        };
        match result {
            Ok(fate) => {
                match fate {
                    Fate::DeadLettered(_) => tracing::error!(
                        class = class.as_str(),
                        error = %chain,
                        "job dead-lettered"
                    ),
                    _ => tracing::warn!(
                        class = class.as_str(),
                        error = %chain,
                        ?fate,
                        "attempt failed; job will be retried"
                    ),
                }
                fate
            }
            Err(settle) => {
                tracing::warn!(
                    error = %settle,
                    job_error = %chain,
                    "could not move the failed job; returning it to the queue"
                );
                self.requeue(delivery).await
            }
        }
    }

    /// Returns a delivery to the work queue untouched; the attempt does not count.
    pub async fn requeue(&self, delivery: &Delivery) -> Fate {
        match self.settler.requeue(delivery.delivery_tag).await {
            Ok(()) => Fate::Requeued,
            Err(err) => {
                tracing::warn!(error = %err, "nack failed; the broker will redeliver the job");
                Fate::Abandoned
            }
        }
    }

    /// Publishes a copy with `headers` (body byte for byte, properties kept)
    /// and acks the original once the broker confirmed the copy.
    async fn move_to(
        &self,
        delivery: &Delivery,
        routing_key: &str,
        headers: FieldTable,
    ) -> Result<(), SettleError> {
        let exchange = self.topology.exchange();
        let properties: BasicProperties = delivery
            .properties
            .clone()
            .with_headers(headers)
            .with_delivery_mode(2);
        let confirmation = self
            .publish
            .basic_publish(
                exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        match confirmation {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(_)) => {
                return Err(SettleError::Returned {
                    exchange,
                    routing_key: routing_key.into(),
                });
            }
            Confirmation::Nack(_) | Confirmation::NotRequested => {
                return Err(SettleError::Nacked {
                    exchange,
                    routing_key: routing_key.into(),
                });
            }
        }
        self.settler.ack(delivery.delivery_tag).await?;
        Ok(())
    }

    /// The delivery's headers plus the failure: class, error chain, first and
    /// last failure times, and the next attempt number when one is planned.
    fn failure_headers(
        &self,
        delivery: &Delivery,
        class: ErrorClass,
        chain: &str,
        next_attempt: Option<u32>,
    ) -> FieldTable {
        let mut table = delivery.properties.headers().clone().unwrap_or_default();
        let now = ingest_shared::job::canonical_time(Utc::now());
        if headers::get_str(Some(&table), headers::FIRST_FAILURE).is_none() {
            insert_text(&mut table, headers::FIRST_FAILURE, &now);
        }
        insert_text(&mut table, headers::LAST_FAILURE, &now);
        insert_text(&mut table, headers::ERROR_CLASS, class.as_str());
        insert_text(&mut table, headers::ERROR, chain);
        if let Some(next) = next_attempt {
            insert_long(&mut table, headers::ATTEMPT, next.into());
        }
        table
    }
}

fn insert_text(table: &mut FieldTable, key: &str, value: &str) {
    table.insert(key.into(), AMQPValue::LongString(LongString::from(value)));
}

fn insert_long(table: &mut FieldTable, key: &str, value: i64) {
    table.insert(key.into(), AMQPValue::LongLongInt(value));
}
