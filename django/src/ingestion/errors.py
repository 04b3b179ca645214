"""Exceptions the publishing API raises; each keeps the ids of the jobs it concerns."""

from __future__ import annotations

from collections.abc import Sequence


class IngestionError(Exception):
    """Base class of the ingestion app's errors."""


class InvalidJobError(IngestionError, ValueError):
    """A job could not be built: bad device, times, window, or a body the schema rejects.

    Raised before anything is published, so a request that raises it sent nothing.
    """


class IngestionPublishError(IngestionError):
    """Some jobs were not confirmed by the broker: nacked, returned, timed out or never sent.

    Jobs not in :attr:`job_ids` were confirmed; publishing them again is
    harmless, since the workers' writes are idempotent.
    """

    def __init__(self, message: str, job_ids: Sequence[str], confirmed: Sequence[str] = ()) -> None:
        ids = ", ".join(job_ids[:10]) + (" …" if len(job_ids) > 10 else "")
        super().__init__(f"{message} ({len(job_ids)} job(s) not confirmed: {ids})")
        #: Ids of the jobs that are not known to have reached a queue.
        self.job_ids: list[str] = list(job_ids)
        #: Ids of the jobs the broker confirmed before the failure.
        self.confirmed: list[str] = list(confirmed)
