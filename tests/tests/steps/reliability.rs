//! Steps of `features/reliability.feature`.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use cucumber::{given, then, when};
use factory_sim::{CorruptionKind, DeviceCorruption, DeviceFailure, FaultSettings};
use ingest_shared::{IngestJob, Topology, headers};
use ingest_tests::contract::bad_job_body;
use ingest_tests::factory::{REQUEST_POLL, wait_for_requests};
use ingest_tests::fleet::{Fleet, recent_range};
use ingest_tests::management::{declare_classic_queue, observe_parked_retry, wait_for_connections};
use ingest_tests::tsdb::{assert_the_simulated_readings_but_every, point_count, wait_for_points};
use lapin::types::FieldTable;
use tokio::time::Instant;

use super::FleetWorld;

const RETRIED: &str = r#"ingest_jobs_total{outcome="retried",class="transient"}"#;
const IN_FLIGHT: &str = "ingest_jobs_in_flight";
const RECONNECTS: &str = "ingest_broker_reconnects_total";
const INVALID_READINGS: &str = "ingest_readings_invalid_total";
const TSDB_CIRCUIT: &str = r#"ingest_circuit_open{dependency="tsdb"}"#;

fn flags(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// The range of a job of `minutes` minutes: every job of a scenario ends
/// at the same hour, a day ago.
fn range_of(minutes: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    let (_, end) = recent_range(1);
    (end - TimeDelta::minutes(minutes), end)
}

// Fleets and workers.

#[given("a fleet with one worker")]
async fn fleet_with_one_worker(world: &mut FleetWorld) {
    world.fleet().await.start_worker(&[]).await;
}

#[given(expr = "a fleet with one worker started with {string}")]
async fn fleet_with_one_worker_started_with(world: &mut FleetWorld, extra: String) {
    world.fleet().await.start_worker(&flags(&extra)).await;
}

#[given(expr = "a fleet with {int} workers started with {string}")]
async fn fleet_with_workers(world: &mut FleetWorld, workers: usize, extra: String) {
    let fleet = world.fleet().await;
    for _ in 0..workers {
        fleet.start_worker(&flags(&extra)).await;
    }
}

#[given(expr = "a fleet whose factory knows only device {string}, with one worker")]
async fn fleet_knowing_one_device(world: &mut FleetWorld, name: String) {
    let mut fleet = Fleet::start_with_known_devices(&[&name]).await;
    fleet.start_worker(&[]).await;
    world.fleet = Some(fleet);
}

#[given(expr = "a fleet with one worker whose retries wait {word}, with at most {int} attempts")]
async fn fleet_with_one_slow_retry(world: &mut FleetWorld, delay: String, attempts: u32) {
    let attempts = attempts.to_string();
    world
        .fleet()
        .await
        .start_worker_setting(&[("--retry-delays", &delay), ("--max-attempts", &attempts)])
        .await;
}

#[given("a fleet whose work queue was declared as a classic queue")]
async fn fleet_with_classic_work_queue(world: &mut FleetWorld) {
    let fleet = Fleet::start_undeclared().await;
    declare_classic_queue(&fleet.topology.work_queue()).await;
    world.fleet = Some(fleet);
}

#[when("another worker is started")]
async fn another_worker(world: &mut FleetWorld) {
    world.fleet().await.start_worker(&[]).await;
}

#[when(expr = "another worker is started with {string}")]
async fn another_worker_with(world: &mut FleetWorld, extra: String) {
    world.fleet().await.start_worker(&flags(&extra)).await;
}

#[when("a worker is started")]
async fn a_worker_is_spawned(world: &mut FleetWorld) {
    world.fleet().await.spawn_worker(&[]);
}

// Faults.

#[given(expr = "the factory answers {int} to the next {int} requests for device {string}")]
async fn factory_fails_device(world: &mut FleetWorld, status: u16, count: u32, name: String) {
    let fleet = world.fleet().await;
    let failure = DeviceFailure {
        count,
        status,
        retry_after_secs: None,
    };
    fleet
        .sim
        .fail_device(&fleet.device(&name), failure)
        .unwrap();
}

#[given(
    expr = "the factory answers 429 with Retry-After {int} seconds to the next request for device {string}"
)]
async fn factory_rate_limits_device(world: &mut FleetWorld, seconds: u64, name: String) {
    let fleet = world.fleet().await;
    let failure = DeviceFailure {
        count: 1,
        status: 429,
        retry_after_secs: Some(seconds),
    };
    fleet
        .sim
        .fail_device(&fleet.device(&name), failure)
        .unwrap();
}

#[given("the factory answers 500 to every request")]
async fn factory_always_fails(world: &mut FleetWorld) {
    let faults = FaultSettings {
        error_rate: 1.0,
        ..FaultSettings::default()
    };
    world.fleet().await.sim.set_faults(faults).unwrap();
}

