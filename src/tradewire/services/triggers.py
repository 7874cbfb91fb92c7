"""Use cases of the trigger flow: store an order, then execute it once, by id or by token."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from tradewire.domain.accounts import Principal
from tradewire.domain.audit import AuditEvent
from tradewire.domain.capabilities import Trigger
from tradewire.domain.errors import NotFound, Rejected
from tradewire.domain.orders import Order
from tradewire.domain.signals import Signal, SignalStatus
from tradewire.domain.values import ExecuteMode, new_id
from tradewire.services.deps import Deps
from tradewire.services.ingest import IngestResult, ingest_signal
from tradewire.services.ports import Secrets, UnitOfWork
from tradewire.services.process import queue_signal

ENCODED_TOKEN_PREFIX = "twet_"
DEFAULT_TTL = timedelta(hours=24)


def create_order(signal: Signal, principal: Principal, deps: Deps, secrets: Secrets, *,
                 ttl: timedelta = DEFAULT_TTL) -> tuple[IngestResult, Trigger | None, str | None]:
    """Store the signal as pending with a trigger; returns the one-use encoded token once."""
    token = ENCODED_TOKEN_PREFIX + secrets.random_token()
    made: list[Trigger] = []

    def add_trigger(uow: UnitOfWork, stored: Signal, now: datetime) -> None:
        trigger = Trigger(id=new_id(), signal_id=stored.id, account_id=stored.account_id,
                          token_hash=secrets.hash_api_key(token), expires_at=now + ttl,
                          created_at=now)
        uow.triggers.add(trigger)
        uow.audit.add(_event(trigger, "TriggerCreated", now, expires_at=trigger.expires_at))
        made.append(trigger)

    pending = replace(signal, execute_mode=ExecuteMode.PENDING)
    result = ingest_signal(pending, principal, deps, on_stored=add_trigger)
    if not made:  # a duplicate sourceId: the original trigger stands, its token is not shown again
        with deps.uow(write=False) as uow:
            return result, uow.triggers.of_signal(result.signal.id), None
    return result, made[0], token


def execute_by_id(trigger_id: str, principal: Principal, deps: Deps) -> tuple[Signal, Order | None]:
    """An authenticated owner executes a stored order."""
    with deps.uow(write=False) as uow:
        trigger = uow.triggers.get(trigger_id)
        account = uow.accounts.get(trigger.account_id) if trigger else None
    if trigger is None or account is None or not principal.can_see(account):
        raise NotFound(f"trigger {trigger_id} not found", code="TRIGGER_NOT_FOUND")
    return _execute(trigger, "trigger_id", deps)


def execute_by_token(token: str, deps: Deps, secrets: Secrets) -> tuple[Signal, Order | None]:
    """Whoever holds the encoded token executes its one stored order, once."""
    with deps.uow(write=False) as uow:
        trigger = uow.triggers.by_hash(secrets.hash_api_key(token))
    if trigger is None:
        raise NotFound("encoded token not found", code="TOKEN_NOT_FOUND")
    return _execute(trigger, "encoded_token", deps)


def revoke(trigger_id: str, principal: Principal, deps: Deps) -> Trigger:
    now = deps.clock.now()
    with deps.uow() as uow:
        trigger = uow.triggers.get(trigger_id)
        account = uow.accounts.get(trigger.account_id) if trigger else None
        if trigger is None or account is None or not principal.can_see(account):
            raise NotFound(f"trigger {trigger_id} not found", code="TRIGGER_NOT_FOUND")
        if not uow.triggers.revoke(trigger_id, now):
            raise Rejected(f"trigger {trigger_id} is {trigger.usable(now) or 'in use'}",
                           code="TRIGGER_UNUSABLE")
        uow.audit.add(_event(trigger, "TriggerRevoked", now))
        uow.commit()
        return replace(trigger, revoked_at=now)


def _execute(trigger: Trigger, by: str, deps: Deps) -> tuple[Signal, Order | None]:
    def consume(uow: UnitOfWork, signal: Signal, now: datetime) -> None:
        if not uow.triggers.consume(trigger.id, now, by):
            current = uow.triggers.get(trigger.id)
            reason = current.usable(now) if current else "gone"
            raise Rejected(f"trigger {trigger.id} cannot be used: {reason}",
                           code="TRIGGER_UNUSABLE")
        uow.audit.add(_event(trigger, "TriggerUsed", now, by=by))

    with deps.uow(write=False) as uow:
        signal = uow.signals.get(trigger.signal_id)
    assert signal is not None
    if signal.status is not SignalStatus.PENDING:
        raise Rejected(f"trigger {trigger.id} cannot be used: its order is {signal.status}",
                       code="TRIGGER_UNUSABLE")
    order = queue_signal(signal, deps, expected=SignalStatus.PENDING, before_queue=consume)
    with deps.uow(write=False) as uow:
        after = uow.signals.get(signal.id)
    assert after is not None
    return after, order


def _event(trigger: Trigger, event: str, at: datetime, **data: object) -> AuditEvent:
    return AuditEvent(entity="trigger", entity_id=trigger.id, event=event, at=at,
                      account_id=trigger.account_id, signal_id=trigger.signal_id,
                      data={k: str(v) for k, v in data.items()})
