//! Steps of `features/dlq.feature`: the operator's dead-letter commands
//! against real dead letters, or dead letters put straight into the queue.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitStatus;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use cucumber::gherkin::Step;
use cucumber::{given, then, when};
use factory_sim::DeviceFailure;
use ingest_shared::IngestJob;
use ingest_tests::deadletters::{
    DeadLetterQueue, Failure, NewDeadLetter, StatusRound, StoredLetter, assert_jobs_ingested_once,
    consecutive_jobs, list_rows, listed_job_ids, operator_args, replay_killed_after, sorted,
    wait_for_status,
};
use ingest_tests::fleet::{Fleet, text_header};

use super::FleetWorld;

/// What a dead-letter scenario remembers between steps.
#[derive(Debug, Default)]
pub struct DlqScene {
    /// Direct access to the fleet's dead-letter queue, opened on first use.
    queue: Option<DeadLetterQueue>,
    /// Valid jobs the scenario published or dead-lettered.
    jobs: Vec<IngestJob>,
    /// Job ids of the dead letters a table named, by name.
    named: BTreeMap<String, String>,
    /// The dead-letter queue as copied before the operator acted.
    before: Vec<StoredLetter>,
    /// Exit status, standard output and error of the last `ingestctl`.
    output: Option<(ExitStatus, String, String)>,
    /// The device whose dead letters were replayed.
    replayed_device: Option<String>,
    /// How the replay killed half-way ended.
    killed: Option<ExitStatus>,
    /// The last comparison of `status` with the management API.
    status: Option<StatusRound>,
}

impl FleetWorld {
    /// The fleet and its dead-letter queue, both opened on first use.
    async fn fleet_and_queue(&mut self) -> (&mut Fleet, &DeadLetterQueue) {
        self.fleet().await;
        if self.dlq.queue.is_none() {
            let fleet = self.fleet.as_ref().expect("started above");
            self.dlq.queue = Some(DeadLetterQueue::open(fleet).await);
        }
        let fleet = self.fleet.as_mut().expect("started above");
        (fleet, self.dlq.queue.as_ref().expect("opened above"))
    }

    /// The last `ingestctl` run's (status, stdout, stderr).
    fn last_output(&self) -> &(ExitStatus, String, String) {
        self.dlq.output.as_ref().expect("ingestctl ran")
    }
}

/// One minute: long enough to have 60 readings, short enough to fetch at once.
fn one_minute() -> TimeDelta {
    TimeDelta::minutes(1)
}

/// A failure `ago` before now, as a table writes it (`5m`, `3h`).
fn failure(class: &str, error: &str, ago: &str) -> Failure {
    let ago = humantime::parse_duration(ago).expect("an age such as 5m or 3h");
    Failure {
        class: class.to_owned(),
        error: error.to_owned(),
        attempts: if class == "transient" { 5 } else { 1 },
        last_failure: Utc::now() - TimeDelta::from_std(ago).expect("a short age"),
    }
}

/// The job ids of a comma-separated list of names from a table.
fn named_ids(world: &FleetWorld, names: &str) -> BTreeSet<String> {
    names
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| world.dlq.named[name].clone())
        .collect()
}

// Fleets, factories and workers.

#[given(expr = "a factory that knows only the device {string}")]
async fn factory_knowing_only(world: &mut FleetWorld, name: String) {
    world.fleet = Some(Fleet::start_with_known_devices(&[&name]).await);
}

#[given(expr = "a worker that gives a job {int} attempts")]
async fn worker_with_attempts(world: &mut FleetWorld, attempts: u32) {
    let attempts = attempts.to_string();
    world
        .fleet()
        .await
        .start_worker(&["--max-attempts", &attempts])
        .await;
}

#[given(expr = "{int} workers with a prefetch of {int}")]
async fn workers_with_prefetch(world: &mut FleetWorld, workers: usize, prefetch: u16) {
    let prefetch = prefetch.to_string();
    let fleet = world.fleet().await;
    for _ in 0..workers {
        fleet.start_worker(&["--prefetch", &prefetch]).await;
    }
}

