"""Settings of the ingestion app: read from Django settings, defaulted and validated.

Every value is checked when it is read, and a bad one raises
ImproperlyConfigured naming the setting, with any password redacted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ingestion.windows import parse_window

#: Broker used when ``INGESTION_BROKER_URL`` is not set: the local development broker.
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

#: Management API used when ``INGESTION_MANAGEMENT_URL`` is not set.
DEFAULT_MANAGEMENT_URL = "http://127.0.0.1:15672"

#: Window used when neither the call nor ``INGESTION_WINDOW`` gives one.
DEFAULT_WINDOW = timedelta(hours=1)

#: The workers' default ``--max-span``; a longer job would be rejected by them.
DEFAULT_MAX_SPAN = timedelta(days=7)

#: The ``requested_by`` written when neither the call nor the setting gives one.
DEFAULT_REQUESTED_BY = "django"

# AMQP names are short strings of at most 255 bytes; the longest name we build
# is "<prefix>ingest.delay.10m", so the prefix keeps 239 bytes for itself.
_PREFIX_RE = re.compile(r"^[A-Za-z0-9._:-]{0,200}$")

_REPO_SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "schema" / "ingest-job.v1.json"
_PACKAGED_SCHEMA = Path(__file__).resolve().parent / "data" / "ingest-job.v1.json"


@dataclass(frozen=True)
class IngestionSettings:
    """The validated ingestion settings; build one with :func:`load_settings`."""

    #: ``INGESTION_BROKER_URL``: AMQP URL of the broker (default the local guest broker).
    broker_url: str
    #: ``INGESTION_PREFIX``: prefix of every topology name (default ``""``).
    prefix: str
    #: ``INGESTION_WINDOW``: default window length (a timedelta or "1h"; default 1 hour).
    window: timedelta
    #: ``INGESTION_CONFIRM_TIMEOUT``: seconds to wait for a publisher confirm (default 10).
    confirm_timeout: float
    #: ``INGESTION_MANAGEMENT_URL``: base URL of the RabbitMQ management API.
    management_url: str
    #: ``INGESTION_MANAGEMENT_USER``: management API user (default: the broker URL's user).
    management_user: str
    #: ``INGESTION_MANAGEMENT_PASSWORD``: its password (default: the broker URL's password).
    management_password: str
    #: ``INGESTION_REQUESTED_BY``: default ``requested_by`` (default "django"; None omits it).
    requested_by: str | None
    #: ``INGESTION_MAX_SPAN``: longest job a window may produce (default 7 days).
    max_span: timedelta
    #: ``INGESTION_SCHEMA_PATH``: the JSON Schema file (default: the repository's copy
    #: when running from the checkout, else the copy shipped in the package).
    schema_path: Path

    @property
    def exchange(self) -> str:
        """Name of the exchange jobs are published to."""
        return f"{self.prefix}ingest"

    @property
    def vhost(self) -> str:
        """Virtual host named by the broker URL (``/`` when the URL names none)."""
        path = urlsplit(self.broker_url).path
        return unquote(path[1:]) if len(path) > 1 else "/"

    def __repr__(self) -> str:
        # The dataclass repr would print both passwords; this one cannot.
        return (
            f"IngestionSettings(broker_url={redact_url(self.broker_url)!r}, "
            f"prefix={self.prefix!r}, window={self.window!r}, "
            f"confirm_timeout={self.confirm_timeout!r}, "
            f"management_url={redact_url(self.management_url)!r}, "
            f"management_user={self.management_user!r}, management_password='***', "
            f"requested_by={self.requested_by!r}, max_span={self.max_span!r}, "
            f"schema_path={str(self.schema_path)!r})"
        )


def redact_url(url: str) -> str:
    """Return ``url`` with its password, if any, replaced by ``***``.

    Used wherever a URL can reach a log line or an exception message.
    """
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        # An unparsable URL may still hold a secret; hide all of it.
        return "<unparsable URL>"
    if not has_password:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def load_settings() -> IngestionSettings:
    """Read, default and validate every ``INGESTION_*`` setting.

    Read on every call, so ``override_settings`` in tests takes effect at once;
    the cost is a few attribute look-ups.

    Raises:
        ImproperlyConfigured: naming the first setting whose value is wrong.

    """
    broker_url = _amqp_url("INGESTION_BROKER_URL", _get("INGESTION_BROKER_URL", DEFAULT_BROKER_URL))
    broker = urlsplit(broker_url)
    return IngestionSettings(
        broker_url=broker_url,
        prefix=_prefix(_get("INGESTION_PREFIX", "")),
        window=_duration("INGESTION_WINDOW", _get("INGESTION_WINDOW", DEFAULT_WINDOW)),
        confirm_timeout=_seconds(
            "INGESTION_CONFIRM_TIMEOUT", _get("INGESTION_CONFIRM_TIMEOUT", 10)
        ),
        management_url=_http_url(
            "INGESTION_MANAGEMENT_URL", _get("INGESTION_MANAGEMENT_URL", DEFAULT_MANAGEMENT_URL)
        ),
        management_user=_text(
            "INGESTION_MANAGEMENT_USER",
            _get("INGESTION_MANAGEMENT_USER", unquote(broker.username or "guest")),
        ),
        management_password=_text(
            "INGESTION_MANAGEMENT_PASSWORD",
            _get("INGESTION_MANAGEMENT_PASSWORD", unquote(broker.password or "guest")),
        ),
        requested_by=_requested_by(_get("INGESTION_REQUESTED_BY", DEFAULT_REQUESTED_BY)),
        max_span=_duration("INGESTION_MAX_SPAN", _get("INGESTION_MAX_SPAN", DEFAULT_MAX_SPAN)),
        schema_path=_schema_path(_get("INGESTION_SCHEMA_PATH", None)),
    )


def _get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _amqp_url(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{name} must be a string, not {type(value).__name__}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ImproperlyConfigured(f"{name} is not a valid URL: {redact_url(value)}") from None
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name} must be an amqp:// or amqps:// URL with a host, not {redact_url(value)}"
        )
    return value


def _http_url(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{name} must be a string, not {type(value).__name__}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name} must be an http:// or https:// URL with a host, not {redact_url(value)}"
        )
    return value.rstrip("/")


def _prefix(value: Any) -> str:
    if not isinstance(value, str) or not _PREFIX_RE.match(value):
        raise ImproperlyConfigured(
            "INGESTION_PREFIX must be a string of at most 200 characters from "
            f"[A-Za-z0-9._:-], not {value!r}"
        )
    return value


def _duration(name: str, value: Any) -> timedelta:
    if isinstance(value, str):
        try:
            value = parse_window(value)
        except ValueError as error:
            raise ImproperlyConfigured(f"{name}: {error}") from None
    if not isinstance(value, timedelta):
        raise ImproperlyConfigured(
            f"{name} must be a timedelta or a duration such as '1h', not {value!r}"
        )
    if value <= timedelta(0):
        raise ImproperlyConfigured(f"{name} must be positive, not {value}")
    return value


def _seconds(name: str, value: Any) -> float:
    # bool is an int subclass; True seconds is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ImproperlyConfigured(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{name} must be a string, not {type(value).__name__}")
    return value


def _requested_by(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise ImproperlyConfigured(
            "INGESTION_REQUESTED_BY must be None or a string of at most 256 characters"
        )
    return value


def _schema_path(value: Any) -> Path:
    if value is None:
        return _REPO_SCHEMA if _REPO_SCHEMA.is_file() else _PACKAGED_SCHEMA
    path = Path(value)
    if not path.is_file():
        raise ImproperlyConfigured(f"INGESTION_SCHEMA_PATH names no file: {path}")
    return path
