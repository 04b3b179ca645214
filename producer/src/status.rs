//! `ingestctl status`: depth, consumers and rates of the work, delay and
//! dead-letter queues from the management API, and a health verdict.

use serde_json::{Value, json};

use crate::Context;
use crate::cli::StatusArgs;
use crate::error::{CtlError, Exit};
use crate::management::{ManagementClient, QueueInfo};
use crate::render::{self, Column, Style};

/// One queue's line of the status.
#[derive(Debug, Clone)]
pub struct QueueStatus {
    /// Queue name.
    pub name: String,
    /// What the API says; `None` when the queue does not exist.
    pub info: Option<QueueInfo>,
}

/// Runs `status`; exit 3 naming the reason when unhealthy.
pub async fn run(context: &Context, args: StatusArgs) -> Result<Exit, CtlError> {
    let client = ManagementClient::new(context.management.clone())?;
    let topology = &context.topology;
    let mut names = vec![topology.work_queue()];
    names.extend(topology.delay_tiers().iter().map(|tier| tier.queue.clone()));
    names.push(topology.dead_queue());

    let mut queues = Vec::with_capacity(names.len());
    for name in names {
        let info = client.queue(&name).await?;
        queues.push(QueueStatus { name, info });
    }
    let problems = unhealthy_reasons(&queues, &topology.work_queue());

    if args.json {
        println!("{}", to_json(&queues, &problems));
    } else {
        print!("{}", status_table(&queues, Style::for_stdout()));
    }
    if problems.is_empty() {
        return Ok(Exit::Ok);
    }
    for problem in &problems {
        eprintln!("unhealthy: {problem}");
    }
    Ok(Exit::Unhealthy)
}

/// Why the fleet is unhealthy: missing queues, or a non-empty work queue
/// that no worker consumes.
pub fn unhealthy_reasons(queues: &[QueueStatus], work_queue: &str) -> Vec<String> {
    let mut reasons = Vec::new();
    for queue in queues {
        match &queue.info {
            None => reasons.push(format!("queue {} does not exist", queue.name)),
            Some(info) if queue.name == work_queue => {
                let depth = info.messages_ready + info.messages_unacknowledged;
                if depth > 0 && info.consumers == 0 {
                    reasons.push(format!(
                        "work queue {} holds {depth} messages and has no consumers",
                        queue.name
                    ));
                }
            }
            Some(_) => {}
        }
    }
    reasons
}

fn to_json(queues: &[QueueStatus], problems: &[String]) -> Value {
    let queues: Vec<Value> = queues
        .iter()
        .map(|queue| match &queue.info {
            None => json!({ "name": queue.name, "exists": false }),
            Some(info) => json!({
                "name": queue.name,
                "exists": true,
                "ready": info.messages_ready,
                "unacked": info.messages_unacknowledged,
                "consumers": info.consumers,
                "publish_rate": info.message_stats.publish_details.rate,
                "deliver_rate": info.message_stats.deliver_get_details.rate,
                "ack_rate": info.message_stats.ack_details.rate,
            }),
        })
        .collect();
    json!({ "healthy": problems.is_empty(), "problems": problems, "queues": queues })
}

fn status_table(queues: &[QueueStatus], style: Style) -> String {
    let header = [
        "QUEUE",
        "READY",
        "UNACKED",
        "CONSUMERS",
        "PUBLISH/S",
        "DELIVER/S",
        "ACK/S",
    ];
    let rows = queues
        .iter()
        .map(|queue| {
            let mut row = vec![Column::from(queue.name.clone())];
            match &queue.info {
                None => row.extend((0..6).map(|_| Column::from("missing".to_owned()))),
                Some(info) => {
                    let stats = &info.message_stats;
                    row.extend(
                        [
                            info.messages_ready.to_string(),
                            info.messages_unacknowledged.to_string(),
                            info.consumers.to_string(),
                            format!("{:.1}", stats.publish_details.rate),
                            format!("{:.1}", stats.deliver_get_details.rate),
                            format!("{:.1}", stats.ack_details.rate),
                        ]
                        .map(Column::from),
                    );
                }
            }
            row
        })
        .collect();
    render::table(&header, rows, style)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str, ready: u64, consumers: u64) -> QueueStatus {
        let info: QueueInfo = serde_json::from_value(json!({
            "name": name, "type": "quorum", "messages_ready": ready, "consumers": consumers,
        }))
        .unwrap();
        QueueStatus {
            name: name.into(),
            info: Some(info),
        }
    }

    #[test]
    fn a_non_empty_work_queue_without_consumers_is_unhealthy() {
        assert!(unhealthy_reasons(&[queue("jobs", 0, 0)], "jobs").is_empty());
        assert!(unhealthy_reasons(&[queue("jobs", 5, 2)], "jobs").is_empty());
        let reasons = unhealthy_reasons(&[queue("jobs", 5, 0), queue("dead", 9, 0)], "jobs");
        assert_eq!(
            reasons,
            ["work queue jobs holds 5 messages and has no consumers"]
        );
        let missing = QueueStatus {
            name: "dead".into(),
            info: None,
        };
        assert_eq!(
            unhealthy_reasons(&[missing], "jobs"),
            ["queue dead does not exist"]
        );
    }
}
