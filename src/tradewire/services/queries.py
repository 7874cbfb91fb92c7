"""Read views: what a caller may list and look at, narrowed to the accounts it can see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tradewire.domain.accounts import Account, Principal
from tradewire.domain.audit import AuditEvent
from tradewire.domain.errors import NotFound
from tradewire.domain.jobs import Job
from tradewire.domain.orders import Order
from tradewire.domain.positions import Position
from tradewire.domain.signals import Signal, SignalStatus
from tradewire.services.deps import Deps
from tradewire.services.ports import Page, SignalFilter, UnitOfWork
from tradewire.services.process import visible_signal


def visible_account_ids(uow: UnitOfWork, principal: Principal,
                        account_id: str | None = None) -> Sequence[str] | None:
    """The accounts a listing may show (None: all); one asked-for account must be visible."""
    if account_id is not None:
        return [_seen(uow, principal, account_id).id]
    if principal.is_admin:
        return sorted(principal.account_ids) if principal.account_ids is not None else None
    own = uow.accounts.ids_of_user(principal.user_id)
    if principal.account_ids is not None:
        own = [a for a in own if a in principal.account_ids]
    return own


def list_signals(principal: Principal, deps: Deps, page: Page, *, account_id: str | None = None,
                 status: SignalStatus | None = None, symbol: str | None = None) -> list[Signal]:
    with deps.uow(write=False) as uow:
        ids = visible_account_ids(uow, principal, account_id)
        return uow.signals.list(SignalFilter(account_ids=ids, status=status, symbol=symbol), page)


@dataclass(frozen=True)
class SignalDetail:
    signal: Signal
    orders: list[Order]
    jobs: list[Job]
    timeline: list[AuditEvent]


def signal_detail(signal_id: str, principal: Principal, deps: Deps) -> SignalDetail:
    with deps.uow(write=False) as uow:
        signal = visible_signal(uow, signal_id, principal)
        return SignalDetail(signal, uow.orders.of_signal(signal_id),
                            uow.jobs.of_signal(signal_id), uow.audit.of_signal(signal_id))


@dataclass(frozen=True)
class Timeline:
    signal: Signal
    stages: dict[str, datetime | None]  # alert_at, received_at, decided_at, submitted_at, acked_at
    events: list[AuditEvent]


def signal_timeline(signal_id: str, principal: Principal, deps: Deps) -> Timeline:
    """Every stage of a signal with its time: the measured stages, then every recorded event
    (status changes, orders, fills) in the order they happened."""
    with deps.uow(write=False) as uow:
        signal = visible_signal(uow, signal_id, principal)
        return Timeline(signal, uow.timings.of_signal(signal_id), uow.audit.of_signal(signal_id))


def list_orders(principal: Principal, deps: Deps, page: Page, *, account_id: str | None = None,
                status: str | None = None, symbol: str | None = None) -> list[Order]:
    with deps.uow(write=False) as uow:
        ids = visible_account_ids(uow, principal, account_id)
        return uow.orders.list(ids, page, status=status, symbol=symbol)


def list_positions(principal: Principal, deps: Deps, page: Page, *,
                   account_id: str | None = None) -> list[Position]:
    with deps.uow(write=False) as uow:
        ids = visible_account_ids(uow, principal, account_id)
        return uow.positions.list(ids, page)


def visible_account(principal: Principal, deps: Deps, account_id: str) -> Account:
    """The account, when the caller may see it; another's answers as a missing one (404)."""
    with deps.uow(write=False) as uow:
        return _seen(uow, principal, account_id)


def _seen(uow: UnitOfWork, principal: Principal, account_id: str) -> Account:
    account = uow.accounts.get(account_id)
    if account is None or not principal.can_see(account):
        raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
    return account


def list_accounts(principal: Principal, deps: Deps, page: Page) -> list[Account]:
    with deps.uow(write=False) as uow:
        if principal.is_admin:
            return uow.accounts.list(None, principal.account_ids, page)
        return uow.accounts.list(principal.user_id, principal.account_ids, page)
