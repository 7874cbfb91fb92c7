"""POST /api/v1/signals as seed 004 documents it, through a real server, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.support import Caller, login
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.entrypoints.worker import Worker


def signal(caller: Caller, **fields: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 100, "executeMode": "immediate"}
    body.update(fields)
    return body


def set_price(client: httpx.Client, caller: Caller, symbol: str, price: float) -> None:
    r = client.post("/api/v1/market/prices", json={"symbol": symbol, "price": price},
                    headers=caller.headers)
    assert r.status_code == 200, r.text


def test_immediate_market_order_is_executed_with_an_order_id(client: httpx.Client,
                                                             alice: Caller) -> None:
    set_price(client, alice, "AAPL", 190)
    r = client.post("/api/v1/signals", json=signal(alice), headers=alice.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["success"] is True
    assert body["message"] == "Signal processed successfully"
    assert body["signal"]["status"] == "executed"
    assert body["signal"]["executeMode"] == "immediate"
    order_id = body["signal"]["orderId"]
    orders = client.get("/api/v1/orders", headers=alice.headers).json()["orders"]
    assert [o["id"] for o in orders] == [order_id]
    assert orders[0]["status"] == "filled"
    positions = client.get("/api/v1/positions", headers=alice.headers).json()["positions"]
    assert positions[0]["qty"] == "100" and positions[0]["avgEntryPrice"] == "190"


def test_market_order_without_a_price_is_accepted_and_fills_on_the_next_tick(
        client: httpx.Client, alice: Caller) -> None:
    r = client.post("/api/v1/signals", json=signal(alice, symbol="NVDA"), headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["signal"]["status"] == "executed"
    assert client.get("/api/v1/positions", headers=alice.headers).json()["positions"] == []
    set_price(client, alice, "NVDA", 120.5)
    positions = client.get("/api/v1/positions", headers=alice.headers).json()["positions"]
    assert positions[0]["symbol"] == "NVDA" and positions[0]["avgEntryPrice"] == "120.5"


def test_scheduled_signal_answers_202_with_the_utc_time_across_daylight_saving(
        client: httpx.Client, alice: Caller) -> None:
    winter = signal(alice, symbol="MSFT", quantity=75, executeMode="scheduled",
                    scheduledProcessAt="2026-02-07T09:25:00", timezone="America/New_York",
                    sourceId="my-strategy-signal-001")
    r = client.post("/api/v1/signals", json=winter, headers=alice.headers)
    assert r.status_code == 202, r.text
    assert r.json()["message"] == "Signal scheduled for processing"
    assert r.json()["signal"]["scheduledAt"] == "2026-02-07T14:25:00.000Z"
    assert r.json()["signal"]["status"] == "scheduled"
    summer = signal(alice, executeMode="scheduled", scheduledProcessAt="2026-07-07T09:25:00",
                    timezone="America/New_York")
    r = client.post("/api/v1/signals", json=summer, headers=alice.headers)
    assert r.json()["signal"]["scheduledAt"] == "2026-07-07T13:25:00.000Z"


def test_pending_signal_waits_and_is_processed_with_a_jwt_only(client: httpx.Client,
                                                              alice: Caller) -> None:
    body = signal(alice, symbol="TSLA", quantity=50, executeMode="pending", orderType="limit",
                  limitPrice=250.0)
    r = client.post("/api/v1/signals", json=body, headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json() == {"success": True, "message": "Signal created", "signal": {
        "id": r.json()["signal"]["id"], "status": "pending", "executeMode": "pending"}}
    signal_id = r.json()["signal"]["id"]
    by_key = client.post(f"/api/v1/signals/{signal_id}/process", headers=alice.headers)
    assert by_key.status_code == 401
    r = client.post(f"/api/v1/signals/{signal_id}/process", headers=login(client, alice))
    assert r.status_code == 200, r.text
    assert r.json()["signal"]["status"] == "executed"
    assert "orderId" in r.json()["signal"]


def test_same_source_id_returns_the_existing_signal_with_200(client: httpx.Client,
                                                            alice: Caller) -> None:
    body = signal(alice, executeMode="pending", sourceId="my-ref")
    first = client.post("/api/v1/signals", json=body, headers=alice.headers)
    again = client.post("/api/v1/signals", json=body, headers=alice.headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["message"] == ("Signal with sourceId 'my-ref' already exists with status "
                                       "'pending'. Use replaceExisting=true to supersede.")
    assert again.json()["signal"]["id"] == first.json()["signal"]["id"]


def test_source_id_is_scoped_per_account(client: httpx.Client, alice: Caller,
                                         bob: Caller) -> None:
    a = client.post("/api/v1/signals", json=signal(alice, executeMode="pending", sourceId="x"),
                    headers=alice.headers)
    b = client.post("/api/v1/signals", json=signal(bob, executeMode="pending", sourceId="x"),
                    headers=bob.headers)
    assert a.status_code == b.status_code == 201
    assert a.json()["signal"]["id"] != b.json()["signal"]["id"]


def test_replace_existing_supersedes_a_signal_not_yet_sent(client: httpx.Client,
                                                           alice: Caller) -> None:
    first = client.post("/api/v1/signals", json=signal(alice, executeMode="pending",
                                                        sourceId="my-ref-456"),
                        headers=alice.headers).json()["signal"]
    body = signal(alice, symbol="GOOGL", action="openShort", quantity=25, orderType="stopLimit",
                  stopPrice=145.0, limitPrice=144.0, sourceId="my-ref-456", replaceExisting=True)
    r = client.post("/api/v1/signals", json=body, headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["signal"]["id"] != first["id"]
    old = client.get(f"/api/v1/signals/{first['id']}", headers=alice.headers).json()["signal"]
    assert old["status"] == "replaced"


def test_replace_refuses_a_signal_that_reached_the_broker(client: httpx.Client,
                                                          alice: Caller) -> None:
    set_price(client, alice, "AAPL", 190)
    client.post("/api/v1/signals", json=signal(alice, sourceId="sent"), headers=alice.headers)
    r = client.post("/api/v1/signals", json=signal(alice, sourceId="sent", replaceExisting=True),
                    headers=alice.headers)
    assert r.status_code == 400
    assert r.json()["code"] == "SIGNAL_REJECTED"
    assert len(client.get("/api/v1/orders", headers=alice.headers).json()["orders"]) == 1


def test_dollar_amount_sizes_by_the_last_price(client: httpx.Client, alice: Caller) -> None:
    set_price(client, alice, "SPY", 500)
    r = client.post("/api/v1/signals", json=signal(alice, symbol="SPY", quantity=5000,
                                                    quantityType="dollarAmount"),
                    headers=alice.headers)
    assert r.status_code == 201, r.text
    order = client.get("/api/v1/orders", headers=alice.headers).json()["orders"][0]
    assert order["qty"] == "10.000000"


def test_percent_equity_sizes_by_the_account_equity(client: httpx.Client, alice: Caller) -> None:
    set_price(client, alice, "SPY", 500)
    r = client.post("/api/v1/signals", json=signal(alice, symbol="SPY", quantity=10,
                                                    quantityType="percentEquity"),
                    headers=alice.headers)
    assert r.status_code == 201, r.text
    order = client.get("/api/v1/orders", headers=alice.headers).json()["orders"][0]
    assert order["qty"] == "20.000000"  # 10% of 100,000 at 500


def test_close_long_without_a_long_position_is_refused_with_a_reason(
        client: httpx.Client, alice: Caller) -> None:
    r = client.post("/api/v1/signals", json=signal(alice, action="closeLong"),
                    headers=alice.headers)
    assert r.status_code == 400
    assert r.json()["code"] == "SIGNAL_REJECTED"
    assert "no long position" in r.json()["error"]
    assert client.get("/api/v1/orders", headers=alice.headers).json()["orders"] == []


def test_close_long_sells_the_long_position(client: httpx.Client, alice: Caller) -> None:
    set_price(client, alice, "AAPL", 190)
    client.post("/api/v1/signals", json=signal(alice, quantity=30), headers=alice.headers)
    r = client.post("/api/v1/signals", json=signal(alice, action="closeLong", quantity=1000),
                    headers=alice.headers)
    assert r.status_code == 201, r.text
    orders = client.get("/api/v1/orders", headers=alice.headers).json()["orders"]
    [sell] = [o for o in orders if o["side"] == "sell"]
    assert sell["qty"] == "30" and sell["status"] == "filled"
    assert client.get("/api/v1/positions", headers=alice.headers).json()["positions"] == []


def test_timed_exit_closes_the_position_the_given_minutes_after_the_fill(
        client: httpx.Client, alice: Caller, container: Container, clock: ManualClock) -> None:
    set_price(client, alice, "AAPL", 190)
    body = signal(alice, exitTriggerType="timed", exitTriggerValue=30, exitOrderType="market")
    signal_id = client.post("/api/v1/signals", json=body, headers=alice.headers
                            ).json()["signal"]["id"]
    detail = client.get(f"/api/v1/signals/{signal_id}", headers=alice.headers).json()["signal"]
    [job] = [j for j in detail["jobs"] if j["kind"] == "exit"]
    assert job["status"] == "scheduled"
    worker = Worker(container)
    clock.advance(timedelta(minutes=29))
    worker.run_once()
    assert client.get("/api/v1/positions", headers=alice.headers).json()["positions"] != []
    clock.advance(timedelta(minutes=1))
    worker.run_once()
    assert client.get("/api/v1/positions", headers=alice.headers).json()["positions"] == []
    detail = client.get(f"/api/v1/signals/{signal_id}", headers=alice.headers).json()["signal"]
    assert [o["purpose"] for o in detail["orders"]] == ["entry", "exit"]


def test_scheduled_signal_runs_once_when_due(client: httpx.Client, alice: Caller,
                                             container: Container, clock: ManualClock) -> None:
    set_price(client, alice, "AAPL", 190)
    body = signal(alice, executeMode="scheduled", scheduledProcessAt="2026-02-06T10:30:00",
                  timezone="America/New_York")  # 15:30 UTC, the clock is at 15:00
    signal_id = client.post("/api/v1/signals", json=body, headers=alice.headers
                            ).json()["signal"]["id"]
    worker = Worker(container)
    worker.run_once()
    assert client.get("/api/v1/orders", headers=alice.headers).json()["orders"] == []
    clock.advance(timedelta(minutes=30))
    worker.run_once()
    worker.run_once()
    orders = client.get("/api/v1/orders", headers=alice.headers).json()["orders"]
    assert len(orders) == 1 and orders[0]["status"] == "filled"
    detail = client.get(f"/api/v1/signals/{signal_id}", headers=alice.headers).json()["signal"]
    assert detail["status"] == "executed"
    assert detail["jobs"][0]["status"] == "done"


def test_valid_until_expires_a_scheduled_signal_that_came_due_too_late(
        client: httpx.Client, alice: Caller, container: Container, clock: ManualClock) -> None:
    body = signal(alice, executeMode="scheduled", scheduledProcessAt="2026-02-06T10:30:00",
                  validUntil="2026-02-06T10:35:00", timezone="America/New_York")
    signal_id = client.post("/api/v1/signals", json=body, headers=alice.headers
                            ).json()["signal"]["id"]
    clock.advance(timedelta(hours=2))  # the service was down past validUntil
    Worker(container).run_once()
    detail = client.get(f"/api/v1/signals/{signal_id}", headers=alice.headers).json()["signal"]
    assert detail["status"] == "expired"
    assert detail["jobs"][0]["status"] == "expired"
    assert "past validUntil" in detail["jobs"][0]["result"]
    assert client.get("/api/v1/orders", headers=alice.headers).json()["orders"] == []


def test_valid_until_expires_a_pending_signal(client: httpx.Client, alice: Caller,
                                              container: Container, clock: ManualClock) -> None:
    body = signal(alice, executeMode="pending", validUntil="2026-02-06T16:00:00",
                  timezone="UTC")
    signal_id = client.post("/api/v1/signals", json=body, headers=alice.headers
                            ).json()["signal"]["id"]
    clock.advance(timedelta(hours=1, minutes=1))
    Worker(container).run_once()
    r = client.post(f"/api/v1/signals/{signal_id}/process", headers=login(client, alice))
    assert r.status_code == 400
    status = client.get(f"/api/v1/signals/{signal_id}", headers=alice.headers).json()
    assert status["signal"]["status"] == "expired"


def test_delete_cancels_a_scheduled_signal_and_its_job(client: httpx.Client, alice: Caller,
                                                       container: Container,
                                                       clock: ManualClock) -> None:
    body = signal(alice, executeMode="scheduled", scheduledProcessAt="2026-02-06T10:30:00",
                  timezone="America/New_York")
    signal_id = client.post("/api/v1/signals", json=body, headers=alice.headers
                            ).json()["signal"]["id"]
    r = client.delete(f"/api/v1/signals/{signal_id}", headers=alice.headers)
    assert r.status_code == 200 and r.json()["signal"]["status"] == "cancelled"
    clock.advance(timedelta(hours=1))
    Worker(container).run_once()
    assert client.get("/api/v1/orders", headers=alice.headers).json()["orders"] == []
    detail = client.get(f"/api/v1/signals/{signal_id}", headers=alice.headers).json()["signal"]
    assert detail["jobs"][0]["status"] == "cancelled"
    assert [e["event"] for e in detail["timeline"]] == ["SignalReceived", "SignalCancelled"]


def test_every_step_of_a_scheduled_signal_is_in_its_timeline(
        client: httpx.Client, alice: Caller, container: Container, clock: ManualClock) -> None:
    set_price(client, alice, "AAPL", 190)
    body = signal(alice, executeMode="scheduled", scheduledProcessAt="2026-02-06T15:00:00",
                  timezone="UTC")
    signal_id = client.post("/api/v1/signals", json=body, headers=alice.headers
                            ).json()["signal"]["id"]
    Worker(container).run_once()
    detail = client.get(f"/api/v1/signals/{signal_id}", headers=alice.headers).json()["signal"]
    assert [e["event"] for e in detail["timeline"]] == [
        "SignalReceived", "SignalQueued", "OrderCreated", "OrderSubmitting", "OrderFilled",
        "SignalExecuted", "JobDone"]


def test_a_second_close_counts_the_first_close_still_working(client: httpx.Client,
                                                             alice: Caller) -> None:
    set_price(client, alice, "AAPL", 190)
    client.post("/api/v1/signals", json=signal(alice, quantity=30), headers=alice.headers)
    resting = signal(alice, action="closeLong", quantity=30, orderType="limit", limitPrice=250,
                     timeInForce="gtc")
    assert client.post("/api/v1/signals", json=resting, headers=alice.headers).status_code == 201
    again = client.post("/api/v1/signals", json=signal(alice, action="closeLong", quantity=30),
                        headers=alice.headers)
    assert again.status_code == 400
    assert again.json()["details"][0]["code"] == "NO_POSITION"
    set_price(client, alice, "AAPL", 260)
    assert client.get("/api/v1/positions", headers=alice.headers).json()["positions"] == []


def test_take_profit_and_stop_loss_on_a_signal_become_its_exit_plan(client: httpx.Client,
                                                                    alice: Caller) -> None:
    set_price(client, alice, "AAPL", 190)
    body = signal(alice, quantity=10, takeProfit={"limitPrice": 200},
                  stopLoss={"type": "stop", "amount": 10})
    assert client.post("/api/v1/signals", json=body, headers=alice.headers).status_code == 201
    set_price(client, alice, "AAPL", 181)  # the stop is 180
    assert client.get("/api/v1/positions", headers=alice.headers).json()["positions"] != []
    set_price(client, alice, "AAPL", 201)  # the target
    assert client.get("/api/v1/positions", headers=alice.headers).json()["positions"] == []


def test_protection_is_refused_on_a_closing_signal_and_when_malformed(client: httpx.Client,
                                                                      alice: Caller) -> None:
    r = client.post("/api/v1/signals", json=signal(alice, action="closeLong",
                                                    stopLoss={"stopPrice": 1}),
                    headers=alice.headers)
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_ERROR"
    r = client.post("/api/v1/signals", json=signal(alice, takeProfit={"percent": -1}),
                    headers=alice.headers)
    assert r.status_code == 400 and r.json()["details"][0]["path"][0] == "takeProfit"


def test_a_retry_after_its_valid_until_passed_gets_the_original_answer(
        client: httpx.Client, alice: Caller, clock: ManualClock) -> None:
    """TradingView may retry late: dedup answers before validation, so the retry of a stored
    signal gets it back (200), while a new signal past its validUntil is still refused."""
    body = signal(alice, executeMode="pending", sourceId="late-retry-1",
                  validUntil="2026-02-06T15:01:00", timezone="UTC")
    first = client.post("/api/v1/signals", json=body, headers=alice.headers)
    assert first.status_code == 201, first.text
    clock.advance(timedelta(minutes=5))
    again = client.post("/api/v1/signals", json=body, headers=alice.headers)
    assert again.status_code == 200, again.text
    assert again.json()["signal"]["id"] == first.json()["signal"]["id"]
    fresh = client.post("/api/v1/signals", json={**body, "sourceId": "late-new-1"},
                        headers=alice.headers)
    assert fresh.status_code == 400 and "validUntil" in fresh.text


def test_an_immediate_answer_shows_the_signal_as_stored_after_the_brokers_answer(
        client: httpx.Client, alice: Caller) -> None:
    """The answer's signal comes from the record of the broker's report (not read again):
    it is the signal a GET finds, executed or refused by the broker."""
    set_price(client, alice, "AAPL", 190)
    filled = client.post("/api/v1/signals", json=signal(alice, sourceId="fits"),
                         headers=alice.headers)
    assert filled.status_code == 201, filled.text
    refused = client.post("/api/v1/signals", json=signal(alice, quantity=10_000,
                                                          sourceId="too-big"),
                          headers=alice.headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "SIGNAL_REJECTED"
    for answer in (filled.json()["signal"], refused.json()["signal"]):
        stored = client.get(f"/api/v1/signals/{answer['id']}", headers=alice.headers)
        assert stored.status_code == 200, stored.text
        got = stored.json()["signal"]
        shared = set(answer) & set(got)
        assert {"id", "status"} <= shared
        assert {k: answer[k] for k in shared} == {k: got[k] for k in shared}
    assert filled.json()["signal"]["status"] == "executed"
    assert refused.json()["signal"]["status"] == "rejected"
    assert refused.json()["error"] == "insufficient buying power"  # the broker's reason
