"""Publishing against the real broker: envelope, confirms, transactions and trace context."""

import json
import logging
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from pytest_django.fixtures import Settings as SettingsWrapper

from ingestion import (
    IngestionPublishError,
    InvalidJobError,
    close_connection,
    enqueue_ingestion,
    enqueue_ingestion_bulk,
    enqueue_ingestion_on_commit,
)
from ingestion.conf import load_settings
from ingestion.schema import validate_body
from ingestion.topology import Topology

from .conftest import drain, message_count, unique_prefix

START, END = "2026-12-01T00:00:00Z", "2026-12-01T02:30:00Z"
PRESS_IDS = [
    "a17b77da-000a-56ba-88fe-2a048dd09a37",
    "27389e11-e35c-5512-b58b-67f89f067101",
    "c2fbafc6-9b31-53e0-b1b3-196077d13671",
]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

pytestmark = pytest.mark.broker


def test_published_jobs_carry_the_contract_envelope(topology: Topology, channel: Any) -> None:
    job_ids = enqueue_ingestion("press-07", START, END, requested_by="django:test")

    messages = drain(channel, topology.work_queue)
    assert job_ids == PRESS_IDS
    assert [properties.message_id for properties, _ in messages] == PRESS_IDS
    for properties, body in messages:
        assert properties.content_type == "application/json"
        assert properties.delivery_mode == 2
        decoded = json.loads(body)
        validate_body(decoded, load_settings().schema_path)
        assert decoded["job_id"] == properties.message_id
        assert decoded["requested_by"] == "django:test"


def test_bulk_publishes_device_by_device_in_time_order(topology: Topology, channel: Any) -> None:
    job_ids = enqueue_ingestion_bulk(["press-07", "oven.2"], START, END, window="1h")

    bodies = [json.loads(body) for _, body in drain(channel, topology.work_queue)]
    assert [body["job_id"] for body in bodies] == job_ids
    assert [(body["device"], body["start"]) for body in bodies] == [
        ("press-07", "2026-12-01T00:00:00Z"),
        ("press-07", "2026-12-01T01:00:00Z"),
        ("press-07", "2026-12-01T02:00:00Z"),
        ("oven.2", "2026-12-01T00:00:00Z"),
        ("oven.2", "2026-12-01T01:00:00Z"),
        ("oven.2", "2026-12-01T02:00:00Z"),
    ]


def test_an_invalid_request_publishes_nothing(topology: Topology, channel: Any) -> None:
    with pytest.raises(InvalidJobError, match="does not match"):
        enqueue_ingestion_bulk(["press-07", "bad device"], START, END)
    assert message_count(channel, topology.work_queue) == 0


@pytest.mark.django_db(transaction=True)
def test_on_commit_publishes_nothing_when_the_transaction_rolls_back(
    topology: Topology, channel: Any
) -> None:
    class RollbackError(Exception):
        pass

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            enqueue_ingestion_on_commit("press-07", START, END)
            raise RollbackError

    with pytest.raises(RollbackError):
        enqueue_then_fail()
    assert message_count(channel, topology.work_queue) == 0

    # The same call in a transaction that commits does publish: the zero above
    # is the rollback's doing, not a publish that could not have worked.
    with transaction.atomic():
        job_ids = enqueue_ingestion_on_commit("press-07", START, END)
        assert message_count(channel, topology.work_queue) == 0
    assert [p.message_id for p, _ in drain(channel, topology.work_queue)] == job_ids == PRESS_IDS


@pytest.mark.django_db(transaction=True)
def test_a_failed_request_enqueues_nothing_and_a_good_one_does(
    topology: Topology, channel: Any
) -> None:
    client = Client(raise_request_exception=False)
    form = {"device": "press-07", "start": START, "end": END}

    assert client.post("/ingest/", {**form, "fail": "1"}).status_code == 500
    assert message_count(channel, topology.work_queue) == 0

    response = client.post("/ingest/", form)
    assert response.status_code == 202
    assert response.json()["job_ids"] == PRESS_IDS
    assert [p.message_id for p, _ in drain(channel, topology.work_queue)] == PRESS_IDS


