//! Settling deliveries on the consume channel. One task sends every ack and
//! nack of a channel, in order, and folds acks that complete a run from the
//! oldest unsettled delivery into one `multiple` ack, so the broker handles
//! one frame for many jobs instead of one each.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::{Channel, types::DeliveryTag};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// How long an ack may wait for the deliveries before it to finish, so that
/// one frame settles them all. Short next to any job, and an ack that waits
/// holds a prefetch slot only for this long.
pub const ACK_HOLD: Duration = Duration::from_millis(5);

/// Requests served per round at most, so a flood of completions cannot hold
/// back the held acks' deadline.
const ROUND: usize = 1024;

/// Sends a channel's acks and nacks. Cheap to clone; the task ends when the
/// last clone is dropped, after sending every held ack.
#[derive(Debug, Clone)]
pub struct Settler {
    requests: mpsc::UnboundedSender<Request>,
}

/// Why a delivery could not be settled: the channel failed, and the broker
/// will redeliver the job.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SettleLost {
    /// The broker refused the frame or the channel closed under it.
    #[error("the consume channel failed")]
    Channel(#[source] lapin::Error),
    /// The settling task is gone (its session ended).
    #[error("the consume channel's session ended")]
    Ended,
}

#[derive(Debug)]
enum Request {
    Delivered(DeliveryTag),
    Ack(DeliveryTag, Reply),
    Requeue(DeliveryTag, Reply),
}

type Reply = oneshot::Sender<Result<(), SettleLost>>;

impl Settler {
    /// Starts the task that settles deliveries of `channel`.
    pub fn spawn(channel: Channel) -> Settler {
        let (requests, inbox) = mpsc::unbounded_channel();
        tokio::spawn(run(channel, inbox));
        Settler { requests }
    }

    /// Tells the settler about a delivery, before its job starts. Every
    /// delivery of the channel must pass here, in the order they arrived.
    pub fn delivered(&self, tag: DeliveryTag) {
        let _ = self.requests.send(Request::Delivered(tag));
    }

    /// Acks a delivery; returns once the ack is on its way to the broker.
    pub async fn ack(&self, tag: DeliveryTag) -> Result<(), SettleLost> {
        self.ask(|reply| Request::Ack(tag, reply)).await
    }

    /// Returns a delivery to its queue untouched.
    pub async fn requeue(&self, tag: DeliveryTag) -> Result<(), SettleLost> {
        self.ask(|reply| Request::Requeue(tag, reply)).await
    }

    async fn ask(&self, request: impl FnOnce(Reply) -> Request) -> Result<(), SettleLost> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| SettleLost::Ended)?;
        answer.await.unwrap_or(Err(SettleLost::Ended))
    }
}

async fn run(channel: Channel, mut inbox: mpsc::UnboundedReceiver<Request>) {
    let mut ledger = Ledger::default();
    let mut replies: BTreeMap<DeliveryTag, Reply> = BTreeMap::new();
    let mut batch = Vec::with_capacity(ROUND);
    loop {
        let deadline = ledger.next_deadline(ACK_HOLD);
        let open = tokio::select! {
            received = inbox.recv_many(&mut batch, ROUND) => received > 0,
            _ = sleep_until(deadline) => true,
        };

        // Nacks go out as they come: a run of acks is only ever sent after
        // every nack below it, since this task awaits each frame in turn.
        let now = Instant::now();
        for request in batch.drain(..) {
            match request {
                Request::Delivered(tag) => ledger.delivered(tag),
                Request::Ack(tag, reply) => {
                    ledger.hold(tag, now);
                    replies.insert(tag, reply);
                }
                Request::Requeue(tag, reply) => {
                    ledger.settled(tag);
                    let options = BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    };
                    let sent = channel.basic_nack(tag, options).await;
                    let _ = reply.send(sent.map_err(SettleLost::Channel));
                }
            }
        }

        let hold = if open { ACK_HOLD } else { Duration::ZERO };
        for frame in ledger.due(now, hold) {
            let (tag, multiple, covered) = match &frame {
                Frame::Ack(tag) => (*tag, false, std::slice::from_ref(tag)),
                Frame::AckThrough { tag, covered } => (*tag, true, covered.as_slice()),
            };
            let sent = channel
                .basic_ack(tag, BasicAckOptions { multiple })
                .await
                .map_err(SettleLost::Channel);
            metrics::counter!("ingest_ack_frames_total").increment(1);
            for tag in covered {
                if let Some(reply) = replies.remove(tag) {
                    let _ = reply.send(sent.clone());
                }
            }
        }
        if !open {
            return;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A frame that acks jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// One delivery.
    Ack(DeliveryTag),
    /// Every unsettled delivery up to and including `tag`: exactly the
    /// `covered` ones, since all others below it are settled already.
    AckThrough {
        tag: DeliveryTag,
        covered: Vec<DeliveryTag>,
    },
}

/// What a channel's deliveries are waiting for. Pure bookkeeping, so that
/// the rule that makes a `multiple` ack safe can be tested on its own: it may
/// only cover deliveries this ledger has seen, each of them either held for
/// an ack or already settled.
#[derive(Debug)]
struct Ledger {
    /// The tag the next delivery should carry (the broker counts from 1).
    next: DeliveryTag,
    /// Whether every delivery of the channel so far was seen here. A gap
    /// means a delivery the ledger knows nothing of, which a `multiple` ack
    /// could settle unseen; from then on every ack goes alone.
    complete: bool,
    /// Unsettled deliveries, and whether each one's ack is held.
    open: BTreeMap<DeliveryTag, bool>,
    /// Held acks in the order they were asked for, with when. Entries whose
    /// delivery was settled since are skipped as they reach the front, so
    /// finding the oldest held ack never scans the whole window.
    held: VecDeque<(Instant, DeliveryTag)>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            next: 1,
            complete: true,
            open: BTreeMap::new(),
            held: VecDeque::new(),
        }
    }
}

