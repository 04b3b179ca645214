"""Publishing jobs to the broker with publisher confirms, over one connection per thread.

pika's BlockingConnection is not thread-safe, so each thread keeps its own
connection and channel, opened on first use and reopened when the broker or
the network has dropped it. A process that forks (e.g. a preloading WSGI
server) opens new ones in the child, since the parent's socket is not its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pika
import pika.exceptions

from ingestion.conf import IngestionSettings, redact_url
from ingestion.errors import IngestionPublishError
from ingestion.job import IngestJob
from ingestion.topology import JOBS_ROUTING_KEY

logger = logging.getLogger(__name__)

# Errors after which the connection is unusable and one reconnect is worth a try.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.ConnectionWrongStateError,
    pika.exceptions.ChannelWrongStateError,
    pika.exceptions.ChannelClosed,
    ConnectionError,
    OSError,
)

_local = threading.local()


class ConfirmTimeoutError(Exception):
    """The broker did not confirm a publish within ``INGESTION_CONFIRM_TIMEOUT``."""


class _ExchangeMissingError(Exception):
    """The passive check found no exchange of that name."""


@dataclass
class _Link:
    """One thread's connection and confirm-mode channel."""

    pid: int
    broker_url: str
    connection: Any
    channel: Any
    checked_exchanges: set[str] = field(default_factory=set)


def publish_jobs(
    jobs: Sequence[IngestJob], config: IngestionSettings, traceparent: str | None = None
) -> list[str]:
    """Publish already-validated jobs and wait for the broker to confirm each one.

    Returns the job ids, in order. One reconnect is attempted when the
    connection turns out to be dead; the job that was in flight is then sent
    again, which the contract makes harmless.

    Raises:
        IngestionPublishError: naming every job that was nacked, returned as
            unroutable, not confirmed in time, or not sent at all.

    """
    headers = {"traceparent": traceparent} if traceparent else None
    pending = list(jobs)
    confirmed: list[str] = []
    refused: list[tuple[str, str]] = []
    reconnected = False
    while pending:
        try:
            link = _link(config)
            _check_exchange(link, config)
            while pending:
                reason = _publish_one(link, config, pending[0], headers)
                job_id = pending.pop(0).job_id
                if reason is None:
                    confirmed.append(job_id)
                else:
                    refused.append((job_id, reason))
        except _ExchangeMissingError:
            close_connection()
            raise IngestionPublishError(
                f"exchange {config.exchange!r} does not exist on "
                f"{redact_url(config.broker_url)}; apply the topology first "
                "(ingestctl topology apply)",
                [job_id for job_id, _ in refused] + [job.job_id for job in pending],
                confirmed,
            ) from None
        except ConfirmTimeoutError:
            close_connection()
            raise IngestionPublishError(
                f"broker at {redact_url(config.broker_url)} did not confirm within "
                f"{config.confirm_timeout:g} s",
                [job_id for job_id, _ in refused] + [job.job_id for job in pending],
                confirmed,
            ) from None
        except _CONNECTION_ERRORS as error:
            close_connection()
            if reconnected:
                raise IngestionPublishError(
                    f"cannot publish to {redact_url(config.broker_url)}: "
                    f"{_scrub(repr(error), config)}",
                    [job_id for job_id, _ in refused] + [job.job_id for job in pending],
                    confirmed,
                ) from None
            reconnected = True
            logger.warning(
                "reconnecting to %s after %s",
                redact_url(config.broker_url),
                _scrub(repr(error), config),
            )
    if refused:
        reasons = sorted({reason for _, reason in refused})
        raise IngestionPublishError(
            f"broker refused jobs on exchange {config.exchange!r}: {', '.join(reasons)}",
            [job_id for job_id, _ in refused],
            confirmed,
        )
    return confirmed


