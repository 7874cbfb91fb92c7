"""Execution of a strategy on its latest closed bar: exits, then entries, sized by risk.

`decide` is pure: the caller loads the state and the bars, and persists what comes back. It
reads time only from the bars: "now" is the close of the latest bar on the strategy's base
(smallest) timeframe. Long positions only, as the evaluation API has enter_long/exit_long.

The math (stop, target, size, which of stop and target a bar reaches) is in float functions
shared with the backtester; prices and sizes become Decimal where orders are made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from tradewire.domain.values import ZERO, new_id, round_qty
from tradewire.strategies.bars import Bars, timeframe_seconds
from tradewire.strategies.rules import (
    IndicatorCache,
    Param,
    ParsedOnce,
    RuleError,
    StrategyError,
    atr,
    bars_for,
)

if TYPE_CHECKING:
    from tradewire.strategies.evaluator import Strategy

CENT = Decimal("0.01")


class StopLossCalculation(StrEnum):
    DYNAMIC_ATR = "dynamic_atr"  # stop = entry - ATR(atr_period) x atr_volatility_factor
    FIXED_PERCENT = "fixed_percent"  # stop = entry x (1 - stop_loss_percent)


class IntentSide(StrEnum):
    ENTER_LONG = "enter_long"
    EXIT_LONG = "exit_long"


class IntentType(StrEnum):
    MARKET = "market"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"


class IntentStatus(StrEnum):
    FILLED = "filled"  # a market order, or a stop/target the bars reached
    OPEN = "open"  # a position's stop and target, placed with its entry
    CANCELED = "canceled"  # the other exit of a position that has closed


class ExitReason(StrEnum):
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    EXIT_SIGNAL = "exit_signal"
    MAX_HOLD_BARS = "max_hold_bars"
    END_OF_DATA = "end_of_data"  # the backtest's last bar closes what is still open


_CONFIG: dict[str, Param] = {
    "max_risk_per_trade": Param(float, 0.01, 0, 1, low_inclusive=False),
    "reward_factor": Param(float, 2.0, 0, 100, low_inclusive=False),
    "stop_loss_percent": Param(float, 0.02, 0, 1, low_inclusive=False),
    "atr_period": Param(int, 14, 1, 1000),
    "atr_volatility_factor": Param(float, 2.0, 0, 100, low_inclusive=False),
    "max_open_positions": Param(int, 10, 1, 1000),
    "max_trades_per_day": Param(int, 50, 1, 100_000),
    "min_trade_amount": Param(float, 25.0, 0, 1e12),
    "max_hold_bars": Param(int, 50, 1, 10_000_000),  # null: no time exit
}


@dataclass(frozen=True)
class ExecutionConfig:
    """Risk and exit settings; defaults are the evaluation API's. Validated on construction."""

    max_risk_per_trade: float = 0.01  # share of account value lost if the stop is hit
    reward_factor: float = 2.0  # target distance / stop distance
    stop_loss_calculation: StopLossCalculation = StopLossCalculation.DYNAMIC_ATR
    stop_loss_percent: float = 0.02
    atr_period: int = 14
    atr_volatility_factor: float = 2.0
    max_open_positions: int = 10
    max_trades_per_day: int = 50  # entries per UTC day
    min_trade_amount: float = 25.0  # smallest entry notional, in the account's currency
    max_hold_bars: int | None = 50  # bars of the base timeframe

    def __post_init__(self) -> None:
        try:
            for name, spec in _CONFIG.items():
                value = getattr(self, name)
                if not (name == "max_hold_bars" and value is None):
                    object.__setattr__(self, name, spec.parse(name, value))
        except RuleError as exc:
            raise StrategyError(f"execution_config.{exc.message}") from None
        calc = self.stop_loss_calculation
        if calc not in StopLossCalculation.__members__.values():
            raise StrategyError(f"execution_config.stop_loss_calculation must be dynamic_atr or "
                                f"fixed_percent, not {calc!r}")
        object.__setattr__(self, "stop_loss_calculation", StopLossCalculation(calc))

    @classmethod
    def from_dict(cls, raw: Any) -> ExecutionConfig:
        """From JSON: unknown keys are refused, missing ones take their defaults."""
        return cls() if raw is None else _CONFIGS(raw)

    @classmethod
    def _parse(cls, raw: Any) -> ExecutionConfig:
        if not isinstance(raw, Mapping):
            raise StrategyError("execution_config must be an object")
        unknown = sorted(set(raw) - {*_CONFIG, "stop_loss_calculation"})
        if unknown:
            raise StrategyError(f"unknown execution_config field(s) {', '.join(map(str, unknown))}")
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__} | {
            "stop_loss_calculation": str(self.stop_loss_calculation)}


