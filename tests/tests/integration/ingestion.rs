//! The walking skeleton end to end: ingestctl → RabbitMQ → worker → VictoriaMetrics.

use std::time::Duration;

use ingest_shared::IngestJob;
use ingest_shared::job::canonical_time;
use ingest_tests::fleet::{Fleet, recent_range};
use ingest_tests::tsdb::{assert_exactly_the_simulated_readings, wait_for_points};

/// Jobs enqueued by `ingestctl` for two devices are ingested, and every
/// point read back equals the simulator's reading, one for one.
#[tokio::test]
async fn jobs_enqueued_by_ingestctl_are_ingested_value_for_value() {
    let mut fleet = Fleet::start().await;
    fleet.start_worker(&[]).await;
    let (start, end) = recent_range(3);
    let devices = [fleet.device("press-1"), fleet.device("press-2")];

    let (status, _, stderr) = fleet
        .ingestctl(&[
            "enqueue",
            "--device",
            &devices[0],
            "--device",
            &devices[1],
            "--from",
            &canonical_time(start),
            "--to",
            &canonical_time(end),
            "--window",
            "1h",
        ])
        .await;
    assert!(status.success(), "ingestctl failed: {stderr}");

    for device in &devices {
        wait_for_points(device, 3 * 3 * 3600, Duration::from_secs(60)).await;
        let readings =
            assert_exactly_the_simulated_readings(device, start, end, Duration::from_secs(1)).await;
        assert_eq!(readings, 3 * 3600);
    }
    assert_eq!(fleet.take_dead_letters().await.len(), 0);
    fleet.clean_up().await;
}

/// A body that is not JSON lands in the dead-letter queue with a reason, and
/// the worker goes on to ingest the next job.
#[tokio::test]
async fn an_invalid_body_is_dead_lettered_and_the_worker_keeps_consuming() {
    let mut fleet = Fleet::start().await;
    fleet.start_worker(&[]).await;
    let (start, end) = recent_range(1);
    let device = fleet.device("after-bad-input");

    fleet
        .publish_raw(b"{not json", None, Default::default())
        .await;
    fleet
        .publish_job(&IngestJob::new(&device, start, end))
        .await;

    assert_eq!(
        fleet
            .wait_for_dead_letters(1, Duration::from_secs(20))
            .await,
        1
    );
    wait_for_points(&device, 3 * 3600, Duration::from_secs(30)).await;
    assert_exactly_the_simulated_readings(&device, start, end, Duration::from_secs(1)).await;

    let dead = fleet.take_dead_letters().await;
    assert_eq!(dead[0].body, b"{not json", "the body is kept byte for byte");
    assert_eq!(
        dead[0].text("x-ingest-error-class").as_deref(),
        Some("permanent")
    );
    let error = dead[0].text("x-ingest-error").unwrap_or_default();
    assert!(error.contains("not valid JSON"), "{error}");
    fleet.clean_up().await;
}
