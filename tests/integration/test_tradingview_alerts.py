"""TradingView alerts (TradersPost-style JSON) on the access-token route, against positions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.support import Caller
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.entrypoints.worker import Worker
from tradewire.services import capabilities


@pytest.fixture
def hook(container: Container, alice: Caller) -> str:
    _, token = capabilities.create_access_token(alice.account_id, container.deps,
                                                container.secrets)
    return f"/signal/execute-via-token/{token}"


def send(client: httpx.Client, hook: str, **alert: Any) -> httpx.Response:
    import json

    # TradingView posts the alert message as text/plain when it cannot tell it is JSON.
    return client.post(hook, content=json.dumps(alert).encode(),
                       headers={"Content-Type": "text/plain"})


def qty(client: httpx.Client, caller: Caller) -> str:
    positions = client.get("/api/v1/positions", headers=caller.headers).json()["positions"]
    return positions[0]["qty"] if positions else "0"


@pytest.fixture(autouse=True)
def priced(client: httpx.Client, alice: Caller) -> None:
    client.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": 190},
                headers=alice.headers)


def test_a_tradingview_alert_places_a_paper_order(client: httpx.Client, hook: str,
                                                  alice: Caller) -> None:
    r = send(client, hook, ticker="NASDAQ:AAPL", action="buy", quantity="10",
             price="{{close}}".replace("{{close}}", "190.1"), extras={"strategy": "x"})
    assert r.status_code == 201, r.text
    assert r.json()["success"] is True and r.json()["payload"]["steps"][0]["status"] == "executed"
    assert qty(client, alice) == "10"


def test_buy_while_short_covers_first_and_opens_the_long_after_the_fill(
        client: httpx.Client, hook: str, alice: Caller, container: Container) -> None:
    assert send(client, hook, ticker="AAPL", action="sell", quantity=5).status_code == 201
    assert qty(client, alice) == "-5"
    r = send(client, hook, ticker="AAPL", action="buy", quantity=10)
    assert r.status_code == 201, r.text
    steps = r.json()["payload"]["steps"]
    assert [s["action"] for s in steps] == ["closeShort", "openLong"]
    assert qty(client, alice) == "0"  # the cover filled; the long waits for the worker
    Worker(container).run_once()
    assert qty(client, alice) == "10"


def test_a_plain_fill_leaves_the_worker_to_its_poll_and_a_released_entry_wakes_it(
        client: httpx.Client, hook: str, alice: Caller, container: Container) -> None:
    """A worker pass costs reads of its own: a fill wakes it only when the fill made work
    (here the reversal's entry, released by the cover's fill)."""
    container.wake_event.clear()
    assert send(client, hook, ticker="AAPL", action="sell", quantity=5).status_code == 201
    assert qty(client, alice) == "-5"
    assert not container.wake_event.is_set()
    assert send(client, hook, ticker="AAPL", action="buy", quantity=10).status_code == 201
    assert container.wake_event.is_set()
    Worker(container).run_once()
    assert qty(client, alice) == "10"


def test_the_reversal_entry_is_cancelled_when_the_cover_never_fills(
        client: httpx.Client, hook: str, alice: Caller, container: Container) -> None:
    send(client, hook, ticker="AAPL", action="sell", quantity=5)
    r = send(client, hook, ticker="AAPL", action="buy", quantity=10, orderType="limit",
             limitPrice=100, timeInForce="ioc")  # the cover cannot fill at 100: cancelled
    assert r.status_code == 400 and "ioc" in r.json()["message"]
    Worker(container).run_once()
    assert qty(client, alice) == "-5"
    cancelled = client.get("/api/v1/signals", params={"status": "cancelled"},
                           headers=alice.headers).json()["signals"]
    assert [s["action"] for s in cancelled] == ["openLong"]
    assert "ended canceled" in cancelled[0]["statusReason"]


@pytest.mark.parametrize(("held", "alert", "status", "after"), [
    (0, {"action": "exit"}, 400, "0"),
    (10, {"action": "exit"}, 201, "0"),
    (10, {"action": "exit", "quantity": 4}, 201, "6"),
    (10, {"action": "add", "quantity": 5}, 201, "15"),
    (0, {"action": "add", "quantity": 5}, 400, "0"),
    (10, {"action": "buy", "quantity": 5}, 400, "10"),
    (10, {"action": "sell", "sentiment": "flat", "quantity": 3}, 201, "0"),
    (10, {"action": "sell", "sentiment": "long", "quantity": 3}, 201, "7"),
    (0, {"action": "sell", "sentiment": "flat"}, 400, "0"),
    (10, {"action": "cancel"}, 200, "10"),
])
def test_alert_meaning_depends_on_the_position(client: httpx.Client, hook: str, alice: Caller,
                                               held: int, alert: dict[str, Any], status: int,
                                               after: str) -> None:
    if held:
        send(client, hook, ticker="AAPL", action="buy", quantity=held)
    r = send(client, hook, ticker="AAPL", **alert)
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.json()["success"] is False and r.json()["messageCode"]
    assert qty(client, alice) == after


def test_cancel_cancels_open_orders_and_keeps_the_position(client: httpx.Client, hook: str,
                                                           alice: Caller) -> None:
    send(client, hook, ticker="AAPL", action="buy", quantity=10)
    send(client, hook, ticker="AAPL", action="exit", orderType="limit", limitPrice=250,
         timeInForce="gtc")
    r = send(client, hook, ticker="AAPL", action="cancel")
    assert r.status_code == 200 and r.json()["payload"]["cancelledOrders"] == 1
    orders = client.get("/api/v1/orders", headers=alice.headers).json()["orders"]
    assert sorted(o["status"] for o in orders) == ["canceled", "filled"]
    assert qty(client, alice) == "10"


def test_a_stale_alert_is_refused_when_the_account_sets_a_maximum_lag(
        client: httpx.Client, hook: str, alice: Caller, container: Container,
        clock: ManualClock) -> None:
    from sqlalchemy import update

    from tradewire.adapters.db import tables

    with container.db.engine.begin() as conn:
        conn.execute(update(tables.accounts).where(tables.accounts.c.id == alice.account_id)
                     .values(max_lag_s=30))
    sent = (clock.now() - timedelta(seconds=45)).isoformat()
    r = send(client, hook, ticker="AAPL", action="buy", quantity=1, time=sent)
    assert r.status_code == 400 and r.json()["messageCode"] == "stale-signal"
    fresh = (clock.now() - timedelta(seconds=5)).isoformat()
    assert send(client, hook, ticker="AAPL", action="buy", quantity=1, time=fresh).status_code == 201


def test_an_alert_with_a_bad_action_is_refused_in_the_alert_format(client: httpx.Client,
                                                                   hook: str) -> None:
    r = send(client, hook, ticker="AAPL", action="hodl")
    assert r.status_code == 400
    assert r.json()["success"] is False and r.json()["messageCode"] == "invalid-action"


def test_an_alerts_take_profit_and_stop_loss_run_on_ticks(client: httpx.Client, hook: str,
                                                          alice: Caller) -> None:
    r = send(client, hook, ticker="AAPL", action="buy", quantity=10,
             takeProfit={"limitPrice": "200"}, stopLoss={"type": "stop", "percent": "5"})
    assert r.status_code == 201, r.text
    assert qty(client, alice) == "10"
    client.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": 185},
                headers=alice.headers)
    assert qty(client, alice) == "10"  # the stop is 5% under 190: 180.5
    client.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": 180},
                headers=alice.headers)
    assert qty(client, alice) == "0"


def test_an_alerts_trailing_stop_follows_the_price(client: httpx.Client, hook: str,
                                                   alice: Caller) -> None:
    send(client, hook, ticker="AAPL", action="buy", quantity=10,
         stopLoss={"type": "trailing_stop", "trailAmount": "3"})
    for price in (195, 199, 197):
        client.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": price},
                    headers=alice.headers)
    assert qty(client, alice) == "10"  # the stop trails 199: 196
    client.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": 195.5},
                headers=alice.headers)
    assert qty(client, alice) == "0"