impl Ledger {
    fn delivered(&mut self, tag: DeliveryTag) {
        if tag != self.next && self.complete {
            tracing::warn!(
                expected = self.next,
                delivery_tag = tag,
                "delivery tags skipped one; acking every delivery on its own from now on"
            );
            self.complete = false;
        }
        self.next = tag + 1;
        self.open.insert(tag, false);
    }

    fn hold(&mut self, tag: DeliveryTag, now: Instant) {
        self.open.insert(tag, true);
        self.held.push_back((now, tag));
    }

    fn settled(&mut self, tag: DeliveryTag) {
        self.open.remove(&tag);
    }

    fn is_held(&self, tag: DeliveryTag) -> bool {
        self.open.get(&tag).copied().unwrap_or(false)
    }

    /// The oldest ack still held, and when it was asked for.
    fn oldest_held(&mut self) -> Option<(Instant, DeliveryTag)> {
        while let Some(&(at, tag)) = self.held.front() {
            if self.is_held(tag) {
                return Some((at, tag));
            }
            self.held.pop_front();
        }
        None
    }

    /// When the oldest held ack must go out even if the run before it is
    /// not complete.
    fn next_deadline(&mut self, hold: Duration) -> Option<Instant> {
        self.oldest_held().map(|(at, _)| at + hold)
    }

    /// The frames to send now: one ack for the held run that starts at the
    /// oldest unsettled delivery, and a single ack for every other held
    /// delivery that has waited `hold` or longer.
    fn due(&mut self, now: Instant, hold: Duration) -> Vec<Frame> {
        let mut frames = Vec::new();
        if self.complete {
            let mut covered = Vec::new();
            while let Some(entry) = self.open.first_entry() {
                if !*entry.get() {
                    break;
                }
                covered.push(entry.remove_entry().0);
            }
            match covered.len() {
                0 => {}
                1 => frames.push(Frame::Ack(covered[0])),
                _ => frames.push(Frame::AckThrough {
                    tag: *covered.last().expect("two or more tags"),
                    covered,
                }),
            }
        }
        let hold = if self.complete { hold } else { Duration::ZERO };
        while let Some((at, tag)) = self.oldest_held() {
            if at + hold > now {
                break;
            }
            self.held.pop_front();
            self.open.remove(&tag);
            frames.push(Frame::Ack(tag));
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger_with(tags: std::ops::RangeInclusive<DeliveryTag>) -> Ledger {
        let mut ledger = Ledger::default();
        for tag in tags {
            ledger.delivered(tag);
        }
        ledger
    }

    #[test]
    fn acks_finishing_in_order_go_out_as_one_multiple_ack() {
        let now = Instant::now();
        let mut ledger = ledger_with(1..=4);
        for tag in 1..=3 {
            ledger.hold(tag, now);
        }
        assert_eq!(
            ledger.due(now, ACK_HOLD),
            [Frame::AckThrough {
                tag: 3,
                covered: vec![1, 2, 3]
            }]
        );
        assert!(
            ledger.due(now, ACK_HOLD).is_empty(),
            "nothing is acked twice"
        );
    }

    #[test]
    fn an_ack_behind_a_working_job_waits_then_goes_alone() {
        let now = Instant::now();
        let mut ledger = ledger_with(1..=3);
        ledger.hold(2, now);
        ledger.hold(3, now);
        assert!(ledger.due(now, ACK_HOLD).is_empty());
        assert_eq!(ledger.next_deadline(ACK_HOLD), Some(now + ACK_HOLD));
        assert_eq!(
            ledger.due(now + ACK_HOLD, ACK_HOLD),
            [Frame::Ack(2), Frame::Ack(3)]
        );
        ledger.hold(1, now + ACK_HOLD);
        assert_eq!(ledger.due(now + ACK_HOLD, ACK_HOLD), [Frame::Ack(1)]);
    }

    #[test]
    fn a_requeued_delivery_inside_a_run_is_skipped_not_acked() {
        let now = Instant::now();
        let mut ledger = ledger_with(1..=4);
        ledger.hold(1, now);
        ledger.settled(2);
        ledger.hold(3, now);
        assert_eq!(
            ledger.due(now, ACK_HOLD),
            [Frame::AckThrough {
                tag: 3,
                covered: vec![1, 3]
            }]
        );
        assert_eq!(ledger.open.keys().copied().collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn a_gap_in_the_tags_ends_multiple_acks_for_the_channel() {
        let now = Instant::now();
        let mut ledger = ledger_with(1..=2);
        ledger.delivered(4);
        for tag in [1, 2, 4] {
            ledger.hold(tag, now);
        }
        assert_eq!(
            ledger.due(now, ACK_HOLD),
            [Frame::Ack(1), Frame::Ack(2), Frame::Ack(4)]
        );
    }

    #[test]
    fn at_close_every_held_ack_is_due() {
        let now = Instant::now();
        let mut ledger = ledger_with(1..=2);
        ledger.hold(2, now);
        assert_eq!(ledger.due(now, Duration::ZERO), [Frame::Ack(2)]);
        assert_eq!(ledger.next_deadline(ACK_HOLD), None);
    }
}
