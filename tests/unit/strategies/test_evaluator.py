"""Strategies: parsing the evaluation API's JSON, and when entries and exits fire.

The bars [10, 9, 10] end on a rise: on the last bar "close above SMA(2)" holds and has just
begun (a firing TRIGGER), "close below SMA(2)" neither holds nor fires. Four rules built on
them stand for the four answers a rule can give.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.unit.strategies import HOUR, START, bars_of, goog
from tradewire.strategies.bars import Bars
from tradewire.strategies.evaluator import (
    Strategy,
    entry_series,
    entry_signal,
    exit_series,
    exit_signal,
    fires,
    parse_strategy,
)
from tradewire.strategies.execution import ExecutionConfig, StopLossCalculation
from tradewire.strategies.rules import IndicatorCache, Rule, RuleError, StrategyError

RISE = bars_of([10.0, 9.0, 10.0])
FIRING = Rule("price_above_sma", "TRIGGER", "1h", {"window": 2})
SILENT = Rule("price_below_sma", "TRIGGER", "1h", {"window": 2})
HOLDING = Rule("price_above_sma", "FILTER", "1h", {"window": 2})
FAILING = Rule("price_below_sma", "FILTER", "1h", {"window": 2})
RULES = {"firing": FIRING, "silent": SILENT, "holding": HOLDING, "failing": FAILING}


def strategy(entry: list[Rule], exit_: list[Rule] | None = None) -> Strategy:
    return Strategy("s", "BTC/USDT", tuple(entry), tuple(exit_ or ()))


@pytest.mark.parametrize(("names", "expected"), [
    (["firing"], True),
    (["silent"], False),
    (["firing", "silent"], True),  # one trigger is enough
    (["firing", "holding"], True),
    (["firing", "failing"], False),  # every filter must hold
    (["firing", "holding", "failing"], False),
    (["silent", "holding"], False),  # a trigger must fire when there are any
    (["holding"], True),  # no trigger: the filters holding is enough
    (["holding", "holding"], True),
    (["holding", "failing"], False),
    (["failing"], False),
])
def test_an_entry_fires_when_a_trigger_fires_and_every_filter_holds(names: list[str], expected: bool) -> None:
    rules = [RULES[n] for n in names]
    assert entry_signal(strategy(rules), {"1h": RISE}) is expected
    assert entry_series(strategy(rules), {"1h": RISE})[-1] == expected
    triggers = [r is FIRING for r in rules if r.signal_type == "TRIGGER"]
    filters = [r is HOLDING for r in rules if r.signal_type == "FILTER"]
    assert fires(triggers, filters) is expected


@pytest.mark.parametrize(("triggers", "filters", "expected"), [
    ([], [], False),  # no rules: nothing fires
    ([True], [], True),
    ([False], [], False),
    ([], [True], True),
    ([False, True], [True, True], True),
    ([True], [True, False], False),
])
def test_the_combination_rule(triggers: list[bool], filters: list[bool], expected: bool) -> None:
    assert fires(triggers, filters) is expected


def test_exits_read_the_exit_rules_the_same_way() -> None:
    assert exit_signal(strategy([SILENT], [FIRING, HOLDING]), {"1h": RISE})
    assert not exit_signal(strategy([FIRING], [FIRING, FAILING]), {"1h": RISE})


def test_a_strategy_without_exit_rules_never_signals_an_exit() -> None:
    s = strategy([FIRING])
    assert not exit_signal(s, {"1h": RISE})
    assert not exit_series(s, {"1h": RISE}).any()


def test_each_rule_reads_the_latest_bar_of_its_own_timeframe() -> None:
    fall = bars_of([10.0, 11.0, 10.0])
    s = strategy([FIRING, Rule("price_below_sma", "FILTER", "4h", {"window": 2})])
    assert entry_signal(s, {"1h": RISE, "4h": fall})
    assert not entry_signal(s, {"1h": RISE, "4h": RISE})
    daily = strategy([FIRING, Rule("price_below_sma", "FILTER", "1d", {"window": 2})])
    assert entry_signal(daily, {"1h": RISE, "1D": fall})  # data keys in any accepted spelling


def test_a_timeframe_that_is_not_given_is_resampled_from_a_finer_one() -> None:
    cache = IndicatorCache()
    s = strategy([Rule("price_above_sma", "FILTER", "4h", {"window": 2})])
    hourly = bars_of([10.0] * 4 + [12.0] * 4)  # 4h closes 10, 12: the last is above its SMA(2)
    assert entry_signal(s, {"1h": hourly}, cache)
    entry_signal(s, {"1h": hourly}, cache)
    assert cache.computed["resample"] == 1


def test_missing_market_data_is_a_clear_error() -> None:
    s = strategy([Rule("price_above_sma", "FILTER", "1h", {"window": 2})])
    with pytest.raises(StrategyError, match="no 1h bars given") as caught:
        entry_signal(s, {"4h": RISE})
    assert caught.value.code == "NO_MARKET_DATA"


# ---- series ------------------------------------------------------------------------------------


def test_the_series_answers_what_the_live_evaluator_answers_at_every_bar() -> None:
    daily = goog().tail(400)
    s = strategy([Rule("rsi_oversold", "FILTER", "1d", {"threshold": 45}),
                  Rule("price_above_ema", "TRIGGER", "1d", {"window": 10}),
                  Rule("sma_cross_up", "TRIGGER", "1d", {"window_fast": 5, "window_slow": 10})],
                 [Rule("rsi_overbought", "TRIGGER", "1d", {"threshold": 60})])
    entries, exits = entry_series(s, {"1d": daily}), exit_series(s, {"1d": daily})
    assert entries.any()
    assert exits.any()
    for n in range(1, len(daily) + 1):
        assert entries[n - 1] == entry_signal(s, {"1d": daily.head(n)})
        assert exits[n - 1] == exit_signal(s, {"1d": daily.head(n)})


def five_minute_bars(hour_closes: list[float]) -> Bars:
    """Twelve 5m bars per hour, each at that hour's close."""
    closes = np.repeat(hour_closes, 12)
    return bars_of(closes, step=300)


