//! Reading the dead-letter queue without changing it: every ready message is
//! taken unacknowledged on a dedicated channel and held there, then all are
//! handed back to the queue at once (see `docs/operations.md`).
//!
//! Destructive commands ack the held messages they have dealt with before the
//! rest are handed back; a process that dies holding messages hands them
//! back too, as the broker requeues whatever a closed channel had not acked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};

use crate::dead_letter::DeadLetter;
use crate::error::{CtlError, broker};

/// How long the holding channel stays open after its last ack. RabbitMQ
/// 3.10's quorum-queue client stashes acks once more than 256 commands of a
/// channel await the queue's consensus, sends them only when earlier ones are
/// applied, and drops the stash when the channel closes: the broker then hands
/// those messages back as if never acked. Replaying or purging a few hundred
/// dead letters at once reaches that limit; a pause of this length lets the
/// stash drain (it takes milliseconds) before the channel closes.
pub const ACK_DRAIN_PAUSE: Duration = Duration::from_secs(1);

/// Dead letters held unacknowledged on their own channel.
pub struct HeldLetters {
    channel: Channel,
    queue: String,
    /// Whether any held message was acked, so that closing must wait.
    has_acked: AtomicBool,
    /// Ready messages the queue reported when reading began.
    pub expected: u32,
    /// The held letters, in delivery order.
    pub letters: Vec<HeldLetter>,
}

/// One held dead letter and the tag that acks it.
pub struct HeldLetter {
    /// Delivery tag on the holding channel.
    pub delivery_tag: u64,
    /// The message.
    pub letter: DeadLetter,
}

/// Takes every ready message of `queue` without acknowledging any.
///
/// The prefetch equals the queue's ready count (unlimited past 65,535, the
/// protocol's maximum), so the broker hands out that many and no more while
/// nothing is acked. Reading stops when that many arrived or when none came
/// for `idle_timeout` (another reader holds some).
pub async fn hold_all(
    connection: &Connection,
    queue: &str,
    idle_timeout: Duration,
) -> Result<HeldLetters, CtlError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(broker("opening a channel"))?;
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
        .map_err(broker(format!("looking up queue {queue}")))?;
    let expected = declared.message_count();
    let mut held = HeldLetters {
        channel,
        queue: queue.to_owned(),
        has_acked: AtomicBool::new(false),
        expected,
        letters: Vec::new(),
    };
    if expected == 0 {
        return Ok(held);
    }

    let prefetch = u16::try_from(expected).unwrap_or(0);
    held.channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(broker("setting the prefetch"))?;
    let tag = format!("ingestctl-{}", uuid::Uuid::new_v4().simple());
    let mut consumer = held
        .channel
        .basic_consume(
            queue.into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(broker(format!("consuming from {queue}")))?;

    while held.letters.len() < expected as usize {
        let delivery = match tokio::time::timeout(idle_timeout, consumer.next()).await {
            Ok(Some(delivery)) => delivery.map_err(broker(format!("reading {queue}")))?,
            Ok(None) | Err(_) => break,
        };
        held.letters.push(HeldLetter {
            delivery_tag: delivery.delivery_tag,
            letter: DeadLetter::new(delivery.data, delivery.properties),
        });
    }
    if held.letters.len() < expected as usize {
        tracing::warn!(
            queue,
            expected,
            read = held.letters.len(),
            "fewer dead letters arrived than the queue counted; another consumer \
             holds the rest, which this command leaves untouched"
        );
    }

    // Messages delivered after the count was reached stay unacked on this
    // channel and go back with the others in `release`.
    held.channel
        .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
        .await
        .map_err(broker(format!("cancelling the consumer on {queue}")))?;
    Ok(held)
}

impl HeldLetters {
    /// Removes one held message from the queue for good.
    pub async fn ack(&self, delivery_tag: u64) -> Result<(), CtlError> {
        self.has_acked.store(true, Ordering::Relaxed);
        self.channel
            .basic_ack(delivery_tag, BasicAckOptions::default())
            .await
            .map_err(broker(format!("acknowledging a message of {}", self.queue)))
    }

    /// Hands every message not acked back to the queue and closes the channel.
    /// After acks it first waits [`ACK_DRAIN_PAUSE`] for the broker to apply
    /// them; the close waits for the broker's reply, so every ack and the
    /// return have been processed when this returns.
    pub async fn release(self) -> Result<(), CtlError> {
        if self.has_acked.load(Ordering::Relaxed) {
            tokio::time::sleep(ACK_DRAIN_PAUSE).await;
        }
        // Delivery tag 0 with `multiple` means every outstanding delivery.
        self.channel
            .basic_nack(
                0,
                BasicNackOptions {
                    multiple: true,
                    requeue: true,
                },
            )
            .await
            .map_err(broker(format!("returning messages to {}", self.queue)))?;
        self.channel
            .close(200, "done".into())
            .await
            .map_err(broker(format!("closing the channel on {}", self.queue)))
    }
}