def _config_spelling(raw: Any) -> frozenset[tuple[str, Any]] | None:
    """A key for a config object of strings, numbers and nulls; None for anything else (parsed
    the long way). `1` and `1.0` share a key (a field parses either to the same value)."""
    if type(raw) is not dict:
        return None
    for key, value in raw.items():
        if type(key) is not str or (value is not None and type(value) is not str
                                    and type(value) is not int and type(value) is not float):
            return None
    return frozenset(raw.items())


_CONFIGS = ParsedOnce(_config_spelling, ExecutionConfig._parse)  # most keep the defaults


@dataclass(frozen=True)
class OpenPosition:
    """A long position the strategy holds, with the stop and target set at its entry."""

    position_id: str
    entry_price: Decimal
    position_size: Decimal
    stop_loss: Decimal
    take_profit: Decimal
    opened_at: datetime  # the close of the bar it entered on; bars from then on are "held"

    def to_dict(self) -> dict[str, Any]:
        return {"position_id": self.position_id, "entry_price": float(self.entry_price),
                "position_size": float(self.position_size), "stop_loss": float(self.stop_loss),
                "take_profit": float(self.take_profit), "opened_at": self.opened_at.isoformat()}

    @classmethod
    def from_dict(cls, raw: Any) -> OpenPosition:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("position_id"), str):
            raise StrategyError("an open position needs a position_id")
        where = f"open position {raw['position_id']}"
        return cls(position_id=raw["position_id"], entry_price=_decimal(raw, "entry_price", where),
                   position_size=_decimal(raw, "position_size", where),
                   stop_loss=_decimal(raw, "stop_loss", where),
                   take_profit=_decimal(raw, "take_profit", where), opened_at=_moment(raw, where))


