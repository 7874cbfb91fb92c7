"""Partner channels, their subscribers, and how a partner signal is sized per subscriber."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from tradewire.domain.errors import Rejected
from tradewire.domain.values import round_qty


class AllocationType(StrEnum):
    AMOUNT = "amount"  # a fixed amount of the quote currency
    PERCENT = "percent"  # a percentage of the account's equity


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    partner_id: str
    name: str
    api_key: str
    secret_hash: str
    created_at: datetime
    require_stop_loss: bool = False
    max_signals_per_day: int | None = None
    max_capital_at_risk: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    channel_id: str
    account_id: str
    allocation: Decimal
    allocation_type: AllocationType
    leverage_cap: int
    auto_execute: bool
    created_at: datetime


def child_quantity(sub: Subscription, *, invest_percent: Decimal, entry_price: Decimal,
                   equity: Decimal | None, leverage: int = 1) -> Decimal:
    """Units one subscriber buys: `invest` percent of its allocation, times the leverage it
    allows, at the entry price."""
    if sub.allocation_type is AllocationType.AMOUNT:
        budget = sub.allocation
    else:
        if equity is None or equity <= 0:
            raise Rejected("the account has no equity to size the signal", code="INSUFFICIENT_FUNDS")
        budget = equity * sub.allocation / 100
    notional = budget * invest_percent / 100 * min(leverage, sub.leverage_cap)
    qty = round_qty(notional / entry_price)
    if qty <= 0:
        raise Rejected("the allocation buys less than the smallest quantity",
                       code="QUANTITY_TOO_SMALL")
    return qty