#[given(expr = "the factory takes {int} ms to answer each request")]
async fn factory_is_slow(world: &mut FleetWorld, latency_ms: u64) {
    let faults = FaultSettings {
        latency_ms,
        ..FaultSettings::default()
    };
    world.fleet().await.sim.set_faults(faults).unwrap();
}

#[when("the factory answers at once")]
async fn factory_is_fast(world: &mut FleetWorld) {
    world.fleet().await.sim.clear_faults();
}

#[given(expr = "every {int}th reading of device {string} has a non-numeric temperature")]
async fn factory_corrupts_device(world: &mut FleetWorld, every: u64, name: String) {
    let fleet = world.fleet().await;
    let corruption = DeviceCorruption {
        every,
        kind: CorruptionKind::NonNumeric,
    };
    fleet
        .sim
        .corrupt_device(&fleet.device(&name), corruption)
        .unwrap();
}

// Jobs.

async fn publish(world: &mut FleetWorld, name: &str, minutes: i64, copies: usize) {
    let (start, end) = range_of(minutes);
    let fleet = world.fleet().await;
    let device = fleet.device(name);
    let job = IngestJob::new(&device, start, end);
    for _ in 0..copies {
        fleet.publish_job(&job).await;
    }
    world.devices.push(device);
    world.range = Some((start, end));
    world.jobs += copies;
    world.last_body = job.to_body();
}

#[when(expr = "a job of {int} minutes is published for device {string}")]
async fn job_published(world: &mut FleetWorld, minutes: i64, name: String) {
    publish(world, &name, minutes, 1).await;
}

#[when(expr = "a job of {int} minutes is published twice for device {string}")]
async fn job_published_twice(world: &mut FleetWorld, minutes: i64, name: String) {
    publish(world, &name, minutes, 2).await;
}

#[when(expr = "jobs of {int} minutes are published for {int} devices")]
async fn jobs_published(world: &mut FleetWorld, minutes: i64, devices: usize) {
    let first = world.devices.len();
    for i in first..first + devices {
        publish(world, &format!("d{i}"), minutes, 1).await;
    }
}

#[when(regex = r"^a job with (.+) is published$")]
async fn bad_job_published(world: &mut FleetWorld, problem: String) {
    let body = bad_job_body(&problem, recent_range(1).1);
    let message_id = uuid::Uuid::new_v4().to_string();
    let fleet = world.fleet().await;
    fleet
        .publish_raw(&body, Some(&message_id), FieldTable::default())
        .await;
    world.bad_body = Some(body);
}

// Disturbances.

#[when(expr = "the worker is killed once the factory has served {int} requests")]
async fn worker_killed(world: &mut FleetWorld, requests: u64) {
    let fleet = world.fleet().await;
    wait_for_requests(&fleet.sim, requests, Duration::from_secs(20)).await;
    fleet.workers[0].kill();
    fleet.workers[0].wait_exit(Duration::from_secs(5)).await;
}

#[when(regex = r"^the worker is sent SIGTERM while (\d+) jobs? (?:is|are) in flight$")]
async fn worker_terminated(world: &mut FleetWorld, jobs: u32) {
    let fleet = world.fleet().await;
    let worker = &fleet.workers[0];
    let seen = worker
        .wait_for_metric(IN_FLIGHT, f64::from(jobs), Duration::from_secs(20))
        .await;
    assert_eq!(seen, f64::from(jobs), "jobs in flight before SIGTERM");
    worker.terminate();
    world.terminated_at = Some(Instant::now());
}

#[when(
    expr = "the broker closes every worker connection once the factory has served {int} requests"
)]
async fn broker_closes_connections(world: &mut FleetWorld, requests: u64) {
    let fleet = world.fleet().await;
    let names: Vec<&str> = fleet.workers.iter().map(|w| w.worker_id.as_str()).collect();
    let listed = wait_for_connections(&names, Duration::from_secs(10)).await;
    assert_eq!(listed, names.len(), "worker connections the broker lists");
    wait_for_requests(&fleet.sim, requests, Duration::from_secs(20)).await;
    let closed = fleet.close_worker_connections().await;
    assert_eq!(closed, fleet.workers.len(), "connections closed");
}

#[when("the time-series database stops answering once those readings are stored")]
async fn tsdb_stops(world: &mut FleetWorld) {
    let (start, end) = world.range.expect("jobs were published");
    let points = 3 * (end - start).num_seconds() as usize;
    let fleet = world.fleet.as_ref().expect("a fleet");
    for device in &world.devices {
        let seen = wait_for_points(device, points, Duration::from_secs(30)).await;
        assert_eq!(seen, points, "points of {device} before the outage");
    }
    fleet.tsdb_proxy.cut_off();
    world.outage_started_at = Some(Instant::now());
}