@dataclass(frozen=True)
class ExecutionState:
    """A strategy's paper account between evaluations. Money is Decimal, kept to the cent."""

    cash_balance: Decimal
    account_value: Decimal  # cash plus open positions at the latest close
    total_trades: int = 0  # entries made, ever
    open_positions: tuple[OpenPosition, ...] = ()
    trades_today: int = 0  # entries made on trading_day (UTC)
    trading_day: date | None = None

    @property
    def num_open_positions(self) -> int:
        return len(self.open_positions)

    @classmethod
    def starting(cls, cash: Decimal) -> ExecutionState:
        return cls(cash_balance=cash, account_value=cash)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: numbers as the evaluation API writes them, plus what `decide` needs."""
        return {"cash_balance": float(self.cash_balance), "account_value": float(self.account_value),
                "total_trades": self.total_trades, "num_open_positions": self.num_open_positions,
                "open_positions": [p.to_dict() for p in self.open_positions],
                "trades_today": self.trades_today,
                "trading_day": self.trading_day.isoformat() if self.trading_day else None}

    @classmethod
    def from_dict(cls, raw: Any) -> ExecutionState:
        return _STATES(raw)

    @classmethod
    def _parse(cls, raw: Any) -> ExecutionState:
        if not isinstance(raw, Mapping):
            raise StrategyError("execution_state must be an object")
        positions = tuple(OpenPosition.from_dict(p) for p in raw.get("open_positions") or ())
        count = raw.get("num_open_positions", len(positions))
        if count != len(positions):
            raise StrategyError(f"execution_state.num_open_positions is {count!r} but "
                                f"{len(positions)} open_positions are given")
        cash = _decimal(raw, "cash_balance", "execution_state")
        value = (_decimal(raw, "account_value", "execution_state") if "account_value" in raw
                 else cash + sum((p.position_size * p.entry_price for p in positions), ZERO))
        day = raw.get("trading_day")
        try:
            trading_day = date.fromisoformat(day) if day is not None else None
        except (TypeError, ValueError):
            raise StrategyError(f"execution_state.trading_day is not a date: {day!r}") from None
        return cls(cash_balance=cash, account_value=value, open_positions=positions,
                   total_trades=_count(raw, "total_trades"), trades_today=_count(raw, "trades_today"),
                   trading_day=trading_day)


def _state_spelling(raw: Any) -> frozenset[tuple[str, type, Any]] | None:
    """A key for a state object of strings, numbers and nulls and no open positions (an empty
    list, or none); None for anything else (parsed the long way). Each value's type is in it:
    a count of `1` is read, `1.0` refused."""
    if type(raw) is not dict:
        return None
    items = []
    for key, value in raw.items():
        if key == "open_positions" and type(value) is list and not value:
            continue
        kind = type(value)
        if type(key) is not str or (value is not None and kind is not str and kind is not int
                                    and kind is not float):
            return None
        items.append((key, kind, value))
    return frozenset(items)


# Most strategies are flat, and flat states repeat (the starting cash, the same trading day).
_STATES = ParsedOnce(_state_spelling, ExecutionState._parse)


@dataclass(frozen=True)
class OrderIntent:
    """An order `decide` made, in the shape of the evaluation API's `new_orders` items."""

    id: str
    asset: str
    side: IntentSide
    order_type: IntentType
    status: IntentStatus
    price: Decimal  # the fill price when filled, else the order's trigger price
    position_size: Decimal
    position_id: str
    reason: str  # entry_signal, or the ExitReason that closed the position

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "asset": self.asset, "side": str(self.side),
                "order_type": str(self.order_type), "status": str(self.status),
                "price": float(self.price), "position_size": float(self.position_size),
                "position_id": self.position_id, "reason": self.reason}


@dataclass(frozen=True)
class Decision:
    new_orders: list[OrderIntent]
    state: ExecutionState
    current_price: Decimal  # the latest close on the base timeframe
    evaluated_at: datetime  # that bar's close
    notes: list[str] = field(default_factory=list)  # why an entry signal made no order


# ---- the shared math (floats) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryPlan:
    stop: float
    target: float
    size: float
    refused: str | None = None  # set when no order should be made; size is then 0


def plan_entry(config: ExecutionConfig, price: float, atr_value: float, *, account_value: float,
               cash: float, fee_rate: float = 0.0) -> EntryPlan:
    """Stop, take-profit and size for a long entered at `price`.

    stop = price - ATR x factor (or price x (1 - percent)); target = price + reward_factor x
    (price - stop); size = account_value x max_risk_per_trade / (price - stop), capped by the
    cash (fees included); refused under min_trade_amount.
    """
    if config.stop_loss_calculation is StopLossCalculation.DYNAMIC_ATR:
        distance = atr_value * config.atr_volatility_factor
    else:
        distance = price * config.stop_loss_percent
    if not (math.isfinite(distance) and distance > 0):
        return EntryPlan(math.nan, math.nan, 0.0, "no ATR yet: too few bars for the stop")
    stop, target = price - distance, price + config.reward_factor * distance
    if stop <= 0:
        return EntryPlan(stop, target, 0.0, f"the stop {stop:g} would be at or below zero")
    size = max(min(account_value * config.max_risk_per_trade / distance,
                   cash / (price * (1 + fee_rate))), 0.0)
    if size * price < config.min_trade_amount or size <= 0:
        return EntryPlan(stop, target, 0.0, f"the position ({size * price:.2f}) is under "
                         f"min_trade_amount ({config.min_trade_amount:g})")
    return EntryPlan(stop, target, size)


