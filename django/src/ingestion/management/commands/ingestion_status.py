"""``manage.py ingestion_status``: depths and consumers of the ingestion queues."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ingestion.conf import load_settings
from ingestion.status import ManagementApiError, fetch_topology_status, stall_reason
from ingestion.topology import Topology


class Command(BaseCommand):
    """Print one line per ingestion queue; fail when jobs wait with nobody to take them."""

    help = (
        "Show ready/unacked messages and consumers of the work, delay and dead-letter "
        "queues. Exits non-zero when the work queue is missing, or non-empty with no consumer."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        """Query the management API and report."""
        config = load_settings()
        try:
            statuses = fetch_topology_status(config)
        except ManagementApiError as error:
            raise CommandError(str(error)) from None

        for status in statuses:
            if status.exists:
                self.stdout.write(
                    f"queue={status.name} messages={status.messages} ready={status.ready} "
                    f"unacked={status.unacked} consumers={status.consumers}"
                )
            else:
                self.stdout.write(f"queue={status.name} missing")

        reason = stall_reason(statuses, Topology(config.prefix).work_queue)
        if reason is not None:
            raise CommandError(reason)
