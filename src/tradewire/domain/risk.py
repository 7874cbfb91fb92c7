"""Pre-trade risk controls: pure checks of one order against an account's limits and the
facts gathered about it. Each refusal carries a machine-readable code.

Only what adds risk is checked: an order that only reduces a position (an exit, a partial
close) always passes, so a position can be closed whatever the limits say."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import time
from decimal import Decimal
from typing import Any

from tradewire.domain.errors import Rejected
from tradewire.domain.values import ZERO, Side


@dataclass(frozen=True, slots=True)
class TradingWindow:
    start: time
    end: time

    def holds(self, at: time) -> bool:
        if self.start <= self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end  # across midnight (crypto, futures)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @classmethod
    def parse(cls, text: str) -> TradingWindow:
        try:
            a, b = text.split("-")
            return cls(time.fromisoformat(a.strip()), time.fromisoformat(b.strip()))
        except ValueError:
            raise ValueError(f"a trading window is HH:MM-HH:MM, not {text!r}") from None


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """An account's limits; None means no limit."""

    halted: bool = False  # the account's kill switch: nothing new is sent
    reduce_only: bool = False  # exits allowed, entries refused
    allowed_symbols: frozenset[str] | None = None
    blocked_symbols: frozenset[str] = frozenset()
    max_position_qty: Decimal | None = None
    max_position_notional: Decimal | None = None
    max_open_positions: int | None = None
    max_orders_per_minute: int | None = None
    daily_loss_limit: Decimal | None = None  # a positive amount of money
    trading_windows: tuple[TradingWindow, ...] = field(default=())  # in the market's time zone

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, frozenset):
                v = sorted(v)
            elif isinstance(v, Decimal):
                v = str(v)
            elif isinstance(v, tuple):
                v = [str(w) for w in v]
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RiskLimits:
        """Limits from stored or sent JSON; ValueError naming the field when one is wrong."""
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown risk limit {sorted(unknown)[0]}")
        kw: dict[str, Any] = {}
        for name, value in raw.items():
            if value is None:
                if name in ("allowed_symbols", "max_position_qty", "max_position_notional",
                            "max_open_positions", "max_orders_per_minute", "daily_loss_limit"):
                    kw[name] = None
                continue
            kw[name] = _parse(name, value)
        return cls(**kw)


def _parse(name: str, value: Any) -> Any:
    for names, parser in _PARSERS:
        if name in names:
            return parser(name, value)
    raise ValueError(f"unknown risk limit {name}")


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} is true or false")
    return value


def _symbol_set(name: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise ValueError(f"{name} is a list of symbols")
    return frozenset(s.strip().upper() for s in value)


def _amount(name: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name} is a number")
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{name} is a number") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{name} must be above 0")
    return number


def _count_limit(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} is a whole number, 0 or more")
    return value


def _windows(name: str, value: Any) -> tuple[TradingWindow, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise ValueError("trading_windows is a list of HH:MM-HH:MM")
    return tuple(TradingWindow.parse(w) for w in value)


_PARSERS: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("halted", "reduce_only"), _flag),
    (("allowed_symbols", "blocked_symbols"), _symbol_set),
    (("max_position_qty", "max_position_notional", "daily_loss_limit"), _amount),
    (("max_open_positions", "max_orders_per_minute"), _count_limit),
    (("trading_windows",), _windows),
)


@dataclass(frozen=True, slots=True)
class Exposure:
    """What the check needs to know about the account when the order is made."""

    position_qty: Decimal  # signed, including what working orders will add
    price: Decimal | None  # the order's price or the last known one
    open_positions: int  # symbols held now, other than this one
    orders_last_minute: int
    loss_today: Decimal  # realized loss since the session began (positive = a loss)
    local_time: time  # now, in the account's market time zone


class RiskRefused(Rejected):
    code = "RISK_REFUSED"


Refusal = tuple[str, str] | None  # (code, message)


def check(limits: RiskLimits, *, symbol: str, side: Side, qty: Decimal, exposure: Exposure,
          global_halt: bool = False) -> None:
    """Raise RiskRefused (code RISK_*) when the order would add risk past a limit."""
    after = exposure.position_qty + side.sign * qty
    reducing = abs(after) <= abs(exposure.position_qty) and (
        after == ZERO or (after > 0) == (exposure.position_qty > 0))
    if reducing:
        return
    if global_halt or limits.halted:
        _refuse("RISK_HALTED", "trading is halted on this account")
    for rule in (_mode, _symbols, _window, _loss, _rate, _size, _count):
        refusal = rule(limits, symbol, after, exposure)
        if refusal is not None:
            _refuse(*refusal)


def _mode(limits: RiskLimits, symbol: str, after: Decimal, e: Exposure) -> Refusal:
    if limits.reduce_only:
        return "RISK_REDUCE_ONLY", "the account is reduce-only: exits are allowed, entries are not"
    return None


def _symbols(limits: RiskLimits, symbol: str, after: Decimal, e: Exposure) -> Refusal:
    if limits.allowed_symbols is not None and symbol not in limits.allowed_symbols:
        return "RISK_SYMBOL_NOT_ALLOWED", f"{symbol} is not among the account's allowed symbols"
    if symbol in limits.blocked_symbols:
        return "RISK_SYMBOL_BLOCKED", f"{symbol} is blocked on this account"
    return None


def _window(limits: RiskLimits, symbol: str, after: Decimal, e: Exposure) -> Refusal:
    if limits.trading_windows and not any(w.holds(e.local_time) for w in limits.trading_windows):
        windows = ", ".join(str(w) for w in limits.trading_windows)
        return ("RISK_OUTSIDE_TRADING_WINDOW",
                f"{e.local_time:%H:%M} is outside the trading windows {windows}")
    return None


def _loss(limits: RiskLimits, symbol: str, after: Decimal, e: Exposure) -> Refusal:
    if limits.daily_loss_limit is not None and e.loss_today >= limits.daily_loss_limit:
        return ("RISK_DAILY_LOSS_LIMIT",
                f"today's loss {e.loss_today} reached the limit {limits.daily_loss_limit}; "
                "new entries wait for the next session")
    return None


def _rate(limits: RiskLimits, symbol: str, after: Decimal, e: Exposure) -> Refusal:
    if limits.max_orders_per_minute is not None and \
            e.orders_last_minute >= limits.max_orders_per_minute:
        return "RISK_ORDER_RATE", f"more than {limits.max_orders_per_minute} orders in a minute"
    return None


def _size(limits: RiskLimits, symbol: str, after: Decimal, e: Exposure) -> Refusal:
    if limits.max_position_qty is not None and abs(after) > limits.max_position_qty:
        return ("RISK_MAX_POSITION_QTY",
                f"the position would be {abs(after)}, above the limit {limits.max_position_qty}")
    if limits.max_position_notional is None:
        return None
    if e.price is None:
        return "RISK_NO_PRICE", f"no price for {symbol} to check the notional limit"
    notional = abs(after) * e.price
    if notional > limits.max_position_notional:
        return ("RISK_MAX_POSITION_NOTIONAL", f"the position would be worth {notional}, above "
                f"the limit {limits.max_position_notional}")
    return None


def _count(limits: RiskLimits, symbol: str, after: Decimal, e: Exposure) -> Refusal:
    if limits.max_open_positions is not None and e.position_qty == ZERO and \
            e.open_positions >= limits.max_open_positions:
        return ("RISK_MAX_OPEN_POSITIONS",
                f"{e.open_positions} positions are open, the limit is {limits.max_open_positions}")
    return None


def _refuse(code: str, message: str) -> None:
    raise RiskRefused(message, code=code)
