"""Named conditions on bars (TA-Lib indicators), the rules that use them, and a shared cache.

A condition is a *state* of each bar (RSI under 30, the fast EMA over the slow one). A rule
uses it as a FILTER (the state holds on the bar) or as a TRIGGER (the state begins on the bar:
it did not hold on the bar before, where the indicator was already defined). So a TRIGGER is an
event on one bar, "RSI crossed under 30", and a FILTER a state, "RSI is under 30".

No look-ahead: each indicator is causal (TA-Lib's value at bar i reads bars <= i) and a rule at
bar i reads indicator values at i and i - 1 only, so appending bars never changes an earlier
value. Bars where an indicator is still warming up (NaN) are False for every rule.

Parameter names follow the `ta` library (`window`, `window_fast`, `window_slow`, `window_sign`,
`window_dev`, `smooth_window`, `threshold`); the indicators are TA-Lib's, 100x faster.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar, cast

import numpy as np
import numpy.typing as npt
import talib

from tradewire.domain.errors import TradewireError
from tradewire.strategies.bars import TIMEFRAMES, Bars, resample
from tradewire.strategies.bars import timeframe as canonical_timeframe

Series = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Params = Mapping[str, float]
T = TypeVar("T")
G = TypeVar("G", bound=np.generic)

# Bars to fetch for a live evaluation: RSI and the EMAs depend on their whole history, and 300
# bars keep RSI(14) within 3e-8 of the full-history value (100 bars: 0.06 points off).
HISTORY_BARS = 300


class StrategyError(TradewireError, ValueError):
    """A strategy, rule, execution config or state that cannot be used as given."""

    code = "INVALID_STRATEGY"


class RuleError(StrategyError):
    """A rule with an unknown name, signal type or timeframe, or bad params."""

    code = "INVALID_RULE"


class SignalType(StrEnum):
    # Upper case: the evaluation API spells them so on the wire.
    TRIGGER = "TRIGGER"
    FILTER = "FILTER"


class IndicatorCache:
    """Series computed from bars, kept by (bars, name, params) so each is computed once.

    Share one across every rule and strategy that reads the same data: a bulk evaluation keeps
    one per request and every strategy on BTC/USDT 1h reuses the same RSI(14). Bars are keys by
    identity and the cache holds them, so an id is never reused while it lives. Cached arrays
    are read-only: they are shared.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[Bars, str, tuple[Any, ...]], Any] = {}
        self.computed: Counter[str] = Counter()  # misses per name: what was actually computed

    def get(self, bars: Bars, name: str, params: tuple[Any, ...], compute: Callable[[], T]) -> T:
        key = (bars, name, params)
        try:
            return cast(T, self._memo[key])
        except KeyError:
            value = self._memo[key] = compute()
            self.computed[name] += 1
            return value

    def __len__(self) -> int:
        return len(self._memo)


def cached(cache: IndicatorCache | None, bars: Bars, name: str, params: tuple[Any, ...],
           compute: Callable[[], T]) -> T:
    """`compute()` through the cache when there is one."""
    return compute() if cache is None else cache.get(bars, name, params, compute)


# ---- indicators (TA-Lib) -----------------------------------------------------------------------


def _frozen(array: npt.NDArray[G]) -> npt.NDArray[G]:
    array.flags.writeable = False
    return array


def _series(bars: Bars, name: str, params: tuple[Any, ...], cache: IndicatorCache | None,
            compute: Callable[[], Series]) -> Series:
    if not len(bars):  # TA-Lib refuses empty input; nothing is defined on no bars
        return np.empty(0)
    return cached(cache, bars, name, params, lambda: _frozen(compute()))


def _several(bars: Bars, name: str, params: tuple[Any, ...], cache: IndicatorCache | None,
             compute: Callable[[], tuple[Series, ...]], count: int) -> tuple[Series, ...]:
    if not len(bars):
        return tuple(np.empty(0) for _ in range(count))
    return cached(cache, bars, name, params, lambda: tuple(_frozen(a) for a in compute()))


def rsi(bars: Bars, window: int, cache: IndicatorCache | None = None) -> Series:
    return _series(bars, "rsi", (window,), cache, lambda: talib.RSI(bars.close, window))


def ema(bars: Bars, window: int, cache: IndicatorCache | None = None) -> Series:
    return _series(bars, "ema", (window,), cache, lambda: talib.EMA(bars.close, window))


