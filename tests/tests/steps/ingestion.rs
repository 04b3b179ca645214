//! Steps of `features/ingestion.feature`.

use std::time::Duration;

use chrono::TimeDelta;
use cucumber::{given, then, when};
use ingest_shared::IngestJob;
use ingest_shared::window::split_windows;
use ingest_tests::fleet::recent_range;
use ingest_tests::tsdb::{assert_exactly_the_simulated_readings, wait_for_points};

use super::FleetWorld;

#[given("the factory source serves correct data")]
async fn factory_serves_correct_data(world: &mut FleetWorld) {
    let fleet = world.fleet().await;
    assert!(fleet.sim.faults().devices.is_empty());
}

#[given("the time-series database is available")]
async fn tsdb_is_available(world: &mut FleetWorld) {
    let fleet = world.fleet().await;
    fleet.start_worker(&[]).await;
}

#[when(expr = "an import is run for {int} devices over {int} hours in {int}-hour windows")]
async fn import_is_run(world: &mut FleetWorld, devices: usize, hours: i64, window: i64) {
    let (start, end) = recent_range(hours);
    let fleet = world.fleet().await;
    let devices: Vec<String> = (0..devices)
        .map(|i| fleet.device(&format!("m{i}")))
        .collect();
    let windows = split_windows(start, end, TimeDelta::hours(window)).expect("a valid range");
    let mut jobs = 0;
    for device in &devices {
        for &(from, to) in &windows {
            fleet.publish_job(&IngestJob::new(device, from, to)).await;
            jobs += 1;
        }
    }
    world.devices = devices;
    world.range = Some((start, end));
    world.jobs = jobs;
}

#[then("every reading is in the time-series database exactly once")]
async fn every_reading_once(world: &mut FleetWorld) {
    let (start, end) = world.range.expect("an import ran");
    let readings = ((end - start).num_seconds()) as usize;
    for device in &world.devices {
        wait_for_points(device, 3 * readings, Duration::from_secs(60)).await;
        let seen =
            assert_exactly_the_simulated_readings(device, start, end, Duration::from_secs(1)).await;
        assert_eq!(seen, readings);
    }
}

#[then("every job is acked")]
async fn every_job_acked(world: &mut FleetWorld) {
    let jobs = world.jobs as f64;
    let fleet = world.fleet().await;
    let sample = r#"ingest_jobs_total{outcome="acked",class="none"}"#;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut acked = 0.0;
    while tokio::time::Instant::now() < deadline {
        acked = 0.0;
        for worker in &fleet.workers {
            acked += worker.metric(sample).await;
        }
        if acked >= jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(acked, jobs);
    assert_eq!(fleet.ready_count(&fleet.topology.work_queue()).await, 0);
}

#[then("nothing is dead-lettered")]
async fn nothing_dead_lettered(world: &mut FleetWorld) {
    let fleet = world.fleet().await;
    assert_eq!(fleet.take_dead_letters().await.len(), 0);
}