#[when(expr = "the time-series database answers again {int} seconds after it stopped")]
async fn tsdb_returns(world: &mut FleetWorld, seconds: u64) {
    let stopped = world.outage_started_at.expect("the TSDB was cut off");
    tokio::time::sleep_until(stopped + Duration::from_secs(seconds)).await;
    world.fleet().await.tsdb_proxy.restore();
}

// Outcomes.

#[then(
    regex = r"^within (\d+) seconds the (bad job|job) is dead-lettered as (\w+) after (\d+) attempts?$"
)]
async fn job_dead_lettered(
    world: &mut FleetWorld,
    seconds: u64,
    which: String,
    class: String,
    attempts: i64,
) {
    let body = match which.as_str() {
        "bad job" => world.bad_body.clone().expect("a bad job was published"),
        _ => world.last_body.clone(),
    };
    let fleet = world.fleet().await;
    fleet
        .wait_for_dead_letters(1, Duration::from_secs(seconds))
        .await;
    let mut letters = fleet.take_dead_letters().await;
    assert_eq!(letters.len(), 1, "dead letters");
    let letter = letters.remove(0);
    assert_eq!(
        letter.text(headers::ERROR_CLASS).as_deref(),
        Some(class.as_str())
    );
    assert_eq!(letter.long(headers::ATTEMPTS), Some(attempts));
    assert_eq!(
        letter.text(headers::SOURCE_QUEUE),
        Some(fleet.topology.work_queue())
    );
    assert_eq!(letter.body, body, "the dead letter's body");
    world.dead_letter = Some(letter);
}

#[then(regex = r#"^its error names "(.*)"$"#)]
async fn error_names(world: &mut FleetWorld, text: String) {
    let letter = world.dead_letter.as_ref().expect("a dead letter");
    let error = letter.text(headers::ERROR).unwrap_or_default();
    assert!(error.contains(&text), "x-ingest-error: {error}");
}

#[then(expr = "its last failure is at least {int} seconds after its first")]
async fn failures_apart(world: &mut FleetWorld, seconds: i64) {
    let letter = world.dead_letter.as_ref().expect("a dead letter");
    let time = |name| {
        let text = letter.text(name).unwrap_or_else(|| panic!("no {name}"));
        DateTime::parse_from_rfc3339(&text).unwrap_or_else(|_| panic!("{name}: {text}"))
    };
    let apart = time(headers::LAST_FAILURE) - time(headers::FIRST_FAILURE);
    assert!(
        apart >= TimeDelta::seconds(seconds),
        "failures {apart} apart"
    );
}

#[then("its body is the body that was published")]
async fn body_unchanged(world: &mut FleetWorld) {
    let letter = world.dead_letter.as_ref().expect("a dead letter");
    assert_eq!(letter.body, world.last_body);
}

#[then("the worker retried no job")]
async fn worker_retried_nothing(world: &mut FleetWorld) {
    let fleet = world.fleet().await;
    assert_eq!(fleet.workers[0].metric(RETRIED).await, 0.0, "retries");
}

#[then(expr = "the worker retried the job {int} times")]
async fn worker_retried(world: &mut FleetWorld, times: u32) {
    let fleet = world.fleet().await;
    assert_eq!(
        fleet.workers[0].metric(RETRIED).await,
        f64::from(times),
        "retries"
    );
}

#[then(expr = "the factory was asked {int} times")]
async fn factory_asked(world: &mut FleetWorld, requests: u64) {
    assert_eq!(world.fleet().await.sim.stats().requests, requests);
}

#[then(expr = "the factory is asked again only after {int} seconds")]
async fn factory_waited(world: &mut FleetWorld, seconds: u64) {
    let wait = Duration::from_secs(seconds);
    let sim = &world.fleet().await.sim;
    let first = wait_for_requests(sim, 1, Duration::from_secs(10)).await;
    tokio::time::sleep_until(first + wait * 3 / 4).await;
    assert_eq!(sim.stats().requests, 1, "asked again before Retry-After");
    let second = wait_for_requests(sim, 2, Duration::from_secs(10)).await;
    // Both instants are seen up to one poll late.
    assert!(
        second - first + REQUEST_POLL >= wait,
        "asked again after {:?}",
        second - first
    );
}

#[then(expr = "device {string} has no points in the time-series database")]
async fn no_points(world: &mut FleetWorld, name: String) {
    let device = world.fleet().await.device(&name);
    assert_eq!(point_count(&device).await, 0);
}

