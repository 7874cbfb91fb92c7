"""A kill -9 between an exit firing and its order being stored (or sent): exactly one order."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Cli, Service

pytestmark = pytest.mark.slow

V1 = {"coin": "BTC", "trade_market": "USDT", "buy_price_min": "95", "buy_price_max": "100",
      "sell_price_1": "110", "sell_price_2": "120", "stop_loss": "90", "invest": "50"}


def _setup(cli: Cli) -> dict[str, Any]:
    boot = cli.json("init", "--json")
    account = cli.json("accounts", "create", "--name", "crypto", "--market", "24/7", "--json")
    partner = cli.json("partners", "create", "--name", "desk", "--json")
    channel = cli.json("channels", "create", "--partner", partner["id"], "--name", "c", "--json")
    cli.json("channels", "subscribe", "--channel", channel["id"], "--account", account["id"],
             "--allocation", "1000", "--json")
    return {"key": boot["api_key"], "account": account["id"],
            "channel": {"anny-api-key": channel["api_key"],
                        "anny-api-secret": channel["api_secret"]}}


def _tick(client: httpx.Client, key: str, price: str) -> httpx.Response:
    return client.post("/api/v1/market/prices", json={"symbol": "BTC/USDT", "price": price},
                       headers={"X-API-Key": key})


def _exit_orders(client: httpx.Client, key: str) -> list[dict[str, Any]]:
    orders = client.get("/api/v1/orders", headers={"X-API-Key": key}).json()["orders"]
    return [o for o in orders if o["purpose"] == "exit"]


@pytest.mark.parametrize("point", ["exit-fired", "exit-stored"])
def test_a_crash_at_an_exit_leaves_exactly_one_exit_order(cli: Cli, tmp_path: Any,
                                                          point: str) -> None:
    ids = _setup(cli)
    # The trigger engine's own exits are under test: a paper broker that rests none.
    emulating = {**cli.env, "TRADEWIRE_PAPER__NATIVE_EXITS": "false"}
    service = Service({**emulating, "TRADEWIRE_FAILPOINTS": point}, tmp_path, tmp_path)
    try:
        service.start()
        with service.client() as client:
            _tick(client, ids["key"], "99")
            r = client.post("/v1/signal", json=V1, headers=ids["channel"])
            assert r.status_code == 200, r.text
            assert _exit_orders(client, ids["key"]) == []
            with contextlib.suppress(httpx.HTTPError):
                _tick(client, ids["key"], "111")  # target 1 fires: the process dies at `point`
        assert service.proc is not None
        service.proc.wait(timeout=15)
        service.proc = None
        service.env = emulating  # back without the failpoint
        service.start()
        with service.client() as client:
            for _ in range(3):  # the price stays above the target: it must not fire again
                _tick(client, ids["key"], "112")
            deadline = 50
            while deadline and not any(o["status"] == "filled"
                                       for o in _exit_orders(client, ids["key"])):
                _tick(client, ids["key"], "112")
                deadline -= 1
            exits = _exit_orders(client, ids["key"])
            assert len(exits) == 1, exits
            assert exits[0]["status"] == "filled" and exits[0]["qty"] == "2.500000"
            positions = client.get("/api/v1/positions",
                                   headers={"X-API-Key": ids["key"]}).json()["positions"]
            assert [p["qty"] for p in positions] == ["2.500000"]
    finally:
        service.kill()
