"""Publish ingestion jobs (docs/contract.md, version 1) from Django to the ingest fleet.

Modules, in the order a job passes through them:

- ``conf``: the ``INGESTION_*`` settings, defaulted and validated.
- ``windows``: window lengths ("1h") and cutting a range into windows.
- ``job``: canonical times, job ids and bodies.
- ``schema``: validation of bodies against the contract's JSON Schema.
- ``trace``: the ``traceparent`` header.
- ``enqueue``: the public API (plan, enqueue, enqueue on commit).
- ``publish``: the per-thread broker connection and confirmed publishing.
- ``topology``: the broker's object names and, for tests, their declaration.
- ``status``: queue depths from the RabbitMQ management API.
- ``errors``: the exceptions the API raises.
"""

from ingestion.enqueue import (
    enqueue_ingestion,
    enqueue_ingestion_bulk,
    enqueue_ingestion_on_commit,
    plan_ingestion,
)
from ingestion.errors import IngestionError, IngestionPublishError, InvalidJobError
from ingestion.job import IngestJob
from ingestion.publish import close_connection

__all__ = [
    "IngestJob",
    "IngestionError",
    "IngestionPublishError",
    "InvalidJobError",
    "close_connection",
    "enqueue_ingestion",
    "enqueue_ingestion_bulk",
    "enqueue_ingestion_on_commit",
    "plan_ingestion",
]
