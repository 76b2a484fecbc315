"""The one status type: every place that names a response's (or a stored row's) status uses it."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Every status a response can have; the last four are final."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """Whether nothing will change this response any more."""
        return self not in UNFINISHED


# The statuses of work still running (a background job's row holds a lease while in one of them).
UNFINISHED = (Status.QUEUED, Status.IN_PROGRESS)


def status_of(finish_reason: str | None) -> Status:
    """The one rule from why generation stopped to the response's status."""
    if finish_reason in ("stop", "tool_calls"):
        return Status.COMPLETED
    if finish_reason == "abort":
        return Status.CANCELLED
    return Status.INCOMPLETE
