"""Queue depths and consumers of the ingestion queues, from the RabbitMQ management API."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import quote

from ingestion.conf import IngestionSettings, redact_url
from ingestion.errors import IngestionError
from ingestion.topology import Topology


class ManagementApiError(IngestionError):
    """The management API could not be reached or answered with an error."""


@dataclass(frozen=True)
class QueueStatus:
    """One queue's depth and consumers, as the management API last sampled them."""

    #: Queue name.
    name: str
    #: False when the queue does not exist; the counts are then zero.
    exists: bool
    #: Messages ready for delivery.
    ready: int = 0
    #: Messages delivered and not yet acknowledged.
    unacked: int = 0
    #: Consumers attached.
    consumers: int = 0

    @property
    def messages(self) -> int:
        """Ready plus unacknowledged messages."""
        return self.ready + self.unacked


def fetch_queue_status(config: IngestionSettings, name: str, timeout: float = 5.0) -> QueueStatus:
    """Read one queue from ``GET /api/queues/<vhost>/<name>``.

    The management API samples queue statistics every few seconds, so counts
    can lag behind the broker by that much.

    Raises:
        ManagementApiError: the API is unreachable, refuses the credentials or
            answers with an error other than 404.

    """
    url = (
        f"{config.management_url}/api/queues/{quote(config.vhost, safe='')}/{quote(name, safe='')}"
    )
    credentials = f"{config.management_user}:{config.management_password}".encode()
    request = urllib.request.Request(  # noqa: S310 - the URL's scheme is validated as http(s)
        url, headers={"Authorization": "Basic " + base64.b64encode(credentials).decode()}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            queue = json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return QueueStatus(name=name, exists=False)
        raise ManagementApiError(
            f"management API {redact_url(url)} answered {error.code} {error.reason}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ManagementApiError(f"management API {redact_url(url)} failed: {error}") from None
    return QueueStatus(
        name=name,
        exists=True,
        ready=int(queue.get("messages_ready") or 0),
        unacked=int(queue.get("messages_unacknowledged") or 0),
        consumers=int(queue.get("consumers") or 0),
    )


def fetch_topology_status(config: IngestionSettings) -> list[QueueStatus]:
    """Read the work queue, the delay queues and the dead-letter queue, in that order."""
    return [fetch_queue_status(config, name) for name in Topology(config.prefix).queues]


def stall_reason(statuses: list[QueueStatus], work_queue: str) -> str | None:
    """Return why the fleet looks stalled, or None when it does not.

    Stalled means the work queue is missing, or holds messages and has no consumer.
    """
    for status in statuses:
        if status.name != work_queue:
            continue
        if not status.exists:
            return f"work queue {work_queue!r} does not exist (topology not applied?)"
        if status.messages > 0 and status.consumers == 0:
            return f"work queue {work_queue!r} holds {status.messages} job(s) and has no consumer"
    return None