#[when("a worker starts")]
async fn a_worker_starts(world: &mut FleetWorld) {
    world.fleet().await.start_worker(&[]).await;
}

#[given(expr = "the factory answers HTTP {int} to every request for {string}")]
async fn factory_fails_device(world: &mut FleetWorld, status: u16, name: String) {
    let fleet = world.fleet().await;
    let failure = DeviceFailure {
        count: 1_000_000,
        status,
        retry_after_secs: None,
    };
    let device = fleet.device(&name);
    fleet
        .sim
        .fail_device(&device, failure)
        .expect("a valid failure");
}

#[when(expr = "the factory answers {string} again")]
async fn factory_answers_again(world: &mut FleetWorld, _name: String) {
    world.fleet().await.sim.clear_faults();
}

// Jobs that fail for real in the worker.

#[when(expr = "{int} one-minute job(s) for {string} is/are published")]
async fn one_minute_jobs_published(world: &mut FleetWorld, count: usize, name: String) {
    let fleet = world.fleet().await;
    let jobs = consecutive_jobs(&fleet.device(&name), count, one_minute());
    for job in &jobs {
        fleet.publish_job(job).await;
    }
    world.dlq.jobs.extend(jobs);
}

#[when("a body that is not JSON is published")]
async fn body_not_json_published(world: &mut FleetWorld) {
    let fleet = world.fleet().await;
    let traceparent = text_header(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    fleet
        .publish_raw(b"{\"version\":1, not json", Some("not-json-1"), traceparent)
        .await;
}

// Dead letters put straight into the dead-letter queue.

#[given("these dead letters, put straight into the dead-letter queue:")]
async fn dead_letters_put_straight(world: &mut FleetWorld, step: &Step) {
    let table = step.table.as_ref().expect("a table of dead letters");
    let (fleet, queue) = world.fleet_and_queue().await;
    let mut letters = Vec::new();
    let mut named = BTreeMap::new();
    for (index, row) in table.rows.iter().skip(1).enumerate() {
        let [name, device, class, error, ago] = &row[..] else {
            panic!("a row is: name | device | class | error | last failure");
        };
        let failure = failure(class, error, ago);
        let letter = if device == "?" {
            // A body that is not a job: what a producer bug leaves behind.
            let id = format!("broken-{name}");
            NewDeadLetter {
                body: format!("{{\"job\": {index}, not json").into_bytes(),
                message_id: Some(id.clone()),
                headers: failure.headers(fleet),
            }
        } else {
            let (start, _) = ingest_tests::fleet::recent_range(1);
            let from = start + one_minute() * i32::try_from(index).expect("a short table");
            let job = IngestJob::new(&fleet.device(device), from, from + one_minute());
            NewDeadLetter::of_job(&job, &failure, fleet)
        };
        let id = letter.message_id.clone().expect("every letter has an id");
        named.insert(name.clone(), id);
        letters.push(letter);
    }
    queue.put_all(&letters).await;
    world.dlq.named = named;
    world.dlq.before = world.dlq.queue.as_ref().expect("opened").copy().await;
}

#[given(
    expr = "{int} dead letters of {int}-second jobs for {int} devices, put straight into the dead-letter queue"
)]
async fn many_dead_letters(world: &mut FleetWorld, total: usize, seconds: i64, devices: usize) {
    let (fleet, queue) = world.fleet_and_queue().await;
    let failure = failure(
        "transient",
        "fetching readings failed: factory API answered 503 Service Unavailable",
        "10m",
    );
    let mut jobs = Vec::with_capacity(total);
    for device in 0..devices {
        let name = fleet.device(&format!("bulk-{device}"));
        jobs.extend(consecutive_jobs(
            &name,
            total / devices,
            TimeDelta::seconds(seconds),
        ));
    }
    let letters: Vec<_> = jobs
        .iter()
        .map(|job| NewDeadLetter::of_job(job, &failure, fleet))
        .collect();
    queue.put_all(&letters).await;
    assert_eq!(queue.count().await as usize, total);
    world.dlq.jobs = jobs;
}