def test_a_higher_timeframe_rule_reads_its_last_completed_bar() -> None:
    # Hours 0-2 close at 10, 9, 10: the 02:00 hour is above its SMA(2). It closes at 03:00, so
    # from 5m bars the filter first holds on the 5m bar that closes at 03:00 (02:55-03:00).
    five = five_minute_bars([10.0, 9.0, 10.0, 10.0])
    s = strategy([Rule("price_above_sma", "FILTER", "1h", {"window": 2}),
                  Rule("price_above_sma", "FILTER", "5m", {"window": 500})])  # never holds
    assert not entry_series(s, {"5m": five}).any()
    s = strategy([Rule("price_above_sma", "FILTER", "1h", {"window": 2})])
    series = entry_series(s, {"5m": five}, timeframe="5m")
    closes_at = five.ts + 300
    assert np.flatnonzero(series).tolist() == np.flatnonzero(
        (closes_at >= START + 3 * HOUR) & (closes_at < START + 4 * HOUR)).tolist()


def test_a_higher_timeframe_series_matches_live_evaluation_on_both_timeframes() -> None:
    rng = np.random.default_rng(7)
    closes = 100 + np.cumsum(rng.normal(0, 1, 24 * 12 * 4))
    five = bars_of(closes, step=300)
    s = strategy([Rule("price_above_sma", "TRIGGER", "5m", {"window": 3}),
                  Rule("rsi_overbought", "FILTER", "1h", {"window": 5, "threshold": 50})])
    series = entry_series(s, {"5m": five})
    assert series.any()
    for n in range(1, len(five) + 1, 7):
        assert series[n - 1] == entry_signal(s, {"5m": five.head(n)})


def test_a_rule_finer_than_the_series_timeframe_is_refused() -> None:
    s = strategy([Rule("price_above_sma", "FILTER", "5m", {"window": 2})])
    with pytest.raises(StrategyError, match="a 5m rule cannot be read from 1h bars"):
        entry_series(s, {"1h": RISE, "5m": RISE}, timeframe="1h")


