"""Use cases of the dashboard: what a person watches (accounts, positions, signals and their
timelines, the approval queue, live changes) and the actions where money moves."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol

from tradewire.domain.accounts import Account, Principal
from tradewire.domain.audit import AuditEvent
from tradewire.domain.errors import NotFound, Rejected, ServiceDisabled
from tradewire.domain.orders import OPEN_STATUSES, Fill, Order, OrderStatus
from tradewire.domain.positions import Position, apply_fill
from tradewire.domain.signals import Signal, SignalStatus
from tradewire.domain.values import ZERO, Action, ExecuteMode, new_id
from tradewire.services import process, queries
from tradewire.services.deps import Deps
from tradewire.services.ingest import IngestResult, ingest_signal
from tradewire.services.orders import cancel_orders
from tradewire.services.ports import Page

log = logging.getLogger(__name__)
ALL = Page(limit=200)
RECENT = Page(limit=10)
APPROVAL_WINDOW = timedelta(minutes=10)  # an approval form older than this is refused
APPROVAL_PRICE_MOVE = Decimal("0.01")  # a move of more than 1% since the form was shown refuses
Mark = tuple[Decimal, datetime]


class DashboardViews(Protocol):
    """Read views the repositories do not offer (listings across accounts, live changes)."""

    def latest_event_seq(self) -> int: ...
    def events_after(self, seq: int, account_ids: Sequence[str] | None,
                     limit: int) -> list[tuple[int, AuditEvent]]: ...
    def marks(self, account_ids: Sequence[str] | None) -> dict[str, Mark]: ...
    def prices(self, symbols: Sequence[str]) -> dict[str, Mark]: ...
    def find_signal_ids(self, account_ids: Sequence[str] | None, page: Page, *,
                        status: SignalStatus | None = None, symbol: str | None = None,
                        text: str | None = None) -> list[str]: ...
    def arrival_prices(self, signal_ids: Sequence[str]) -> dict[str, Decimal]: ...
    def fills(self, account_id: str, symbols: Sequence[str]) -> list[Fill] | None: ...
    def symbols_filled_since(self, account_id: str, since: datetime) -> list[str]: ...
    def api_keys(self, user_id: str) -> list[Any]: ...
    def access_tokens(self, account_ids: Sequence[str] | None) -> list[Any]: ...
    def partners(self) -> list[Any]: ...
    def channels(self) -> list[Any]: ...
    def subscriptions(self, account_ids: Sequence[str] | None) -> list[Any]: ...


# ---- watching --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    account: Account
    cash: Decimal | None = None
    equity: Decimal | None = None
    buying_power: Decimal | None = None
    realized_today: Decimal | None = None  # fees included; None: too many fills to replay
    unrealized: Decimal = ZERO
    broker_error: str | None = None


@dataclass(frozen=True)
class PositionRow:
    position: Position
    account_name: str
    last_price: Decimal | None
    price_at: datetime | None

    @property
    def market_value(self) -> Decimal | None:
        return None if self.last_price is None else self.position.qty * self.last_price

    @property
    def unrealized_pnl(self) -> Decimal | None:
        p = self.position
        return None if self.last_price is None else (self.last_price - p.avg_entry_price) * p.qty


@dataclass(frozen=True)
class SignalRow:
    signal: Signal
    timings: dict[str, datetime | None] = field(default_factory=dict)

    @property
    def latency_ms(self) -> float | None:
        """Received to acknowledged by the broker, when both happened."""
        start, end = self.timings.get("received_at"), self.timings.get("acked_at")
        return None if start is None or end is None else (end - start).total_seconds() * 1000


@dataclass(frozen=True)
class Overview:
    accounts: list[AccountRow]
    positions: list[PositionRow]
    recent: list[SignalRow]
    pending: int


def person_name(principal: Principal, deps: Deps) -> str | None:
    """The signed-in person's username (None once the user is gone)."""
    with deps.uow(write=False) as uow:
        user = uow.users.get(principal.user_id)
    return None if user is None else str(user.username)