def sma(bars: Bars, window: int, cache: IndicatorCache | None = None) -> Series:
    return _series(bars, "sma", (window,), cache, lambda: talib.SMA(bars.close, window))


def volume_sma(bars: Bars, window: int, cache: IndicatorCache | None = None) -> Series:
    return _series(bars, "volume_sma", (window,), cache, lambda: talib.SMA(bars.volume, window))


def macd(bars: Bars, window_fast: int, window_slow: int, window_sign: int,
         cache: IndicatorCache | None = None) -> tuple[Series, Series]:
    """(MACD line, signal line)."""
    line, signal = _several(bars, "macd", (window_fast, window_slow, window_sign), cache,
                            lambda: talib.MACD(bars.close, window_fast, window_slow, window_sign)[:2], 2)
    return line, signal


def bollinger(bars: Bars, window: int, window_dev: float,
              cache: IndicatorCache | None = None) -> tuple[Series, Series, Series]:
    """(upper, middle, lower) bands: SMA ± window_dev population standard deviations."""
    upper, middle, lower = _several(bars, "bollinger", (window, window_dev), cache, lambda: talib.BBANDS(
        bars.close, window, window_dev, window_dev, 0), 3)
    return upper, middle, lower


def stoch(bars: Bars, window: int, smooth_window: int, cache: IndicatorCache | None = None) -> Series:
    """The slow stochastic %K: raw %K over `window` smoothed by an SMA of `smooth_window`
    (the `ta` library's `stoch_signal`)."""
    # slowd_period=1: %D is not read, and a longer one would only delay the first %K.
    return _series(bars, "stoch", (window, smooth_window), cache, lambda: talib.STOCH(
        bars.high, bars.low, bars.close, window, smooth_window, 0, 1, 0)[0])


def adx(bars: Bars, window: int, cache: IndicatorCache | None = None) -> Series:
    return _series(bars, "adx", (window,), cache, lambda: talib.ADX(bars.high, bars.low, bars.close, window))


def atr(bars: Bars, window: int, cache: IndicatorCache | None = None) -> Series:
    return _series(bars, "atr", (window,), cache, lambda: talib.ATR(bars.high, bars.low, bars.close, window))


