"""Use case: take a signal in. Dedup, validate, store it with its order and jobs, durably."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from tradewire.domain.accounts import Account, Principal
from tradewire.domain.alerts import protective_plan
from tradewire.domain.audit import AuditEvent
from tradewire.domain.errors import NotFound, Rejected
from tradewire.domain.jobs import Job, JobKind
from tradewire.domain.orders import Order, OrderStatus
from tradewire.domain.signals import Signal, SignalStatus
from tradewire.domain.values import Action, ExecuteMode, QuantityType, Side, new_id
from tradewire.services import logcontext
from tradewire.services.audit import order_event, signal_event
from tradewire.services.deps import Deps
from tradewire.services.orders import orders_for, send_signal_orders
from tradewire.services.ports import UnitOfWork
from tradewire.services.submit import (
    RESERVATION,
    Seen,
    reservation,
    sends_at_once,
    submitting_event,
)

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class IngestResult:
    signal: Signal
    outcome: Outcome
    order: Order | None = None
    reason_code: str | None = None  # why a rejected signal was refused
    orders: tuple[Order, ...] = ()  # every leg's order (the first is `order`)
    account: Account | None = None
    claimed: frozenset[str] = frozenset()  # orders whose submit lease the request holds


OnStored = Callable[[UnitOfWork, Signal, datetime], None]
# Who sends the signal, read inside the unit that stores it (raises when the caller may not),
# given the unit and the account the signal names (which may be read in the same statement).
Caller = Callable[[UnitOfWork, str], Principal]


def ingest_signal(signal: Signal, principal: Principal | Caller, deps: Deps, *,
                  received_at: datetime | None = None, alert_at: datetime | None = None,
                  on_stored: OnStored | None = None) -> IngestResult:
    """Store `signal` (or find the one holding its sourceId) and, if immediate, send it.

    `principal` may be a `Caller`: it is then resolved inside the write unit before anything
    is read or stored, so authenticating costs no transaction of its own; if it raises, the
    unit rolls back and nothing is stored.

    `on_stored` runs inside the same transaction once a new signal is stored (a trigger
    row, for example), so both commit or neither does.
    """
    logcontext.bind(signal_id=signal.id, account_id=signal.account_id)
    equity = None
    if needs_equity(signal):  # read before the unit
        principal, equity = _equity(signal, principal, deps)
    with deps.uow() as uow:
        result = storing(signal, principal, deps, equity=equity, received_at=received_at,
                         alert_at=alert_at, on_stored=on_stored)(uow)
        uow.commit()
    return after_commit(result, deps)


def needs_equity(signal: Signal) -> bool:
    """A percent-of-equity size asks the broker for the equity before the write unit."""
    return signal.quantity_type is QuantityType.PERCENT_EQUITY


def storing(signal: Signal, principal: Principal | Caller, deps: Deps, *,
            equity: Decimal | None = None, received_at: datetime | None = None,
            alert_at: datetime | None = None, on_stored: OnStored | None = None
            ) -> Callable[[UnitOfWork], IngestResult]:
    """`ingest_signal`'s write unit, for a writer that commits it (with others) itself; then
    `after_commit` with its result, once the commit is durable."""
    if needs_equity(signal) and equity is None:
        raise ValueError("a percent-of-equity signal needs the account's equity first")

    def unit(uow: UnitOfWork) -> IngestResult:
        caller = principal(uow, signal.account_id) if callable(principal) else principal
        result = _store(signal, caller, uow, deps, equity)
        if result.outcome is not Outcome.DUPLICATE:
            # A claimed order is sent as soon as this commits: submitted_at is the claim's.
            submitted_at = result.signal.created_at if result.claimed else None
            uow.timings.mark(result.signal.id, received_at=received_at or result.signal.created_at,
                             decided_at=deps.clock.now(), alert_at=alert_at,
                             submitted_at=submitted_at)
        if result.outcome is Outcome.CREATED and on_stored is not None:
            on_stored(uow, result.signal, deps.clock.now())
        return result

    return unit


def after_commit(result: IngestResult, deps: Deps) -> IngestResult:
    """What follows a stored signal's durable commit: send its orders if immediate (a broker
    call: from a thread that may wait), wake the worker if it is already due."""
    deps.failpoint("signal-committed")
    if _must_send(result):
        # Sent here; a failure to send, and a fill that arms work, wake the worker themselves.
        seen: Seen = {}
        try:
            sent = send_signal_orders(list(result.orders), deps, result.account,
                                      result.claimed, seen=seen)
        finally:
            # Logged after the broker call: nothing but the call between the commit and it.
            log.info("signal %s: %s", result.outcome.value, result.signal.status)
        return _reload(result.signal.id, sent, deps, seen.get(result.signal.id))
    log.info("signal %s: %s", result.outcome.value, result.signal.status)
    if _due_now(result, deps):
        deps.wake()  # already due; anything later the worker's poll finds in time
    return result


def _must_send(result: IngestResult) -> bool:
    """`after_commit` will call the broker."""
    return result.outcome is Outcome.CREATED and bool(result.orders)


def may_wait(result: IngestResult, deps: Deps) -> bool:
    """`after_commit` may wait on I/O: a broker call, or waking the workers (over the
    database, when they are other processes)."""
    return _must_send(result) or _due_now(result, deps)


def sends_locally(result: IngestResult, deps: Deps) -> bool:
    """`after_commit` sends the orders to a venue that answers from this process's own
    database (the paper venue), and waits on nothing else."""
    if not _must_send(result) or _due_now(result, deps) or result.account is None:
        return False
    return bool(getattr(deps.brokers.for_account(result.account), "answers_locally", False))


def _due_now(result: IngestResult, deps: Deps) -> bool:
    scheduled = result.signal.scheduled_at
    return (result.outcome is Outcome.CREATED and scheduled is not None
            and scheduled <= deps.clock.now())


def load_account(uow: UnitOfWork, account_id: str, principal: Principal) -> Account:
    account = uow.accounts.get(account_id)
    if account is None or not principal.can_see(account):
        raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
    return account


def _equity(signal: Signal, principal: Principal | Caller, deps: Deps
            ) -> tuple[Principal, Decimal]:
    """The caller (resolved here when deferred) and the equity of the signal's account."""
    with deps.uow(write=False) as uow:
        caller = principal(uow, signal.account_id) if callable(principal) else principal
        account = load_account(uow, signal.account_id, caller)
    return caller, deps.brokers.for_account(account).account(account.id).equity


