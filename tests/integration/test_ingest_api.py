"""POST /api/signals/ingest (seed 002) and market sessions, through a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Caller, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.entrypoints.worker import Worker

INGEST = "/api/signals/ingest"


def body(caller: Caller, **fields: Any) -> dict[str, Any]:
    out = {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
           "quantity": 100, "processAt": "now"}
    out.update(fields)
    return out


def price(client: httpx.Client, caller: Caller, symbol: str, value: float) -> None:
    r = client.post("/api/v1/market/prices", json={"symbol": symbol, "price": value},
                    headers=caller.headers)
    assert r.status_code == 200, r.text


def orders(client: httpx.Client, caller: Caller) -> list[dict[str, Any]]:
    return list(client.get("/api/v1/orders", headers=caller.headers).json()["orders"])


def positions(client: httpx.Client, caller: Caller) -> list[dict[str, Any]]:
    return list(client.get("/api/v1/positions", headers=caller.headers).json()["positions"])


def detail(client: httpx.Client, caller: Caller, signal_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/signals/{signal_id}", headers=caller.headers)
    return dict(r.json()["signal"])


def test_minimal_market_order_answers_201_exactly_as_documented(client: httpx.Client,
                                                                alice: Caller) -> None:
    price(client, alice, "AAPL", 190)
    r = client.post(INGEST, json=body(alice), headers=alice.headers)
    assert r.status_code == 201, r.text
    signal = r.json()["signal"]
    assert r.json() == {"message": "Signal processed successfully",
                        "signal": {"id": signal["id"], "status": "executed",
                                   "orderId": signal["orderId"]}}


def test_limit_order_example(client: httpx.Client, alice: Caller) -> None:
    r = client.post(INGEST, json=body(alice, symbol="TSLA", quantity=50, orderType="limit",
                                      limitPrice=250.0), headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["signal"]["status"] == "executed"
    [order] = orders(client, alice)
    assert order["orderType"] == "limit" and order["limitPrice"] == "250.0"


def test_scheduled_signal_with_immediate_moc_exit_answers_202_in_utc(client: httpx.Client,
                                                                     alice: Caller) -> None:
    r = client.post(INGEST, json=body(
        alice, symbol="MSFT", strategyId="550e8400-e29b-41d4-a716-446655440001", quantity=75,
        processAt="2026-02-07T09:25:00", timezone="America/New_York",
        sourceId="my-strategy-signal-001",
        exitRule={"trigger": "market_close", "immediate": True}), headers=alice.headers)
    assert r.status_code == 202, r.text
    assert r.json() == {"message": "Signal scheduled for processing", "signal": {
        "id": r.json()["signal"]["id"], "status": "scheduled",
        "scheduledAt": "2026-02-07T14:25:00.000Z"}}


def test_stop_limit_example_uses_this_apis_spelling(client: httpx.Client, alice: Caller) -> None:
    r = client.post(INGEST, json=body(alice, symbol="GOOGL", action="openShort", quantity=25,
                                      orderType="stop_limit", stopPrice=145.0, limitPrice=144.0,
                                      sourceId="my-ref-456", replace=True),
                    headers=alice.headers)
    assert r.status_code == 201, r.text
    [order] = orders(client, alice)
    assert order["orderType"] == "stopLimit" and order["side"] == "sell"


def test_dollar_amount_example(client: httpx.Client, alice: Caller) -> None:
    price(client, alice, "SPY", 500)
    r = client.post(INGEST, json=body(alice, symbol="SPY", quantity=5000,
                                      quantityType="dollarAmount"), headers=alice.headers)
    assert r.status_code == 201, r.text
    assert orders(client, alice)[0]["qty"] == "10.000000"


def test_validation_error_has_this_apis_shape(client: httpx.Client, alice: Caller) -> None:
    r = client.post(INGEST, json=body(alice, orderType="limit"), headers=alice.headers)
    assert r.status_code == 400
    assert r.json() == {"error": "Validation failed", "code": "VALIDATION_ERROR", "details": [
        {"code": "custom", "message": "limitPrice is required for limit orders",
         "path": ["limitPrice"]}]}


@pytest.mark.parametrize(("fields", "path"), [
    ({"exitRule": {"trigger": "time", "durationMinutes": 60, "exitTime": "15:30"},
      "timezone": "UTC"}, ["exitRule"]),
    ({"exitRule": {"trigger": "market_close", "minutesBefore": 31}},
     ["exitRule", "minutesBefore"]),
    ({"expiresAt": "2026-02-06T20:00:00"}, ["timezone"]),
    ({"processAt": "2026-02-07T09:25:00"}, ["timezone"]),
    ({"processAt": "tomorrow"}, ["processAt"]),
    ({"exitRule": {"trigger": "time", "exitTime": "25:00"}, "timezone": "UTC"},
     ["exitRule", "exitTime"]),
    ({"timeInForce": "gtd"}, ["expiresAt"]),
    ({"orderType": "stopLimit", "stopPrice": 1, "limitPrice": 1}, ["orderType"]),
])
def test_impossible_combinations_are_refused_with_a_path(client: httpx.Client, alice: Caller,
                                                         fields: dict[str, Any],
                                                         path: list[str]) -> None:
    r = client.post(INGEST, json=body(alice, **fields), headers=alice.headers)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert path in [d["path"] for d in r.json()["details"]]
    assert orders(client, alice) == []


def test_duplicate_source_id_is_rejected_on_this_route(client: httpx.Client,
                                                       alice: Caller) -> None:
    first = client.post(INGEST, json=body(alice, processAt="2026-02-09T09:25:00",
                                          timezone="America/New_York", sourceId="my-ref"),
                        headers=alice.headers)
    again = client.post(INGEST, json=body(alice, sourceId="my-ref"), headers=alice.headers)
    assert again.status_code == 400
    assert again.json() == {
        "error": "Signal rejected",
        "message": "Signal with sourceId 'my-ref' already exists with status 'SCHEDULED'. "
                   "Use replace=true to supersede.",
        "signal": {"id": first.json()["signal"]["id"], "status": "scheduled"},
        "code": "SIGNAL_REJECTED"}
    assert orders(client, alice) == []


def test_replace_cancels_the_old_signal_and_creates_a_new_one(client: httpx.Client,
                                                              alice: Caller) -> None:
    first = client.post(INGEST, json=body(alice, processAt="2026-02-09T09:25:00",
                                          timezone="America/New_York", sourceId="r"),
                        headers=alice.headers).json()["signal"]
    price(client, alice, "AAPL", 190)
    r = client.post(INGEST, json=body(alice, sourceId="r", replace=True), headers=alice.headers)
    assert r.status_code == 201, r.text
    old = detail(client, alice, first["id"])
    assert old["status"] == "replaced"
    assert old["jobs"][0]["status"] == "cancelled"


def test_missing_key_and_jwt_are_refused(client: httpx.Client, alice: Caller) -> None:
    r = client.post(INGEST, json=body(alice))
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    assert "success" not in r.json()


def test_another_accounts_id_answers_404(client: httpx.Client, alice: Caller,
                                         bob: Caller) -> None:
    r = client.post(INGEST, json=body(bob), headers=alice.headers)
    assert r.status_code == 404 and r.json()["code"] == "ACCOUNT_NOT_FOUND"


def test_immediate_moc_exit_places_a_close_auction_order_that_fills_at_the_close(
        client: httpx.Client, alice: Caller, container: Container, clock: ManualClock) -> None:
    price(client, alice, "AAPL", 190)
    r = client.post(INGEST, json=body(alice, exitRule={"trigger": "market_close",
                                                       "immediate": True}),
                    headers=alice.headers)
    worker = Worker(container)
    worker.run_once()
    [exit_order] = [o for o in orders(client, alice) if o["purpose"] == "exit"]
    assert exit_order["timeInForce"] == "cls" and exit_order["status"] == "accepted"
    price(client, alice, "AAPL", 195)
    assert positions(client, alice)[0]["qty"] == "100"  # no fill before the close
    clock.set(datetime(2026, 2, 6, 21, 0, tzinfo=UTC))
    worker.run_once()
    assert positions(client, alice) == []
    [exit_order] = [o for o in orders(client, alice) if o["purpose"] == "exit"]
    assert exit_order["avgFillPrice"] == "195"
    assert detail(client, alice, r.json()["signal"]["id"])["exitRule"]["immediate"] is True


def test_minutes_before_close_uses_the_early_close(client: httpx.Client, alice: Caller,
                                                   container: Container,
                                                   clock: ManualClock) -> None:
    clock.set(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # the day after Thanksgiving
    price(client, alice, "AAPL", 190)
    r = client.post(INGEST, json=body(alice, exitRule={"trigger": "market_close",
                                                       "minutesBefore": 5}),
                    headers=alice.headers)
    jobs = detail(client, alice, r.json()["signal"]["id"])["jobs"]
    assert [j["dueAt"] for j in jobs] == ["2026-11-27T17:55:00.000Z"]  # 12:55 New York
    worker = Worker(container)
    clock.set(datetime(2026, 11, 27, 17, 55, tzinfo=UTC))
    worker.run_once()
    [exit_order] = [o for o in orders(client, alice) if o["purpose"] == "exit"]
    assert exit_order["timeInForce"] == "cls"  # placed 5 minutes early, fills in the auction
    clock.set(datetime(2026, 11, 27, 18, 0, tzinfo=UTC))
    worker.run_once()
    assert positions(client, alice) == []


def test_exit_time_is_the_next_wall_clock_time_in_the_signals_zone(
        client: httpx.Client, alice: Caller) -> None:
    price(client, alice, "AAPL", 190)
    r = client.post(INGEST, json=body(alice, timezone="America/New_York",
                                      exitRule={"trigger": "time", "exitTime": "15:30"}),
                    headers=alice.headers)
    jobs = detail(client, alice, r.json()["signal"]["id"])["jobs"]
    assert [j["dueAt"] for j in jobs] == ["2026-02-06T20:30:00.000Z"]


def test_duration_exit(client: httpx.Client, alice: Caller) -> None:
    price(client, alice, "AAPL", 190)
    r = client.post(INGEST, json=body(alice, exitRule={"trigger": "time", "durationMinutes": 60}),
                    headers=alice.headers)
    jobs = detail(client, alice, r.json()["signal"]["id"])["jobs"]
    assert [j["dueAt"] for j in jobs] == ["2026-02-06T16:00:00.000Z"]


def test_market_order_while_the_market_is_shut_is_held_until_the_open(
        client: httpx.Client, alice: Caller, container: Container, clock: ManualClock) -> None:
    clock.set(datetime(2026, 2, 7, 15, 0, tzinfo=UTC))  # Saturday
    price(client, alice, "AAPL", 190)
    r = client.post(INGEST, json=body(alice), headers=alice.headers)
    assert r.status_code == 201 and r.json()["signal"]["status"] == "queued"
    worker = Worker(container)
    worker.run_once()
    assert orders(client, alice)[0]["status"] == "new"
    clock.set(datetime(2026, 2, 9, 14, 30, tzinfo=UTC))  # Monday's open
    worker.run_once()
    assert orders(client, alice)[0]["status"] == "filled"
    assert detail(client, alice, r.json()["signal"]["id"])["status"] == "executed"


def test_held_order_expires_when_its_signal_expires_before_the_open(
        client: httpx.Client, alice: Caller, clock: ManualClock) -> None:
    clock.set(datetime(2026, 2, 7, 15, 0, tzinfo=UTC))  # Saturday
    r = client.post(INGEST, json=body(alice, expiresAt="2026-02-08T12:00:00",
                                      timezone="America/New_York"), headers=alice.headers)
    signal = detail(client, alice, r.json()["signal"]["id"])
    assert signal["status"] == "expired"
    assert "validUntil" in signal["statusReason"]
    assert orders(client, alice)[0]["status"] == "canceled"


def test_day_order_expires_at_the_close(client: httpx.Client, alice: Caller,
                                        container: Container, clock: ManualClock) -> None:
    price(client, alice, "AAPL", 190)
    client.post(INGEST, json=body(alice, orderType="limit", limitPrice=150),
                headers=alice.headers)
    worker = Worker(container)
    clock.set(datetime(2026, 2, 6, 20, 59, tzinfo=UTC))
    worker.run_once()
    assert orders(client, alice)[0]["status"] == "accepted"
    clock.set(datetime(2026, 2, 6, 21, 0, tzinfo=UTC))
    worker.run_once()
    assert orders(client, alice)[0]["status"] == "expired"


def test_opening_auction_order_fills_at_the_first_price_of_the_next_session(
        client: httpx.Client, alice: Caller, clock: ManualClock) -> None:
    price(client, alice, "AAPL", 190)
    client.post(INGEST, json=body(alice, timeInForce="opg"), headers=alice.headers)
    price(client, alice, "AAPL", 191)
    assert orders(client, alice)[0]["status"] == "accepted"
    clock.set(datetime(2026, 2, 9, 14, 30, tzinfo=UTC))
    price(client, alice, "AAPL", 188)
    assert orders(client, alice)[0]["avgFillPrice"] == "188"


def test_extended_hours_limit_orders_trade_before_the_open(client: httpx.Client, alice: Caller,
                                                           clock: ManualClock) -> None:
    clock.set(datetime(2026, 2, 6, 12, 0, tzinfo=UTC))  # 07:00 New York, pre-market
    price(client, alice, "AAPL", 190)
    client.post(INGEST, json=body(alice, orderType="limit", limitPrice=191, extendedHours=True),
                headers=alice.headers)
    client.post(INGEST, json=body(alice, symbol="AAPL", orderType="limit", limitPrice=191,
                                  quantity=1), headers=alice.headers)
    statuses = sorted(o["status"] for o in orders(client, alice))
    assert statuses == ["accepted", "filled"]


def test_a_scheduled_entry_that_came_due_while_stopped_runs_once_at_start(
        db_url: str, tmp_path: Path, clock: ManualClock) -> None:
    from tests.support import Server, make_caller

    first = make_container(db_url, tmp_path / "a", clock)
    alice = make_caller(first)
    with Server(first) as server, httpx.Client(base_url=server.url) as client:
        price(client, alice, "AAPL", 190)
        r = client.post(INGEST, json=body(alice, processAt="2026-02-06T10:30:00",
                                          timezone="America/New_York"), headers=alice.headers)
        signal_id = r.json()["signal"]["id"]
    first.close()  # the service stops before 15:30 UTC
    clock.advance(timedelta(hours=2))
    second = make_container(db_url, tmp_path / "b", clock)
    worker = Worker(second)
    worker.run_once()
    worker.run_once()
    with Server(second) as server, httpx.Client(base_url=server.url) as client:
        assert len(orders(client, alice)) == 1
        assert detail(client, alice, signal_id)["status"] == "executed"
    second.close()