def visible_accounts(principal: Principal, deps: Deps) -> list[Account]:
    return queries.list_accounts(principal, deps, ALL)


def account_ids(principal: Principal, deps: Deps) -> Sequence[str] | None:
    """The accounts the person may see (None: every account, for an admin)."""
    with deps.uow(write=False) as uow:
        return queries.visible_account_ids(uow, principal)


def overview(principal: Principal, deps: Deps, views: DashboardViews) -> Overview:
    positions = open_positions(principal, deps, views)
    unrealized: dict[str, Decimal] = {}
    for row in positions:
        unrealized[row.position.account_id] = (unrealized.get(row.position.account_id, ZERO)
                                               + (row.unrealized_pnl or ZERO))
    rows = [_account_row(a, deps, views, unrealized.get(a.id, ZERO))
            for a in visible_accounts(principal, deps)]
    ids = account_ids(principal, deps)
    pending = len(views.find_signal_ids(ids, ALL, status=SignalStatus.PENDING))
    return Overview(rows, positions, find_signals(principal, deps, views, RECENT), pending)


def _account_row(account: Account, deps: Deps, views: DashboardViews,
                 unrealized: Decimal) -> AccountRow:
    realized = realized_today(account.id, deps, views)
    try:
        money = deps.brokers.for_account(account).account(account.id)
    except Exception as exc:  # a page must render whatever the broker does; the cause is logged
        log.warning("broker account of %s unavailable: %s", account.id, exc)
        return AccountRow(account, realized_today=realized, unrealized=unrealized,
                          broker_error="the broker did not answer")
    return AccountRow(account, money.cash, money.equity, money.buying_power, realized, unrealized)


def realized_today(account_id: str, deps: Deps, views: DashboardViews) -> Decimal | None:
    """Realized P&L (fees included) of the fills since 00:00 UTC, replaying each symbol traded
    today from its first fill, since a closing fill's profit depends on the entry price."""
    now = deps.clock.now()
    since = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    symbols = views.symbols_filled_since(account_id, since)
    if not symbols:
        return ZERO
    fills = views.fills(account_id, symbols)
    if fills is None:
        return None
    books: dict[str, Position] = {}
    total = ZERO
    for fill in fills:
        before = books.get(fill.symbol, Position(account_id, fill.symbol))
        after = books[fill.symbol] = apply_fill(before, fill)
        if fill.filled_at >= since:
            total += after.realized_pnl - before.realized_pnl
    return total


def open_positions(principal: Principal, deps: Deps, views: DashboardViews,
                   account_id: str | None = None) -> list[PositionRow]:
    names = {a.id: a.name for a in visible_accounts(principal, deps)}
    positions = queries.list_positions(principal, deps, ALL, account_id=account_id)
    marks = views.prices(sorted({p.symbol for p in positions}))
    return [PositionRow(p, names.get(p.account_id, p.account_id), *marks.get(p.symbol, (None, None)))
            for p in positions]


def find_signals(principal: Principal, deps: Deps, views: DashboardViews, page: Page, *,
                 account_id: str | None = None, status: SignalStatus | None = None,
                 symbol: str | None = None, text: str | None = None) -> list[SignalRow]:
    with deps.uow(write=False) as uow:
        ids = queries.visible_account_ids(uow, principal, account_id)
    found = views.find_signal_ids(ids, page, status=status, symbol=symbol, text=text)
    with deps.uow(write=False) as uow:
        return [SignalRow(s, uow.timings.of_signal(s.id))
                for s in (uow.signals.get(i) for i in found) if s is not None]