def _store(signal: Signal, principal: Principal, uow: UnitOfWork, deps: Deps,
           equity: Decimal | None) -> IngestResult:
    account = load_account(uow, signal.account_id, principal)
    now = deps.clock.now()
    signal = replace(signal, status=signal.initial_status(), created_at=now)
    if not uow.signals.add_unique(signal):
        holder = uow.signals.holder_of(signal.account_id, signal.source_id)
        if holder is None:  # freed between our insert and this read: take it now
            if not uow.signals.add_unique(signal):
                raise Rejected("sourceId is being written concurrently; retry", code="CONFLICT")
        elif not signal.replace_existing:
            return IngestResult(holder, Outcome.DUPLICATE, _first_order(uow, holder.id))
        else:
            _supersede(holder, signal, uow, now)
            if not uow.signals.add_unique(signal):
                raise Rejected("sourceId is being written concurrently; retry", code="CONFLICT")
    events = [signal_event(signal, "SignalReceived", now, to_status=str(signal.status),
                           route=signal.route)]
    orders: list[Order] = []
    if signal.execute_mode is ExecuteMode.IMMEDIATE:
        try:
            orders = orders_for(uow, signal, equity=equity, price_of=uow.market.last_price,
                                now=now, calendar=deps.calendar)
        except Rejected as refused:
            return _reject_stored(signal, refused, uow, now, events)
    claimed: list[Order] = []
    for order in orders:
        # Taken for sending as it is stored (one statement), unless it waits for the open.
        at_once = sends_at_once(order, account, deps, now)
        uow.orders.add(order, reserved_by=reservation(order, deps),
                       reserved_until=now + (deps.lease if at_once else RESERVATION),
                       submitting=at_once)
        events.append(order_event(order, "OrderCreated", now))
        if at_once:
            claimed.append(order)
    _add_jobs(signal, uow, now)
    _add_protection(signal, uow, now)
    events += [submitting_event(o, now) for o in claimed]
    uow.audit.add_many(events)
    return IngestResult(signal, Outcome.CREATED, orders[0] if orders else None,
                        orders=tuple(orders), account=account,
                        claimed=frozenset(o.id for o in claimed))


