"""Canonical times, job ids and bodies: the parts of the contract every producer must agree on."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ingestion import InvalidJobError
from ingestion.job import JOB_NAMESPACE, canonical_time, job_id_for, parse_time, plan_jobs

# Golden vectors, computed once by hand from docs/contract.md with Python's
# uuid.uuid5 and written down literally: if the derivation in the code ever
# drifts, these fail even when the code and its test drift together.
GOLDEN = [
    ("press-07", "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z",
     "a17b77da-000a-56ba-88fe-2a048dd09a37"),
    ("press-07", "2026-12-01T01:00:00Z", "2026-12-01T02:00:00Z",
     "27389e11-e35c-5512-b58b-67f89f067101"),
    ("press-07", "2026-12-01T02:00:00Z", "2026-12-01T02:30:00Z",
     "c2fbafc6-9b31-53e0-b1b3-196077d13671"),
    ("oven.2", "2026-12-01T00:00:00.250Z", "2026-12-01T01:00:00.000001Z",
     "5f4a0a6f-269c-537a-877f-67d2e775ad65"),
]  # fmt: skip


def test_namespace_is_the_uuid5_of_the_contract_urn() -> None:
    assert uuid.uuid5(uuid.NAMESPACE_URL, "urn:ingest-fleet:job:v1") == JOB_NAMESPACE


@pytest.mark.parametrize(("device", "start", "end", "expected"), GOLDEN)
def test_job_id_matches_the_golden_vector(device: str, start: str, end: str, expected: str) -> None:
    assert job_id_for(device, parse_time(start), parse_time(end)) == expected
    name = f"{device}\n{start}\n{end}".encode()
    assert str(uuid.uuid5(JOB_NAMESPACE, name.decode())) == expected


def test_job_id_is_the_same_for_the_same_instant_in_another_offset() -> None:
    utc = job_id_for("press-07", parse_time("2026-12-01T00:00:00Z"),
                     parse_time("2026-12-01T01:00:00Z"))  # fmt: skip
    shifted = job_id_for("press-07", parse_time("2026-12-01T02:00:00+02:00"),
                         parse_time("2026-11-30T20:00:00-05:00"))  # fmt: skip
    assert utc == shifted == GOLDEN[0][3]


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 12, 1, tzinfo=UTC), "2026-12-01T00:00:00Z"),
        (datetime(2026, 12, 1, 0, 0, 0, 250_000, tzinfo=UTC), "2026-12-01T00:00:00.250Z"),
        (datetime(2026, 12, 1, 0, 0, 0, 1, tzinfo=UTC), "2026-12-01T00:00:00.000001Z"),
        (datetime(2026, 12, 1, 0, 0, 0, 120_000, tzinfo=UTC), "2026-12-01T00:00:00.120Z"),
        (datetime(2026, 12, 1, 0, 0, 0, 123_400, tzinfo=UTC), "2026-12-01T00:00:00.123400Z"),
        (datetime(2026, 12, 1, 2, tzinfo=timezone(timedelta(hours=2))), "2026-12-01T00:00:00Z"),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05Z"),
    ],
)
def test_canonical_time_is_utc_with_0_3_or_6_fraction_digits(moment: datetime, text: str) -> None:
    assert canonical_time(moment) == text


def test_canonical_time_refuses_a_naive_datetime() -> None:
    with pytest.raises(InvalidJobError, match="no timezone"):
        canonical_time(datetime(2026, 12, 1))


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        ("2026-12-01t00:00:00z", "2026-12-01T00:00:00Z"),
        ("2026-12-01T01:30:00+01:30", "2026-12-01T00:00:00Z"),
        ("2026-12-01T00:00:00.5Z", "2026-12-01T00:00:00.500Z"),
        ("2026-12-01T00:00:00.123456000Z", "2026-12-01T00:00:00.123456Z"),
    ],
)
def test_parse_time_reads_rfc3339_with_an_offset(text: str, canonical: str) -> None:
    assert canonical_time(parse_time(text)) == canonical


@pytest.mark.parametrize(
    "text",
    ["2026-12-01T00:00:00", "2026-12-01", "yesterday", "2026-13-01T00:00:00Z",
     "2026-12-01T00:00:00.123456789Z"],
)  # fmt: skip
def test_parse_time_rejects_no_offset_bad_dates_and_nanoseconds(text: str) -> None:
    with pytest.raises(InvalidJobError):
        parse_time(text)


def test_plan_orders_jobs_device_by_device_then_by_time() -> None:
    jobs = plan_jobs(["b-2", "a-1"], parse_time("2026-12-01T00:00:00Z"),
                     parse_time("2026-12-01T02:30:00Z"), timedelta(hours=1))  # fmt: skip
    assert [(job.device, canonical_time(job.start)) for job in jobs] == [
        ("b-2", "2026-12-01T00:00:00Z"),
        ("b-2", "2026-12-01T01:00:00Z"),
        ("b-2", "2026-12-01T02:00:00Z"),
        ("a-1", "2026-12-01T00:00:00Z"),
        ("a-1", "2026-12-01T01:00:00Z"),
        ("a-1", "2026-12-01T02:00:00Z"),
    ]


def test_body_has_exactly_the_contract_fields_in_order() -> None:
    (job,) = plan_jobs(["press-07"], parse_time("2026-12-01T00:00:00Z"),
                       parse_time("2026-12-01T01:00:00Z"), timedelta(hours=1),
                       requested_by="django:reports.nightly")  # fmt: skip
    assert json.loads(job.encode()) == {
        "version": 1,
        "job_id": GOLDEN[0][3],
        "device": "press-07",
        "start": "2026-12-01T00:00:00Z",
        "end": "2026-12-01T01:00:00Z",
        "requested_by": "django:reports.nightly",
    }
    assert list(job.body()) == ["version", "job_id", "device", "start", "end", "requested_by"]


def test_body_leaves_out_requested_by_when_none() -> None:
    (job,) = plan_jobs(["press-07"], parse_time("2026-12-01T00:00:00Z"),
                       parse_time("2026-12-01T01:00:00Z"), timedelta(hours=1))  # fmt: skip
    assert "requested_by" not in job.body()


@pytest.mark.parametrize(
    ("devices", "window", "message"),
    [
        ([], timedelta(hours=1), "no device"),
        (["-bad"], timedelta(hours=1), "does not match"),
        (["x" * 65], timedelta(hours=1), "does not match"),
        (["ok"], timedelta(days=8), "maximum span"),
    ],
)
def test_plan_rejects_what_a_worker_would_reject(
    devices: list[str], window: timedelta, message: str
) -> None:
    with pytest.raises(InvalidJobError, match=message):
        plan_jobs(devices, parse_time("2026-12-01T00:00:00Z"),
                  parse_time("2026-12-20T00:00:00Z"), window,
                  max_span=timedelta(days=7))  # fmt: skip
