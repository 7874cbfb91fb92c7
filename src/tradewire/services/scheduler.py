"""Use case: run the jobs that are due, each exactly once, under a lease.

A job's effects (a stored order, a status change) commit in the same transaction that marks
it done, so a crash before that commit leaves the job to be claimed again when its lease lapses.
"""

from __future__ import annotations

import logging
from datetime import datetime

from tradewire.domain.audit import AuditEvent
from tradewire.domain.errors import Rejected
from tradewire.domain.intents import exit_order
from tradewire.domain.jobs import Job, JobKind, JobStatus
from tradewire.domain.signals import SignalStatus
from tradewire.domain.values import new_id
from tradewire.services import logcontext
from tradewire.services.audit import order_event, signal_event
from tradewire.services.deps import Deps
from tradewire.services.ports import UnitOfWork
from tradewire.services.process import expire, queue_signal
from tradewire.services.submit import submit_order

log = logging.getLogger(__name__)


def run_due_jobs(deps: Deps, limit: int = 100, batch: int = 10) -> int:
    """Claim due jobs a few at a time (each batch in one transaction) and run them. Returns
    how many ran."""
    ran = 0
    while ran < limit:
        now = deps.clock.now()
        with deps.uow(write=False) as uow:
            if not uow.jobs.any_due(now):
                break
        with deps.uow() as uow:
            jobs = uow.jobs.claim_due(deps.worker_id, now, now + deps.lease, min(batch, limit - ran))
            uow.commit()
        if not jobs:
            break
        for job in jobs:
            with logcontext.scope(signal_id=job.signal_id, job_id=job.id):
                _run(job, deps)
        ran += len(jobs)
    return ran


def _run(job: Job, deps: Deps) -> None:
    try:
        {
            JobKind.PROCESS_SIGNAL: _process_signal,
            JobKind.EXPIRE_SIGNAL: _expire_signal,
            JobKind.EXIT: _exit,
        }[job.kind](job, deps)
    except Rejected as refused:
        _finish(job, deps, JobStatus.DONE, f"refused: {refused.message}")
    except Exception:
        log.exception("job %s (%s) failed; it will be retried when its lease lapses", job.id,
                      job.kind)


def _finish(job: Job, deps: Deps, status: JobStatus, result: str) -> None:
    with deps.uow() as uow:
        _close(uow, job, status, result, deps)
        uow.commit()


def _close(uow: UnitOfWork, job: Job, status: JobStatus, result: str, deps: Deps) -> bool:
    now = deps.clock.now()
    if not uow.jobs.finish(job, status, now, result, owner=deps.worker_id):
        return False
    uow.audit.add(AuditEvent(entity="job", entity_id=job.id, event=f"Job{status.title()}", at=now,
                             account_id=job.account_id, signal_id=job.signal_id,
                             from_status=str(job.status), to_status=str(status),
                             data={"kind": str(job.kind), "result": result}))
    return True


def _process_signal(job: Job, deps: Deps) -> None:
    now = deps.clock.now()
    with deps.uow() as uow:
        signal = uow.signals.get(job.signal_id)
        if signal is None or signal.status is not SignalStatus.SCHEDULED:
            _close(uow, job, JobStatus.DONE, f"signal is {signal.status if signal else 'gone'}",
                   deps)
            uow.commit()
            return
        if job.valid_until is not None and now >= job.valid_until:
            reason = _late(job, now)
            expire(uow, signal, now, reason)
            _close(uow, job, JobStatus.EXPIRED, reason, deps)
            uow.commit()
            return
    # Queue first, then close the job: the order's client_order_id makes a rerun harmless.
    order = queue_signal(signal, deps, expected=SignalStatus.SCHEDULED)
    _finish(job, deps, JobStatus.DONE, f"order {order.id if order else '-'} stored")


def _late(job: Job, now: datetime) -> str:
    return f"came due at {job.due_at.isoformat()} but ran at {now.isoformat()}, past validUntil"


def _expire_signal(job: Job, deps: Deps) -> None:
    now = deps.clock.now()
    with deps.uow() as uow:
        signal = uow.signals.get(job.signal_id)
        if signal is not None and signal.status in (SignalStatus.PENDING, SignalStatus.SCHEDULED):
            expire(uow, signal, now, "validUntil reached")
        _close(uow, job, JobStatus.DONE, "expired the signal", deps)
        uow.commit()


def _exit(job: Job, deps: Deps) -> None:
    """Place the exit an ExitRule asked for, closing what the entry still holds."""
    now = deps.clock.now()
    with deps.uow() as uow:
        signal = uow.signals.get(job.signal_id)
        entry = uow.orders.get(job.payload["order_id"])
        assert signal is not None and entry is not None and signal.exit_rule is not None
        position = uow.positions.lock(signal.account_id, signal.symbol, now)
        order = exit_order(signal, signal.exit_rule, entry=entry, order_id=new_id(), at=now,
                           position=position)
        if order is None:
            _close(uow, job, JobStatus.DONE, "nothing left to close", deps)
            uow.commit()
            return
        existing = uow.orders.by_client_id(order.client_order_id)
        if existing is None:
            uow.orders.add(order)
            uow.audit.add_many([order_event(order, "OrderCreated", now),
                                signal_event(signal, "ExitFired", now, order_id=order.id)])
        else:
            order = existing
        _close(uow, job, JobStatus.DONE, f"exit order {order.id} stored", deps)
        uow.commit()
    submit_order(order.id, deps)
