"""The management commands, run as a user would: ``python manage.py ...`` in a subprocess."""

import json
import re
import subprocess
import time
from typing import Any

import pytest

from ingestion.conf import load_settings
from ingestion.schema import validate_body
from ingestion.topology import Topology

from .conftest import drain, manage_py, manage_py_env, message_count, unique_prefix

pytestmark = pytest.mark.broker

ARGS = ["--device", "press-07", "--device", "oven.2",
        "--from", "2026-12-01T00:00:00Z", "--to", "2026-12-01T02:30:00Z",
        "--window", "1h"]  # fmt: skip
FIELDS = {"version", "job_id", "device", "start", "end", "requested_by"}


def run(prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        manage_py(*args), env=manage_py_env(prefix), capture_output=True, text=True, timeout=60
    )


def test_dry_run_prints_schema_valid_bodies_and_publishes_nothing(
    topology: Topology, channel: Any
) -> None:
    result = run(topology.prefix, "enqueue_ingestion", *ARGS, "--dry-run")

    assert result.returncode == 0, result.stderr
    bodies = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(bodies) == 6
    for body in bodies:
        assert set(body) == FIELDS
        validate_body(body, load_settings().schema_path)
    assert bodies[0]["job_id"] == "a17b77da-000a-56ba-88fe-2a048dd09a37"
    assert bodies[0]["requested_by"] == "django:example"
    assert message_count(channel, topology.work_queue) == 0


def test_publish_prints_a_summary_and_sends_the_dry_run_bodies(
    topology: Topology, channel: Any
) -> None:
    dry = run(topology.prefix, "enqueue_ingestion", *ARGS, "--dry-run", "--requested-by", "me")
    result = run(topology.prefix, "enqueue_ingestion", *ARGS, "--requested-by", "me")

    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"jobs=6 confirmed=6 seconds=\d+\.\d{3}\n", result.stdout)
    published = [body.decode() for _, body in drain(channel, topology.work_queue)]
    assert published == dry.stdout.splitlines()
    assert all(json.loads(body)["requested_by"] == "me" for body in published)


def test_publish_to_a_missing_topology_fails_naming_the_jobs() -> None:
    result = run(unique_prefix(), "enqueue_ingestion", *ARGS)
    assert result.returncode != 0
    assert "jobs=6 confirmed=0" in result.stdout
    assert "does not exist" in result.stderr
    assert "a17b77da-000a-56ba-88fe-2a048dd09a37" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "press-07", "--from", "2026-12-01T00:00:00", "--to", "2026-12-02T00:00:00Z"],
         "offset"),
        (["--device", "press-07", "--from", "2026-12-02T00:00:00Z", "--to", "2026-12-01T00:00:00Z"],
         "before"),
        ([*ARGS[4:8], "--device", "press-07", "--window", "1y"], "window"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_non_zero_with_a_reason(args: list[str], message: str) -> None:
    result = run(unique_prefix(), "enqueue_ingestion", *args, "--dry-run")
    assert result.returncode != 0
    assert message in result.stderr


def test_status_lists_every_queue_and_passes_when_nothing_waits(topology: Topology) -> None:
    result = run(topology.prefix, "ingestion_status")

    assert result.returncode == 0, result.stderr
    names = [line.split()[0].removeprefix("queue=") for line in result.stdout.splitlines()]
    assert names == topology.queues
    assert all("messages=0" in line for line in result.stdout.splitlines())


def test_status_fails_when_jobs_wait_with_no_consumer(topology: Topology) -> None:
    assert run(topology.prefix, "enqueue_ingestion", *ARGS).returncode == 0

    # The management API samples queue statistics every 5 s by default.
    deadline = time.monotonic() + 30
    while True:
        result = run(topology.prefix, "ingestion_status")
        if result.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert result.returncode != 0
    assert f"work queue '{topology.work_queue}' holds 6 job(s) and has no consumer" in result.stderr
    assert f"queue={topology.work_queue} messages=6 ready=6 unacked=0 consumers=0" in result.stdout


def test_status_fails_when_the_topology_is_missing() -> None:
    result = run(unique_prefix(), "ingestion_status")
    assert result.returncode != 0
    assert "does not exist" in result.stderr
