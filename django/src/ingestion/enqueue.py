"""The public API: plan jobs for devices and a range, validate them, and publish them.

Every job is validated against the JSON Schema before any is published, so a
bad request publishes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction

from ingestion.conf import load_settings
from ingestion.errors import InvalidJobError
from ingestion.job import IngestJob, parse_time, plan_jobs
from ingestion.publish import publish_jobs
from ingestion.schema import validate_body
from ingestion.trace import current_traceparent, valid_traceparent
from ingestion.windows import parse_window

#: A time argument: an aware datetime, or RFC 3339 text with an offset.
TimeArg = datetime | str

#: A window argument: a timedelta, or text such as "1h"; None takes ``INGESTION_WINDOW``.
WindowArg = timedelta | str | None

_UNSET = object()


def plan_ingestion(
    devices: str | Iterable[str],
    start: TimeArg,
    end: TimeArg,
    window: WindowArg = None,
    requested_by: str | object | None = _UNSET,
) -> list[IngestJob]:
    """Build and validate the jobs for ``devices`` over ``[start, end)`` without publishing.

    ``window`` defaults to ``INGESTION_WINDOW`` and ``requested_by`` to
    ``INGESTION_REQUESTED_BY`` (pass None to leave it out of the bodies).

    Raises:
        InvalidJobError: the request or a resulting body breaks the contract.
        django.core.exceptions.ImproperlyConfigured: a setting is invalid.

    """
    config = load_settings()
    if window is None:
        length = config.window
    elif isinstance(window, str):
        try:
            length = parse_window(window)
        except ValueError as error:
            raise InvalidJobError(str(error)) from None
    else:
        length = window
    who = config.requested_by if requested_by is _UNSET else requested_by
    if who is not None and not isinstance(who, str):
        raise InvalidJobError(f"requested_by must be a string or None, not {who!r}")
    jobs = plan_jobs(
        [devices] if isinstance(devices, str) else devices,
        _as_time(start),
        _as_time(end),
        length,
        requested_by=who,
        max_span=config.max_span,
    )
    for job in jobs:
        validate_body(job.body(), config.schema_path)
    return jobs


def enqueue_ingestion_bulk(
    devices: Iterable[str],
    start: TimeArg,
    end: TimeArg,
    window: WindowArg = None,
    requested_by: str | object | None = _UNSET,
    *,
    traceparent: str | None = None,
) -> list[str]:
    """Publish one job per device and window, and wait until the broker confirms them.

    Jobs go out device by device, in the order given, each device's windows in
    time order. ``traceparent`` defaults to the current OpenTelemetry context.
    Returns the job ids in publishing order.

    Raises:
        InvalidJobError: the request breaks the contract; nothing was published.
        IngestionPublishError: some jobs were not confirmed; ``.job_ids`` names them.

    """
    jobs = plan_ingestion(devices, start, end, window, requested_by)
    return publish_jobs(jobs, load_settings(), _traceparent(traceparent))


def enqueue_ingestion(
    device: str,
    start: TimeArg,
    end: TimeArg,
    window: WindowArg = None,
    requested_by: str | object | None = _UNSET,
    *,
    traceparent: str | None = None,
) -> list[str]:
    """Publish the jobs of one device; see :func:`enqueue_ingestion_bulk`."""
    return enqueue_ingestion_bulk(
        [device], start, end, window, requested_by, traceparent=traceparent
    )


def enqueue_ingestion_on_commit(
    devices: str | Iterable[str],
    start: TimeArg,
    end: TimeArg,
    window: WindowArg = None,
    requested_by: str | object | None = _UNSET,
    *,
    traceparent: str | None = None,
    using: str | None = None,
    robust: bool = False,
) -> list[str]:
    """Publish the jobs when the current transaction commits; publish nothing on rollback.

    The jobs are planned and validated now, so a bad request fails inside the
    transaction, and the trace context is taken now, while the request's span
    is current. Outside a transaction Django runs the publish at once.
    Returns the ids the jobs will have. ``using`` names the database alias;
    with ``robust=True`` a failed publish is logged by Django instead of raised
    (the transaction has committed by then either way).

    Raises:
        InvalidJobError: the request breaks the contract.

    """
    jobs = plan_ingestion(devices, start, end, window, requested_by)
    parent = _traceparent(traceparent)

    def publish() -> None:
        publish_jobs(jobs, load_settings(), parent)

    transaction.on_commit(publish, using=using, robust=robust)
    return [job.job_id for job in jobs]


def _as_time(value: TimeArg) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_time(value)
    raise InvalidJobError(f"expected a datetime or RFC 3339 text, not {value!r}")


def _traceparent(explicit: str | None) -> str | None:
    if explicit is None:
        return current_traceparent()
    if not valid_traceparent(explicit):
        raise InvalidJobError(f"traceparent {explicit!r} is not a W3C traceparent")
    return explicit
