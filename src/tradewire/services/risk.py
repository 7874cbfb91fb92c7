"""Risk controls around the pure checks of domain/risk.py: gather what the checks need about
the account inside the transaction that stores the order, and keep the limits and the kill
switches."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tradewire.domain.accounts import Account
from tradewire.domain.audit import AuditEvent
from tradewire.domain.errors import NotFound, Rejected
from tradewire.domain.orders import Order
from tradewire.domain.risk import Exposure, RiskLimits, check
from tradewire.domain.values import ZERO
from tradewire.services.deps import Deps
from tradewire.services.ports import MarketCalendar, UnitOfWork

HALT_FLAG = "trading_halted"  # the global kill switch, in the service flags


def check_order(uow: UnitOfWork, order: Order, position_qty: Decimal, price: Decimal | None,
                now: datetime, calendar: MarketCalendar) -> None:
    """Inside the storing transaction: raise RiskRefused when the order breaks a limit."""
    raw, halt = uow.risk.get_with_flag(order.account_id, HALT_FLAG)
    halted = halt == "1"
    if raw is None and not halted:
        return  # no limits set: nothing to gather
    limits = RiskLimits.from_dict(raw) if raw is not None else RiskLimits()
    account: Account = uow.accounts.get(order.account_id)
    local = now.astimezone(calendar.timezone(account.market))
    loss = ZERO
    if limits.daily_loss_limit is not None:
        realized = uow.risk.realized_total(account.id)
        loss = uow.risk.realized_at_start(account.id, session_key(account, now, calendar),
                                          lambda: realized) - realized
    others = [s for s in uow.risk.open_positions(account.id) if s != order.symbol]
    exposure = Exposure(
        position_qty=position_qty, price=order.limit_price or order.stop_price or price,
        open_positions=len(others),
        orders_last_minute=(uow.risk.orders_since(account.id, now - timedelta(minutes=1))
                            if limits.max_orders_per_minute is not None else 0),
        loss_today=loss, local_time=local.time())
    check(limits, symbol=order.symbol, side=order.side, qty=order.qty, exposure=exposure,
          global_halt=halted)


def session_key(account: Account, now: datetime, calendar: MarketCalendar) -> str:
    session = calendar.session_at_or_after(account.market, now)
    return session.open_at.astimezone(calendar.timezone(account.market)).date().isoformat()


def note_session_start(uow: UnitOfWork, account_id: str, now: datetime,
                       calendar: MarketCalendar) -> None:
    """Before a fill changes an account's realized P&L: the first change of a session records
    where the session started, so today's loss counts every fill of the day (exits the engine
    fired included), whenever a daily limit is set."""
    account: Account = uow.accounts.get(account_id)
    uow.risk.realized_at_start(account_id, session_key(account, now, calendar),
                               lambda: uow.risk.realized_total(account_id))


def limits_of(account_id: str, deps: Deps) -> RiskLimits:
    with deps.uow(write=False) as uow:
        if uow.accounts.get(account_id) is None:
            raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
        raw = uow.risk.get(account_id)
    return RiskLimits.from_dict(raw) if raw is not None else RiskLimits()


def set_limits(account_id: str, changes: dict[str, Any], deps: Deps) -> RiskLimits:
    """Change some of an account's limits (the others stay); a null lifts one."""
    now = deps.clock.now()
    with deps.uow() as uow:
        if uow.accounts.get(account_id) is None:
            raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
        current = uow.risk.get(account_id) or {}
        try:
            limits = RiskLimits.from_dict({**current, **changes})
        except ValueError as exc:
            raise Rejected(str(exc), code="INVALID_RISK_LIMITS") from None
        uow.risk.put(account_id, limits.to_dict(), now)
        uow.audit.add(AuditEvent(entity="account", entity_id=account_id, event="RiskLimitsSet",
                                 at=now, account_id=account_id, data=changes))
        uow.commit()
    return limits


def set_global_halt(halted: bool, deps: Deps) -> None:
    now = deps.clock.now()
    with deps.uow() as uow:
        uow.flags.set(HALT_FLAG, "1" if halted else "0")
        uow.audit.add(AuditEvent(entity="service", entity_id="trading",
                                 event="TradingHalted" if halted else "TradingResumed", at=now))
        uow.commit()


def global_halt(deps: Deps) -> bool:
    with deps.uow(write=False) as uow:
        return bool(uow.flags.get(HALT_FLAG) == "1")