#[given(expr = "{int} jobs waiting in the work queue")]
async fn jobs_waiting(world: &mut FleetWorld, count: usize) {
    let fleet = world.fleet().await;
    let jobs = consecutive_jobs(&fleet.device("waiting"), count, one_minute());
    for job in &jobs {
        fleet.publish_job(job).await;
    }
    world.dlq.jobs.extend(jobs);
}

// The operator's commands.

#[when(expr = "the operator runs {string}")]
async fn operator_runs(world: &mut FleetWorld, command_line: String) {
    let fleet = world.fleet().await;
    let args = operator_args(fleet, &command_line);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    world.dlq.output = Some(fleet.ingestctl(&args).await);
}

#[when(expr = "the operator shows the dead letter of the job for {string}")]
async fn operator_shows(world: &mut FleetWorld, name: String) {
    let fleet = world.fleet().await;
    let device = fleet.device(&name);
    let job = world
        .dlq
        .jobs
        .iter()
        .find(|job| job.device == device)
        .expect("a job of that device was published");
    let id = job.job_id.to_string();
    let fleet = world.fleet().await;
    world.dlq.output = Some(fleet.ingestctl(&["dlq", "show", &id]).await);
}

#[when(expr = "the operator replays the dead letters of {string}")]
async fn operator_replays_device(world: &mut FleetWorld, name: String) {
    let fleet = world.fleet().await;
    let device = fleet.device(&name);
    let (status, stdout, stderr) = fleet
        .ingestctl(&["dlq", "replay", "--device", &device])
        .await;
    assert!(status.success(), "replay failed: {stdout}{stderr}");
    world.dlq.replayed_device = Some(device);
}

#[when("the operator replays every dead letter and the replay is killed with SIGKILL half-way")]
async fn replay_killed_half_way(world: &mut FleetWorld) {
    let half = world.dlq.jobs.len() as u64 / 2;
    let fleet = world.fleet().await;
    let status = replay_killed_after(fleet, half, Duration::from_secs(60)).await;
    world.dlq.killed = Some(status);
}

#[when("the operator replays every dead letter again")]
async fn replay_again(world: &mut FleetWorld) {
    let fleet = world.fleet().await;
    let (status, stdout, stderr) = fleet.ingestctl(&["dlq", "replay", "--all"]).await;
    assert!(status.success(), "replay failed: {stdout}{stderr}");
}

// What the operator sees.

#[then(expr = "the dead-letter queue holds {int} dead letters")]
async fn queue_holds(world: &mut FleetWorld, count: u32) {
    let (_, queue) = world.fleet_and_queue().await;
    let seen = queue.wait_for(count, Duration::from_secs(30)).await;
    assert_eq!(seen, count, "dead letters in {}", queue.name);
    world.dlq.before = world.dlq.queue.as_ref().expect("opened").copy().await;
}