# ---- conditions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One typed parameter: `int` or `float`, a default, and an allowed range."""

    kind: type[int] | type[float]
    default: float
    low: float
    high: float
    low_inclusive: bool = True

    def parse(self, where: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleError(f"{where} must be {'an integer' if self.kind is int else 'a number'}, "
                            f"not {value!r}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise RuleError(f"{where} must be an integer, not {value!r}")
            value = int(value)
        else:
            value = float(value)
        above = value >= self.low if self.low_inclusive else value > self.low
        if not (above and value <= self.high):  # also refuses NaN
            bracket = "[" if self.low_inclusive else "("
            raise RuleError(f"{where} must be in {bracket}{self.low:g}, {self.high:g}], not {value!r}")
        return value


StateFn = Callable[[Bars, IndicatorCache | None, Params], tuple[Mask, Mask]]


@dataclass(frozen=True)
class Condition:
    """A named state of each bar. `state` returns (holds, defined) per bar."""

    name: str
    params: Mapping[str, Param]
    state: StateFn
    doc: str
    windows_ordered: bool = False  # window_fast must be below window_slow


def _window(default: int) -> Param:
    return Param(int, default, 2, 5000)


def _level(default: float) -> Param:
    return Param(float, default, 0, 100)


def _positive(default: float, high: float = 1000) -> Param:
    return Param(float, default, 0, high, low_inclusive=False)


def _defined(*series: Series) -> Mask:
    out = ~np.isnan(series[0])
    for s in series[1:]:
        out &= ~np.isnan(s)
    return out


def _rsi_zone(*, below: bool) -> StateFn:
    def state(bars: Bars, cache: IndicatorCache | None, p: Params) -> tuple[Mask, Mask]:
        r = rsi(bars, int(p["window"]), cache)
        return (r < p["threshold"]) if below else (r > p["threshold"]), _defined(r)
    return state


def _macd_cross(*, up: bool) -> StateFn:
    def state(bars: Bars, cache: IndicatorCache | None, p: Params) -> tuple[Mask, Mask]:
        line, signal = macd(bars, int(p["window_fast"]), int(p["window_slow"]), int(p["window_sign"]),
                            cache)
        return (line > signal) if up else (line < signal), _defined(line, signal)
    return state


def _ma_cross(average: Callable[..., Series], *, up: bool) -> StateFn:
    def state(bars: Bars, cache: IndicatorCache | None, p: Params) -> tuple[Mask, Mask]:
        fast = average(bars, int(p["window_fast"]), cache)
        slow = average(bars, int(p["window_slow"]), cache)
        return (fast > slow) if up else (fast < slow), _defined(fast, slow)
    return state


def _price_vs(average: Callable[..., Series], *, above: bool) -> StateFn:
    def state(bars: Bars, cache: IndicatorCache | None, p: Params) -> tuple[Mask, Mask]:
        line = average(bars, int(p["window"]), cache)
        return (bars.close > line) if above else (bars.close < line), _defined(line)
    return state


def _band_touch(*, lower: bool) -> StateFn:
    def state(bars: Bars, cache: IndicatorCache | None, p: Params) -> tuple[Mask, Mask]:
        upper, _, low_band = bollinger(bars, int(p["window"]), p["window_dev"], cache)
        held = (bars.low <= low_band) if lower else (bars.high >= upper)
        return held, _defined(upper)
    return state


def _stoch_zone(*, below: bool) -> StateFn:
    def state(bars: Bars, cache: IndicatorCache | None, p: Params) -> tuple[Mask, Mask]:
        k = stoch(bars, int(p["window"]), int(p["smooth_window"]), cache)
        return (k < p["threshold"]) if below else (k > p["threshold"]), _defined(k)
    return state


def _adx_trending(bars: Bars, cache: IndicatorCache | None, p: Params) -> tuple[Mask, Mask]:
    a = adx(bars, int(p["window"]), cache)
    return a > p["threshold"], _defined(a)


def _volume_spike(bars: Bars, cache: IndicatorCache | None, p: Params) -> tuple[Mask, Mask]:
    average = volume_sma(bars, int(p["window"]), cache)
    return bars.volume > p["threshold"] * average, _defined(average)


def _atr_breakout(bars: Bars, cache: IndicatorCache | None, p: Params) -> tuple[Mask, Mask]:
    a = atr(bars, int(p["window"]), cache)
    change = np.full(len(bars), np.nan)
    change[1:] = np.diff(bars.close)
    return change > p["threshold"] * a, _defined(a, change)


_MACD = {"window_fast": _window(12), "window_slow": _window(26), "window_sign": _window(9)}
_CROSS = {"window_fast": _window(12), "window_slow": _window(26)}
_BANDS = {"window": _window(20), "window_dev": _positive(2.0, 10)}


def _stoch_params(threshold: float) -> dict[str, Param]:
    return {"window": _window(14), "smooth_window": Param(int, 3, 1, 100), "threshold": _level(threshold)}


CONDITIONS: dict[str, Condition] = {c.name: c for c in (
    Condition("rsi_oversold", {"window": _window(14), "threshold": _level(30)},
              _rsi_zone(below=True), "RSI under threshold"),
    Condition("rsi_overbought", {"window": _window(14), "threshold": _level(70)},
              _rsi_zone(below=False), "RSI over threshold"),
    Condition("macd_bullish_cross", _MACD, _macd_cross(up=True), "MACD line over its signal line",
              windows_ordered=True),
    Condition("macd_bearish_cross", _MACD, _macd_cross(up=False), "MACD line under its signal line",
              windows_ordered=True),
    Condition("ema_cross_up", _CROSS, _ma_cross(ema, up=True), "fast EMA over slow EMA",
              windows_ordered=True),
    Condition("ema_cross_down", _CROSS, _ma_cross(ema, up=False), "fast EMA under slow EMA",
              windows_ordered=True),
    Condition("sma_cross_up", _CROSS, _ma_cross(sma, up=True), "fast SMA over slow SMA",
              windows_ordered=True),
    Condition("sma_cross_down", _CROSS, _ma_cross(sma, up=False), "fast SMA under slow SMA",
              windows_ordered=True),
    Condition("price_above_sma", {"window": _window(20)}, _price_vs(sma, above=True), "close over SMA"),
    Condition("price_below_sma", {"window": _window(20)}, _price_vs(sma, above=False), "close under SMA"),
    Condition("price_above_ema", {"window": _window(20)}, _price_vs(ema, above=True), "close over EMA"),
    Condition("price_below_ema", {"window": _window(20)}, _price_vs(ema, above=False), "close under EMA"),
    Condition("bollinger_lower_touch", _BANDS, _band_touch(lower=True), "low at or under the lower band"),
    Condition("bollinger_upper_touch", _BANDS, _band_touch(lower=False), "high at or over the upper band"),
    Condition("stoch_oversold", _stoch_params(20), _stoch_zone(below=True), "slow %K under threshold"),
    Condition("stoch_overbought", _stoch_params(80), _stoch_zone(below=False), "slow %K over threshold"),
    Condition("adx_trending", {"window": _window(14), "threshold": _level(25)}, _adx_trending,
              "ADX over threshold"),
    Condition("volume_spike", {"window": _window(20), "threshold": _positive(2.0)}, _volume_spike,
              "volume over threshold x its SMA (the SMA includes the bar)"),
    Condition("atr_breakout", {"window": _window(14), "threshold": _positive(1.0)}, _atr_breakout,
              "close - previous close over threshold x ATR"),
)}


# ---- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A condition used as a TRIGGER or a FILTER on one timeframe. Construction validates and
    fills every param with its default, so two spellings of one rule compare equal."""

    name: str
    signal_type: SignalType
    timeframe: str
    params: Mapping[str, float] = field(default_factory=dict)
    key: tuple[Any, ...] = field(init=False, repr=False, compare=False)  # the cache's key
    _state_key: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _condition(self.name)
        kind = self.signal_type.upper() if isinstance(self.signal_type, str) else None
        if kind not in SignalType.__members__:
            raise RuleError(f"{self.name}: signal_type must be TRIGGER or FILTER, not {self.signal_type!r}")
        if not isinstance(self.timeframe, str):
            raise RuleError(f"{self.name}: timeframe must be a string, not {self.timeframe!r}")
        try:
            tf = canonical_timeframe(self.timeframe)
        except TradewireError as exc:
            raise RuleError(f"{self.name}: {exc.message}") from None
        params = _params(CONDITIONS[self.name], self.params)
        object.__setattr__(self, "signal_type", SignalType(kind))
        object.__setattr__(self, "timeframe", tf)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "key", (self.name, SignalType(kind), tuple(sorted(params.items()))))
        object.__setattr__(self, "_state_key", (self.name, self.key[2]))

    def __hash__(self) -> int:
        return hash((self.key, self.timeframe))

    @property
    def condition(self) -> Condition:
        return CONDITIONS[self.name]

    def state(self, bars: Bars, cache: IndicatorCache | None = None) -> tuple[Mask, Mask]:
        """(holds, defined) per bar; the TRIGGER and FILTER of one condition share it."""
        def compute() -> tuple[Mask, Mask]:
            holds, defined = self.condition.state(bars, cache, self.params)
            return _frozen(holds), _frozen(defined)
        return cached(cache, bars, "state", self._state_key, compute)

    def evaluate(self, bars: Bars, cache: IndicatorCache | None = None) -> Mask:
        """The rule on every bar: True where the FILTER holds or the TRIGGER fires."""
        def compute() -> Mask:
            holds, defined = self.state(bars, cache)
            if self.signal_type is SignalType.FILTER:
                return holds
            fired = np.zeros(len(holds), dtype=bool)
            fired[1:] = holds[1:] & ~holds[:-1] & defined[:-1]
            return _frozen(fired)
        return cached(cache, bars, "rule", self.key, compute)

    def holds_at_last(self, bars: Bars, cache: IndicatorCache | None = None) -> bool:
        """The rule on the latest (closed) bar; False on no bars."""
        return len(bars) > 0 and bool(self.evaluate(bars, cache)[-1])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "signal_type": str(self.signal_type), "timeframe": self.timeframe,
                "params": dict(self.params)}


_RULE_KEYS = frozenset({"name", "signal_type", "timeframe", "params"})


class ParsedOnce(Generic[T]):
    """A parser that keeps what it parsed by the JSON object's spelling and hands the same
    (immutable) value back for the same spelling: a bulk evaluation parses 10,000 strategies,
    and their rules, configs and flat states are a few of a small vocabulary. `spelling` gives
    a hashable key of an object's plain values, or None for anything else, which is parsed
    the long way each time, as is a spelling the parse refuses. Bounded: past `limit`
    spellings a new one is parsed each time."""

    def __init__(self, spelling: Callable[[Any], Hashable | None], parse: Callable[[Any], T],
                 limit: int = 4096) -> None:
        self._spelling, self._parse, self._limit = spelling, parse, limit
        self._memo: dict[Hashable, T] = {}

    def __call__(self, raw: Any) -> T:
        key = self._spelling(raw)
        if key is None:
            return self._parse(raw)
        value = self._memo.get(key)
        if value is None:
            value = self._parse(raw)
            if len(self._memo) < self._limit:
                self._memo[key] = value
        return value


def parse_rule(raw: Any) -> Rule:
    """A rule from its JSON object: `{name, signal_type, timeframe, params}`; RuleError if bad."""
    return _RULES(raw)


_ABSENT = object()


def _spelling(raw: Any) -> tuple[Any, ...] | None:
    """A key for a rule object `{name, signal_type, timeframe[, params]}` of strings and, in
    params, numbers; None for anything else (parsed the long way, which says what is wrong).
    `1` and `1.0` share a key (a param parses either to the same value); `True` has none."""
    if type(raw) is not dict:
        return None
    name, kind, tf = raw.get("name"), raw.get("signal_type"), raw.get("timeframe")
    if type(name) is not str or type(kind) is not str or type(tf) is not str:
        return None
    params = raw.get("params", _ABSENT)
    if len(raw) != (3 if params is _ABSENT else 4):
        return None  # an unknown field
    if params is _ABSENT:
        return (name, kind, tf, None)
    if type(params) is not dict:
        return None
    for key, value in params.items():
        if type(key) is not str or (type(value) is not int and type(value) is not float):
            return None
    return (name, kind, tf, frozenset(params.items()))


def _parse_rule(raw: Any) -> Rule:
    if not isinstance(raw, Mapping):
        raise RuleError(f"a rule must be an object, not {type(raw).__name__}")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise RuleError(f"unknown rule field(s) {', '.join(map(str, unknown))}; "
                        f"a rule has {', '.join(sorted(_RULE_KEYS))}")
    if "name" in raw:
        _condition(raw["name"])
    missing = [k for k in ("name", "signal_type", "timeframe") if k not in raw]
    if missing:
        label = f"rule {raw['name']!r}" if "name" in raw else "a rule"
        raise RuleError(f"{label} needs {', '.join(missing)}")
    params = raw.get("params")
    return Rule(raw["name"], raw["signal_type"], raw["timeframe"], {} if params is None else params)


_RULES = ParsedOnce(_spelling, _parse_rule)


def _condition(name: Any) -> Condition:
    condition = CONDITIONS.get(name) if isinstance(name, str) else None
    if condition is None:
        raise RuleError(f"unknown rule {name!r}; known rules: {', '.join(CONDITIONS)}")
    return condition


def _params(condition: Condition, raw: Any) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise RuleError(f"{condition.name}: params must be an object, not {type(raw).__name__}")
    unknown = sorted(set(raw) - set(condition.params))
    if unknown:
        raise RuleError(f"{condition.name}: unknown param(s) {', '.join(map(str, unknown))}; "
                        f"it takes {', '.join(condition.params)}")
    params = {key: spec.parse(f"{condition.name}.{key}", raw.get(key, spec.default))
              for key, spec in condition.params.items()}
    if condition.windows_ordered and params["window_fast"] >= params["window_slow"]:
        raise RuleError(f"{condition.name}: window_fast ({params['window_fast']:g}) must be below "
                        f"window_slow ({params['window_slow']:g})")
    return params


# ---- the data a rule reads ---------------------------------------------------------------------


def bars_for(data: Mapping[str, Bars], timeframe: str, cache: IndicatorCache | None = None) -> Bars:
    """The bars of `timeframe` in `data` (keys in any accepted spelling), or resampled from the
    coarsest finer timeframe there (once per cache); StrategyError when neither is given."""
    if timeframe in data:  # the usual case: canonical keys
        return data[timeframe]
    want = canonical_timeframe(timeframe)
    frames = {canonical_timeframe(k): v for k, v in data.items()}
    if want in frames:
        return frames[want]
    seconds = TIMEFRAMES[want]
    finer = [k for k in frames if TIMEFRAMES[k] < seconds and seconds % TIMEFRAMES[k] == 0]
    if not finer:
        raise StrategyError(f"no {want} bars given, nor bars to build them from", code="NO_MARKET_DATA")
    source_tf = max(finer, key=TIMEFRAMES.__getitem__)
    source = frames[source_tf]
    return cached(cache, source, "resample", (source_tf, want), lambda: resample(source, source_tf, want))