@dataclass(frozen=True)
class Timeline:
    """A signal from its raw fields to decision, orders, fills and P&L."""

    detail: queries.SignalDetail
    account: Account
    fills: dict[str, list[Fill]]  # by order id
    timings: dict[str, datetime | None]
    last_price: Decimal | None

    @property
    def filled(self) -> list[Fill]:
        return [f for fills in self.fills.values() for f in fills]

    @property
    def pnl(self) -> Decimal | None:
        """What this signal's fills are worth at the last price, less what they cost."""
        if not self.filled or self.last_price is None:
            return None
        return sum(((self.last_price - f.price) * f.qty * f.side.sign - f.fee for f in self.filled),
                   ZERO)


def timeline(signal_id: str, principal: Principal, deps: Deps) -> Timeline:
    detail = queries.signal_detail(signal_id, principal, deps)
    with deps.uow(write=False) as uow:
        account = uow.accounts.get(detail.signal.account_id)
        fills = {o.id: uow.fills.of_order(o.id) for o in detail.orders}
        timings = uow.timings.of_signal(signal_id)
    return Timeline(detail, account, fills, timings, deps.prices.last_price(detail.signal.symbol))


# ---- the approval queue ----------------------------------------------------------------------


@dataclass(frozen=True)
class PendingRow:
    signal: Signal
    reference: Decimal | None  # the price the move is measured from
    reference_kind: str  # what that price is: "at arrival", "alert price", "limit", "stop"
    last_price: Decimal | None
    price_at: datetime | None
    now: datetime

    @property
    def move(self) -> Decimal | None:
        """The price move since the reference, as a fraction."""
        if self.reference is None or self.last_price is None or self.reference == 0:
            return None
        return (self.last_price - self.reference) / self.reference

    @property
    def age(self) -> timedelta:
        return self.now - self.signal.created_at

    @property
    def expires_in(self) -> timedelta | None:
        until = self.signal.valid_until
        return None if until is None else until - self.now


def approval_queue(principal: Principal, deps: Deps, views: DashboardViews) -> list[PendingRow]:
    rows = [r.signal for r in find_signals(principal, deps, views, ALL,
                                           status=SignalStatus.PENDING)]
    arrival = views.arrival_prices([s.id for s in rows])
    marks = views.prices(sorted({s.symbol for s in rows}))
    now = deps.clock.now()
    return [PendingRow(s, *_reference(s, arrival.get(s.id)), *marks.get(s.symbol, (None, None)),
                       now) for s in rows]


def _reference(signal: Signal, arrival: Decimal | None) -> tuple[Decimal | None, str]:
    alert = signal.metadata.get("price") or signal.metadata.get("signalPrice")
    if arrival is not None:
        return arrival, "at arrival"
    try:
        if alert is not None:
            return Decimal(str(alert)), "alert price"
    except ArithmeticError:
        pass
    if signal.limit_price is not None:
        return signal.limit_price, "limit"
    if signal.stop_price is not None:
        return signal.stop_price, "stop"
    return None, ""


