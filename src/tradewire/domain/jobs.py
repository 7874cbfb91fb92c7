"""Jobs: work with a due time (process a scheduled signal, expire one, a timed exit)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from tradewire.domain.errors import InvalidTransition


class JobKind(StrEnum):
    PROCESS_SIGNAL = "process_signal"
    EXPIRE_SIGNAL = "expire_signal"
    EXIT = "exit"  # place the exit an ExitRule asked for


class JobStatus(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"  # claimed under a lease
    DONE = "done"
    EXPIRED = "expired"  # came due past its validity; the reason is recorded
    CANCELLED = "cancelled"
    FAILED = "failed"


J = JobStatus
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    J.SCHEDULED: frozenset({J.RUNNING, J.CANCELLED, J.EXPIRED}),
    # A lease that lapsed (the worker died) lets another worker claim the job again.
    J.RUNNING: frozenset({J.RUNNING, J.DONE, J.EXPIRED, J.FAILED, J.CANCELLED}),
    J.DONE: frozenset(),
    J.EXPIRED: frozenset(),
    J.CANCELLED: frozenset(),
    J.FAILED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: JobKind
    due_at: datetime
    created_at: datetime
    signal_id: str | None = None
    account_id: str | None = None
    valid_until: datetime | None = None
    status: JobStatus = JobStatus.SCHEDULED
    result: str | None = None
    attempts: int = 0
    payload: dict[str, Any] = field(default_factory=dict)

    def moved_to(self, status: JobStatus, result: str | None = None) -> Job:
        if status not in TRANSITIONS[self.status]:
            raise InvalidTransition(f"job cannot move from {self.status} to {status}")
        return replace(self, status=status, result=result or self.result)
