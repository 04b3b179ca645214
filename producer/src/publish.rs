//! Publishing with publisher confirms, many at once: a bounded window of
//! publishes whose confirms are awaited concurrently, never one round trip
//! at a time.

use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::Confirmation;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel};
use tokio::time::Instant;

/// What became of one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// The broker routed, stored and confirmed it.
    Confirmed,
    /// The broker returned it as unroutable (`mandatory`), with its reply.
    Returned(String),
    /// The broker refused it (nack), e.g. a queue at its length limit.
    Nacked,
    /// No confirm arrived: timeout, lost connection or closed channel.
    NotConfirmed(String),
}

impl PublishOutcome {
    /// Whether the message is known to be in its queue.
    pub fn is_confirmed(&self) -> bool {
        matches!(self, PublishOutcome::Confirmed)
    }
}

impl std::fmt::Display for PublishOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishOutcome::Confirmed => f.write_str("confirmed"),
            PublishOutcome::Returned(reply) => write!(f, "returned unroutable ({reply})"),
            PublishOutcome::Nacked => f.write_str("nacked by the broker"),
            PublishOutcome::NotConfirmed(reason) => write!(f, "not confirmed: {reason}"),
        }
    }
}

/// Counts of outcomes, for the summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PublishTally {
    /// Confirmed publishes.
    pub confirmed: usize,
    /// Returned as unroutable.
    pub returned: usize,
    /// Nacked by the broker.
    pub nacked: usize,
    /// Never confirmed.
    pub unconfirmed: usize,
}

impl PublishTally {
    /// Counts one outcome.
    pub fn record(&mut self, outcome: &PublishOutcome) {
        match outcome {
            PublishOutcome::Confirmed => self.confirmed += 1,
            PublishOutcome::Returned(_) => self.returned += 1,
            PublishOutcome::Nacked => self.nacked += 1,
            PublishOutcome::NotConfirmed(_) => self.unconfirmed += 1,
        }
    }
}

type PendingConfirm<T> = Pin<Box<dyn Future<Output = (T, PublishOutcome)> + Send>>;

/// Publishes mandatory messages to one exchange and routing key on a channel
/// in confirm mode, keeping up to `capacity` confirms outstanding. Each
/// published item of type `T` (e.g. a job id) comes back with its outcome.
pub struct ConfirmWindow<T> {
    channel: Channel,
    exchange: String,
    routing_key: String,
    capacity: usize,
    confirm_timeout: Duration,
    in_flight: FuturesUnordered<PendingConfirm<T>>,
}

impl<T: Send + 'static> ConfirmWindow<T> {
    /// A window on `channel`, which must already be in confirm mode.
    pub fn new(
        channel: Channel,
        exchange: &str,
        routing_key: &str,
        capacity: NonZeroUsize,
        confirm_timeout: Duration,
    ) -> Self {
        Self {
            channel,
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            capacity: capacity.get(),
            confirm_timeout,
            in_flight: FuturesUnordered::new(),
        }
    }

    /// Whether `capacity` confirms are outstanding; take one with [`Self::next`] first.
    pub fn is_full(&self) -> bool {
        self.in_flight.len() >= self.capacity
    }

    /// Sends one message; its outcome comes later from [`Self::next`]. The
    /// confirm timeout runs from now.
    pub async fn publish(&mut self, item: T, body: &[u8], properties: BasicProperties) {
        let deadline = Instant::now() + self.confirm_timeout;
        let timeout = self.confirm_timeout;
        let sent = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                self.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await;
        self.in_flight.push(Box::pin(async move {
            let outcome = match sent {
                Err(err) => PublishOutcome::NotConfirmed(err.to_string()),
                Ok(confirm) => match tokio::time::timeout_at(deadline, confirm).await {
                    Err(_) => PublishOutcome::NotConfirmed(format!(
                        "no confirm within {}",
                        humantime::format_duration(timeout)
                    )),
                    Ok(Err(err)) => PublishOutcome::NotConfirmed(err.to_string()),
                    Ok(Ok(confirmation)) => outcome_of(confirmation),
                },
            };
            (item, outcome)
        }));
    }

    /// Closes the channel once every outcome has been taken.
    pub async fn close(self) -> lapin::Result<()> {
        self.channel.close(200, "done".into()).await
    }

    /// The next outcome in completion order; `None` when nothing is outstanding.
    pub async fn next(&mut self) -> Option<(T, PublishOutcome)> {
        self.in_flight.next().await
    }
}

fn outcome_of(confirmation: Confirmation) -> PublishOutcome {
    match confirmation {
        Confirmation::Ack(None) => PublishOutcome::Confirmed,
        Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
            PublishOutcome::Returned(format!("{} {}", returned.reply_code, returned.reply_text))
        }
        Confirmation::Nack(None) => PublishOutcome::Nacked,
        Confirmation::NotRequested => {
            PublishOutcome::NotConfirmed("the channel is not in confirm mode".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_ack_counts_as_confirmed() {
        assert_eq!(
            outcome_of(Confirmation::Ack(None)),
            PublishOutcome::Confirmed
        );
        assert_eq!(outcome_of(Confirmation::Nack(None)), PublishOutcome::Nacked);
        assert!(!outcome_of(Confirmation::NotRequested).is_confirmed());
        let mut tally = PublishTally::default();
        tally.record(&PublishOutcome::Returned("312 NO_ROUTE".into()));
        tally.record(&PublishOutcome::Confirmed);
        assert_eq!((tally.returned, tally.confirmed), (1, 1));
    }
}
