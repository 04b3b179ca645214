"""Window lengths and the cutting of a time range into windows (docs/contract.md, Windows)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}

# "1h", "90s", "1h30m", "1h 30m": the forms humantime, which ingestctl uses,
# also reads, so one string means the same window on both sides.
_TERM_RE = re.compile(r"\s*(\d+)\s*(ms|s|m|h|d)")


def parse_window(text: str) -> timedelta:
    """Parse a window length such as ``"1h"``, ``"30m"``, ``"15s"``, ``"1d"`` or ``"1h30m"``.

    Raises:
        ValueError: the text is not such a length, or it is zero.

    """
    total = timedelta(0)
    position = 0
    stripped = text.strip()
    while position < len(stripped):
        match = _TERM_RE.match(stripped, position)
        if match is None:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not stripped or position != len(stripped):
        raise ValueError(
            f"window {text!r} is not a duration like '1h', '30m', '15s', '1d' or '1h30m'"
        )
    if total <= timedelta(0):
        raise ValueError(f"window {text!r} must be longer than zero")
    return total


def split_windows(
    start: datetime, end: datetime, window: timedelta
) -> Iterator[tuple[datetime, datetime]]:
    """Yield the half-open windows ``[a, b)`` that cover ``[start, end)``, in time order.

    Windows start at ``start`` and step by ``window``; the last one is cut at
    ``end``. ``start`` and ``end`` must be timezone-aware.

    Raises:
        ValueError: ``start`` is not before ``end``, or ``window`` is not positive.

    """
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, not {window}")
    if not start < end:
        raise ValueError(f"start {start.isoformat()} must be before end {end.isoformat()}")
    cursor = start
    while cursor < end:
        window_end = min(cursor + window, end)
        yield cursor, window_end
        cursor = window_end