def test_an_unroutable_publish_raises_naming_the_jobs(
    channel: Any, settings: SettingsWrapper
) -> None:
    """The exchange exists but no queue is bound with key 'jobs', so each job is returned."""
    prefix = unique_prefix()
    channel.exchange_declare(f"{prefix}ingest", "direct", durable=True)
    settings.INGESTION_PREFIX = prefix
    try:
        with pytest.raises(IngestionPublishError, match="unroutable") as caught:
            enqueue_ingestion("press-07", START, END)
    finally:
        close_connection()
        channel.exchange_delete(f"{prefix}ingest")
    assert caught.value.job_ids == PRESS_IDS
    assert caught.value.confirmed == []
    assert PRESS_IDS[0] in str(caught.value)


def test_a_missing_exchange_raises_naming_the_exchange_and_jobs(settings: SettingsWrapper) -> None:
    prefix = unique_prefix()
    settings.INGESTION_PREFIX = prefix
    with pytest.raises(IngestionPublishError, match=f"exchange '{prefix}ingest' does not exist"):
        enqueue_ingestion("press-07", START, END)
    close_connection()


def test_an_unconfirmed_publish_raises_naming_the_jobs(
    topology: Topology, settings: SettingsWrapper
) -> None:
    """A confirm timeout far below a loopback round trip makes every confirm late."""
    settings.INGESTION_CONFIRM_TIMEOUT = 1e-6
    with pytest.raises(IngestionPublishError, match="did not confirm") as caught:
        enqueue_ingestion("press-07", START, END)
    assert caught.value.job_ids == PRESS_IDS

    # The next publish opens a fresh connection and succeeds.
    settings.INGESTION_CONFIRM_TIMEOUT = 10
    assert enqueue_ingestion("press-07", START, END) == PRESS_IDS


def test_a_connection_closed_behind_the_publishers_back_is_reopened(
    topology: Topology, channel: Any
) -> None:
    from ingestion import publish

    enqueue_ingestion("press-07", START, END)
    publish._local.link.connection.close()
    assert enqueue_ingestion("press-07", START, END) == PRESS_IDS
    assert message_count(channel, topology.work_queue) == 6


def test_an_unreachable_broker_fails_without_leaking_the_password(
    settings: SettingsWrapper, caplog: pytest.LogCaptureFixture
) -> None:
    settings.INGESTION_BROKER_URL = "amqp://guest:s3cret-pw@127.0.0.1:1/%2F"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(IngestionPublishError, match=r"guest:\*\*\*@127\.0\.0\.1:1") as caught:
        enqueue_ingestion("press-07", START, END)
    assert caught.value.job_ids == PRESS_IDS
    assert "s3cret-pw" not in str(caught.value)
    assert all("s3cret-pw" not in record.getMessage() for record in caplog.records)


def test_no_trace_context_means_no_traceparent_header(topology: Topology, channel: Any) -> None:
    enqueue_ingestion("press-07", START, "2026-12-01T01:00:00Z")
    ((properties, _),) = drain(channel, topology.work_queue)
    assert "traceparent" not in (properties.headers or {})


def test_an_explicit_traceparent_is_sent(topology: Topology, channel: Any) -> None:
    enqueue_ingestion("press-07", START, "2026-12-01T01:00:00Z", traceparent=TRACEPARENT)
    ((properties, _),) = drain(channel, topology.work_queue)
    assert properties.headers["traceparent"] == TRACEPARENT


def test_the_current_opentelemetry_span_becomes_the_traceparent(
    topology: Topology, channel: Any
) -> None:
    context = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context)):
        enqueue_ingestion("press-07", START, "2026-12-01T01:00:00Z")
    ((properties, _),) = drain(channel, topology.work_queue)
    assert properties.headers["traceparent"] == TRACEPARENT


def test_a_malformed_traceparent_is_refused(topology: Topology) -> None:
    with pytest.raises(InvalidJobError, match="traceparent"):
        enqueue_ingestion("press-07", START, END, traceparent="00-zz-zz-01")
