//! `dlq replay`: what moves, the history it carries, and that a replay
//! killed half-way loses nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use ingest_shared::IngestJob;
use serde_json::Value;

use crate::helpers::{TestBroker, failure, stderr, stdout};

async fn seed_jobs(broker: &TestBroker, devices: &[&str], per_device: usize) -> Vec<IngestJob> {
    let mut jobs = Vec::new();
    for device in devices {
        for index in 0..per_device {
            let start = chrono::DateTime::<chrono::Utc>::from_timestamp(
                1_790_000_000 + 3600 * index as i64,
                0,
            )
            .unwrap();
            let job = IngestJob::new(device, start, start + chrono::TimeDelta::hours(1));
            let class = if *device == "press-1" {
                "transient"
            } else {
                "permanent"
            };
            broker
                .put_dead(
                    &job.to_body(),
                    Some(&job.job_id.to_string()),
                    &failure(class, "boom", 5, "2026-12-01T10:00:00Z"),
                )
                .await;
            jobs.push(job);
        }
    }
    jobs
}

/// Only the chosen dead letters move, byte for byte, with their failure in
/// the replay history, the attempt header gone and traceparent kept.
#[tokio::test]
async fn replay_moves_exactly_the_chosen_with_history() {
    let broker = TestBroker::declared().await;
    let jobs = seed_jobs(&broker, &["press-1", "press-2"], 3).await;

    let dry = broker
        .ingestctl(&["dlq", "replay", "--device", "press-1", "--dry-run"], None)
        .await;
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert_eq!(stdout(&dry).lines().count(), 3);
    assert_eq!(broker.count(&broker.topology.work_queue()).await, 0);

    let nothing_chosen = broker.ingestctl(&["dlq", "replay"], None).await;
    assert_eq!(nothing_chosen.status.code(), Some(2));

    let output = broker
        .ingestctl(&["dlq", "replay", "--device", "press-1"], None)
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("replayed=3 failed=0 left=3"),
        "{}",
        stderr(&output)
    );

    let moved = broker.drain(&broker.topology.work_queue()).await;
    let moved_bodies: BTreeSet<_> = moved.iter().map(|m| m.body.clone()).collect();
    let expected: BTreeSet<_> = jobs[..3].iter().map(IngestJob::to_body).collect();
    assert_eq!(moved_bodies, expected);
    for message in &moved {
        let headers = &message.headers;
        assert!(headers.get("x-ingest-attempt").is_none(), "{headers}");
        assert!(headers.get("x-ingest-error").is_none(), "{headers}");
        assert!(headers["traceparent"].as_str().unwrap().starts_with("00-"));
        let history = headers["x-ingest-replay-history"].as_array().unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0]["x-ingest-error"], "boom");
        assert_eq!(history[0]["x-ingest-attempts"], 5);
        assert!(history[0]["replayed-at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(message.content_type.as_deref(), Some("application/json"));
        assert!(message.message_id.is_some());
    }
    let left: BTreeSet<_> = broker
        .drain(&broker.topology.dead_queue())
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    let expected_left: BTreeSet<_> = jobs[3..].iter().map(IngestJob::to_body).collect();
    assert_eq!(left, expected_left);
}

/// `--keep-attempts` leaves the attempt header; replaying by id picks one.
#[tokio::test]
async fn replay_by_id_can_keep_attempts() {
    let broker = TestBroker::declared().await;
    let jobs = seed_jobs(&broker, &["press-1"], 2).await;
    let id = jobs[1].job_id.to_string();
    let output = broker
        .ingestctl(&["dlq", "replay", "--keep-attempts", &id], None)
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let moved = broker.drain(&broker.topology.work_queue()).await;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].message_id.as_deref(), Some(id.as_str()));
    assert_eq!(moved[0].headers["x-ingest-attempt"], Value::from(5));
    assert_eq!(broker.count(&broker.topology.dead_queue()).await, 1);
}

/// A replay of 2,000 dead letters killed with SIGKILL half-way, then run
/// again, leaves every job in the work queue at least once and none dead.
#[tokio::test]
async fn a_replay_killed_half_way_then_rerun_loses_nothing() {
    let broker = TestBroker::declared().await;
    let jobs = seed_jobs(&broker, &["press-1", "press-2"], 1000).await;
    let work = broker.topology.work_queue();

    // One confirm at a time makes the replay slow enough to kill mid-way.
    let mut child = broker
        .command(&["dlq", "replay", "--all", "--max-in-flight", "1"])
        .spawn()
        .unwrap();
    let reached = crate::helpers::eventually(Duration::from_secs(60), || async {
        broker.count(&work).await >= 500
    })
    .await;
    child.start_kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().await.unwrap();
    assert!(reached, "the replay never got half-way");
    assert!(
        !status.success(),
        "the replay finished before it was killed"
    );
    let moved_before = broker.count(&work).await;
    assert!(moved_before < 2000, "killed too late: {moved_before}");

    // The broker requeues what the killed process held once it has noticed
    // the closed connection: its consumer is gone then. Wait for that, and for
    // the count to settle, as docs/operations.md tells operators to.
    let dead = broker.topology.dead_queue();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut previous = u32::MAX;
    let settled = loop {
        let (now, consumers) = broker.count_and_consumers(&dead).await;
        if consumers == 0 && now == previous {
            break true;
        }
        if tokio::time::Instant::now() > deadline {
            break false;
        }
        previous = now;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        settled,
        "the broker never took back what the killed replay held"
    );

    let output = broker.ingestctl(&["dlq", "replay", "--all"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(broker.count(&broker.topology.dead_queue()).await, 0);

    let in_work: BTreeSet<_> = broker
        .drain(&work)
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    let all: BTreeSet<_> = jobs.iter().map(IngestJob::to_body).collect();
    assert_eq!(in_work, all, "every job reached the work queue");
}