# ---- parsing -----------------------------------------------------------------------------------

SEED_EXAMPLE: dict[str, Any] = {
    "name": "btc_rsi_test",
    "asset": "BTC",
    "rules": {
        "name": "btc_rsi_test",
        "asset": "BTC",
        "entry": [
            {"name": "rsi_oversold", "signal_type": "TRIGGER", "timeframe": "1h",
             "params": {"window": 14, "threshold": 30}},
            {"name": "macd_bullish_cross", "signal_type": "FILTER", "timeframe": "1h",
             "params": {"window_fast": 12, "window_slow": 26, "window_sign": 9}},
        ],
        "exit": [],
    },
    "execution_config": {"max_risk_per_trade": 0.01, "reward_factor": 2,
                         "stop_loss_calculation": "dynamic_atr", "atr_period": 14,
                         "atr_volatility_factor": 2.0},
    "execution_state": {"cash_balance": 10000.0, "account_value": 10000.0, "total_trades": 0,
                        "num_open_positions": 0},
}


def test_the_seed_example_parses() -> None:
    s = parse_strategy(SEED_EXAMPLE)
    assert (s.name, s.asset) == ("btc_rsi_test", "BTC")
    assert [r.name for r in s.entry] == ["rsi_oversold", "macd_bullish_cross"]
    assert s.exit == ()
    assert s.execution_config == ExecutionConfig()
    assert s.execution_config.stop_loss_calculation is StopLossCalculation.DYNAMIC_ATR
    assert s.base_timeframe == "1h"


def test_a_strategy_round_trips_through_its_dict() -> None:
    s = parse_strategy(SEED_EXAMPLE)
    assert parse_strategy(s.to_dict()) == s


def test_the_bare_rules_object_is_a_strategy_too() -> None:
    s = parse_strategy(SEED_EXAMPLE["rules"])
    assert s.name == "btc_rsi_test"
    assert s.execution_config == ExecutionConfig()


def test_timeframes_are_listed_shortest_first() -> None:
    s = strategy([Rule("rsi_oversold", "TRIGGER", "1d"), Rule("rsi_oversold", "FILTER", "5m")],
                 [Rule("rsi_overbought", "TRIGGER", "1h")])
    assert s.timeframes == ("5m", "1h", "1d")
    assert s.base_timeframe == "5m"


def with_rules(**changes: Any) -> dict[str, Any]:
    return {**SEED_EXAMPLE, "rules": {**SEED_EXAMPLE["rules"], **changes}}


@pytest.mark.parametrize(("raw", "message"), [
    ([], "a strategy must be an object"),
    ({**SEED_EXAMPLE, "rules": []}, "strategy.rules must be an object"),
    (with_rules(name="other"), "strategy name and rules.name differ"),
    ({**with_rules(name=None), "name": None}, "strategy name must be a non-empty string"),
    ({**with_rules(asset=None), "asset": ""}, "strategy asset must be a non-empty string"),
    (with_rules(entry=[]), "has no entry rules"),
    (with_rules(entry={"name": "rsi_oversold"}), "rules.entry must be a list"),
    (with_rules(exit=[{"name": "rsi_overbought", "signal_type": "TRIGGER", "timeframe": "3h"}]),
     "exit[0]: rsi_overbought: unknown timeframe '3h'"),
    (with_rules(entry=[SEED_EXAMPLE["rules"]["entry"][0], {"name": "nope"}]), "entry[1]: unknown rule"),
    ({**SEED_EXAMPLE, "execution_config": {"max_risk": 0.02}}, "unknown execution_config field(s) max_risk"),
    ({**SEED_EXAMPLE, "execution_config": {"reward_factor": -1}}, "execution_config.reward_factor must be"),
])
def test_bad_strategies_are_refused_with_a_clear_message(raw: Any, message: str) -> None:
    with pytest.raises(StrategyError) as caught:
        parse_strategy(raw)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_bad_rule_in_a_strategy_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match=r"entry\[1\]"):
        parse_strategy(with_rules(entry=[SEED_EXAMPLE["rules"]["entry"][0], {"name": "nope"}]))
