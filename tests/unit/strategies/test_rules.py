"""Rules on hand-built bars where the answer is known, their params, and no look-ahead.

A FILTER holds while its condition does; a TRIGGER fires on the bar where the condition begins
(it did not hold on the bar before, where the indicator was already defined).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.unit.strategies import bars_of, goog
from tradewire.strategies.bars import Bars
from tradewire.strategies.rules import CONDITIONS, IndicatorCache, Rule, RuleError, parse_rule, rsi


def where(name: str, signal_type: str, bars: Bars, **params: Any) -> list[int]:
    """The bars on which the rule is True."""
    return np.flatnonzero(Rule(name, signal_type, "1h", params).evaluate(bars)).tolist()


# ---- RSI: a series whose RSI has a closed form -------------------------------------------------
# Every close moves by exactly 1, so Wilder's average gain g and average loss l always sum to 1
# and RSI = 100 g. Rising 20 bars: g = 1. Then k falling bars: g = (13/14)^k, under 0.3 from
# k = 17 on (index 37). Then m rising bars: g = 1 - (1 - g)(13/14)^m, back over 0.3 at m = 3.

RSI_SERIES = bars_of([*range(100, 121), *range(119, 94, -1), *range(96, 136)])
G25 = (13 / 14) ** 25


def closed_form_rsi(i: int) -> float:
    if i <= 20:
        return 100.0
    if i <= 45:
        return 100 * (13 / 14) ** (i - 20)
    return 100 * (1 - (1 - G25) * (13 / 14) ** (i - 45))


def test_rsi_follows_the_closed_form() -> None:
    expected = [closed_form_rsi(i) for i in range(14, len(RSI_SERIES))]
    np.testing.assert_allclose(rsi(RSI_SERIES, 14)[14:], expected, rtol=1e-9)


def test_rsi_oversold_triggers_on_the_bar_it_crosses_under_30() -> None:
    assert where("rsi_oversold", "TRIGGER", RSI_SERIES) == [37]


def test_rsi_oversold_filter_holds_while_rsi_is_under_30() -> None:
    assert where("rsi_oversold", "FILTER", RSI_SERIES) == list(range(37, 48))


def test_rsi_overbought_triggers_when_rsi_climbs_back_over_70() -> None:
    # (1 - g25)(13/14)^m < 0.3 first at m = 14: index 59. The rise at the start does not count:
    # RSI is born at 100, so it never crossed.
    assert where("rsi_overbought", "TRIGGER", RSI_SERIES) == [59]
    assert where("rsi_overbought", "FILTER", RSI_SERIES)[:8] == [14, 15, 16, 17, 18, 19, 20, 21]


def test_a_lower_threshold_crosses_later() -> None:
    # (13/14)^k < 0.2 from k = 22 on.
    assert where("rsi_oversold", "TRIGGER", RSI_SERIES, threshold=20) == [42]


# ---- averages: flat at 100, a jump to 110, a drop to 90 ----------------------------------------

STEPS = bars_of([100.0] * 60 + [110.0] * 30 + [90.0] * 30)


@pytest.mark.parametrize(("name", "signal_type", "expected"), [
    ("ema_cross_up", "TRIGGER", [60]),
    ("ema_cross_down", "TRIGGER", [90]),
    ("ema_cross_up", "FILTER", list(range(60, 90))),
    ("sma_cross_up", "TRIGGER", [60]),
    ("sma_cross_down", "TRIGGER", [90]),
    ("sma_cross_up", "FILTER", list(range(60, 85))),  # both SMAs are 110 from bar 85 on: no longer over
    ("price_above_sma", "TRIGGER", [60]),
    ("price_below_sma", "TRIGGER", [90]),
    ("price_above_ema", "TRIGGER", [60]),
    ("price_below_ema", "TRIGGER", [90]),
    ("macd_bullish_cross", "TRIGGER", [60, 104]),  # the signal line lags the MACD line each way
    ("macd_bearish_cross", "TRIGGER", [74]),
])
def test_average_crosses_fire_on_the_bar_the_price_steps(name: str, signal_type: str,
                                                         expected: list[int]) -> None:
    assert where(name, signal_type, STEPS) == expected


def test_a_macd_drop_is_a_bearish_cross_on_the_bar_of_the_drop() -> None:
    drop = bars_of([100.0] * 60 + [90.0] * 5)
    assert where("macd_bearish_cross", "TRIGGER", drop) == [60]
    assert where("macd_bullish_cross", "TRIGGER", drop) == []


def test_windows_are_read_from_the_params() -> None:
    # The SMA(5) of the step reaches 110 five bars in: the close is no longer above it.
    assert where("price_above_sma", "FILTER", STEPS, window=5) == [60, 61, 62, 63]


# ---- bands, stochastic, ADX, volume, ATR -------------------------------------------------------


def test_bollinger_touches_fire_on_the_bar_that_reaches_a_band() -> None:
    # Closes 100, 101, ...: SMA 100.5, standard deviation 0.5, bands 99.5 and 101.5 (95.5 at 10).
    closes = [100.0, 101.0] * 20 + [100.0, 100.5]
    lows, highs = list(closes), list(closes)
    lows[40], highs[41] = 97.0, 110.0
    bars = bars_of(closes, lows=lows, highs=highs)
    assert where("bollinger_lower_touch", "TRIGGER", bars) == [40]
    assert where("bollinger_upper_touch", "TRIGGER", bars) == [41]
    assert where("bollinger_lower_touch", "FILTER", bars, window_dev=10) == []


def test_stoch_oversold_triggers_when_the_smoothed_k_falls_under_20() -> None:
    # Rising: raw %K is 100; then each close is the lowest of its window: 0. Smoothed over 3:
    # 66.7, 33.3, then 0 on the third bar down.
    bars = bars_of([float(x) for x in range(100, 130)] + [float(x) for x in range(90, 80, -1)])
    assert where("stoch_oversold", "TRIGGER", bars) == [32]
    assert where("stoch_oversold", "FILTER", bars, threshold=40) == list(range(31, 40))


def test_stoch_overbought_holds_on_a_rise_but_never_triggered_from_warm_up() -> None:
    bars = bars_of([float(x) for x in range(100, 130)])
    assert where("stoch_overbought", "FILTER", bars) == list(range(15, 30))
    assert where("stoch_overbought", "TRIGGER", bars) == []


def test_adx_trending_holds_in_a_steady_trend_and_not_in_a_chop() -> None:
    trend = np.arange(100.0, 160.0)
    chop = np.array([100.0, 101.0] * 30)
    trending = bars_of(trend, highs=trend + 0.5, lows=trend - 0.5)
    choppy = bars_of(chop, highs=chop + 0.5, lows=chop - 0.5)
    assert Rule("adx_trending", "FILTER", "1h").holds_at_last(trending)
    assert not Rule("adx_trending", "FILTER", "1h").holds_at_last(choppy)


@pytest.mark.parametrize(("threshold", "expected"), [(2.0, [30]), (6.8, [30]), (7.0, [])])
def test_a_volume_spike_is_volume_over_threshold_times_its_average(threshold: float,
                                                                   expected: list[int]) -> None:
    # The SMA(20) at the spike includes it: (19 x 100 + 1000) / 20 = 145; 1000 / 145 = 6.9.
    volumes = [100.0] * 40
    volumes[30] = 1000.0
    bars = bars_of([100.0] * 40, volumes=volumes)
    assert where("volume_spike", "TRIGGER", bars, threshold=threshold) == expected
    assert where("volume_spike", "FILTER", bars, threshold=threshold) == expected


@pytest.mark.parametrize(("threshold", "expected"), [(1.0, [30]), (1.39, [30]), (1.41, [])])
def test_an_atr_breakout_is_a_rise_over_threshold_times_atr(threshold: float, expected: list[int]) -> None:
    # True ranges of 2, then a bar from 100 to 103 with range 102-104: TR 4, ATR (13 x 2 + 4) / 14
    # = 2.143; the rise of 3 is 1.4 ATR.
    closes = [100.0] * 30 + [103.0, 103.0]
    bars = bars_of(closes, highs=[c + 1 for c in closes], lows=[c - 1 for c in closes])
    assert where("atr_breakout", "TRIGGER", bars, threshold=threshold) == expected


# ---- warm-up and no look-ahead -----------------------------------------------------------------


def test_no_rule_is_true_while_its_indicator_warms_up() -> None:
    short = bars_of([100.0, 90.0, 80.0, 70.0, 60.0])
    for name in CONDITIONS:
        for signal_type in ("TRIGGER", "FILTER"):
            assert not Rule(name, signal_type, "1h").evaluate(short).any(), name


@pytest.mark.parametrize("name", list(CONDITIONS))
@pytest.mark.parametrize("signal_type", ["TRIGGER", "FILTER"])
def test_appending_bars_never_changes_an_earlier_value(name: str, signal_type: str) -> None:
    bars = goog()
    rule = Rule(name, signal_type, "1d")
    full = rule.evaluate(bars, IndicatorCache())
    for n in (1, 30, 34, 35, 100, 1000, 2147):
        np.testing.assert_array_equal(rule.evaluate(bars.head(n), IndicatorCache()), full[:n])
        assert rule.holds_at_last(bars.head(n)) == bool(full[n - 1])


# ---- params and parsing ------------------------------------------------------------------------


def test_a_rule_fills_in_default_params_and_canonical_spellings() -> None:
    rule = parse_rule({"name": "rsi_oversold", "signal_type": "trigger", "timeframe": "1D"})
    assert rule.params == {"window": 14, "threshold": 30.0}
    assert rule.timeframe == "1d"
    assert rule.signal_type == "TRIGGER"
    assert rule == Rule("rsi_oversold", "TRIGGER", "1d", {"window": 14.0, "threshold": 30})
    assert hash(rule) == hash(Rule("rsi_oversold", "TRIGGER", "1d", {"window": 14}))


def test_every_condition_has_ta_library_param_names_and_defaults() -> None:
    macd = {"window_fast": 12, "window_slow": 26, "window_sign": 9}
    cross = {"window_fast": 12, "window_slow": 26}
    bands = {"window": 20, "window_dev": 2}
    expected = {
        "rsi_oversold": {"window": 14, "threshold": 30}, "rsi_overbought": {"window": 14, "threshold": 70},
        "macd_bullish_cross": macd, "macd_bearish_cross": macd,
        "ema_cross_up": cross, "ema_cross_down": cross, "sma_cross_up": cross, "sma_cross_down": cross,
        "price_above_sma": {"window": 20}, "price_below_sma": {"window": 20},
        "price_above_ema": {"window": 20}, "price_below_ema": {"window": 20},
        "bollinger_lower_touch": bands, "bollinger_upper_touch": bands,
        "stoch_oversold": {"window": 14, "smooth_window": 3, "threshold": 20},
        "stoch_overbought": {"window": 14, "smooth_window": 3, "threshold": 80},
        "adx_trending": {"window": 14, "threshold": 25},
        "volume_spike": {"window": 20, "threshold": 2.0}, "atr_breakout": {"window": 14, "threshold": 1.0},
    }
    assert {name: Rule(name, "FILTER", "1h").params for name in CONDITIONS} == expected


def test_a_rule_round_trips_through_its_dict() -> None:
    rule = Rule("macd_bullish_cross", "FILTER", "4h", {"window_fast": 8})
    assert parse_rule(rule.to_dict()) == rule


RSI = {"name": "rsi_oversold", "signal_type": "TRIGGER", "timeframe": "1h"}


@pytest.mark.parametrize(("raw", "message"), [
    ({**RSI, "name": "rsi_low"}, "unknown rule 'rsi_low'; known rules: rsi_oversold, "),
    ({**RSI, "signal_type": "ENTRY"}, "signal_type must be TRIGGER or FILTER, not 'ENTRY'"),
    ({**RSI, "signal_type": 1}, "signal_type must be TRIGGER or FILTER"),
    ({**RSI, "timeframe": "2h"}, "rsi_oversold: unknown timeframe '2h'"),
    ({**RSI, "timeframe": 60}, "timeframe must be a string"),
    ({**RSI, "params": {"period": 14}}, "unknown param(s) period; it takes window, threshold"),
    ({**RSI, "params": {"window": "14"}}, "rsi_oversold.window must be an integer, not '14'"),
    ({**RSI, "params": {"window": 14.5}}, "rsi_oversold.window must be an integer, not 14.5"),
    ({**RSI, "params": {"window": True}}, "rsi_oversold.window must be an integer, not True"),
    ({**RSI, "params": {"window": None}}, "rsi_oversold.window must be an integer, not None"),
    ({**RSI, "params": {"threshold": "30"}}, "rsi_oversold.threshold must be a number"),
    ({**RSI, "params": {"window": 1}}, "rsi_oversold.window must be in [2, 5000], not 1"),
    ({**RSI, "params": {"threshold": 101}}, "rsi_oversold.threshold must be in [0, 100], not 101.0"),
    ({**RSI, "params": {"threshold": float("nan")}}, "rsi_oversold.threshold must be in [0, 100]"),
    ({**RSI, "name": "volume_spike", "params": {"threshold": 0}},
     "volume_spike.threshold must be in (0, 1000]"),
    ({**RSI, "name": "ema_cross_up", "params": {"window_fast": 26, "window_slow": 12}},
     "ema_cross_up: window_fast (26) must be below window_slow (12)"),
    ({**RSI, "name": "macd_bullish_cross", "params": {"window_fast": 26}}, "window_fast (26) must be below"),
    ({**RSI, "params": [14, 30]}, "rsi_oversold: params must be an object, not list"),
    ({**RSI, "when": "now"}, "unknown rule field(s) when"),
    ({"name": "rsi_oversold", "signal_type": "TRIGGER"}, "rule 'rsi_oversold' needs timeframe"),
    ({}, "a rule needs name, signal_type, timeframe"),
    ("rsi_oversold", "a rule must be an object, not str"),
])
def test_bad_rules_are_refused_with_a_clear_message(raw: Any, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(raw)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == "INVALID_RULE"


def test_params_may_be_null_for_all_defaults() -> None:
    assert parse_rule({**RSI, "params": None}).params == {"window": 14, "threshold": 30.0}
