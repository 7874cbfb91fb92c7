"""The signal API dialect (seed 004): a JSON body becomes one Signal, or every problem at once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tradewire.adapters.formats.signal_api import BadRequest, parse
from tradewire.domain.signals import ExitRule, ExitTrigger, Signal
from tradewire.domain.values import (
    Action,
    ExecuteMode,
    OrderType,
    QuantityType,
    TimeInForce,
)

NOW = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)
ACCOUNT = "550e8400-e29b-41d4-a716-446655440000"
STRATEGY = "550e8400-e29b-41d4-a716-446655440001"


def body(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"symbol": "AAPL", "action": "openLong", "accountId": ACCOUNT,
                           "quantity": 100, "executeMode": "immediate"}
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def problems(payload: Any) -> list[dict[str, Any]]:
    with pytest.raises(BadRequest) as caught:
        parse(payload, now=NOW)
    return caught.value.details


def paths(payload: Any) -> list[list[str | int]]:
    return [d["path"] for d in problems(payload)]


# ---- fields and defaults -------------------------------------------------------------------------

def test_the_required_fields_alone_give_the_seeds_defaults() -> None:
    s = parse(body(), now=NOW)
    assert (s.symbol, s.action, s.account_id, s.quantity, s.execute_mode) == (
        "AAPL", Action.OPEN_LONG, ACCOUNT, Decimal(100), ExecuteMode.IMMEDIATE)
    assert s.quantity_type is QuantityType.FIXED
    assert s.order_type is OrderType.MARKET
    assert s.time_in_force is TimeInForce.DAY
    assert s.extended_hours is False and s.replace_existing is False
    assert s.limit_price is None and s.stop_price is None
    assert s.scheduled_at is None and s.valid_until is None
    assert s.strategy_id is None and s.source_id is None
    assert s.metadata == {} and s.exit_rule is None
    assert s.created_at == NOW and s.route == "api.v1.signals"


def test_every_optional_field_reaches_the_signal() -> None:
    s = parse(body(
        action="openShort", quantity=25.5, executeMode="scheduled",
        scheduledProcessAt="2026-02-07T09:25:00", timezone="America/New_York",
        validUntil="2026-02-07T16:00:00", strategyId=STRATEGY, quantityType="percentEquity",
        orderType="stopLimit", stopPrice=145.0, limitPrice=144.0, timeInForce="gtc",
        sourceId="my-ref-456", replaceExisting=True, metadata={"note": "x", "n": 1},
        exitTriggerType="timed", exitTriggerValue=30, exitOrderType="limit", exitLimitPrice=150,
    ), now=NOW, route="test.route")
    assert s.action is Action.OPEN_SHORT and s.quantity == Decimal("25.5")
    assert s.execute_mode is ExecuteMode.SCHEDULED
    assert s.scheduled_at == datetime(2026, 2, 7, 14, 25, tzinfo=UTC)
    assert s.valid_until == datetime(2026, 2, 7, 21, 0, tzinfo=UTC)
    assert s.strategy_id == STRATEGY
    assert s.quantity_type is QuantityType.PERCENT_EQUITY
    assert (s.order_type, s.stop_price, s.limit_price) == (
        OrderType.STOP_LIMIT, Decimal(145), Decimal(144))
    assert s.time_in_force is TimeInForce.GTC
    assert (s.source_id, s.replace_existing) == ("my-ref-456", True)
    assert s.metadata == {"note": "x", "n": 1}
    assert s.exit_rule == ExitRule(trigger=ExitTrigger.AFTER_FILL, minutes=30,
                                   order_type=OrderType.LIMIT, limit_price=Decimal(150))
    assert s.route == "test.route"


def test_extended_hours_day_limit_is_accepted() -> None:
    s = parse(body(orderType="limit", limitPrice=250, extendedHours=True), now=NOW)
    assert s.extended_hours is True


def test_timed_exit_defaults_to_a_market_order() -> None:
    s = parse(body(exitTriggerType="timed", exitTriggerValue=30), now=NOW)
    assert s.exit_rule == ExitRule(trigger=ExitTrigger.AFTER_FILL, minutes=30,
                                   order_type=OrderType.MARKET)


@pytest.mark.parametrize(("sent", "kept"), [
    ("aapl", "AAPL"), ("Msft", "MSFT"), ("btc/usdt", "BTC/USDT"), ("brk.b", "BRK.B"),
])
def test_symbol_is_uppercased(sent: str, kept: str) -> None:
    assert parse(body(symbol=sent), now=NOW).symbol == kept


@pytest.mark.parametrize("example", [
    body(),
    body(exitTriggerType="timed", exitTriggerValue=30, exitOrderType="market"),
    body(symbol="MSFT", quantity=75, executeMode="scheduled",
         scheduledProcessAt="2026-02-07T09:25:00", timezone="America/New_York",
         sourceId="my-strategy-signal-001"),
    body(symbol="TSLA", quantity=50, executeMode="pending", orderType="limit", limitPrice=250.0),
    body(symbol="GOOGL", action="openShort", quantity=25, orderType="stopLimit", stopPrice=145.0,
         limitPrice=144.0, sourceId="my-ref-456", replaceExisting=True),
    body(symbol="SPY", quantity=5000, quantityType="dollarAmount"),
])
def test_every_example_of_the_seed_parses(example: dict[str, Any]) -> None:
    assert isinstance(parse(example, now=NOW), Signal)


def test_unknown_fields_are_ignored() -> None:
    assert parse(body(comment="from TradingView"), now=NOW).symbol == "AAPL"


# ---- time zones ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("local", "utc"), [
    pytest.param("2026-02-07T09:25:00", datetime(2026, 2, 7, 14, 25, tzinfo=UTC), id="winter-EST"),
    pytest.param("2026-07-07T09:25:00", datetime(2026, 7, 7, 13, 25, tzinfo=UTC), id="summer-EDT"),
    pytest.param("2026-03-09T09:25:00", datetime(2026, 3, 9, 13, 25, tzinfo=UTC),
                 id="the-monday-after-the-spring-change"),
    pytest.param("2026-11-02T09:25:00", datetime(2026, 11, 2, 14, 25, tzinfo=UTC),
                 id="the-monday-after-the-autumn-change"),
    pytest.param("2026-07-07T09:25:00Z", datetime(2026, 7, 7, 9, 25, tzinfo=UTC),
                 id="an-explicit-utc-time-wins-over-the-zone"),
    pytest.param("2026-07-07T09:25:00+02:00", datetime(2026, 7, 7, 7, 25, tzinfo=UTC),
                 id="an-explicit-offset-wins-over-the-zone"),
])
def test_scheduled_process_at_in_new_york_becomes_utc(local: str, utc: datetime) -> None:
    s = parse(body(executeMode="scheduled", scheduledProcessAt=local,
                   timezone="America/New_York"), now=NOW)
    assert s.scheduled_at == utc and s.scheduled_at.utcoffset() is not None


def test_valid_until_is_read_in_the_signals_zone() -> None:
    s = parse(body(validUntil="2026-07-07T16:00:00", timezone="America/New_York"), now=NOW)
    assert s.valid_until == datetime(2026, 7, 7, 20, 0, tzinfo=UTC)


# ---- one problem at a time ---------------------------------------------------------------------------

CROSS_FIELD = [
    pytest.param(body(executeMode="scheduled"), "scheduledProcessAt",
                 "scheduledProcessAt is required for scheduled execute mode",
                 id="scheduled-without-a-time"),
    pytest.param(body(scheduledProcessAt="2026-02-07T09:25:00", timezone="America/New_York"),
                 "scheduledProcessAt", None, id="a-time-without-scheduled-mode"),
    pytest.param(body(executeMode="scheduled", scheduledProcessAt="2026-02-07T09:25:00"),
                 "timezone", None, id="scheduled-time-without-a-zone"),
    pytest.param(body(validUntil="2026-02-07T16:00:00"), "timezone", None,
                 id="valid-until-without-a-zone"),
    pytest.param(body(orderType="limit"), "limitPrice", None, id="limit-without-limit-price"),
    pytest.param(body(orderType="stop"), "stopPrice", None, id="stop-without-stop-price"),
    pytest.param(body(orderType="stopLimit", stopPrice=145), "limitPrice", None,
                 id="stop-limit-without-limit-price"),
    pytest.param(body(orderType="stopLimit", limitPrice=144), "stopPrice", None,
                 id="stop-limit-without-stop-price"),
    pytest.param(body(limitPrice=100), "limitPrice", None, id="limit-price-on-a-market-order"),
    pytest.param(body(stopPrice=100), "stopPrice", None, id="stop-price-on-a-market-order"),
    pytest.param(body(orderType="limit", limitPrice=100, stopPrice=90), "stopPrice", None,
                 id="stop-price-on-a-limit-order"),
    pytest.param(body(orderType="stop", stopPrice=100, limitPrice=90), "limitPrice", None,
                 id="limit-price-on-a-stop-order"),
    pytest.param(body(extendedHours=True), "extendedHours", None,
                 id="extended-hours-on-a-market-order"),
    pytest.param(body(extendedHours=True, orderType="limit", limitPrice=100, timeInForce="gtc"),
                 "extendedHours", None, id="extended-hours-on-a-gtc-limit"),
    pytest.param(body(exitTriggerValue=30), "exitTriggerType", None,
                 id="exit-value-without-a-trigger-type"),
    pytest.param(body(exitOrderType="market"), "exitTriggerType", None,
                 id="exit-order-type-without-a-trigger-type"),
    pytest.param(body(exitTriggerType="timed"), "exitTriggerValue", None,
                 id="timed-exit-without-minutes"),
    pytest.param(body(action="closeLong", exitTriggerType="timed", exitTriggerValue=30),
                 "exitTriggerType", None, id="timed-exit-on-a-close"),
    pytest.param(body(exitTriggerType="timed", exitTriggerValue=30, exitOrderType="limit"),
                 "exitLimitPrice", None, id="limit-exit-without-a-price"),
    pytest.param(body(exitTriggerType="timed", exitTriggerValue=30, exitOrderType="market",
                      exitLimitPrice=150), "exitLimitPrice", None,
                 id="exit-limit-price-on-a-market-exit"),
    pytest.param(body(validUntil="2026-02-06T09:00:00", timezone="America/New_York"),
                 "validUntil", None, id="valid-until-in-the-past"),
    pytest.param(body(executeMode="scheduled", scheduledProcessAt="2026-02-07T12:00:00",
                      validUntil="2026-02-07T11:00:00", timezone="America/New_York"),
                 "scheduledProcessAt", None, id="scheduled-after-valid-until"),
]


@pytest.mark.parametrize(("payload", "path", "message"), CROSS_FIELD)
def test_each_cross_field_rule_is_a_custom_problem_at_its_field(
        payload: dict[str, Any], path: str, message: str | None) -> None:
    found = problems(payload)
    assert [(d["code"], d["path"]) for d in found] == [("custom", [path])]
    assert found[0]["message"]
    if message is not None:
        assert found[0]["message"] == message


@pytest.mark.parametrize(("payload", "code", "path"), [
    pytest.param({k: v for k, v in body().items() if k != "symbol"}, "invalid_type", ["symbol"],
                 id="missing-symbol"),
    pytest.param(body(action="buy"), "invalid_enum_value", ["action"], id="unknown-action"),
    pytest.param(body(executeMode="later"), "invalid_enum_value", ["executeMode"],
                 id="unknown-execute-mode"),
    pytest.param(body(accountId="not-a-uuid"), "invalid_string", ["accountId"], id="bad-account-id"),
    pytest.param(body(quantity=0), "too_small", ["quantity"], id="zero-quantity"),
    pytest.param(body(quantity=-5), "too_small", ["quantity"], id="negative-quantity"),
    pytest.param(body(symbol=""), "too_small", ["symbol"], id="empty-symbol"),
    pytest.param(body(symbol="A" * 21), "too_big", ["symbol"], id="symbol-over-20-characters"),
    pytest.param(body(sourceId="s" * 256), "too_big", ["sourceId"], id="source-id-over-255"),
    pytest.param(body(orderType="trailing"), "invalid_enum_value", ["orderType"],
                 id="unknown-order-type"),
    pytest.param(body(timeInForce="fak"), "invalid_enum_value", ["timeInForce"],
                 id="unknown-time-in-force"),
    pytest.param(body(timeInForce="gtd"), "invalid_enum_value", ["timeInForce"],
                 id="gtd-belongs-to-the-ingest-api-only"),
    pytest.param(body(quantityType="shares"), "invalid_enum_value", ["quantityType"],
                 id="unknown-quantity-type"),
    pytest.param(body(timezone="Mars/Olympus"), "custom", ["timezone"], id="unknown-timezone"),
    pytest.param(body(orderType="limit", limitPrice=-1), "too_small", ["limitPrice"],
                 id="negative-limit-price"),
    pytest.param(body(exitTriggerType="timed", exitTriggerValue=0), "too_small",
                 ["exitTriggerValue"], id="zero-minute-exit"),
    pytest.param(body(exitTriggerType="timed", exitTriggerValue=1.5), "invalid_type",
                 ["exitTriggerValue"], id="fractional-minute-exit"),
    pytest.param(body(quantity="NaN"), "invalid_type", ["quantity"], id="quantity-not-a-number"),
    pytest.param(body(quantity=1e12), "too_big", ["quantity"], id="absurd-quantity"),
    pytest.param(body(executeMode="scheduled", scheduledProcessAt="tomorrow",
                      timezone="America/New_York"), "invalid_type", ["scheduledProcessAt"],
                 id="unreadable-time"),
    pytest.param(body(metadata=[1]), "invalid_type", ["metadata"], id="metadata-not-an-object"),
    pytest.param(body(metadata={"blob": "x" * 9000}), "custom", ["metadata"],
                 id="metadata-too-large"),
])
def test_a_bad_field_is_reported_at_its_path(payload: dict[str, Any], code: str,
                                             path: list[str]) -> None:
    assert [(d["code"], d["path"]) for d in problems(payload)] == [(code, path)]


def test_a_missing_field_says_required() -> None:
    payload = {k: v for k, v in body().items() if k != "accountId"}
    assert problems(payload) == [{"code": "invalid_type", "message": "Required",
                                  "path": ["accountId"]}]


def test_a_boolean_field_does_not_take_a_string() -> None:
    assert paths(body(extendedHours="true")) == [["extendedHours"]]


# ---- many problems at once ----------------------------------------------------------------------------

def test_every_bad_field_is_listed_at_once() -> None:
    assert sorted(map(str, paths({"symbol": "", "action": "buy", "quantity": 0}))) == sorted(
        map(str, [["symbol"], ["action"], ["accountId"], ["quantity"], ["executeMode"]]))


def test_every_broken_cross_field_rule_is_listed_at_once() -> None:
    payload = body(executeMode="scheduled", orderType="stopLimit", extendedHours=True,
                   exitTriggerType="timed")
    assert sorted(map(str, paths(payload))) == sorted(map(str, [
        ["scheduledProcessAt"], ["limitPrice"], ["stopPrice"], ["extendedHours"],
        ["exitTriggerValue"]]))


# ---- bodies that are not objects -------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [[], [body()], "AAPL", 42, 1.5, True, None])
def test_a_body_that_is_not_an_object_is_one_invalid_type_problem(payload: Any) -> None:
    found = problems(payload)
    assert len(found) == 1
    assert found[0]["code"] == "invalid_type" and found[0]["path"] == []
    assert found[0]["message"].startswith("Expected object")
