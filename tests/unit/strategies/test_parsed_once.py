"""Rules, execution configs and flat states are parsed once per spelling and shared: the
shared object is the one a fresh parse would give, and a spelling a fresh parse refuses is
refused every time, whatever was parsed before it."""

from __future__ import annotations

from typing import Any

import pytest

from tradewire.strategies.execution import ExecutionConfig, ExecutionState
from tradewire.strategies.rules import Rule, RuleError, StrategyError, parse_rule

RSI = {"name": "rsi_oversold", "signal_type": "TRIGGER", "timeframe": "1h",
       "params": {"window": 14, "threshold": 30}}


def test_one_spelling_gives_one_shared_rule_equal_to_a_fresh_parse() -> None:
    first, second = parse_rule(dict(RSI)), parse_rule(dict(RSI))
    assert first is second
    assert first == Rule("rsi_oversold", "TRIGGER", "1h", {"window": 14, "threshold": 30})
    # Integer and float spellings of a value parse the same.
    assert parse_rule({**RSI, "params": {"window": 14.0, "threshold": 30}}) == first
    # Other spellings of the same rule (no params, lower case) parse to their own equal rules.
    assert parse_rule({**RSI, "signal_type": "trigger"}) == first


@pytest.mark.parametrize("bad", [
    {**RSI, "params": {"window": 14, "threshold": True}},  # True == 1, but not a number here
    {**RSI, "params": {"window": 14.5, "threshold": 30}},
    {**RSI, "colour": "red"},  # an unknown field
    {**RSI, "params": {"window": 14, "threshold": 30, "extra": 1}},
    {**RSI, "timeframe": "7h"},
])
def test_a_spelling_refused_once_is_refused_again_after_good_ones(bad: dict[str, Any]) -> None:
    parse_rule(dict(RSI))
    parse_rule({**RSI, "params": {"window": 14, "threshold": 1}})
    for _ in range(2):
        with pytest.raises(RuleError):
            parse_rule(bad)


def test_execution_configs_are_shared_per_spelling_and_refusals_stay() -> None:
    raw = {"max_open_positions": 1, "stop_loss_calculation": "fixed_percent",
           "max_hold_bars": None}
    first = ExecutionConfig.from_dict(dict(raw))
    assert ExecutionConfig.from_dict(dict(raw)) is first
    assert first == ExecutionConfig(max_open_positions=1, stop_loss_calculation="fixed_percent",
                                    max_hold_bars=None)
    for bad in ({**raw, "max_open_positions": True}, {**raw, "max_open_positions": 0},
                {**raw, "colour": "red"}, {**raw, "stop_loss_calculation": "psychic"}):
        with pytest.raises(StrategyError):
            ExecutionConfig.from_dict(bad)


def test_flat_states_are_shared_per_spelling_and_refusals_stay() -> None:
    raw = {"cash_balance": 500.0, "account_value": 500.0, "total_trades": 1,
           "num_open_positions": 0, "open_positions": [], "trades_today": 1,
           "trading_day": "2026-02-06"}
    first = ExecutionState.from_dict(dict(raw))
    assert ExecutionState.from_dict(dict(raw)) is first
    assert first.to_dict() == raw
    for bad in ({**raw, "total_trades": True}, {**raw, "total_trades": 1.0},
                {**raw, "trades_today": -1},
                {**raw, "trading_day": "Friday"}, {**raw, "num_open_positions": 1}):
        with pytest.raises(StrategyError):
            ExecutionState.from_dict(bad)


def test_a_state_with_open_positions_is_parsed_each_time() -> None:
    raw = {"cash_balance": 0.0, "account_value": 100.0, "open_positions": [
        {"position_id": "p1", "entry_price": 10.0, "position_size": 10.0, "stop_loss": 9.0,
         "take_profit": 12.0, "opened_at": "2026-02-06T15:00:00+00:00"}]}
    first = ExecutionState.from_dict(raw)
    again = ExecutionState.from_dict(raw)
    assert again == first and again is not first
