"""``manage.py enqueue_ingestion``: publish (or, with --dry-run, print) ingestion jobs."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.conf import load_settings
from ingestion.enqueue import plan_ingestion
from ingestion.errors import IngestionPublishError, InvalidJobError
from ingestion.publish import publish_jobs
from ingestion.trace import current_traceparent


class Command(BaseCommand):
    """Cut a time range into jobs for one or more devices and publish them."""

    help = (
        "Publish ingestion jobs for devices over [--from, --to), one per --window. "
        "--dry-run prints the job bodies as NDJSON instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the command's flags."""
        parser.add_argument(
            "--device", action="append", required=True, dest="devices", help="device id; repeat"
        )
        parser.add_argument(
            "--from", required=True, dest="start", help="inclusive start, RFC 3339 with offset"
        )
        parser.add_argument(
            "--to", required=True, dest="end", help="exclusive end, RFC 3339 with offset"
        )
        parser.add_argument(
            "--window", default=None, help="window length such as 1h, 30m, 1d (INGESTION_WINDOW)"
        )
        parser.add_argument(
            "--requested-by", default=None, help="requested_by of the jobs (INGESTION_REQUESTED_BY)"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="print the bodies, one JSON per line; publish nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Plan the jobs, then print them or publish them and print a summary."""
        extra = {} if options["requested_by"] is None else {"requested_by": options["requested_by"]}
        try:
            jobs = plan_ingestion(
                options["devices"], options["start"], options["end"], options["window"], **extra
            )
        except InvalidJobError as error:
            raise CommandError(str(error)) from None

        if options["dry_run"]:
            for job in jobs:
                self.stdout.write(json.dumps(job.body(), ensure_ascii=False, separators=(",", ":")))
            return

        began = time.monotonic()
        try:
            confirmed = publish_jobs(jobs, load_settings(), current_traceparent())
        except IngestionPublishError as error:
            self.stdout.write(self._summary(len(jobs), len(error.confirmed), began))
            raise CommandError(str(error)) from None
        self.stdout.write(self._summary(len(jobs), len(confirmed), began))

    @staticmethod
    def _summary(jobs: int, confirmed: int, began: float) -> str:
        return f"jobs={jobs} confirmed={confirmed} seconds={time.monotonic() - began:.3f}"
