//! `ingestctl enqueue`: what reaches the work queue, dry runs, NDJSON input
//! and publishes the broker cannot route.

use ingest_shared::{IngestJob, Limits};

use crate::helpers::{TestBroker, stderr, stdout};

const RANGE: [&str; 4] = [
    "--from",
    "2026-12-01T00:00:00Z",
    "--to",
    "2026-12-01T02:30:00Z",
];

fn expected_jobs() -> Vec<IngestJob> {
    let mut jobs = Vec::new();
    for device in ["press-2", "press-1"] {
        for (start, end) in [("00:00", "01:00"), ("01:00", "02:00"), ("02:00", "02:30")] {
            jobs.push(IngestJob::new(
                device,
                format!("2026-12-01T{start}:00Z").parse().unwrap(),
                format!("2026-12-01T{end}:00Z").parse().unwrap(),
            ));
        }
    }
    jobs
}

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["enqueue", "--device", "press-2", "--device", "press-1"];
    args.extend(RANGE);
    args.extend(extra);
    args
}

/// The work queue holds one job per device and window, in order, with the
/// contract's envelope.
#[tokio::test]
async fn enqueue_publishes_one_job_per_device_and_window_in_order() {
    let broker = TestBroker::new().await;
    let output = broker
        .ingestctl(&args(&["--traceparent", "00-abc-def-01"]), None)
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("jobs=6 confirmed=6 returned=0 nacked=0 seconds="));

    let messages = broker.drain(&broker.topology.work_queue()).await;
    let expected = expected_jobs();
    assert_eq!(messages.len(), expected.len());
    for (message, job) in messages.iter().zip(&expected) {
        assert_eq!(message.body, job.to_body());
        assert_eq!(
            message.message_id.as_deref(),
            Some(job.job_id.to_string().as_str())
        );
        assert_eq!(message.content_type.as_deref(), Some("application/json"));
        assert_eq!(message.delivery_mode, Some(2));
        assert_eq!(message.headers["traceparent"], "00-abc-def-01");
    }
}

/// `--dry-run` prints exactly the canonical bodies and publishes nothing.
#[tokio::test]
async fn dry_run_prints_the_jobs_and_publishes_nothing() {
    let broker = TestBroker::declared().await;
    let output = broker.ingestctl(&args(&["--dry-run"]), None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let expected: String = expected_jobs()
        .iter()
        .map(|job| format!("{}\n", String::from_utf8(job.to_body()).unwrap()))
        .collect();
    assert_eq!(stdout(&output), expected);
    assert_eq!(broker.count(&broker.topology.work_queue()).await, 0);
}

/// The dry run's NDJSON fed to `enqueue -` publishes the same jobs.
#[tokio::test]
async fn enqueue_from_stdin_round_trips_the_dry_run() {
    let broker = TestBroker::new().await;
    let dry = broker
        .ingestctl(&args(&["--dry-run", "--requested-by", "tests"]), None)
        .await;
    let output = broker.ingestctl(&["enqueue", "-"], Some(&dry.stdout)).await;
    assert!(output.status.success(), "{}", stderr(&output));

    let bodies: Vec<Vec<u8>> = broker
        .drain(&broker.topology.work_queue())
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    let expected: Vec<Vec<u8>> = dry
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(bodies, expected);
    let job = IngestJob::decode(&bodies[0], &Limits::default()).unwrap();
    assert_eq!(job.requested_by.as_deref(), Some("tests"));
}

/// A bad line exits 2 naming its number, and nothing is published.
#[tokio::test]
async fn a_bad_stdin_line_is_named_and_nothing_is_published() {
    let broker = TestBroker::declared().await;
    let good = String::from_utf8(expected_jobs()[0].to_body()).unwrap();
    let input = format!("{good}\n{{\"version\":1,\"device\":\"../x\"}}\n");
    let output = broker
        .ingestctl(&["enqueue", "-"], Some(input.as_bytes()))
        .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("line 2"), "{}", stderr(&output));
    assert_eq!(broker.count(&broker.topology.work_queue()).await, 0);
}

/// A device breaking the contract's rule exits 2 naming it.
#[tokio::test]
async fn an_invalid_device_exits_2_naming_it() {
    let broker = TestBroker::new().await;
    let mut bad = vec!["enqueue", "--device", "ok", "--device", "bad/device"];
    bad.extend(RANGE);
    let output = broker.ingestctl(&bad, None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("bad/device"),
        "{}",
        stderr(&output)
    );
}

/// With an exchange and no bound queue, the returned job fails the command,
/// which names its id and device.
#[tokio::test]
async fn an_unroutable_job_fails_naming_it() {
    let broker = TestBroker::new().await;
    broker
        .channel
        .exchange_declare(
            broker.topology.exchange().as_str().into(),
            lapin::ExchangeKind::Direct,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    let mut only_one = vec![
        "enqueue",
        "--no-declare",
        "--device",
        "press-1",
        "--window",
        "1d",
    ];
    only_one.extend(RANGE);
    let output = broker.ingestctl(&only_one, None).await;
    let errors = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{errors}");
    let job = IngestJob::new(
        "press-1",
        "2026-12-01T00:00:00Z".parse().unwrap(),
        "2026-12-01T02:30:00Z".parse().unwrap(),
    );
    assert!(errors.contains(&job.job_id.to_string()), "{errors}");
    assert!(
        errors.contains("device press-1") && errors.contains("returned"),
        "{errors}"
    );
    assert!(
        errors.contains("jobs=1 confirmed=0 returned=1 nacked=0"),
        "{errors}"
    );
}