def approve(signal_id: str, principal: Principal, deps: Deps, *, seen_price: Decimal | None,
            seen_at: datetime, signals_on: bool) -> tuple[Signal, Order | None]:
    """A person approves a pending signal as they saw it: refused when the kill switch is
    on, when the form is old, or when the price moved since it was shown."""
    if not signals_on:
        raise ServiceDisabled("Signal processing is switched off (kill switch)")
    now = deps.clock.now()
    if now - seen_at > APPROVAL_WINDOW:
        minutes = int(APPROVAL_WINDOW.total_seconds() // 60)
        raise Rejected(f"This approval was shown more than {minutes} minutes ago; look at the "
                       "signal again before approving it", code="STALE_APPROVAL")
    with deps.uow(write=False) as uow:
        signal = process.visible_signal(uow, signal_id, principal)
    price = deps.prices.last_price(signal.symbol)
    if _moved(seen_price, price):
        raise Rejected(f"The price of {signal.symbol} moved from {_p(seen_price)} to {_p(price)} "
                       "since it was shown; look at it again before approving",
                       code="PRICE_MOVED")
    return process.process_pending(signal_id, principal, deps)


def _moved(seen: Decimal | None, now: Decimal | None) -> bool:
    if seen is None or now is None:
        return seen != now
    return seen != 0 and abs(now - seen) / seen > APPROVAL_PRICE_MOVE


def _p(price: Decimal | None) -> str:
    return "no price" if price is None else format(price, "f")


def reject(signal_id: str, principal: Principal, deps: Deps, *, by: str) -> Signal:
    """A person turns a pending signal down: it is cancelled with who did it as the reason."""
    reason = f"rejected on the dashboard by {by}"
    return process.cancel_signal(signal_id, principal, deps, reason=reason,
                                 cancellable=(SignalStatus.PENDING,), via="dashboard")


# ---- orders and positions --------------------------------------------------------------------


def cancel_order(order_id: str, principal: Principal, deps: Deps) -> Order:
    """Cancel one open order of an account the person may see."""
    order = _visible_order(order_id, principal, deps)
    if order.status not in OPEN_STATUSES:
        raise Rejected(f"This order is {order.status}; there is nothing left to cancel")
    if order.status is OrderStatus.SUBMITTING:
        raise Rejected("This order is being sent to the broker right now; try again in a moment")
    if order.exit_leg is not None:  # the plan would only place it again
        raise Rejected("This order is the resting exit of an exit plan and follows the plan; "
                       "close the position or cancel the signal instead")
    cancel_orders([order], deps, reason="cancelled on the dashboard")
    return _visible_order(order_id, principal, deps)


def _visible_order(order_id: str, principal: Principal, deps: Deps) -> Order:
    with deps.uow(write=False) as uow:
        order = uow.orders.get(order_id)
        account = uow.accounts.get(order.account_id) if order else None
    if order is None or account is None or not principal.can_see(account):
        raise NotFound(f"order {order_id} not found", code="ORDER_NOT_FOUND")
    return order


def close_position(account_id: str, symbol: str, principal: Principal, deps: Deps) -> IngestResult:
    """Flatten a position with a market order, sent as an ordinary signal (audited, deduped)."""
    account = queries.visible_account(principal, deps, account_id)
    with deps.uow(write=False) as uow:
        qty = uow.positions.get(account.id, symbol).qty
    if qty == 0:
        raise Rejected(f"There is no open position in {symbol}", code="NO_POSITION")
    signal = Signal(id=new_id(), account_id=account.id, symbol=symbol,
                    action=Action.CLOSE_LONG if qty > 0 else Action.CLOSE_SHORT,
                    quantity=abs(qty), execute_mode=ExecuteMode.IMMEDIATE,
                    created_at=deps.clock.now(), source_id=f"dashboard:close:{new_id()}",
                    route="dashboard", metadata={"via": "dashboard"})
    return ingest_signal(signal, principal, deps)


# ---- live changes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    kind: str  # "signal", "order", "fill", "position", "price", "service" ...
    data: dict[str, Any]
    seq: int | None = None  # the audit event's, for resuming after a reconnect


def changes_since(seq: int, marks_seen: dict[str, Mark], ids: Sequence[str] | None,
                  views: DashboardViews, *, limit: int = 100) -> tuple[list[Change], int]:
    """Audit events after `seq` and prices that moved for held symbols (`marks_seen` is
    updated in place); returns the changes and the new last seq."""
    out = []
    for at_seq, event in views.events_after(seq, ids, limit):
        seq = at_seq
        kind = "fill" if event.event == "OrderFilled" else event.entity
        out.append(Change(kind, {"event": event.event, "id": event.entity_id,
                                 "signalId": event.signal_id, "status": event.to_status,
                                 "accountId": event.account_id, "at": event.at.isoformat()},
                          at_seq))
    for symbol, mark in views.marks(ids).items():
        if marks_seen.get(symbol) != mark:
            if symbol in marks_seen:
                out.append(Change("price", {"symbol": symbol, "price": format(mark[0], "f"),
                                            "at": mark[1].isoformat()}))
            marks_seen[symbol] = mark
    return out, seq
