"""One ingestion job: canonical times, its UUIDv5 id and its JSON body (docs/contract.md)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ingestion.errors import InvalidJobError
from ingestion.windows import split_windows

#: Namespace of job ids: ``UUIDv5(NAMESPACE_URL, "urn:ingest-fleet:job:v1")``.
JOB_NAMESPACE = uuid.UUID("d2b5e4c6-5c9a-5536-84fe-1a7a46cec6d7")

#: Contract version written in every body.
CONTRACT_VERSION = 1

#: Largest body a decoder accepts, in bytes.
MAX_BODY_BYTES = 65_536

_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# RFC 3339 with an explicit offset. Python keeps microseconds only, so up to
# nine fractional digits are read but digits past the sixth must be zero.
_RFC3339_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class IngestJob:
    """One device and one half-open window ``[start, end)``, with its contract id."""

    #: Hyphenated UUIDv5 of the device and window.
    job_id: str
    #: Device id as the factory API knows it.
    device: str
    #: Inclusive start, timezone-aware UTC.
    start: datetime
    #: Exclusive end, timezone-aware UTC.
    end: datetime
    #: Who asked for the job; omitted from the body when None.
    requested_by: str | None = None

    def body(self) -> dict[str, Any]:
        """Return the body as a dict, fields in contract order, times canonical."""
        body: dict[str, Any] = {
            "version": CONTRACT_VERSION,
            "job_id": self.job_id,
            "device": self.device,
            "start": canonical_time(self.start),
            "end": canonical_time(self.end),
        }
        if self.requested_by is not None:
            body["requested_by"] = self.requested_by
        return body

    def encode(self) -> bytes:
        """Return the body as compact UTF-8 JSON, the bytes that are published."""
        return json.dumps(self.body(), ensure_ascii=False, separators=(",", ":")).encode()


def canonical_time(moment: datetime) -> str:
    """Format an aware datetime as the contract's canonical UTC time.

    UTC with a ``Z`` and the shortest of 0, 3 or 6 fractional digits that keeps
    the value exact (nine are never needed: datetime holds microseconds).

    Raises:
        InvalidJobError: ``moment`` is naive, so its instant is unknown.

    """
    utc = _as_utc(moment)
    text = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc:%H:%M:%S}"
    micros = utc.microsecond
    if micros == 0:
        return text + "Z"
    if micros % 1000 == 0:
        return f"{text}.{micros // 1000:03d}Z"
    return f"{text}.{micros:06d}Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time with an explicit offset into an aware UTC datetime.

    Raises:
        InvalidJobError: the text is not RFC 3339 with an offset, or is finer
            than a microsecond (the id would then differ from other producers').

    """
    match = _RFC3339_RE.match(text.strip())
    if match is None:
        raise InvalidJobError(
            f"time {text!r} is not RFC 3339 with an offset, e.g. 2026-12-01T00:00:00Z"
        )
    date, clock, fraction, offset = match.groups()
    fraction = fraction or ""
    if fraction[6:].strip("0"):
        raise InvalidJobError(f"time {text!r} is finer than a microsecond")
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        parsed = datetime.fromisoformat(f"{date}T{clock}.{fraction[:6]:0<6}{offset}")
    except ValueError as error:
        raise InvalidJobError(f"time {text!r} is not a valid time: {error}") from None
    return parsed.astimezone(UTC)


def job_id_for(device: str, start: datetime, end: datetime) -> str:
    r"""Return the contract's job id: UUIDv5 of ``device\nstart\nend`` in canonical times."""
    name = f"{device}\n{canonical_time(start)}\n{canonical_time(end)}"
    return str(uuid.uuid5(JOB_NAMESPACE, name))


def plan_jobs(
    devices: Iterable[str],
    start: datetime,
    end: datetime,
    window: timedelta,
    requested_by: str | None = None,
    max_span: timedelta | None = None,
) -> list[IngestJob]:
    """Cut ``[start, end)`` into windows for every device, as the contract orders them.

    Jobs come device by device, in the order given, each device's windows in
    time order. Nothing is validated against the schema here; see
    :func:`ingestion.schema.validate_body`.

    Raises:
        InvalidJobError: no device, a bad device id, naive or reversed times,
            a window that is not positive or longer than ``max_span``, or a
            ``requested_by`` over 256 characters.

    """
    device_list: Sequence[str] = [devices] if isinstance(devices, str) else list(devices)
    if not device_list:
        raise InvalidJobError("no device given")
    for device in device_list:
        if not isinstance(device, str) or not _DEVICE_RE.match(device):
            raise InvalidJobError(
                f"device {device!r} does not match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,63}}$"
            )
    if requested_by is not None and len(requested_by) > 256:
        raise InvalidJobError("requested_by is longer than 256 characters")
    if max_span is not None and window > max_span:
        raise InvalidJobError(
            f"window {window} is longer than the maximum span {max_span} the workers accept"
        )
    utc_start, utc_end = _as_utc(start), _as_utc(end)
    try:
        windows = list(split_windows(utc_start, utc_end, window))
    except ValueError as error:
        raise InvalidJobError(str(error)) from None
    return [
        IngestJob(
            job_id=job_id_for(device, window_start, window_end),
            device=device,
            start=window_start,
            end=window_end,
            requested_by=requested_by,
        )
        for device in device_list
        for window_start, window_end in windows
    ]


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        # A naive time's instant depends on the server's zone, and so would
        # the job id; refusing it is cheaper than a silently shifted window.
        raise InvalidJobError(f"time {moment.isoformat()} has no timezone; pass an aware datetime")
    return moment.astimezone(UTC)
