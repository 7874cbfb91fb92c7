"""Strategies (entry and exit rules plus an execution config) and when their signals fire.

An entry fires when every FILTER holds and at least one TRIGGER fires, each on the latest
closed bar of its own timeframe. With no TRIGGER, every FILTER holding is enough; with no rules
at all nothing fires. Exits are read the same way from the exit rules.

The `*_series` functions give the same answer for every bar of one base timeframe, for the
backtester. A rule on a higher timeframe is seen through its last *completed* bar: from 5m bars,
a 1h rule at 10:55-11:00 reads the 10:00 hour, which closed at 11:00, and at 10:50-10:55 the
9:00 hour. That is also what the live evaluator sees when polled at each base bar's close, so a
1h TRIGGER seen from 5m bars stays fired for the twelve 5m bars of the next hour.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tradewire.strategies.bars import TIMEFRAMES, Bars
from tradewire.strategies.bars import timeframe as canonical_timeframe
from tradewire.strategies.execution import ExecutionConfig
from tradewire.strategies.rules import (
    IndicatorCache,
    Mask,
    Rule,
    RuleError,
    SignalType,
    StrategyError,
    bars_for,
    parse_rule,
)


@dataclass(frozen=True)
class Strategy:
    name: str
    asset: str
    entry: tuple[Rule, ...]
    exit: tuple[Rule, ...] = ()
    execution_config: ExecutionConfig = field(default_factory=ExecutionConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entry", tuple(self.entry))
        object.__setattr__(self, "exit", tuple(self.exit))
        if not self.entry:
            raise StrategyError(f"strategy {self.name!r} has no entry rules")

    @functools.cached_property
    def timeframes(self) -> tuple[str, ...]:
        """Every timeframe its rules read, shortest first."""
        return tuple(sorted({r.timeframe for r in (*self.entry, *self.exit)}, key=TIMEFRAMES.__getitem__))

    @property
    def base_timeframe(self) -> str:
        """The shortest: execution and backtests step bar by bar on it."""
        return self.timeframes[0]

    def entry_signal(self, data: Mapping[str, Bars], cache: IndicatorCache | None = None) -> bool:
        return entry_signal(self, data, cache)

    def exit_signal(self, data: Mapping[str, Bars], cache: IndicatorCache | None = None) -> bool:
        return exit_signal(self, data, cache)

    def to_dict(self) -> dict[str, Any]:
        rules = {"name": self.name, "asset": self.asset, "entry": [r.to_dict() for r in self.entry],
                 "exit": [r.to_dict() for r in self.exit]}
        return {"name": self.name, "asset": self.asset, "rules": rules,
                "execution_config": self.execution_config.to_dict()}


def parse_strategy(raw: Any) -> Strategy:
    """A strategy from the evaluation API's object: `{name, asset, rules: {name, asset, entry,
    exit}, execution_config}`; the bare rules object `{name, asset, entry, exit}` is read too.

    Rules and execution_config are strict (an unknown key is refused); other keys of the outer
    object (`execution_state`, ids) belong to the caller and are left alone.
    """
    if not isinstance(raw, Mapping):
        raise StrategyError("a strategy must be an object")
    rules = raw.get("rules", raw)
    if not isinstance(rules, Mapping):
        raise StrategyError("strategy.rules must be an object with entry and exit lists")
    name, asset = _same(raw, rules, "name"), _same(raw, rules, "asset")
    entry = _rules(rules, "entry")
    config = ExecutionConfig.from_dict(raw.get("execution_config", rules.get("execution_config")))
    return Strategy(name=name, asset=asset, entry=entry, exit=_rules(rules, "exit"),
                    execution_config=config)


def entry_signal(strategy: Strategy, data: Mapping[str, Bars], cache: IndicatorCache | None = None) -> bool:
    """Whether the entry rules fire on the latest closed bars of `data` (timeframe -> bars)."""
    return _fires(strategy.entry, data, cache)


def exit_signal(strategy: Strategy, data: Mapping[str, Bars], cache: IndicatorCache | None = None) -> bool:
    """Whether the exit rules fire; False for a strategy without exit rules."""
    return _fires(strategy.exit, data, cache)


def entry_series(strategy: Strategy, data: Mapping[str, Bars], cache: IndicatorCache | None = None,
                 *, timeframe: str | None = None) -> Mask:
    """`entry_signal` at every bar of `timeframe` (default: the strategy's base timeframe)."""
    return _series(strategy.entry, data, cache, timeframe or strategy.base_timeframe)


def exit_series(strategy: Strategy, data: Mapping[str, Bars], cache: IndicatorCache | None = None,
                *, timeframe: str | None = None) -> Mask:
    """`exit_signal` at every bar of `timeframe`; all False without exit rules."""
    return _series(strategy.exit, data, cache, timeframe or strategy.base_timeframe)


def fires(triggers: Sequence[bool], filters: Sequence[bool]) -> bool:
    """The combination rule: every filter holds, and a trigger fires if there are any."""
    return bool(triggers or filters) and all(filters) and (not triggers or any(triggers))


def _fires(rules: Sequence[Rule], data: Mapping[str, Bars], cache: IndicatorCache | None) -> bool:
    # Filters first: one that fails decides the answer without computing the rest.
    triggers = [r for r in rules if r.signal_type is SignalType.TRIGGER]
    filters = [r for r in rules if r.signal_type is SignalType.FILTER]
    for rule in filters:
        if not rule.holds_at_last(bars_for(data, rule.timeframe, cache), cache):
            return False
    if not triggers:
        return bool(filters)
    return any(r.holds_at_last(bars_for(data, r.timeframe, cache), cache) for r in triggers)


def _series(rules: Sequence[Rule], data: Mapping[str, Bars], cache: IndicatorCache | None,
            timeframe: str) -> Mask:
    tf = canonical_timeframe(timeframe)
    base = bars_for(data, tf, cache)
    triggers = [r for r in rules if r.signal_type is SignalType.TRIGGER]
    filters = [r for r in rules if r.signal_type is SignalType.FILTER]
    out = np.full(len(base), bool(rules))
    for rule in filters:
        out &= _aligned(rule, data, tf, base, cache)
    if triggers:
        fired = np.zeros(len(base), dtype=bool)
        for rule in triggers:
            fired |= _aligned(rule, data, tf, base, cache)
        out &= fired
    return out


def _aligned(rule: Rule, data: Mapping[str, Bars], tf: str, base: Bars, cache: IndicatorCache | None) -> Mask:
    """The rule at each base bar: on its own timeframe's last bar closed by then."""
    if rule.timeframe == tf:
        return rule.evaluate(base, cache)
    step, rule_step = TIMEFRAMES[tf], TIMEFRAMES[rule.timeframe]
    if rule_step < step:
        raise StrategyError(f"a {rule.timeframe} rule cannot be read from {tf} bars")
    higher = bars_for(data, rule.timeframe, cache)
    values = rule.evaluate(higher, cache)
    last_closed = np.searchsorted(higher.ts + rule_step, base.ts + step, side="right") - 1
    out = np.zeros(len(base), dtype=bool)
    seen = last_closed >= 0
    out[seen] = values[last_closed[seen]]
    return out


def _same(outer: Mapping[str, Any], rules: Mapping[str, Any], key: str) -> str:
    values = {v for v in (outer.get(key), rules.get(key)) if v is not None}
    if len(values) > 1:
        raise StrategyError(f"strategy {key} and rules.{key} differ: {sorted(map(str, values))}")
    value = values.pop() if values else None
    if not isinstance(value, str) or not value.strip():
        raise StrategyError(f"strategy {key} must be a non-empty string")
    return value


def _rules(rules: Mapping[str, Any], key: str) -> tuple[Rule, ...]:
    raw = rules.get(key, [])
    if not isinstance(raw, list):
        raise StrategyError(f"rules.{key} must be a list")
    parsed = []
    for i, item in enumerate(raw):
        try:
            parsed.append(parse_rule(item))
        except RuleError as exc:
            raise RuleError(f"{key}[{i}]: {exc.message}") from None
    return tuple(parsed)