def first_touch(open_: np.ndarray, high: np.ndarray, low: np.ndarray, stop: float,
                target: float) -> tuple[int, ExitReason, float] | None:
    """The first bar whose range reaches the stop or the target: (index, which, fill price).

    A bar that opens beyond a level fills there at its open (a gap). A bar that reaches both
    from inside fills the stop: one bar cannot tell which came first, so assume the worst.
    """
    hit = (low <= stop) | (high >= target)
    i = int(hit.argmax()) if len(hit) else 0
    if not len(hit) or not hit[i]:
        return None
    if open_[i] <= stop:
        return i, ExitReason.STOP_LOSS, float(open_[i])
    if open_[i] >= target:
        return i, ExitReason.TAKE_PROFIT, float(open_[i])
    if low[i] <= stop:
        return i, ExitReason.STOP_LOSS, stop
    return i, ExitReason.TAKE_PROFIT, target


# ---- decide ------------------------------------------------------------------------------------


def decide(strategy: Strategy, state: ExecutionState, data: Mapping[str, Bars],
           cache: IndicatorCache | None = None, *, make_id: Callable[[], str] = new_id) -> Decision:
    """The orders for the latest closed bar and the state after them (market orders fill at the
    latest close, stops and targets at their level).

    Exits first: the stop or target a bar since the entry reached (the stop when one bar reached
    both), else the exit rules, else max_hold_bars. Then one entry at most, when the entry rules
    fire and max_open_positions and max_trades_per_day allow, sized by `plan_entry` on the
    account value after the exits.
    """
    tf = strategy.base_timeframe
    bars = bars_for(data, tf, cache)
    if not len(bars):
        raise StrategyError(f"no {tf} bars to evaluate {strategy.name} on", code="NO_MARKET_DATA")
    now_ts = int(bars.ts[-1]) + timeframe_seconds(tf)
    run = _Run(strategy, bars, make_id, state.cash_balance, float(bars.close[-1]))
    exit_now = bool(strategy.exit) and bool(state.open_positions) and strategy.exit_signal(data, cache)
    kept = [p for p in state.open_positions if not run.exit(p, exit_now)]
    now = datetime.fromtimestamp(now_ts, UTC)
    today = now.date()
    trades_today = state.trades_today if state.trading_day == today else 0
    positions, total_trades = tuple(kept), state.total_trades
    if strategy.entry_signal(data, cache):
        entered = run.enter(positions, trades_today, cache, now)
        if entered is not None:
            positions, total_trades, trades_today = (*positions, entered), total_trades + 1, trades_today + 1
    value = _cents(run.cash + sum((p.position_size for p in positions), ZERO) * run.price)
    new_state = ExecutionState(cash_balance=_cents(run.cash), account_value=value,
                               total_trades=total_trades, open_positions=positions,
                               trades_today=trades_today, trading_day=today)
    return Decision(run.orders, new_state, run.price, now, run.notes)


