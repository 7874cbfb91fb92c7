"""Multi-leg signals on the access-token route behave as linked on the paper broker."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import Caller
from tradewire.bootstrap import Container
from tradewire.entrypoints.worker import Worker
from tradewire.services import capabilities


@pytest.fixture
def hook(container: Container, alice: Caller) -> str:
    _, token = capabilities.create_access_token(alice.account_id, container.deps,
                                                container.secrets)
    return f"/signal/execute-via-token/{token}"


def price(client: httpx.Client, caller: Caller, symbol: str, value: float) -> None:
    assert client.post("/api/v1/market/prices", json={"symbol": symbol, "price": value},
                       headers=caller.headers).status_code == 200


def orders(client: httpx.Client, caller: Caller) -> dict[str, dict[str, Any]]:
    rows = client.get("/api/v1/orders", headers=caller.headers).json()["orders"]
    return {o["id"]: o for o in rows}


def test_one_cancels_other_exits_cancel_the_sibling_when_one_fills(
        client: httpx.Client, hook: str, alice: Caller, container: Container) -> None:
    price(client, alice, "AAPL", 190)
    assert client.post(hook, json={"symbol": "AAPL", "side": "buy", "quantity": 10}
                       ).status_code == 201
    bracket = {"symbol": "AAPL", "action": "closeLong", "quantity": 10, "order_type": "limit",
               "limit_price": 200, "time_in_force": "gtc", "link": "oco",
               "legs": [{"action": "closeLong", "quantity": 10, "order_type": "stop",
                         "stop_price": 180}]}
    r = client.post(hook, json=bracket)
    assert r.status_code == 201, r.text
    take_profit, stop = (leg["order_id"] for leg in r.json()["legs"])
    assert {orders(client, alice)[i]["status"] for i in (take_profit, stop)} == {"accepted"}
    price(client, alice, "AAPL", 201)
    after = orders(client, alice)
    assert after[take_profit]["status"] == "filled"
    assert after[stop]["status"] == "canceled"
    assert client.get("/api/v1/positions", headers=alice.headers).json()["positions"] == []
    price(client, alice, "AAPL", 170)  # the stop never fires after its sibling filled
    Worker(container).run_once()
    assert orders(client, alice)[stop]["status"] == "canceled"


def test_legs_sent_together_fall_together_when_one_is_refused(client: httpx.Client, hook: str,
                                                              alice: Caller) -> None:
    price(client, alice, "AAPL", 190)
    price(client, alice, "MSFT", 400)
    basket = {"symbol": "AAPL", "side": "buy", "quantity": 10, "order_type": "limit",
              "limit_price": 150, "time_in_force": "gtc", "link": "all",
              "legs": [{"symbol": "MSFT", "side": "buy", "quantity": 1000}]}  # beyond cash
    r = client.post(hook, json=basket)
    legs = r.json()["legs"]
    states = {leg["symbol"]: orders(client, alice)[leg["order_id"]]["status"] for leg in legs}
    assert states == {"AAPL": "canceled", "MSFT": "rejected"}


def test_legs_need_a_link_and_a_link_needs_legs(client: httpx.Client, hook: str) -> None:
    r = client.post(hook, json={"symbol": "AAPL", "side": "buy", "quantity": 1, "link": "oco"})
    assert r.status_code == 400 and r.json()["details"][0]["path"] == ["link"]
    r = client.post(hook, json={"symbol": "AAPL", "side": "buy", "quantity": 1,
                                "legs": [{"side": "sell", "quantity": 1}]})
    assert r.status_code == 400