#[then(expr = "ingestctl exits with code {int}")]
async fn exits_with(world: &mut FleetWorld, code: i32) {
    let (status, stdout, stderr) = world.last_output();
    assert_eq!(
        status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

#[then("the list shows these dead letters:")]
async fn list_shows(world: &mut FleetWorld, step: &Step) {
    let table = step.table.as_ref().expect("a table of dead letters");
    let fleet = world.fleet().await;
    let prefix = fleet.prefix.clone();
    let (status, stdout, stderr) = world.last_output();
    assert!(status.success(), "{stderr}");
    let mut rows = list_rows(stdout);
    assert_eq!(rows.len(), table.rows.len() - 1, "rows listed:\n{stdout}");
    for want in table.rows.iter().skip(1) {
        let [device, class, error, attempts] = &want[..] else {
            panic!("a row is: device | class | error | attempts");
        };
        let device = if device == "?" {
            device.clone()
        } else {
            format!("{prefix}{device}")
        };
        let found = rows.iter().position(|row| {
            row["DEVICE"] == device
                && &row["CLASS"] == class
                && row["ERROR"].contains(error.as_str())
                && &row["ATTEMPTS"] == attempts
        });
        let found = found.unwrap_or_else(|| panic!("no row {want:?} in\n{stdout}"));
        rows.remove(found);
    }
}

#[then(
    regex = r"^it shows a (\w+) failure after (\d+) attempts?, the error \x22(.+)\x22, the worker and the job's body$"
)]
async fn show_shows(world: &mut FleetWorld, class: String, attempts: u32, error: String) {
    let fleet = world.fleet().await;
    let worker = fleet.workers[0].worker_id.clone();
    let work_queue = fleet.topology.work_queue();
    let (status, text, stderr) = world.last_output();
    assert!(status.success(), "{stderr}");
    let job = world
        .dlq
        .jobs
        .iter()
        .find(|job| text.contains(&job.job_id.to_string()))
        .expect("the shown dead letter is of a published job");
    for needle in [
        format!("x-ingest-error-class: {class}"),
        format!("x-ingest-attempts: {attempts}"),
        format!("x-ingest-worker: {worker}"),
        format!("x-ingest-source-queue: {work_queue}"),
        error,
        format!("\"job_id\": \"{}\"", job.job_id),
        format!("\"device\": \"{}\"", job.device),
    ] {
        assert!(text.contains(&needle), "{needle:?} missing from\n{text}");
    }
}

#[then("the dead-letter queue is unchanged, message by message")]
async fn queue_unchanged(world: &mut FleetWorld) {
    let (_, queue) = world.fleet_and_queue().await;
    let now = queue.copy().await;
    assert_eq!(sorted(now), sorted(world.dlq.before.clone()));
}

#[then("listing with each filter shows exactly these dead letters:")]
async fn filters_select(world: &mut FleetWorld, step: &Step) {
    let table = step.table.as_ref().expect("a table of filters");
    for row in table.rows.iter().skip(1) {
        let [filter, names] = &row[..] else {
            panic!("a row is: filter | dead letters");
        };
        let fleet = world.fleet().await;
        let mut args = vec!["dlq".to_owned(), "list".to_owned(), "--json".to_owned()];
        args.extend(operator_args(fleet, filter));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (status, stdout, stderr) = fleet.ingestctl(&args).await;
        assert!(status.success(), "{filter}: {stderr}");
        let listed: BTreeSet<String> = listed_job_ids(&stdout).into_iter().collect();
        assert_eq!(listed, named_ids(world, names), "filter {filter}");
    }
}

#[then(expr = "only the dead letters {string} are left, unchanged")]
async fn only_named_left(world: &mut FleetWorld, names: String) {
    let ids = named_ids(world, &names);
    let expected: Vec<_> = world
        .dlq
        .before
        .iter()
        .filter(|letter| letter.job_id().is_some_and(|id| ids.contains(&id)))
        .cloned()
        .collect();
    assert_eq!(expected.len(), ids.len(), "every name was put");
    let (_, queue) = world.fleet_and_queue().await;
    assert_eq!(sorted(queue.copy().await), sorted(expected));
}

#[then("the dead letters of every other device are still in the dead-letter queue, unchanged")]
async fn others_left(world: &mut FleetWorld) {
    let replayed = world
        .dlq
        .replayed_device
        .clone()
        .expect("a device was replayed");
    let expected: Vec<_> = world
        .dlq
        .before
        .iter()
        .filter(|letter| letter.device().as_ref() != Some(&replayed))
        .cloned()
        .collect();
    assert!(
        expected.len() < world.dlq.before.len(),
        "the device had dead letters"
    );
    let (_, queue) = world.fleet_and_queue().await;
    assert_eq!(sorted(queue.copy().await), sorted(expected));
}