class _Run:
    """One evaluation's orders and cash as they accumulate."""

    def __init__(self, strategy: Strategy, bars: Bars, make_id: Callable[[], str], cash: Decimal,
                 close: float) -> None:
        self.strategy, self.bars, self.make_id, self.cash = strategy, bars, make_id, cash
        self.config = strategy.execution_config
        self.close, self.price = close, _price(close)
        self.orders: list[OrderIntent] = []
        self.notes: list[str] = []

    def exit(self, p: OpenPosition, exit_now: bool) -> bool:
        """Close `p` if a stop, target, exit rule or max_hold_bars says so; True when closed."""
        b = self.bars
        start = int(np.searchsorted(b.ts, int(p.opened_at.timestamp()), side="left"))
        touch = first_touch(b.open[start:], b.high[start:], b.low[start:], float(p.stop_loss),
                            float(p.take_profit))
        held, limit = len(b) - start, self.config.max_hold_bars
        if touch is not None:
            reason, price = touch[1], _price(touch[2])
        elif exit_now or (limit is not None and held >= limit):
            reason, price = ExitReason.EXIT_SIGNAL if exit_now else ExitReason.MAX_HOLD_BARS, self.price
        else:
            return False
        self.cash += p.position_size * price
        kinds = {ExitReason.STOP_LOSS: IntentType.STOP_LOSS, ExitReason.TAKE_PROFIT: IntentType.TAKE_PROFIT}
        filled = kinds.get(reason, IntentType.MARKET)
        self._order(IntentSide.EXIT_LONG, filled, IntentStatus.FILLED, price, p, reason)
        for kind, level in ((IntentType.STOP_LOSS, p.stop_loss), (IntentType.TAKE_PROFIT, p.take_profit)):
            if kind is not filled:
                self._order(IntentSide.EXIT_LONG, kind, IntentStatus.CANCELED, level, p, reason)
        return True

    def enter(self, positions: tuple[OpenPosition, ...], trades_today: int,
              cache: IndicatorCache | None, now: datetime) -> OpenPosition | None:
        """The position the entry signal opens, or None when a limit or the sizing refuses it."""
        cfg = self.config
        if len(positions) >= cfg.max_open_positions:
            self.notes.append(f"entry signal, but max_open_positions ({cfg.max_open_positions}) are open")
            return None
        if trades_today >= cfg.max_trades_per_day:
            self.notes.append(f"entry signal, but max_trades_per_day ({cfg.max_trades_per_day}) is reached")
            return None
        held = sum((p.position_size for p in positions), ZERO) * self.price
        atr_now = float(atr(self.bars, cfg.atr_period, cache)[-1])
        plan = plan_entry(cfg, self.close, atr_now, account_value=float(self.cash + held),
                          cash=float(self.cash))
        size = round_qty(_price(plan.size))
        if plan.refused or size <= 0:
            self.notes.append(f"entry signal, but {plan.refused or 'the size rounds to zero'}")
            return None
        p = OpenPosition(self.make_id(), self.price, size, _price(plan.stop), _price(plan.target), now)
        self.cash -= size * self.price
        self._order(IntentSide.ENTER_LONG, IntentType.MARKET, IntentStatus.FILLED, self.price, p,
                    "entry_signal")
        for kind, level in ((IntentType.STOP_LOSS, p.stop_loss), (IntentType.TAKE_PROFIT, p.take_profit)):
            self._order(IntentSide.EXIT_LONG, kind, IntentStatus.OPEN, level, p, str(kind))
        return p

    def _order(self, side: IntentSide, kind: IntentType, status: IntentStatus, price: Decimal,
               p: OpenPosition, reason: str) -> None:
        self.orders.append(OrderIntent(self.make_id(), self.strategy.asset, side, kind, status, price,
                                       p.position_size, p.position_id, reason))


# ---- edges -------------------------------------------------------------------------------------


def _price(value: float) -> Decimal:
    """A float from the bars or the math as Decimal: its shortest repr, so it reads back exactly."""
    return Decimal(repr(float(value)))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def _decimal(raw: Mapping[str, Any], key: str, where: str) -> Decimal:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise StrategyError(f"{where}.{key} must be a number, not {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise StrategyError(f"{where}.{key} must be a number, not {value!r}") from None
    if not number.is_finite():
        raise StrategyError(f"{where}.{key} must be finite, not {value!r}")
    return number


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StrategyError(f"execution_state.{key} must be a whole number >= 0, not {value!r}")
    return value


def _moment(raw: Mapping[str, Any], where: str) -> datetime:
    """`opened_at` as ISO 8601; without an offset it is UTC, as the evaluation API writes times."""
    value = raw.get("opened_at")
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise StrategyError(f"{where}.opened_at must be an ISO 8601 time, not {value!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
