"""Use cases of partner channels: create, subscribe, authenticate, and fan a signal out."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.audit import AuditEvent
from tradewire.domain.channels import AllocationType, Channel, Subscription, child_quantity
from tradewire.domain.errors import NotFound, TradewireError
from tradewire.domain.exit_plan import ExitPlan
from tradewire.domain.signals import Leg, LinkKind, Signal, SignalStatus
from tradewire.domain.values import Action, ExecuteMode, OrderType, TimeInForce, new_id
from tradewire.services.deps import Deps
from tradewire.services.ingest import ingest_signal
from tradewire.services.ports import Secrets, UnitOfWork

FAN_OUT_THREADS = 8


def create_channel(partner_id: str, name: str, deps: Deps, secrets: Secrets, *,
                   require_stop_loss: bool = False, max_signals_per_day: int | None = None,
                   max_capital_at_risk: Decimal | None = None) -> tuple[Channel, str]:
    """A channel and its key pair; the secret is shown once and stored as a keyed hash."""
    secret = secrets.random_token()
    channel = Channel(id=new_id(), partner_id=partner_id, name=name,
                      api_key="twc_" + secrets.random_token()[:32],
                      secret_hash=secrets.hash_api_key(secret), created_at=deps.clock.now(),
                      require_stop_loss=require_stop_loss,
                      max_signals_per_day=max_signals_per_day,
                      max_capital_at_risk=max_capital_at_risk)
    with deps.uow() as uow:
        if uow.partners.get(partner_id) is None:
            raise NotFound(f"partner {partner_id} not found", code="PARTNER_NOT_FOUND")
        uow.channels.add(channel)
        uow.audit.add(AuditEvent(entity="channel", entity_id=channel.id, event="ChannelCreated",
                                 at=channel.created_at, data={"partner_id": partner_id}))
        uow.commit()
    return channel, secret


def subscribe(channel_id: str, account_id: str, deps: Deps, *, allocation: Decimal,
              allocation_type: AllocationType = AllocationType.AMOUNT, leverage_cap: int = 1,
              auto_execute: bool = True) -> Subscription:
    sub = Subscription(channel_id=channel_id, account_id=account_id, allocation=allocation,
                       allocation_type=allocation_type, leverage_cap=leverage_cap,
                       auto_execute=auto_execute, created_at=deps.clock.now())
    with deps.uow() as uow:
        if uow.channels.get(channel_id) is None:
            raise NotFound(f"channel {channel_id} not found", code="CHANNEL_NOT_FOUND")
        if uow.accounts.get(account_id) is None:
            raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
        uow.channels.subscribe(sub)
        uow.audit.add(AuditEvent(entity="channel", entity_id=channel_id, event="Subscribed",
                                 at=sub.created_at, account_id=account_id,
                                 data={"allocation": str(allocation),
                                       "allocation_type": str(allocation_type)}))
        uow.commit()
    return sub


def channel_for_keys(api_key: str, api_secret: str, deps: Deps, secrets: Secrets) -> Channel | None:
    """The channel whose key pair this is; the secret is compared in constant time."""
    with deps.uow(write=False) as uow:
        channel = uow.channels.by_api_key(api_key)
    expected = channel.secret_hash if channel else secrets.hash_api_key("-")
    same = hmac.compare_digest(expected, secrets.hash_api_key(api_secret))
    return channel if channel is not None and same else None


def channel_of_partner(partner_id: str, channel_id: str | None, deps: Deps) -> Channel | None:
    """A partner's channel: the one named, or its only one."""
    with deps.uow(write=False) as uow:
        channels = uow.channels.of_partner(partner_id)
    if channel_id is not None:
        return next((c for c in channels if c.id == channel_id), None)
    return channels[0] if len(channels) == 1 else None


@dataclass(frozen=True)
class ChildResult:
    account_id: str
    signal_id: str | None
    status: str
    order_id: str | None = None
    reason: str | None = None


def check_limits(channel: Channel, has_stop_loss: bool, deps: Deps) -> str | None:
    """Why the channel's own limits refuse a new signal, or None."""
    if channel.require_stop_loss and not has_stop_loss:
        return "this channel refuses signals without a stop_loss"
    if channel.max_signals_per_day is not None:
        since = deps.clock.now() - timedelta(days=1)
        with deps.uow(write=False) as uow:
            if uow.partner_signals.count_since(channel.id, since) >= channel.max_signals_per_day:
                return f"this channel allows {channel.max_signals_per_day} signals per day"
    return None


