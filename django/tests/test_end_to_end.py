"""End to end: ``manage.py enqueue_ingestion`` → RabbitMQ → Rust worker → VictoriaMetrics.

Runs the real ``factory-sim`` and ``ingest-worker`` from target/debug (or
``FACTORY_SIM`` / ``INGEST_WORKER``) and fails, never skips, when either is
missing. Needs VictoriaMetrics on 127.0.0.1:8428 (``VICTORIA_URL``).
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingestion.job import canonical_time, parse_time
from ingestion.topology import Topology

from .conftest import BROKER_URL, drain, manage_py, manage_py_env, rust_binary

pytestmark = [pytest.mark.broker, pytest.mark.rust]

VICTORIA_URL = os.environ.get("VICTORIA_URL", "http://127.0.0.1:8428")
FIELDS = ("temperature", "pressure", "power")
TAGS = ("FACTORY", "ZONE", "CELL", "MACHINE_GROUP", "MACHINE", "MACHINE_ID")

# A series is its metric name plus its sorted labels; its points map ms to value.
Series = tuple[str, tuple[tuple[str, str], ...]]
Points = dict[Series, dict[int, float]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback test URL
        return json.load(response)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    """Start factory-sim on a free port; yield its base URL once it answers."""
    binary = rust_binary("factory-sim", "FACTORY_SIM")
    port = free_port()
    log = tmp_path / "factory-sim.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{port}"], stdout=sink, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"factory-sim exited with {process.returncode}:\n{log_tail(log)}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"factory-sim did not listen on {port}:\n{log_tail(log)}")
                time.sleep(0.2)
        yield base
    finally:
        stop(process)


def simulator_readings(base: str, device: str, start: str, end: str) -> list[dict[str, Any]]:
    """Fetch every reading the simulator serves for the range, following the cursor."""
    readings: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10_000):
        query = {"start": start, "end": end, "limit": "1000"}
        if cursor is not None:
            query["cursor"] = cursor
        page = get_json(f"{base}/devices/{device}/readings?{urllib.parse.urlencode(query)}")
        readings.extend(page["readings"])
        cursor = page.get("next_cursor")
        if cursor is None:
            return readings
    pytest.fail("the simulator's cursor never ended")


def epoch_ms(text: str) -> int:
    # The simulator may stamp nanoseconds; VictoriaMetrics keeps milliseconds.
    moment = parse_time(re.sub(r"(\.\d{6})\d+", r"\1", text))
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def expected_points(readings: list[dict[str, Any]]) -> Points:
    points: Points = {}
    for reading in readings:
        values = reading["Values"]
        labels = tuple(sorted((tag.lower(), str(values[tag])) for tag in TAGS))
        for field in FIELDS:
            if isinstance(values.get(field), int | float):
                series = (f"machine_reading_{field}", labels)
                points.setdefault(series, {})[epoch_ms(values["TIMESTAMP"])] = float(values[field])
    return points


def stored_points(device: str) -> Points:
    selector = f'{{__name__=~"machine_reading_.*",machine_id="{device}"}}'
    url = f"{VICTORIA_URL}/api/v1/export?{urllib.parse.urlencode({'match[]': selector})}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test URL
        lines = response.read().decode().splitlines()
    points: Points = {}
    for line in filter(None, lines):
        row = json.loads(line)
        metric = dict(row["metric"])
        name = metric.pop("__name__")
        series = (name, tuple(sorted(metric.items())))
        points.setdefault(series, {}).update(zip(row["timestamps"], row["values"], strict=True))
    return points


def same_points(expected: Points, stored: Points) -> bool:
    if expected.keys() != stored.keys():
        return False
    for series, by_time in expected.items():
        if by_time.keys() != stored[series].keys():
            return False
        for stamp, value in by_time.items():
            # VictoriaMetrics keeps about 12 significant digits of a float.
            if not math.isclose(value, stored[series][stamp], rel_tol=1e-9, abs_tol=1e-9):
                return False
    return True


def test_enqueued_readings_reach_victoriametrics(
    topology: Topology, channel: Any, simulator: str, tmp_path: Path
) -> None:
    worker_binary = rust_binary("ingest-worker", "INGEST_WORKER")
    device = f"e2e-{uuid.uuid4().hex[:12]}"
    # Within the last two days: VictoriaMetrics may keep only a short retention.
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start, end = (
        canonical_time(hour - timedelta(hours=3)),
        canonical_time(hour - timedelta(minutes=30)),
    )

    expected = expected_points(simulator_readings(simulator, device, start, end))
    assert expected, f"the simulator served no reading for {device} in [{start}, {end})"

    enqueue = subprocess.run(
        manage_py("enqueue_ingestion", "--device", device, "--from", start, "--to", end,
                  "--window", "1h"),
        env=manage_py_env(topology.prefix), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert enqueue.returncode == 0, enqueue.stderr
    assert enqueue.stdout.startswith("jobs=3 confirmed=3 ")

    log = tmp_path / "ingest-worker.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            [str(worker_binary), "--amqp-url", BROKER_URL, "--prefix", topology.prefix,
             "--factory-url", simulator, "--tsdb-write-url", f"{VICTORIA_URL}/write",
             "--http-addr", "127.0.0.1:0"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        stored: Points = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                pytest.fail(f"ingest-worker exited with {worker.returncode}:\n{log_tail(log)}")
            stored = stored_points(device)
            if same_points(expected, stored):
                break
            time.sleep(1)
    finally:
        stop(worker)

    dead = drain(channel, topology.dead_queue)
    assert not dead, f"jobs were dead-lettered: {[p.headers for p, _ in dead]}"
    missing = {
        series: sorted(set(points) - set(stored.get(series, {})))[:5]
        for series, points in expected.items()
        if set(points) - set(stored.get(series, {}))
    }
    assert not missing, f"readings absent from VictoriaMetrics: {missing}\n{log_tail(log)}"
    assert same_points(expected, stored), "stored series or values differ from the simulator's"