def close_connection() -> None:
    """Close this thread's broker connection, if it has one; the next publish reopens it."""
    link: _Link | None = getattr(_local, "link", None)
    _local.link = None
    if link is None or link.pid != os.getpid():
        return
    try:
        if link.connection.is_open:
            link.connection.close()
    except Exception:
        logger.debug("ignoring error while closing the broker connection", exc_info=True)


def _link(config: IngestionSettings) -> _Link:
    link: _Link | None = getattr(_local, "link", None)
    if link is not None and link.pid != os.getpid():
        # Inherited across fork: the socket is shared with the parent, so it is
        # abandoned, not closed (closing would close the parent's connection).
        link = _local.link = None
    if link is not None and (link.broker_url != config.broker_url or not _is_alive(link)):
        close_connection()
        link = None
    if link is None:
        link = _local.link = _connect(config)
    return link


def _is_alive(link: _Link) -> bool:
    # An idle connection may have been closed by the broker (missed
    # heartbeats) without pika knowing; reading pending frames finds out.
    if link.connection.is_closed or link.channel.is_closed:
        return False
    try:
        link.connection.process_data_events(time_limit=0)
    except _CONNECTION_ERRORS:
        return False
    return bool(link.connection.is_open and link.channel.is_open)


def _connect(config: IngestionSettings) -> _Link:
    parameters = pika.URLParameters(config.broker_url)
    if parameters.blocked_connection_timeout is None:
        # A broker under a resource alarm blocks publishers instead of
        # confirming; give up after the confirm timeout rather than hang.
        parameters.blocked_connection_timeout = config.confirm_timeout
    connection = pika.BlockingConnection(parameters)
    channel = connection.channel()
    channel.confirm_delivery()
    return _Link(os.getpid(), config.broker_url, connection, channel)


def _check_exchange(link: _Link, config: IngestionSettings) -> None:
    if config.exchange in link.checked_exchanges:
        return
    try:
        link.channel.exchange_declare(exchange=config.exchange, passive=True)
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code == 404:
            raise _ExchangeMissingError from None
        raise
    link.checked_exchanges.add(config.exchange)


def _publish_one(
    link: _Link, config: IngestionSettings, job: IngestJob, headers: dict[str, str] | None
) -> str | None:
    """Publish one job; return None when confirmed, else why the broker refused it."""
    properties = pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=job.job_id,
        headers=headers,
    )
    timer = _start_confirm_timer(link, config.confirm_timeout)
    try:
        link.channel.basic_publish(
            exchange=config.exchange,
            routing_key=JOBS_ROUTING_KEY,
            body=job.encode(),
            properties=properties,
            mandatory=True,
        )
    except pika.exceptions.UnroutableError:
        return "returned as unroutable (no queue bound with key 'jobs')"
    except pika.exceptions.NackError:
        return "nacked by the broker"
    finally:
        _stop_confirm_timer(link, timer)
    return None


def _start_confirm_timer(link: _Link, timeout: float) -> object:
    # BlockingChannel.basic_publish waits for the confirm without a deadline,
    # and BlockingConnection's own timers do not fire during that wait. A
    # timer on the underlying I/O loop does; it tears the stream down the way
    # pika's blocked-connection timeout does, which ends the wait with our
    # error. Both are pika internals (1.3 and 1.4), pinned in requirements.lock.
    impl = link.connection._impl

    def expire() -> None:
        impl._terminate_stream(ConfirmTimeoutError())

    return impl.ioloop.call_later(timeout, expire)


def _stop_confirm_timer(link: _Link, timer: object) -> None:
    try:
        link.connection._impl.ioloop.remove_timeout(timer)
    except Exception:
        logger.debug("confirm timer already gone", exc_info=True)


def _scrub(text: str, config: IngestionSettings) -> str:
    """Remove the broker password from a library's error text, in any encoding."""
    password = urlsplit(config.broker_url).password
    if not password:
        return text
    for secret in {password, unquote(password), quote(unquote(password), safe="")}:
        text = text.replace(secret, "***")
    return text
