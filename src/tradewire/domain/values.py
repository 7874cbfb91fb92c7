"""Value types shared by the whole core: enums, money and quantities, ids."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

from uuid_utils import uuid7

ZERO = Decimal(0)
QTY_STEP = Decimal("0.000001")


def new_id() -> str:
    """A fresh identifier (a UUID, as text), time-ordered: version 7, milliseconds since the
    epoch first, then random bits. Rows keyed by ids made one after another go in at the end
    of their indexes instead of on random pages (docs/performance.md, item 31); the random
    part is the end, which is what short labels show (`short_id`)."""
    return str(uuid7())  # uuid-utils: the Rust `uuid` crate's, monotonic within a process


def short_id(value: str) -> str:
    """The last 8 characters of an id: random in a time-ordered id (its first ones are the
    same for everything made within about a minute), as short labels show it."""
    return value[-8:]


def round_qty(qty: Decimal) -> Decimal:
    """Round a computed quantity down to the smallest step tradewire trades."""
    return qty.quantize(QTY_STEP, rounding=ROUND_DOWN)


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class Action(StrEnum):
    OPEN_LONG = "openLong"
    CLOSE_LONG = "closeLong"
    OPEN_SHORT = "openShort"
    CLOSE_SHORT = "closeShort"

    @property
    def side(self) -> Side:
        return Side.BUY if self in (Action.OPEN_LONG, Action.CLOSE_SHORT) else Side.SELL

    @property
    def is_exit(self) -> bool:
        return self in (Action.CLOSE_LONG, Action.CLOSE_SHORT)


class ExecuteMode(StrEnum):
    IMMEDIATE = "immediate"
    SCHEDULED = "scheduled"
    PENDING = "pending"


class QuantityType(StrEnum):
    FIXED = "fixed"
    PERCENT_EQUITY = "percentEquity"
    DOLLAR_AMOUNT = "dollarAmount"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stopLimit"

    @property
    def needs_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def needs_stop_price(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    OPG = "opg"
    CLS = "cls"
    IOC = "ioc"
    FOK = "fok"
    GTD = "gtd"  # good until the signal's expiresAt


class OrderPurpose(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"