ChildMaker = Callable[[Subscription, Decimal | None], Signal]


def fan_out(channel: Channel, parent_id: str, make_child: ChildMaker, deps: Deps,
            *, needs_equity: bool, plan: ExitPlan | None = None) -> list[ChildResult]:
    """One child signal per auto-executing subscriber, sent concurrently, each on its own."""
    with deps.uow(write=False) as uow:
        subs = [s for s in uow.channels.subscribers(channel.id) if s.auto_execute]
        accounts = {s.account_id: uow.accounts.get(s.account_id) for s in subs}

    def one(sub: Subscription) -> ChildResult:
        try:
            equity = None
            if needs_equity or sub.allocation_type is AllocationType.PERCENT:
                account = accounts[sub.account_id]
                equity = deps.brokers.for_account(account).account(account.id).equity
            child = make_child(sub, equity)
            principal = Principal(user_id=f"channel:{channel.id}", is_admin=False,
                                  scopes=frozenset({Scope.SIGNALS_WRITE}),
                                  account_ids=frozenset({sub.account_id}), via="partner")
            result = ingest_signal(child, principal, deps,
                                   on_stored=_store_plan(plan) if plan is not None else None)
        except TradewireError as exc:
            return ChildResult(sub.account_id, None, "rejected", reason=exc.message)
        s = result.signal
        return ChildResult(sub.account_id, s.id, str(s.status),
                           result.order.id if result.order else None,
                           s.status_reason if s.status is SignalStatus.REJECTED else None)

    if not subs:
        return []
    with ThreadPoolExecutor(max_workers=min(FAN_OUT_THREADS, len(subs))) as pool:
        return list(pool.map(one, subs))


def _store_plan(plan: ExitPlan) -> Callable[[UnitOfWork, Signal, datetime], None]:
    """Store the child's exit plan with the child, in one transaction; it arms on the fill."""

    def store(uow: UnitOfWork, child: Signal, now: datetime) -> None:
        uow.exit_plans.add(child.id, child.account_id, child.symbol, plan, now)

    return store


def entry_child(*, parent_id: str, symbol: str, side: str,
                entries: Sequence[tuple[Decimal, Decimal]], invest: Decimal, leverage: int,
                ttl_ms: int | None, now: datetime, route: str) -> ChildMaker:
    """How a partner signal becomes one subscriber's entry: a limit order per entry price,
    each with its share (percent) of the investment; several are sent together as legs."""

    def make(sub: Subscription, equity: Decimal | None) -> Signal:
        action = Action.OPEN_LONG if side == "long" else Action.OPEN_SHORT
        expires = now + timedelta(milliseconds=ttl_ms) if ttl_ms else None
        tif = TimeInForce.GTD if expires else TimeInForce.GTC
        sized = [(price, child_quantity(sub, invest_percent=invest * share / 100,
                                        entry_price=price, equity=equity, leverage=leverage))
                 for price, share in entries]
        (price, qty), rest = sized[0], sized[1:]
        return Signal(
            id=new_id(), account_id=sub.account_id, symbol=symbol, action=action, quantity=qty,
            execute_mode=ExecuteMode.IMMEDIATE, created_at=now, order_type=OrderType.LIMIT,
            limit_price=price, time_in_force=tif, valid_until=expires,
            source_id=f"partner:{parent_id}", parent_id=parent_id, route=route,
            metadata={"partner_signal_id": parent_id},
            legs=tuple(Leg(symbol=symbol, action=action, quantity=q, order_type=OrderType.LIMIT,
                           limit_price=p, time_in_force=tif) for p, q in rest),
            link=LinkKind.ALL if rest else None,
        )

    return make


def children(parent_id: str, deps: Deps) -> list[Signal]:
    with deps.uow(write=False) as uow:
        return list(uow.partner_signals.children(parent_id))


def load_parent(parent_id: str, channel: Channel, deps: Deps) -> dict[str, Any]:
    """A partner signal of this channel; another channel's answers as missing."""
    with deps.uow(write=False) as uow:
        row = uow.partner_signals.get(parent_id)
    if row is None or row["channel_id"] != channel.id:
        raise NotFound(f"signal {parent_id} not found", code="SIGNAL_NOT_FOUND")
    return row