def _supersede(holder: Signal, new: Signal, uow: UnitOfWork, now: datetime) -> None:
    """replaceExisting: withdraw the holder, but only if nothing of it reached the broker."""
    if holder.status not in (SignalStatus.PENDING, SignalStatus.SCHEDULED, SignalStatus.QUEUED):
        raise Rejected(f"signal {holder.id} is already {holder.status} and cannot be replaced")
    for order in uow.orders.of_signal(holder.id):
        withdrawn = order.moved_to(OrderStatus.CANCELED, reason=f"replaced by {new.id}")
        if not uow.orders.save(withdrawn, OrderStatus.NEW, now):
            raise Rejected(f"signal {holder.id} already reached the broker and cannot be replaced")
    if not uow.signals.move(holder, SignalStatus.REPLACED, now, free_source_id=True,
                            reason=f"replaced by {new.id}", replaced_by=new.id):
        raise Rejected("sourceId is being written concurrently; retry", code="CONFLICT")
    uow.jobs.cancel_for_signal(holder.id, now, f"replaced by {new.id}")
    uow.audit.add(signal_event(holder, "SignalReplaced", now, from_status=str(holder.status),
                               to_status="replaced", replaced_by=new.id))


def _reject_stored(signal: Signal, refused: Rejected, uow: UnitOfWork, now: datetime,
                   events: list[AuditEvent]) -> IngestResult:
    """Keep a refused signal for the record; its sourceId is free for a retry."""
    uow.signals.move(signal, SignalStatus.REJECTED, now, reason=refused.message,
                     free_source_id=True)
    events.append(signal_event(signal, "SignalRejected", now, from_status=str(signal.status),
                               to_status="rejected", code=refused.code, reason=refused.message))
    uow.audit.add_many(events)
    rejected = replace(signal, status=SignalStatus.REJECTED, status_reason=refused.message)
    return IngestResult(rejected, Outcome.REJECTED, reason_code=refused.code)


def _add_protection(signal: Signal, uow: UnitOfWork, now: datetime) -> None:
    """takeProfit / stopLoss on an opening signal become its exit plan, armed by the fill."""
    tp, sl = signal.protection
    if (tp is None and sl is None) or signal.action.is_exit:
        return
    side = Side.BUY if signal.action is Action.OPEN_LONG else Side.SELL
    reference = signal.limit_price or signal.stop_price or uow.market.last_price(signal.symbol)
    plan = protective_plan(tp, sl, side, reference)
    if plan is not None:
        uow.exit_plans.add(signal.id, signal.account_id, signal.symbol, plan, now)


def _add_jobs(signal: Signal, uow: UnitOfWork, now: datetime) -> None:
    if signal.status is SignalStatus.WAITING:
        return  # released by the earlier signal's fill
    if signal.execute_mode is ExecuteMode.SCHEDULED:
        assert signal.scheduled_at is not None
        uow.jobs.add(Job(id=new_id(), kind=JobKind.PROCESS_SIGNAL, due_at=signal.scheduled_at,
                         valid_until=signal.valid_until, signal_id=signal.id,
                         account_id=signal.account_id, created_at=now))
    elif signal.execute_mode is ExecuteMode.PENDING and signal.valid_until is not None:
        uow.jobs.add(Job(id=new_id(), kind=JobKind.EXPIRE_SIGNAL, due_at=signal.valid_until,
                         signal_id=signal.id, account_id=signal.account_id, created_at=now))


def stored_for_source(account_id: str, source_id: str, principal: Principal,
                      deps: Deps) -> tuple[Signal, Order | None] | None:
    """The signal already stored under `sourceId` on an account the caller may see (a retry
    that no longer validates, its validUntil passed, still gets the original answer)."""
    with deps.uow(write=False) as uow:
        account = uow.accounts.get(account_id)
        if account is None or not principal.can_see(account):
            return None
        holder = uow.signals.holder_of(account_id, source_id)
        return (holder, _first_order(uow, holder.id)) if holder is not None else None


def _first_order(uow: UnitOfWork, signal_id: str) -> Order | None:
    orders = uow.orders.of_signal(signal_id)
    return orders[0] if orders else None


def _reload(signal_id: str, sent: list[Order | None], deps: Deps,
            known: Signal | None = None) -> IngestResult:
    """The answer after sending: the signal as the record of its order's report left it, or
    else as stored now."""
    signal = known
    if signal is None:
        with deps.uow(write=False) as uow:
            signal = uow.signals.get(signal_id)
    assert signal is not None
    orders = tuple(o for o in sent if o is not None)
    return IngestResult(signal, Outcome.CREATED, sent[0], orders=orders)
