"""The W3C ``traceparent`` a job carries: given explicitly, or taken from OpenTelemetry."""

from __future__ import annotations

import re

# version-traceid-parentid-flags; version ff and all-zero ids are invalid.
_TRACEPARENT_RE = re.compile(
    r"^(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"
)


def valid_traceparent(value: str) -> bool:
    """Tell whether ``value`` is a well-formed W3C traceparent."""
    return _TRACEPARENT_RE.match(value) is not None


def current_traceparent() -> str | None:
    """Return the traceparent of the current OpenTelemetry context, if there is one.

    None when opentelemetry-api is not installed or no valid span is current.
    """
    try:
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator,
        )
    except ImportError:
        # OpenTelemetry is optional; a project without it simply sends no trace.
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")
