"""Window lengths and the cutting of a range into windows, as docs/contract.md states."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from ingestion.windows import parse_window, split_windows


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h", timedelta(hours=1)),
        ("30m", timedelta(minutes=30)),
        ("15s", timedelta(seconds=15)),
        ("1d", timedelta(days=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h30m", timedelta(minutes=90)),
        (" 1h 30m ", timedelta(minutes=90)),
    ],
)
def test_parse_window_reads_unit_suffixed_lengths(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "h", "1", "1x", "-1h", "0s", "1.5h", "1h x"])
def test_parse_window_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_window(text)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 1, hour, minute, tzinfo=UTC)


def test_split_follows_the_contract_example() -> None:
    """from=00:00, to=02:30, window=1h gives [00:00,01:00), [01:00,02:00), [02:00,02:30)."""
    windows = list(split_windows(at(0), at(2, 30), timedelta(hours=1)))
    assert windows == [(at(0), at(1)), (at(1), at(2)), (at(2), at(2, 30))]


def test_split_of_an_exact_multiple_has_no_empty_tail() -> None:
    assert list(split_windows(at(0), at(2), timedelta(hours=1))) == [
        (at(0), at(1)),
        (at(1), at(2)),
    ]


def test_split_of_a_range_shorter_than_the_window_is_the_range() -> None:
    assert list(split_windows(at(0), at(0, 10), timedelta(hours=1))) == [(at(0), at(0, 10))]


def test_split_windows_are_contiguous_and_half_open() -> None:
    windows = list(split_windows(at(0), at(23, 59), timedelta(minutes=7)))
    assert windows[0][0] == at(0)
    assert windows[-1][1] == at(23, 59)
    assert all(a_end == b_start for (_, a_end), (b_start, _) in itertools.pairwise(windows))
    assert all(start < end for start, end in windows)


@pytest.mark.parametrize(("start", "end"), [(at(1), at(1)), (at(2), at(1))])
def test_split_rejects_an_empty_or_reversed_range(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError, match="before"):
        list(split_windows(start, end, timedelta(hours=1)))


def test_split_rejects_a_window_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        list(split_windows(at(0), at(1), timedelta(0)))