#[then(expr = "every reading but every {int}th is in the time-series database exactly once")]
async fn every_valid_reading_once(world: &mut FleetWorld, every: usize) {
    let range = world.range.expect("a job was published");
    let readings = (range.1 - range.0).num_seconds() as usize;
    let expected = readings - readings / every;
    for device in &world.devices {
        wait_for_points(device, 3 * expected, Duration::from_secs(30)).await;
        let seen =
            assert_the_simulated_readings_but_every(device, range, Duration::from_secs(1), every)
                .await;
        assert_eq!(seen, expected);
    }
}

#[then(expr = "the worker counted {int} invalid readings")]
async fn invalid_counted(world: &mut FleetWorld, readings: u32) {
    let fleet = world.fleet().await;
    assert_eq!(
        fleet.workers[0].metric(INVALID_READINGS).await,
        f64::from(readings)
    );
}

#[then(expr = "the worker exits with status 0 within {int} seconds")]
async fn worker_exits_within(world: &mut FleetWorld, seconds: u64) {
    let status = world.fleet().await.workers[0]
        .wait_exit(Duration::from_secs(seconds))
        .await;
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
}

#[then(expr = "the worker exits with status 0 after {int} to {int} seconds")]
async fn worker_exits_between(world: &mut FleetWorld, at_least: u64, at_most: u64) {
    let terminated = world.terminated_at.expect("SIGTERM was sent");
    let status = world.fleet().await.workers[0]
        .wait_exit(Duration::from_secs(at_most))
        .await;
    let took = terminated.elapsed();
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    assert!(
        took >= Duration::from_secs(at_least),
        "exited after {took:?}"
    );
}

#[then("the worker exits with a failure within 10 seconds")]
async fn worker_fails(world: &mut FleetWorld) {
    let worker = &mut world.fleet().await.workers[0];
    let status = worker.wait_exit(Duration::from_secs(10)).await;
    assert!(
        status.is_some_and(|s| !s.success()),
        "exit: {status:?}; log:\n{}",
        worker.log()
    );
}

#[then(regex = r#"^its log names the work queue and "(.*)"$"#)]
async fn log_names(world: &mut FleetWorld, text: String) {
    let fleet = world.fleet().await;
    let log = fleet.workers[0].log();
    assert!(log.contains(&fleet.topology.work_queue()), "log:\n{log}");
    assert!(log.contains(&text), "log:\n{log}");
}

#[then("the job is back in the work queue")]
async fn job_back(world: &mut FleetWorld) {
    let fleet = world.fleet().await;
    assert_eq!(fleet.ready_count(&fleet.topology.work_queue()).await, 1);
}

#[then("the work queue is empty")]
async fn work_queue_empty(world: &mut FleetWorld) {
    let fleet = world.fleet().await;
    assert_eq!(fleet.ready_count(&fleet.topology.work_queue()).await, 0);
}

#[then("every worker reconnects")]
async fn workers_reconnect(world: &mut FleetWorld) {
    for worker in &world.fleet().await.workers {
        let reconnects = worker
            .wait_for_metric(RECONNECTS, 1.0, Duration::from_secs(10))
            .await;
        assert!(reconnects >= 1.0, "{} reconnects", worker.worker_id);
        worker.wait_ready(Duration::from_secs(10)).await;
    }
}

#[then(expr = "the worker's circuit for the tsdb opens within {int} seconds")]
async fn circuit_opens(world: &mut FleetWorld, seconds: u64) {
    let worker = &world.fleet().await.workers[0];
    let open = worker
        .wait_for_metric(TSDB_CIRCUIT, 1.0, Duration::from_secs(seconds))
        .await;
    assert_eq!(open, 1.0, "{TSDB_CIRCUIT}");
    assert_eq!(worker.readyz().await, Some(503), "/readyz while paused");
}

#[then("the worker's circuit for the tsdb is closed")]
async fn circuit_closed(world: &mut FleetWorld) {
    let worker = &world.fleet().await.workers[0];
    assert_eq!(worker.metric(TSDB_CIRCUIT).await, 0.0, "{TSDB_CIRCUIT}");
}

#[then(
    expr = "while the job waits for its retry, delay queue {string} holds it and the work queue holds nothing"
)]
async fn retry_parked(world: &mut FleetWorld, delay: String) {
    let fleet = world.fleet().await;
    let delay = humantime::parse_duration(&delay).expect("a delay");
    let tier = Topology::new(fleet.prefix.clone(), &[delay]).delay_tiers()[0].clone();
    let parked = observe_parked_retry(fleet, &tier.queue, Duration::from_secs(10)).await;
    assert_eq!(parked.delay_ready, 1, "ready in {}", tier.queue);
    assert_eq!(parked.work.unacked, 0, "unacked in the work queue");
    assert_eq!(parked.work.ready, 0, "ready in the work queue");
}