#[then(expr = "every reading of the jobs for {string} is in the time-series database exactly once")]
async fn device_ingested_once(world: &mut FleetWorld, name: String) {
    let device = world.fleet().await.device(&name);
    let jobs: Vec<_> = world
        .dlq
        .jobs
        .iter()
        .filter(|job| job.device == device)
        .cloned()
        .collect();
    let readings = assert_jobs_ingested_once(&jobs, Duration::from_secs(30)).await;
    assert_eq!(readings, 60 * jobs.len());
}

#[then("the killed replay had moved some dead letters but not all")]
async fn killed_half_way(world: &mut FleetWorld) {
    let killed = world.dlq.killed.expect("a replay was killed");
    assert!(
        !killed.success(),
        "the replay finished before it was killed"
    );
    let total = world.dlq.jobs.len() as u32;
    let (_, queue) = world.fleet_and_queue().await;
    // The broker takes back what the killed process held as soon as it
    // sees the connection closed: wait for the count to stop moving.
    let left = queue
        .wait_until_settled(Duration::from_secs(1), Duration::from_secs(30))
        .await;
    assert!(
        0 < left && left < total,
        "{left} of {total} dead letters left"
    );
}

#[then("every reading of every job is in the time-series database exactly once")]
async fn every_job_ingested_once(world: &mut FleetWorld) {
    let jobs = &world.dlq.jobs;
    let seconds: i64 = jobs
        .iter()
        .map(|job| (job.end - job.start).num_seconds())
        .sum();
    let readings = assert_jobs_ingested_once(jobs, Duration::from_secs(60)).await;
    assert_eq!(readings as i64, seconds);
}

#[then("the dead-letter and work queues are empty")]
async fn queues_empty(world: &mut FleetWorld) {
    let (fleet, queue) = world.fleet_and_queue().await;
    let left = queue.count().await;
    // Name what is left: whether it carries a replay history tells a job
    // that failed again from a dead letter whose ack the broker lost.
    if left > 0 {
        let letters: Vec<_> = queue
            .copy()
            .await
            .into_iter()
            .map(|letter| {
                (
                    String::from_utf8_lossy(&letter.body).into_owned(),
                    letter.headers,
                )
            })
            .collect();
        panic!("{left} dead letters left: {letters:#?}");
    }
    let work = fleet.topology.work_queue();
    assert_eq!(fleet.ready_count(&work).await, 0, "jobs left");
}

#[then(
    regex = r"^status reports what the management API reports: (\d+) jobs? ready with (\d+) consumers? in the work queue, (\d+) dead letters?$"
)]
async fn status_matches_api(world: &mut FleetWorld, ready: u64, consumers: u64, dead: u64) {
    let fleet = world.fleet().await;
    let (work, dead_queue) = (fleet.topology.work_queue(), fleet.topology.dead_queue());
    let round = wait_for_status(fleet, Duration::from_secs(20), |round| {
        round.ready(&work) == Some(ready)
            && round.consumers(&work) == Some(consumers)
            && round.ready(&dead_queue) == Some(dead)
    })
    .await;
    assert!(round.agrees(), "status and the API disagree: {round:#?}");
    assert_eq!(round.queues.len(), 2 + fleet.topology.delay_tiers().len());
    assert_eq!(round.ready(&work), Some(ready), "{round:#?}");
    assert_eq!(round.consumers(&work), Some(consumers), "{round:#?}");
    assert_eq!(round.ready(&dead_queue), Some(dead), "{round:#?}");
    world.dlq.status = Some(round);
}

#[then(expr = "status exits with code {int}, naming {string}")]
async fn status_exit(world: &mut FleetWorld, code: i32, problem: String) {
    let round = world.dlq.status.as_ref().expect("status ran");
    assert_eq!(round.exit_code, Some(code), "{round:#?}");
    let problems = round.report["problems"].to_string();
    assert!(problems.contains(&problem), "{problems}");
}

#[then(expr = "status exits with code {int}")]
async fn status_exit_plain(world: &mut FleetWorld, code: i32) {
    let round = world.dlq.status.as_ref().expect("status ran");
    assert_eq!(round.exit_code, Some(code), "{round:#?}");
}
