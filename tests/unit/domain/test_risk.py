"""Pre-trade risk controls: one table per control (an entry past the limit is refused with its
code, one within it passes, and an order that only reduces a position always passes), trading
windows, and the limits' JSON form."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import time
from decimal import Decimal
from typing import Any

import pytest

from tradewire.domain.errors import Rejected
from tradewire.domain.risk import Exposure, RiskLimits, RiskRefused, TradingWindow, check
from tradewire.domain.values import Side

BUY, SELL = Side.BUY, Side.SELL
FLAT = Exposure(position_qty=Decimal(0), price=Decimal(100), open_positions=0,
                orders_last_minute=0, loss_today=Decimal(0), local_time=time(10, 0))


def limits(**raw: Any) -> RiskLimits:
    return RiskLimits.from_dict(raw)


def exposure(**changes: Any) -> Exposure:
    values = {k: Decimal(v) if k in ("position_qty", "price", "loss_today") and v is not None
              else v for k, v in changes.items()}
    return replace(FLAT, **values)


def refusal(rules: RiskLimits, side: Side, qty: str, e: Exposure = FLAT, *, symbol: str = "AAPL",
            global_halt: bool = False) -> str | None:
    """The code check() refuses with, or None when the order passes."""
    try:
        check(rules, symbol=symbol, side=side, qty=Decimal(qty), exposure=e,
              global_halt=global_halt)
    except RiskRefused as refused:
        assert refused.message  # a person reads why, too
        return refused.code
    return None


# One row per control: the limits, the exposure, the entry past the limit and the code; the
# entry within the limit that passes.
CONTROLS = [
    pytest.param(dict(halted=True), {}, (BUY, "1"), "RISK_HALTED",
                 dict(halted=False), (BUY, "1"), id="account-halted"),
    pytest.param(dict(reduce_only=True), {}, (BUY, "1"), "RISK_REDUCE_ONLY",
                 dict(reduce_only=False), (BUY, "1"), id="reduce-only"),
    pytest.param(dict(allowed_symbols=["MSFT"]), {}, (BUY, "1"), "RISK_SYMBOL_NOT_ALLOWED",
                 dict(allowed_symbols=["MSFT", "aapl"]), (BUY, "1"), id="allowed-symbols"),
    pytest.param(dict(blocked_symbols=["AAPL"]), {}, (BUY, "1"), "RISK_SYMBOL_BLOCKED",
                 dict(blocked_symbols=["GME"]), (BUY, "1"), id="blocked-symbols"),
    pytest.param(dict(trading_windows=["09:35-15:55"]), {"local_time": time(9, 34)}, (BUY, "1"),
                 "RISK_OUTSIDE_TRADING_WINDOW",
                 dict(trading_windows=["09:30-15:55"]), (BUY, "1"), id="trading-window"),
    pytest.param(dict(daily_loss_limit=1000), {"loss_today": "1000"}, (BUY, "1"),
                 "RISK_DAILY_LOSS_LIMIT",
                 dict(daily_loss_limit="1000.01"), (BUY, "1"), id="daily-loss-reached"),
    pytest.param(dict(max_orders_per_minute=5), {"orders_last_minute": 5}, (BUY, "1"),
                 "RISK_ORDER_RATE",
                 dict(max_orders_per_minute=6), (BUY, "1"), id="orders-per-minute"),
    pytest.param(dict(max_position_qty=100), {"position_qty": "60"}, (BUY, "41"),
                 "RISK_MAX_POSITION_QTY",
                 dict(max_position_qty=100), (BUY, "40"), id="position-qty-counts-what-is-held"),
    pytest.param(dict(max_position_qty=100), {}, (SELL, "101"), "RISK_MAX_POSITION_QTY",
                 dict(max_position_qty=100), (SELL, "100"), id="position-qty-of-a-short"),
    pytest.param(dict(max_position_notional=25000), {"position_qty": "200"}, (BUY, "51"),
                 "RISK_MAX_POSITION_NOTIONAL",
                 dict(max_position_notional=25000), (BUY, "50"), id="notional-at-the-price"),
    pytest.param(dict(max_position_notional=25000), {"price": None}, (BUY, "1"),
                 "RISK_NO_PRICE",
                 dict(max_position_notional=25000), (BUY, "1"), id="notional-needs-a-price"),
    pytest.param(dict(max_open_positions=3), {"open_positions": 3}, (BUY, "1"),
                 "RISK_MAX_OPEN_POSITIONS",
                 dict(max_open_positions=4), (BUY, "1"), id="open-positions"),
]


@pytest.mark.parametrize(("raw", "state", "entry", "code", "within", "allowed"), CONTROLS)
def test_each_control_refuses_past_its_limit_and_allows_within(
        raw: dict[str, Any], state: dict[str, Any], entry: tuple[Side, str], code: str,
        within: dict[str, Any], allowed: tuple[Side, str]) -> None:
    e = exposure(**state)
    if code == "RISK_NO_PRICE":
        assert refusal(limits(**within), *allowed, exposure()) is None  # priced, it passes
    else:
        assert refusal(limits(**within), *allowed, e) is None
    assert refusal(limits(**raw), *entry, e) == code


# Positions from which an order only reduces: part of a long, part of a short, exactly flat.
REDUCING = [
    pytest.param("100", SELL, "40", id="sell-part-of-a-long"),
    pytest.param("100", SELL, "100", id="close-a-long-exactly"),
    pytest.param("-100", BUY, "40", id="cover-part-of-a-short"),
    pytest.param("-100", BUY, "100", id="cover-a-short-exactly"),
]


@pytest.mark.parametrize(("raw", "state", "entry", "code", "within", "allowed"), CONTROLS)
@pytest.mark.parametrize(("held", "side", "qty"), REDUCING)
def test_an_order_that_only_reduces_passes_every_control(
        raw: dict[str, Any], state: dict[str, Any], entry: tuple[Side, str], code: str,
        within: dict[str, Any], allowed: tuple[Side, str], held: str, side: Side,
        qty: str) -> None:
    # The same limits and facts that refuse the entry, but the account holds a position the
    # order reduces (no price, no window, the loss limit hit, the rate reached ...).
    e = replace(exposure(**state), position_qty=Decimal(held))
    assert refusal(limits(**raw), side, qty, e) is None
    assert refusal(limits(**raw), side, qty, e, global_halt=True) is None


@pytest.mark.parametrize(("held", "side", "qty"), [
    pytest.param("100", SELL, "150", id="long-flipped-short"),
    pytest.param("-100", BUY, "101", id="short-flipped-long"),
    pytest.param("100", BUY, "1", id="add-to-a-long"),
    pytest.param("-100", SELL, "1", id="add-to-a-short"),
    pytest.param("0", SELL, "1", id="open-a-short"),
])
def test_flipping_or_adding_is_an_entry(held: str, side: Side, qty: str) -> None:
    e = exposure(position_qty=held)
    assert refusal(limits(reduce_only=True), side, qty, e) == "RISK_REDUCE_ONLY"
    assert refusal(RiskLimits(), side, qty, e, global_halt=True) == "RISK_HALTED"


def test_the_global_kill_switch_refuses_entries_on_an_account_without_limits() -> None:
    assert refusal(RiskLimits(), BUY, "1", global_halt=True) == "RISK_HALTED"
    assert refusal(RiskLimits(), BUY, "1") is None


def test_refusals_are_rejections_with_a_machine_readable_code() -> None:
    with pytest.raises(Rejected) as caught:
        check(limits(blocked_symbols=["AAPL"]), symbol="AAPL", side=BUY, qty=Decimal(1),
              exposure=FLAT)
    assert caught.value.code == "RISK_SYMBOL_BLOCKED" and "AAPL" in caught.value.message


def test_a_halt_is_named_before_any_other_limit() -> None:
    everything = limits(halted=True, reduce_only=True, blocked_symbols=["AAPL"],
                        max_position_qty=1)
    assert refusal(everything, BUY, "5") == "RISK_HALTED"
    assert refusal(replace(everything, halted=False), BUY, "5") == "RISK_REDUCE_ONLY"


def test_adding_to_a_held_symbol_does_not_count_as_a_new_position() -> None:
    rules = limits(max_open_positions=2)
    assert refusal(rules, BUY, "1", exposure(position_qty="10", open_positions=2)) is None
    assert refusal(rules, BUY, "1", exposure(open_positions=2)) == "RISK_MAX_OPEN_POSITIONS"


def test_no_limits_refuse_nothing() -> None:
    huge = exposure(price=None, open_positions=1000, orders_last_minute=1000,
                    loss_today="1000000", local_time=time(3, 0))
    assert refusal(RiskLimits(), BUY, "1000000", huge) is None


@pytest.mark.parametrize(("window", "at", "holds"), [
    pytest.param("09:30-16:00", time(9, 29), False, id="before-the-start"),
    pytest.param("09:30-16:00", time(9, 30), True, id="at-the-start"),
    pytest.param("09:30-16:00", time(15, 59, 59), True, id="just-before-the-end"),
    pytest.param("09:30-16:00", time(16, 0), False, id="the-end-is-excluded"),
    pytest.param("22:00-02:00", time(23, 30), True, id="across-midnight-before-it"),
    pytest.param("22:00-02:00", time(0, 0), True, id="across-midnight-at-it"),
    pytest.param("22:00-02:00", time(1, 59), True, id="across-midnight-after-it"),
    pytest.param("22:00-02:00", time(2, 0), False, id="across-midnight-end-excluded"),
    pytest.param("22:00-02:00", time(12, 0), False, id="across-midnight-midday-outside"),
    pytest.param("22:00-02:00", time(21, 59), False, id="across-midnight-before-the-start"),
])
def test_trading_windows(window: str, at: time, holds: bool) -> None:
    assert TradingWindow.parse(window).holds(at) is holds
    code = refusal(limits(trading_windows=[window]), BUY, "1", exposure(local_time=at))
    assert code == (None if holds else "RISK_OUTSIDE_TRADING_WINDOW")


@pytest.mark.parametrize(("at", "inside"), [
    pytest.param(time(10, 0), True, id="in-the-morning-window"),
    pytest.param(time(12, 0), False, id="at-lunch-between-windows"),
    pytest.param(time(14, 0), True, id="in-the-afternoon-window"),
    pytest.param(time(2, 0), True, id="in-the-overnight-window"),
    pytest.param(time(5, 0), False, id="before-the-morning-window"),
])
def test_any_of_several_windows_lets_an_entry_in(at: time, inside: bool) -> None:
    rules = limits(trading_windows=["09:35-11:30", "13:00-15:55", "20:00-04:00"])
    code = refusal(rules, BUY, "1", exposure(local_time=at))
    assert code == (None if inside else "RISK_OUTSIDE_TRADING_WINDOW")


@pytest.mark.parametrize(("raw", "field"), [
    pytest.param({"max_position_qty": -1}, "max_position_qty", id="negative-qty"),
    pytest.param({"max_position_qty": 0}, "max_position_qty", id="zero-qty"),
    pytest.param({"max_position_notional": "-5"}, "max_position_notional", id="negative-notional"),
    pytest.param({"daily_loss_limit": -100}, "daily_loss_limit", id="negative-loss"),
    pytest.param({"daily_loss_limit": "NaN"}, "daily_loss_limit", id="nan-loss"),
    pytest.param({"daily_loss_limit": "Infinity"}, "daily_loss_limit", id="infinite-loss"),
    pytest.param({"max_position_qty": "lots"}, "max_position_qty", id="not-a-number"),
    pytest.param({"max_position_qty": True}, "max_position_qty", id="bool-as-amount"),
    pytest.param({"max_position_notional": [1]}, "max_position_notional", id="list-as-amount"),
    pytest.param({"max_open_positions": -1}, "max_open_positions", id="negative-count"),
    pytest.param({"max_open_positions": 1.5}, "max_open_positions", id="fractional-count"),
    pytest.param({"max_orders_per_minute": True}, "max_orders_per_minute", id="bool-as-count"),
    pytest.param({"max_orders_per_minute": "10"}, "max_orders_per_minute", id="text-as-count"),
    pytest.param({"halted": "yes"}, "halted", id="text-as-flag"),
    pytest.param({"reduce_only": 1}, "reduce_only", id="number-as-flag"),
    pytest.param({"allowed_symbols": "AAPL"}, "allowed_symbols", id="text-as-symbol-list"),
    pytest.param({"blocked_symbols": ["GME", ""]}, "blocked_symbols", id="empty-symbol"),
    pytest.param({"blocked_symbols": [1]}, "blocked_symbols", id="number-as-symbol"),
    pytest.param({"max_leverage": 2}, "max_leverage", id="unknown-field"),
    pytest.param({"trading_windows": "09:30-16:00"}, "trading_windows", id="window-not-a-list"),
    pytest.param({"trading_windows": [930]}, "trading_windows", id="window-a-number"),
])
def test_from_dict_refuses_a_bad_value_naming_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RiskLimits.from_dict(raw)


@pytest.mark.parametrize("window", [
    pytest.param("9-5", id="hours-only"),
    pytest.param("09:30", id="no-end"),
    pytest.param("25:00-26:00", id="no-such-hour"),
    pytest.param("09:30-16:00-18:00", id="three-times"),
    pytest.param("", id="empty"),
])
def test_from_dict_refuses_a_bad_trading_window_quoting_it(window: str) -> None:
    with pytest.raises(ValueError, match="trading window") as caught:
        RiskLimits.from_dict({"trading_windows": ["09:30-16:00", window]})
    assert repr(window) in str(caught.value)  # the bad window itself, for the person fixing it


def test_from_dict_reads_every_limit() -> None:
    rules = RiskLimits.from_dict({
        "halted": False, "reduce_only": True, "allowed_symbols": [" aapl ", "BTC/USDT"],
        "blocked_symbols": ["gme"], "max_position_qty": "100.5", "max_position_notional": 25000,
        "max_open_positions": 0, "max_orders_per_minute": 30, "daily_loss_limit": 999.5,
        "trading_windows": ["09:35-15:55", "22:00-02:00"]})
    assert rules.reduce_only is True
    assert rules.allowed_symbols == frozenset({"AAPL", "BTC/USDT"})
    assert rules.blocked_symbols == frozenset({"GME"})
    assert rules.max_position_qty == Decimal("100.5")
    assert rules.max_position_notional == Decimal(25000)
    assert rules.max_open_positions == 0 and rules.max_orders_per_minute == 30
    assert rules.daily_loss_limit == Decimal("999.5")
    assert [str(w) for w in rules.trading_windows] == ["09:35-15:55", "22:00-02:00"]


def test_null_lifts_a_limit_and_leaves_the_rest_at_their_defaults() -> None:
    rules = RiskLimits.from_dict({"max_position_qty": None, "allowed_symbols": None,
                                  "daily_loss_limit": None, "halted": None,
                                  "blocked_symbols": None, "trading_windows": None})
    assert rules == RiskLimits()
    assert RiskLimits.from_dict({}) == RiskLimits()


@pytest.mark.parametrize("rules", [
    pytest.param(RiskLimits(), id="no-limits"),
    pytest.param(RiskLimits.from_dict({
        "halted": True, "reduce_only": True, "allowed_symbols": ["MSFT", "AAPL"],
        "blocked_symbols": ["GME", "AMC"], "max_position_qty": "0.5",
        "max_position_notional": "25000.25", "max_open_positions": 5,
        "max_orders_per_minute": 0, "daily_loss_limit": 1000,
        "trading_windows": ["09:35-11:30", "22:00-02:00"]}), id="every-limit"),
])
def test_to_dict_and_from_dict_round_trip(rules: RiskLimits) -> None:
    raw = rules.to_dict()
    assert set(raw) == {"halted", "reduce_only", "allowed_symbols", "blocked_symbols",
                        "max_position_qty", "max_position_notional", "max_open_positions",
                        "max_orders_per_minute", "daily_loss_limit", "trading_windows"}
    assert RiskLimits.from_dict(json.loads(json.dumps(raw))) == rules  # plain JSON, stored


def test_to_dict_is_sorted_and_textual() -> None:
    raw = RiskLimits.from_dict({"allowed_symbols": ["MSFT", "AAPL"], "max_position_qty": 100,
                                "trading_windows": ["0935-1555"]}).to_dict()
    assert raw["allowed_symbols"] == ["AAPL", "MSFT"]
    assert raw["max_position_qty"] == "100"
    assert raw["trading_windows"] == ["09:35-15:55"]
    assert raw["max_position_notional"] is None and raw["blocked_symbols"] == []
