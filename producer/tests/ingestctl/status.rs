//! `status` against the management API, and `topology apply`/`check`.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde_json::Value;

use crate::helpers::{TestBroker, stderr, stdout};

/// The numbers `status --json` prints are the management API's, and a
/// non-empty work queue without consumers is unhealthy (exit 3).
#[tokio::test]
async fn status_reports_the_management_api_numbers() {
    let broker = TestBroker::declared().await;
    let healthy = broker.ingestctl(&["status", "--json"], None).await;
    assert_eq!(healthy.status.code(), Some(0), "{}", stderr(&healthy));

    let work = broker.topology.work_queue();
    for body in [b"a".as_slice(), b"b", b"c"] {
        broker.put(&work, body, Default::default()).await;
    }
    // The API's numbers refresh about every 5 s: poll until both agree.
    let mut last = (Value::Null, Value::Null, None);
    let mut agreed = false;
    for _ in 0..60 {
        let output = broker.ingestctl(&["status", "--json"], None).await;
        let printed: Value = serde_json::from_str(&stdout(&output)).unwrap();
        let api = broker.management_queue(&work).await;
        let queue = printed["queues"][0].clone();
        agreed = queue["name"] == work.as_str()
            && queue["ready"] == api["messages_ready"]
            && queue["unacked"] == api["messages_unacknowledged"]
            && queue["consumers"] == api["consumers"]
            && queue["ready"] == 3;
        last = (queue, api, output.status.code());
        if agreed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(agreed, "status and API never agreed: {last:?}");
    assert_eq!(last.2, Some(3), "no consumers on a non-empty work queue");
    let output = broker.ingestctl(&["status"], None).await;
    assert!(
        stderr(&output).contains("has no consumers"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains(&broker.topology.dead_queue()));
}

/// `topology apply` then `check` agree; a queue declared with other
/// arguments is named with the difference, exit 3.
#[tokio::test]
async fn topology_check_names_a_queue_declared_differently() {
    let broker = TestBroker::new().await;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(10));
    broker
        .channel
        .queue_declare(
            broker.topology.dead_queue().as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await
        .unwrap();

    let output = broker.ingestctl(&["topology", "check"], None).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = stdout(&output);
    let dead = broker.topology.dead_queue();
    assert!(
        text.contains(&format!(
            "queue {dead} has unexpected argument x-max-length=10"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "queue {} does not exist",
            broker.topology.work_queue()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "exchange {} does not exist",
            broker.topology.exchange()
        )),
        "{text}"
    );

    let other = TestBroker::new().await;
    let applied = other.ingestctl(&["topology", "apply"], None).await;
    assert!(applied.status.success(), "{}", stderr(&applied));
    let checked = other
        .ingestctl(&["topology", "check", "--json"], None)
        .await;
    assert_eq!(checked.status.code(), Some(0), "{}", stdout(&checked));
    let report: Value = serde_json::from_str(&stdout(&checked)).unwrap();
    assert_eq!(report["matches"], true);
}
