"""The TradersPost-style alert dialect: what TradingView sends becomes one Alert, or every problem."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.adapters.formats.traderspost import (
    error,
    format_result,
    invalid,
    looks_like_alert,
    parse_alert,
)
from tradewire.domain.alerts import Alert, AlertAction, Sentiment
from tradewire.domain.values import OrderType, QuantityType, TimeInForce

FIRED_AT = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)


def body(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"ticker": "AAPL", "action": "buy"}
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def problems(payload: Any) -> list[dict[str, Any]]:
    with pytest.raises(BadRequest) as caught:
        parse_alert(payload)
    return caught.value.details


# ---- fields and defaults ------------------------------------------------------------------------

def test_ticker_and_action_alone_give_the_defaults() -> None:
    assert parse_alert(body()) == Alert(ticker="AAPL", action=AlertAction.BUY)


def test_every_field_reaches_the_alert() -> None:
    a = parse_alert(body(
        action="sell", sentiment="bearish", quantity=25.5, quantityType="dollar_amount",
        orderType="stop_limit", limitPrice=144, stopPrice=145, timeInForce="gtc",
        takeProfit={"percent": 5}, stopLoss={"type": "stop", "amount": 2},
        signalPrice=146.2, time="2026-02-06T15:00:00Z", extras={"strategy": "orb", "n": 1},
    ))
    assert a == Alert(
        ticker="AAPL", action=AlertAction.SELL, sentiment=Sentiment.SHORT,
        quantity=Decimal("25.5"), quantity_type=QuantityType.DOLLAR_AMOUNT,
        order_type=OrderType.STOP_LIMIT, limit_price=Decimal(144), stop_price=Decimal(145),
        time_in_force=TimeInForce.GTC, take_profit={"percent": 5},
        stop_loss={"type": "stop", "amount": 2}, signal_price=Decimal("146.2"),
        sent_at=FIRED_AT, extras={"strategy": "orb", "n": 1},
    )


def test_numbers_sent_as_text_are_read_exactly() -> None:
    a = parse_alert(body(quantity="100", orderType="limit", limitPrice="190.55",
                         signalPrice="190.1", extendedHours="true"))
    assert (a.quantity, a.limit_price, a.signal_price) == (
        Decimal(100), Decimal("190.55"), Decimal("190.1"))
    assert a.extended_hours is True


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param({"price": "190.1"}, Decimal("190.1"), id="price is the signal price"),
    pytest.param({"signalPrice": 191, "price": 190}, Decimal(191), id="signalPrice wins over price"),
])
def test_the_chart_price_may_be_sent_as_signal_price_or_price(
    fields: dict[str, Any], expected: Decimal,
) -> None:
    assert parse_alert(body(**fields)).signal_price == expected


def test_unknown_fields_are_ignored_as_traderspost_does() -> None:
    a = parse_alert(body(strategy="orb", interval="5m", trailAmount=1, nested={"x": [1, 2]}))
    assert a == Alert(ticker="AAPL", action=AlertAction.BUY)


@pytest.mark.parametrize(("field", "sent", "attribute", "expected"), [
    pytest.param("action", "BUY", "action", AlertAction.BUY, id="action in capitals"),
    pytest.param("action", " Exit ", "action", AlertAction.EXIT, id="action with spaces"),
    pytest.param("sentiment", "Bullish", "sentiment", Sentiment.LONG, id="sentiment capitalised"),
    pytest.param("quantityType", "PERCENT_OF_EQUITY", "quantity_type", QuantityType.PERCENT_EQUITY,
                 id="quantity type in capitals"),
    pytest.param("timeInForce", "GTC", "time_in_force", TimeInForce.GTC, id="time in force in capitals"),
])
def test_names_are_read_whatever_their_case(
    field: str, sent: str, attribute: str, expected: object,
) -> None:
    assert getattr(parse_alert(body(**{field: sent})), attribute) is expected


def test_order_type_is_read_whatever_its_case() -> None:
    assert parse_alert(body(orderType="LIMIT", limitPrice=1)).order_type is OrderType.LIMIT


@pytest.mark.parametrize(("sent", "ticker"), [
    pytest.param("NASDAQ:AAPL", "AAPL", id="an exchange prefix is dropped"),
    pytest.param("BINANCE:BTCUSDT", "BTCUSDT", id="a crypto exchange prefix is dropped"),
    pytest.param("BTCUSDT", "BTCUSDT", id="a crypto pair stays as it is"),
    pytest.param("aapl", "AAPL", id="lower case is raised"),
    pytest.param(" msft ", "MSFT", id="spaces are trimmed"),
    pytest.param("BRK.B", "BRK.B", id="a share class keeps its dot"),
    pytest.param("BTC/USD", "BTC/USD", id="a slashed pair keeps its slash"),
])
def test_the_ticker_is_reduced_to_the_symbol_traded(sent: str, ticker: str) -> None:
    assert parse_alert(body(ticker=sent)).ticker == ticker


@pytest.mark.parametrize(("sent", "sentiment"), [
    ("bullish", Sentiment.LONG), ("long", Sentiment.LONG),
    ("bearish", Sentiment.SHORT), ("short", Sentiment.SHORT),
    ("flat", Sentiment.FLAT),
])
def test_sentiment_names_map_to_the_position_wanted(sent: str, sentiment: Sentiment) -> None:
    assert parse_alert(body(sentiment=sent)).sentiment is sentiment


@pytest.mark.parametrize(("sent", "quantity_type"), [
    ("fixed_quantity", QuantityType.FIXED),
    ("dollar_amount", QuantityType.DOLLAR_AMOUNT),
    ("percent_of_equity", QuantityType.PERCENT_EQUITY),
])
def test_supported_quantity_types_map_to_the_core(sent: str, quantity_type: QuantityType) -> None:
    assert parse_alert(body(quantity=1, quantityType=sent)).quantity_type is quantity_type


@pytest.mark.parametrize(("fields", "order_type"), [
    ({"orderType": "market"}, OrderType.MARKET),
    ({"orderType": "limit", "limitPrice": 10}, OrderType.LIMIT),
    ({"orderType": "stop", "stopPrice": 10}, OrderType.STOP),
    ({"orderType": "stop_limit", "stopPrice": 10, "limitPrice": 9}, OrderType.STOP_LIMIT),
])
def test_supported_order_types_map_to_the_core(fields: dict[str, Any], order_type: OrderType) -> None:
    assert parse_alert(body(**fields)).order_type is order_type


@pytest.mark.parametrize("fields", [
    pytest.param({"takeProfit": {"limitPrice": "200"}}, id="take profit at a price"),
    pytest.param({"takeProfit": {"percent": 5}}, id="take profit by percent"),
    pytest.param({"takeProfit": {"amount": 2.5}}, id="take profit by amount"),
    pytest.param({"stopLoss": {"stopPrice": 180}}, id="a stop loss is a stop by default"),
    pytest.param({"stopLoss": {"type": "stop_limit", "percent": 2, "limitPrice": 178}},
                 id="a stop limit stop loss"),
    pytest.param({"stopLoss": {"type": "trailing_stop", "trailPercent": 1.5}},
                 id="a trailing stop loss"),
])
def test_exit_objects_are_kept_as_sent(fields: dict[str, Any]) -> None:
    a = parse_alert(body(**fields))
    assert (a.take_profit, a.stop_loss) == (fields.get("takeProfit"), fields.get("stopLoss"))


# ---- time ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("sent", [
    pytest.param("2026-02-06T15:00:00Z", id="timenow as TradingView writes it"),
    pytest.param("2026-02-06T15:00:00.000Z", id="with milliseconds"),
    pytest.param("2026-02-06T10:00:00-05:00", id="with an offset"),
    pytest.param("2026-02-06T15:00:00", id="without an offset it is utc"),
    pytest.param(1770390000, id="epoch seconds"),
    pytest.param(1770390000000, id="epoch milliseconds"),
    pytest.param("1770390000", id="epoch seconds as text"),
    pytest.param(1770390000.0, id="epoch seconds as a float"),
])
def test_time_becomes_an_aware_utc_time(sent: Any) -> None:
    sent_at = parse_alert(body(time=sent)).sent_at
    assert sent_at == FIRED_AT
    assert sent_at is not None and sent_at.utcoffset() is not None


# ---- refusals -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "path", "words"), [
    pytest.param({"ticker": None}, ["ticker"], "Required", id="a missing ticker"),
    pytest.param({"action": None}, ["action"], "Required", id="a missing action"),
    pytest.param({"action": "hold"}, ["action"], "'buy'", id="an unknown action"),
    pytest.param({"ticker": "A" * 21}, ["ticker"], "1 to 20", id="a ticker over 20 characters"),
    pytest.param({"ticker": "NASDAQ:"}, ["ticker"], "1 to 20", id="a prefix without a ticker"),
    pytest.param({"ticker": "ES1!"}, ["ticker"], "letters", id="a ticker with a stray character"),
    pytest.param({"ticker": 123}, ["ticker"], "string", id="a ticker that is a number"),
    pytest.param({"sentiment": "neutral"}, ["sentiment"], "'bullish'", id="an unknown sentiment"),
    pytest.param({"quantity": 0}, ["quantity"], "greater than 0", id="a zero quantity"),
    pytest.param({"quantity": "-5"}, ["quantity"], "greater than 0", id="a negative quantity"),
    pytest.param({"quantity": "ten"}, ["quantity"], "decimal", id="a quantity that is no number"),
    pytest.param({"quantityType": "risk_dollar_amount"}, ["quantityType"], "not supported yet",
                 id="risk dollar amount is not supported yet"),
    pytest.param({"quantityType": "risk_percent"}, ["quantityType"], "not supported yet",
                 id="risk percent is not supported yet"),
    pytest.param({"quantityType": "percent_of_position"}, ["quantityType"], "not supported yet",
                 id="percent of position is not supported yet"),
    pytest.param({"quantityType": "shares"}, ["quantityType"], "'fixed_quantity'",
                 id="an unknown quantity type"),
    pytest.param({"orderType": "trailing_stop"}, ["orderType"], "not supported yet",
                 id="a trailing stop order is not supported yet"),
    pytest.param({"orderType": "limit"}, ["limitPrice"], "required", id="a limit without its price"),
    pytest.param({"orderType": "stop"}, ["stopPrice"], "required", id="a stop without its price"),
    pytest.param({"limitPrice": 10}, ["limitPrice"], "only used", id="a limit price on a market order"),
    pytest.param({"stopPrice": 10}, ["stopPrice"], "only used", id="a stop price on a market order"),
    pytest.param({"orderType": "limit", "limitPrice": "0"}, ["limitPrice"], "greater than 0",
                 id="a zero limit price"),
    pytest.param({"timeInForce": "gtd"}, ["timeInForce"], "'day'", id="gtd is not in this dialect"),
    pytest.param({"extendedHours": "yes"}, ["extendedHours"], "boolean",
                 id="extended hours that is neither true nor false"),
    pytest.param({"extendedHours": True}, ["extendedHours"], "limit order",
                 id="extended hours on a market order"),
    pytest.param({"takeProfit": 5}, ["takeProfit"], "dictionary", id="a take profit that is no object"),
    pytest.param({"takeProfit": {}}, ["takeProfit"], "exactly one", id="an empty take profit"),
    pytest.param({"takeProfit": {"percent": 5, "amount": 2}}, ["takeProfit"], "exactly one",
                 id="a take profit with two targets"),
    pytest.param({"takeProfit": {"percent": -5}}, ["takeProfit", "percent"], "positive",
                 id="a negative take profit percent"),
    pytest.param({"takeProfit": {"limitPrice": "abc"}}, ["takeProfit", "limitPrice"], "positive",
                 id="a take profit price that is no number"),
    pytest.param({"stopLoss": {"type": "oco", "stopPrice": 1}}, ["stopLoss", "type"], "stop_limit",
                 id="an unknown stop loss type"),
    pytest.param({"stopLoss": {"type": "stop"}}, ["stopLoss"], "exactly one",
                 id="a stop loss without a level"),
    pytest.param({"stopLoss": {"type": "stop_limit", "stopPrice": 180}}, ["stopLoss", "limitPrice"],
                 "required", id="a stop limit stop loss without its limit"),
    pytest.param({"stopLoss": {"type": "trailing_stop", "stopPrice": 180}}, ["stopLoss"],
                 "trailAmount", id="a trailing stop loss without a trail"),
    pytest.param({"stopLoss": {"stopPrice": True}}, ["stopLoss", "stopPrice"], "positive",
                 id="a stop loss price that is a boolean"),
    pytest.param({"time": "yesterday"}, ["time"], "ISO 8601", id="a time that is no time"),
    pytest.param({"time": True}, ["time"], "ISO 8601", id="a time that is a boolean"),
    pytest.param({"extras": ["a"]}, ["extras"], "dictionary", id="extras that are no object"),
    pytest.param({"extras": {"x": "y" * 9000}}, ["extras"], "larger", id="extras that are too large"),
])
def test_each_problem_is_refused_with_its_path(
    fields: dict[str, Any], path: list[str], words: str,
) -> None:
    found = problems(body(**fields))
    assert [d["path"] for d in found] == [path]
    assert words in found[0]["message"]


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert problems(["AAPL", "buy"]) == [
        {"code": "invalid_type", "message": "Expected object, received list", "path": []}]


def test_every_problem_is_listed_at_once() -> None:
    found = problems({"action": "hold", "quantity": "x", "orderType": "trailing_stop"})
    assert [d["path"] for d in found] == [["ticker"], ["action"], ["quantity"], ["orderType"]]


# ---- recognising the dialect and answering --------------------------------------------------------

@pytest.mark.parametrize(("sent", "expected"), [
    pytest.param({"ticker": "AAPL", "action": "buy"}, True, id="an alert has a ticker"),
    pytest.param({"symbol": "AAPL", "action": "openLong"}, False, id="a signal has a symbol"),
    pytest.param(["ticker"], False, id="a list is no alert"),
])
def test_an_alert_is_recognised_by_its_ticker(sent: Any, expected: bool) -> None:
    assert looks_like_alert(sent) is expected


def test_an_accepted_alert_is_echoed_in_wire_names() -> None:
    a = parse_alert(body(ticker="NASDAQ:AAPL", sentiment="bullish", quantity="100",
                         orderType="stop_limit", stopPrice="190", limitPrice="191",
                         time="2026-02-06T15:00:00Z", extras={"k": "v"}))
    assert format_result(a, alert_id="a1", log_id="l1") == {
        "success": True, "id": "a1", "logId": "l1",
        "payload": {"ticker": "AAPL", "action": "buy", "sentiment": "long", "quantity": "100",
                    "quantityType": "fixed_quantity", "orderType": "stop_limit",
                    "limitPrice": "191", "stopPrice": "190", "timeInForce": "day",
                    "extendedHours": False, "time": "2026-02-06T15:00:00.000Z",
                    "extras": {"k": "v"}},
    }


def test_a_refusal_carries_a_kebab_case_message_code() -> None:
    assert error("already long AAPL", "already-long") == {
        "success": False, "messageCode": "already-long", "message": "already long AAPL"}


@pytest.mark.parametrize(("sent", "code", "message"), [
    pytest.param({"action": "buy"}, "missing-ticker", "ticker is required", id="a missing field"),
    pytest.param(body(action="hold"), "invalid-action", "action: Input should be",
                 id="an invalid field"),
    pytest.param(body(quantityType="risk_percent"), "invalid-quantity-type",
                 "quantityType risk_percent is not supported yet", id="a camel case field"),
    pytest.param(body(takeProfit={"percent": -1}), "invalid-take-profit", "takeProfit.percent must",
                 id="a nested field"),
    pytest.param("buy AAPL", "invalid-payload", "Expected object", id="a body that is no object"),
])
def test_a_bad_request_is_named_after_its_first_problem(sent: Any, code: str, message: str) -> None:
    answer = invalid(problems(sent))
    assert (answer["success"], answer["messageCode"]) == (False, code)
    assert answer["message"].startswith(message)
    assert answer["details"] == problems(sent)
