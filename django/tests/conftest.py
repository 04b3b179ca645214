"""Fixtures shared by the tests: a broker topology of each test's own, and the Rust binaries.

Every test that touches the broker gets the prefix ``t-<uuid4 hex>-``, so the
suite can run beside other suites on the same broker; its queues and exchange
are deleted when the test ends.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from ingestion import close_connection
from ingestion.topology import Topology, declare_topology, delete_topology

#: Root of the repository checkout (django/tests/conftest.py is three levels down).
REPO_ROOT = Path(__file__).resolve().parents[2]

#: The example project, whose manage.py the tests run.
EXAMPLE_DIR = REPO_ROOT / "django" / "example"

#: The broker every test uses; RabbitMQ's default guest account on loopback.
BROKER_URL = os.environ.get("INGESTION_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def unique_prefix() -> str:
    """Return a topology prefix no other test run uses."""
    return f"t-{uuid.uuid4().hex}-"


@pytest.fixture
def channel() -> Iterator[Any]:
    """Yield a pika channel on a connection of the test's own."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


@pytest.fixture
def topology(channel: Any, settings: SettingsWrapper) -> Iterator[Topology]:
    """Declare a full topology under a fresh prefix and point the settings at it."""
    prefix = unique_prefix()
    declare_topology(channel, prefix)
    settings.INGESTION_BROKER_URL = BROKER_URL
    settings.INGESTION_PREFIX = prefix
    try:
        yield Topology(prefix)
    finally:
        close_connection()
        delete_topology(channel, prefix)


def drain(channel: Any, queue: str) -> list[tuple[Any, bytes]]:
    """Take every message from ``queue`` with basic_get; return (properties, body) pairs."""
    messages = []
    while True:
        method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            return messages
        messages.append((properties, body))


def message_count(channel: Any, queue: str) -> int:
    """Return the broker's count of ready messages in ``queue`` (exact, not sampled)."""
    return int(channel.queue_declare(queue=queue, passive=True).method.message_count)


def rust_binary(name: str, env_var: str) -> Path:
    """Locate a Rust binary by ``env_var`` or in the cargo target dir; fail the test if absent.

    These tests must not skip: scripts/test builds the binaries before it runs
    this suite, so a missing one means the build or the path is wrong.
    """
    explicit = os.environ.get(env_var)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    path = Path(explicit) if explicit else target / "debug" / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{name} not found at {path}: build it with `cargo build -p <crate> --bin {name}` "
            f"(scripts/test does) or set {env_var} to its path",
            pytrace=False,
        )
    return path


def manage_py_env(prefix: str) -> dict[str, str]:
    """Return the environment for running the example's manage.py against ``prefix``."""
    src = str(REPO_ROOT / "django" / "src")
    path = os.pathsep.join([str(EXAMPLE_DIR), src, os.environ.get("PYTHONPATH", "")])
    return {
        **os.environ,
        "PYTHONPATH": path,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "INGESTION_BROKER_URL": BROKER_URL,
        "INGESTION_PREFIX": prefix,
    }


def manage_py(*args: str) -> list[str]:
    """Return the argv that runs the example's manage.py with this interpreter."""
    return [sys.executable, str(EXAMPLE_DIR / "manage.py"), *args]
