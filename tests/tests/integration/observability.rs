//! What operators see: health, readiness, metrics and trace ids.

use std::time::Duration;

use ingest_shared::IngestJob;
use ingest_tests::fleet::{Fleet, recent_range, text_header};
use ingest_tests::tsdb::wait_for_points;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Counters move as jobs are processed; failures appear under their labels.
#[tokio::test]
async fn metrics_count_jobs_by_outcome_and_readings_written() {
    let mut fleet = Fleet::start().await;
    let w = fleet.start_worker(&[]).await;
    let (start, end) = recent_range(1);
    let device = fleet.device("metered");

    let worker = &fleet.workers[w];
    assert_eq!(worker.get_status("/healthz").await, Some(200));
    assert_eq!(
        worker
            .metric(r#"ingest_jobs_total{outcome="acked",class="none"}"#)
            .await,
        0.0
    );

    fleet
        .publish_job(&IngestJob::new(&device, start, end))
        .await;
    fleet.publish_raw(b"[]", None, Default::default()).await;
    wait_for_points(&device, 3 * 3600, Duration::from_secs(30)).await;
    fleet
        .wait_for_dead_letters(1, Duration::from_secs(20))
        .await;

    let worker = &fleet.workers[w];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = worker.metrics().await;
        let acked = ingest_tests::worker::sample_value(
            &metrics,
            r#"ingest_jobs_total{outcome="acked",class="none"}"#,
        );
        let dead = ingest_tests::worker::sample_value(
            &metrics,
            r#"ingest_jobs_total{outcome="dead_lettered",class="permanent"}"#,
        );
        if acked == 1.0 && dead == 1.0 {
            assert_eq!(
                ingest_tests::worker::sample_value(&metrics, "ingest_points_written_total"),
                3600.0,
                "one point per reading, its measurements as fields"
            );
            assert_eq!(
                ingest_tests::worker::sample_value(&metrics, "ingest_readings_fetched_total"),
                3600.0
            );
            assert!(metrics.contains("ingest_job_duration_seconds_bucket"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "metrics never moved:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fleet.clean_up().await;
}

/// Readiness drops as soon as a drain starts, while the process still runs.
#[tokio::test]
async fn readiness_drops_during_drain() {
    let mut fleet = Fleet::start().await;
    fleet
        .sim
        .set_faults(factory_sim::FaultSettings {
            latency_ms: 1500,
            ..Default::default()
        })
        .expect("set latency");
    let w = fleet.start_worker(&[]).await;
    let (start, end) = recent_range(1);
    fleet
        .publish_job(&IngestJob::new(&fleet.device("slow"), start, end))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let worker = &mut fleet.workers[w];
    assert_eq!(worker.readyz().await, Some(200));
    worker.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(worker.readyz().await, Some(503), "not ready while draining");
    let status = worker
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("exits");
    assert!(status.success());
    fleet.clean_up().await;
}

/// A job's `traceparent` shows as its trace id in the JSON logs and stays on
/// its dead letter.
#[tokio::test]
async fn traceparent_reaches_the_logs_and_the_dead_letter() {
    let mut fleet = Fleet::start().await;
    let w = fleet.start_worker(&[]).await;
    let (start, end) = recent_range(1);
    let job = IngestJob::new("../admin-but-valid-later", start, end);
    let mut body: serde_json::Value = serde_json::from_slice(&job.to_body()).unwrap();
    body["device"] = "../admin".into();
    fleet
        .publish_raw(
            body.to_string().as_bytes(),
            Some(&job.job_id.to_string()),
            text_header("traceparent", TRACEPARENT),
        )
        .await;

    assert_eq!(
        fleet
            .wait_for_dead_letters(1, Duration::from_secs(20))
            .await,
        1
    );
    let dead = fleet.take_dead_letters().await;
    assert_eq!(dead[0].text("traceparent").as_deref(), Some(TRACEPARENT));

    let log = fleet.workers[w].log();
    let line = log
        .lines()
        .find(|line| line.contains("job dead-lettered"))
        .unwrap_or_else(|| panic!("no dead-letter log line:\n{log}"));
    let event: serde_json::Value = serde_json::from_str(line).expect("JSON log lines");
    assert_eq!(
        event["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{line}"
    );
    assert_eq!(event["span"]["job_id"], job.job_id.to_string(), "{line}");
    assert_eq!(event["level"], "ERROR");
    fleet.clean_up().await;
}
