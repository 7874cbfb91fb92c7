"""Jobs with a due time: the moves a job may make under its lease."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tradewire.domain.errors import InvalidTransition
from tradewire.domain.jobs import TRANSITIONS, Job, JobKind, JobStatus

J = JobStatus
AT = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)


def job(status: JobStatus = J.SCHEDULED, result: str | None = None) -> Job:
    return Job(id="j1", kind=JobKind.PROCESS_SIGNAL, due_at=AT, created_at=AT, signal_id="s1",
               status=status, result=result)


@pytest.mark.parametrize(("current", "target"), [
    (J.SCHEDULED, J.RUNNING),
    (J.SCHEDULED, J.CANCELLED),  # its signal was replaced or cancelled before it came due
    (J.SCHEDULED, J.EXPIRED),
    (J.RUNNING, J.RUNNING),  # a lapsed lease lets another worker claim it again
    (J.RUNNING, J.DONE),
    (J.RUNNING, J.EXPIRED),
    (J.RUNNING, J.FAILED),
    (J.RUNNING, J.CANCELLED),
])
def test_allowed_job_moves_pass_the_table(current: JobStatus, target: JobStatus) -> None:
    assert job(current).moved_to(target).status is target


@pytest.mark.parametrize(("current", "target"), [
    (J.SCHEDULED, J.DONE),  # work is done only by a worker that claimed it
    (J.SCHEDULED, J.FAILED),
    (J.SCHEDULED, J.SCHEDULED),
    (J.RUNNING, J.SCHEDULED),
    (J.DONE, J.RUNNING),  # exactly once: finished work is never claimed again
    (J.DONE, J.DONE),
    (J.EXPIRED, J.RUNNING),
    (J.CANCELLED, J.RUNNING),
    (J.FAILED, J.RUNNING),
])
def test_refused_job_moves_raise_invalid_transition(current: JobStatus, target: JobStatus) -> None:
    with pytest.raises(InvalidTransition):
        job(current).moved_to(target)


def test_every_job_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


def test_a_move_records_its_result_and_keeps_the_earlier_one_otherwise() -> None:
    expired = job(J.RUNNING).moved_to(J.EXPIRED, "past validUntil")
    assert expired.result == "past validUntil"
    claimed = job(J.SCHEDULED, result="first try").moved_to(J.RUNNING)
    assert claimed.result == "first try"


def test_a_move_leaves_the_earlier_job_unchanged() -> None:
    before = job()
    before.moved_to(J.RUNNING)
    assert before.status is J.SCHEDULED
