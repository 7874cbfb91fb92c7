"""The partner signal API (seed 001): channels, fan-out to subscribers, cancel."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.support import Caller
from tradewire.bootstrap import Container
from tradewire.domain.values import Side
from tradewire.services import capabilities, channels
from tradewire.services.ports import Page


@pytest.fixture
def channel(container: Container, alice: Caller, bob: Caller) -> dict[str, str]:
    partner, _ = capabilities.create_partner("signals-desk", container.deps, container.secrets)
    chan, secret = channels.create_channel(partner.id, "alpha", container.deps, container.secrets)
    channels.subscribe(chan.id, alice.account_id, container.deps, allocation=Decimal(1000))
    channels.subscribe(chan.id, bob.account_id, container.deps, allocation=Decimal(500))
    return {"anny-api-key": chan.api_key, "anny-api-secret": secret}


V1 = {"coin": "BTC", "trade_market": "USDT", "exchange": "BINANCE", "buy_price_min": "95",
      "buy_price_max": "100", "sell_price_1": "110", "sell_price_2": "120",
      "sell_price_3": "130", "stop_loss": "90", "type": "long", "invest": "50"}


def tick(client: httpx.Client, caller: Caller, value: str) -> None:
    assert client.post("/api/v1/market/prices", json={"symbol": "BTC/USDT", "price": value},
                       headers=caller.headers).status_code == 200


def position(client: httpx.Client, caller: Caller) -> dict[str, Any] | None:
    rows = client.get("/api/v1/positions", headers=caller.headers).json()["positions"]
    return rows[0] if rows else None


def test_a_v1_signal_fans_out_to_every_subscriber_sized_by_allocation(
        client: httpx.Client, channel: dict[str, str], alice: Caller, bob: Caller) -> None:
    tick(client, alice, "105")  # above the range: the entries wait
    r = client.post("/v1/signal", json=V1, headers=channel)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == {"type": "OPERATION_PERFORMED"}
    assert body["payload"]["result"] == "success"
    kids = {k["account_id"]: k for k in body["payload"]["children"]}
    assert set(kids) == {alice.account_id, bob.account_id}
    assert position(client, alice) is None
    tick(client, alice, "99")  # inside the range: both enter at the range's top or better
    assert position(client, alice)["qty"] == "5.000000"  # 50% of 1,000 at 100
    assert position(client, bob)["qty"] == "2.500000"  # 50% of 500 at 100


def test_cancel_closes_what_the_signal_opened(client: httpx.Client, channel: dict[str, str],
                                              alice: Caller, bob: Caller) -> None:
    tick(client, alice, "99")
    parent = client.post("/v1/signal", json=V1, headers=channel).json()["payload"]
    assert position(client, alice) is not None
    r = client.delete(f"/v1/signal/{parent['parent_signal_id']}/cancel", headers=channel)
    assert r.status_code == 200, r.text
    assert position(client, alice) is None and position(client, bob) is None


def test_wrong_credentials_answer_403_unauthorized(client: httpx.Client,
                                                   channel: dict[str, str]) -> None:
    bad = {**channel, "anny-api-secret": "nope"}
    r = client.post("/v1/signal", json=V1, headers=bad)
    assert r.status_code == 403 and r.json()["result"]["type"] == "UNAUTHORIZED"
    assert client.post("/v1/signal", json=V1).status_code == 403


@pytest.mark.parametrize(("change", "kind"), [
    ({"sell_price_1": None}, "INVALID_INPUT_MISSING"),
    ({"buy_price_min": "abc"}, "INVALID_INPUT_CONTENT"),
    ({"sell_price_1": "80"}, "INVALID_INPUT_CONTENT"),  # a target below the entry range
    ({"stop_loss": "97"}, "INVALID_INPUT_CONTENT"),  # a stop inside the range
    ({"type": "sideways"}, "INVALID_INPUT_CONTENT"),
])
def test_bad_bodies_answer_400_with_the_seeds_types(client: httpx.Client,
                                                    channel: dict[str, str],
                                                    change: dict[str, Any], kind: str) -> None:
    body = {k: v for k, v in {**V1, **change}.items() if v is not None}
    r = client.post("/v1/signal", json=body, headers=channel)
    assert r.status_code == 400 and r.json()["result"]["type"] == kind, r.text


def test_a_channel_cannot_touch_another_channels_signal(client: httpx.Client,
                                                        channel: dict[str, str],
                                                        container: Container) -> None:
    parent = client.post("/v1/signal", json=V1, headers=channel).json()["payload"]
    other, _ = capabilities.create_partner("other", container.deps, container.secrets)
    chan, secret = channels.create_channel(other.id, "beta", container.deps, container.secrets)
    r = client.delete(f"/v1/signal/{parent['parent_signal_id']}/cancel",
                      headers={"anny-api-key": chan.api_key, "anny-api-secret": secret})
    assert r.status_code == 400 and "not found" in r.json()["payload"]["message"]


def test_a_channel_that_requires_a_stop_loss_refuses_a_signal_without_one(
        client: httpx.Client, container: Container, alice: Caller) -> None:
    partner, bearer = capabilities.create_partner("strict", container.deps, container.secrets)
    channels.create_channel(partner.id, "strict", container.deps, container.secrets,
                            require_stop_loss=True)
    body = {k: v for k, v in V1.items() if k != "stop_loss"}
    r = client.post("/v1/signal", json=body, headers={"Authorization": f"Bearer {bearer}"})
    assert r.status_code == 200
    assert r.json()["payload"]["result"] == "failed" and "stop_loss" in r.json()["payload"]["reason"]


def test_v2_accepts_leverage_and_a_mid_entry(client: httpx.Client, channel: dict[str, str],
                                             alice: Caller) -> None:
    tick(client, alice, "97")
    body = {"coin": "BTC", "trade_market": "USDT", "entry_price_min": "95",
            "entry_price_max": "100", "entry_price_mid": "97.5", "exit_price_1": "110",
            "stop_loss": "90", "invest": "50", "leverage": 2, "margin_type": "isolated"}
    r = client.post("/v2/signal", json=body, headers=channel)
    assert r.status_code == 200, r.text
    # leverage is capped by the subscription (1 by default): 50% of 1,000 at 97.5
    assert position(client, alice)["qty"] == "5.128205"


def test_targets_and_stop_run_on_ticks_for_every_subscriber(client: httpx.Client,
                                                            channel: dict[str, str],
                                                            alice: Caller, bob: Caller) -> None:
    tick(client, alice, "99")
    assert client.post("/v1/signal", json={**V1, "invest": "60"}, headers=channel
                       ).status_code == 200
    assert position(client, alice)["qty"] == "6.000000"  # 60% of 1,000 at 100, filled at 99
    tick(client, alice, "110")  # target 1 of 3: each closes a third
    assert position(client, alice)["qty"] == "4.000000"
    assert position(client, bob)["qty"] == "2.000000"
    tick(client, alice, "125")  # a gap through target 2 (120) but not 3 (130)
    assert position(client, alice)["qty"] == "2.000000"
    tick(client, alice, "89")  # the stop (90): the rest closes
    assert position(client, alice) is None and position(client, bob) is None
    orders = client.get("/api/v1/orders", headers=alice.headers).json()["orders"]
    # The stop and the next target rest at the paper broker (one-cancels-other); the ones the
    # plan replaced along the way are cancelled. What filled is what the ladder asked for.
    filled = [o for o in orders if o["status"] == "filled"]
    exits = sorted((o["avgFillPrice"], o["qty"]) for o in filled if o["purpose"] == "exit")
    assert exits == sorted([("110", "2.000000"), ("125", "2.000000"), ("89", "2.000000")])
    # Bought 6 at 99; sold 2 at 110, 2 at 125 and 2 at 89: +22 +52 -20 = 54.00.
    realized = Decimal(0)
    for o in filled:
        if o["purpose"] == "exit":
            realized += (Decimal(o["avgFillPrice"]) - Decimal(99)) * Decimal(o["qty"])
    assert realized.quantize(Decimal("0.01")) == Decimal("54.00")


def test_a_restart_rebuilds_the_armed_exits_from_the_database(
        client: httpx.Client, channel: dict[str, str], alice: Caller, container: Container,
        db_url: str, tmp_path: Any, clock: Any) -> None:
    from tests.support import Server, make_container

    tick(client, alice, "99")
    client.post("/v1/signal", json=V1, headers=channel)
    again = make_container(db_url, tmp_path / "again", clock)  # a new process on the same DB
    # The stop and the first target rest at the paper broker: nothing is left to watch here
    # (tests/integration/test_native_exits.py rebuilds an emulated book).
    assert len(again.deps.exits) == 0
    with Server(again) as server, httpx.Client(base_url=server.url) as other:
        tick(other, alice, "89")
        assert position(other, alice) is None
    again.close()


def test_the_whole_life_of_a_signal_over_http(client: httpx.Client, channel: dict[str, str],
                                              alice: Caller, bob: Caller) -> None:
    """Range entry, target 1, a trailing stop added by call that follows and fires."""
    tick(client, alice, "105")
    parent = client.post("/v1/signal", json={**V1, "invest": "60"}, headers=channel
                         ).json()["payload"]["parent_signal_id"]
    tick(client, alice, "98")  # into the range: alice buys 6, bob 3, both at 98
    assert position(client, alice)["avgEntryPrice"] == "98"
    tick(client, alice, "111")  # target 1 (110): a third each
    assert (position(client, alice)["qty"], position(client, bob)["qty"]) == ("4.000000",
                                                                              "2.000000")
    r = client.post(f"/v1/signal/{parent}/call/trailingstop", json={"amount": "5"},
                    headers=channel)
    assert r.status_code == 200 and r.json()["payload"]["result"] == "success", r.text
    assert r.json()["payload"]["plans_changed"] == 2
    tick(client, alice, "118")  # the trail follows up to 118: its stop is now 113
    tick(client, alice, "114")  # above 113: nothing
    assert position(client, alice)["qty"] == "4.000000"
    tick(client, alice, "112.5")  # below 113: the trailing stop closes the rest
    assert position(client, alice) is None and position(client, bob) is None
    # alice: 2 x (111 - 98) + 4 x (112.5 - 98) = 26 + 58 = 84.00; bob half of it.
    for caller, expected in ((alice, "84.00"), (bob, "42.00")):
        orders = client.get("/api/v1/orders", headers=caller.headers).json()["orders"]
        pnl = sum((Decimal(o["avgFillPrice"]) - Decimal(98)) * Decimal(o["qty"])
                  for o in orders if o["purpose"] == "exit" and o["status"] == "filled")
        assert pnl.quantize(Decimal("0.01")) == Decimal(expected)
    r = client.delete(f"/v1/signal/{parent}/cancel", headers=channel)
    assert r.status_code == 200
    assert {k["status"] for k in r.json()["payload"]["children"]} == {"flat"}


def test_calls_change_live_plans(client: httpx.Client, channel: dict[str, str],
                                 alice: Caller) -> None:
    tick(client, alice, "99")
    parent = client.post("/v1/signal", json={**V1, "stop_loss": "80"}, headers=channel
                         ).json()["payload"]["parent_signal_id"]
    r = client.put(f"/v1/signal/{parent}/updateprice", json={"stop_loss": "95"},
                   headers=channel)
    assert r.json()["payload"]["result"] == "success", r.text
    tick(client, alice, "94")  # the moved stop fires
    assert position(client, alice) is None


def test_rebuy_adds_to_the_position_when_the_price_comes_back(
        client: httpx.Client, channel: dict[str, str], alice: Caller) -> None:
    tick(client, alice, "99")
    parent = client.post("/v1/signal", json={**V1, "invest": "40", "stop_loss": "80"},
                         headers=channel).json()["payload"]["parent_signal_id"]
    assert position(client, alice)["qty"] == "4.000000"
    r = client.post(f"/v1/signal/{parent}/call/rebuy", json={"price": "92", "invest": "50"},
                    headers=channel)
    assert r.json()["payload"]["result"] == "success", r.text
    tick(client, alice, "91")
    assert position(client, alice)["qty"] == "6.000000"
    r = client.post(f"/v1/signal/{parent}/call/takeprofit", json={"price": "140"},
                    headers=channel)
    assert r.json()["payload"]["result"] == "failed"  # the ladder already closes everything
    wrong = client.post(f"/v1/signal/{parent}/call/dca", json={"price": "150"}, headers=channel)
    assert wrong.json()["payload"]["result"] == "failed"


def test_calls_refuse_bad_bodies_with_the_seeds_types(client: httpx.Client,
                                                      channel: dict[str, str]) -> None:
    parent = client.post("/v1/signal", json=V1, headers=channel).json()["payload"]
    pid = parent["parent_signal_id"]
    r = client.post(f"/v1/signal/{pid}/call/trailingstop", json={"percent": "2", "amount": "1"},
                    headers=channel)
    assert r.status_code == 400 and r.json()["result"]["type"] == "INVALID_INPUT_CONTENT"
    r = client.post(f"/v1/signal/{pid}/call/takeprofit", json={}, headers=channel)
    assert r.status_code == 400 and r.json()["result"]["type"] == "INVALID_INPUT_MISSING"


def test_a_channel_caps_the_capital_its_signals_put_at_risk(client: httpx.Client,
                                                           container: Container, alice: Caller,
                                                           bob: Caller) -> None:
    partner, bearer = capabilities.create_partner("capped", container.deps, container.secrets)
    chan, _ = channels.create_channel(partner.id, "capped", container.deps, container.secrets,
                                      max_capital_at_risk=Decimal(50))
    channels.subscribe(chan.id, alice.account_id, container.deps, allocation=Decimal(1000))
    headers = {"Authorization": f"Bearer {bearer}"}
    # 50% of 1,000 invested at 100 with the stop at 90: 50.00 at risk, allowed
    assert client.post("/v1/signal", json=V1, headers=headers).json()["payload"]["result"] == \
        "success"
    risky = {**V1, "stop_loss": "80"}  # 100.00 at risk
    r = client.post("/v1/signal", json=risky, headers=headers).json()["payload"]
    assert r["result"] == "failed" and "at risk" in r["reason"]


def test_break_even_moves_the_stop_to_the_entry_after_the_first_target(
        client: httpx.Client, channel: dict[str, str], alice: Caller) -> None:
    tick(client, alice, "100")
    client.post("/v1/signal", json={**V1, "break_even_after_first_target": True},
                headers=channel)
    tick(client, alice, "110")  # target 1
    tick(client, alice, "99.5")  # under the entry (100): the moved stop closes the rest
    assert position(client, alice) is None


def test_v2_splits_the_entry_across_the_range_and_the_plan_manages_every_part(
        client: httpx.Client, channel: dict[str, str], alice: Caller) -> None:
    tick(client, alice, "105")
    body = {"coin": "BTC", "trade_market": "USDT", "entry_price_min": "95",
            "entry_price_max": "100", "entry_price_mid": "97.5", "exit_price_1": "110",
            "stop_loss": "90", "invest": "60", "entry_allocation": [50, 25, 25]}
    r = client.post("/v2/signal", json=body, headers=channel)
    assert r.status_code == 200, r.text
    tick(client, alice, "99")  # the top slice only: 25% of 600 at 100
    assert position(client, alice)["qty"] == "1.500000"
    tick(client, alice, "94")  # the rest: 300 at 95 (3.157894) and 150 at 97.5 (1.538461)
    assert position(client, alice)["qty"] == "6.196355"
    tick(client, alice, "111")  # the single target closes everything the legs bought
    assert position(client, alice) is None


def test_a_storm_of_the_same_cancel_closes_each_position_once(
        client: httpx.Client, server: Any, channel: dict[str, str], alice: Caller,
        bob: Caller, container: Container) -> None:
    """Twenty identical cancels of one partner signal at the same moment: one close order per
    subscriber, whichever request gets there first; every answer is a definite one."""
    tick(client, alice, "99")
    parent = client.post("/v1/signal", json=V1, headers=channel).json()["payload"]
    pid = parent["parent_signal_id"]
    barrier = threading.Barrier(20)
    answers: list[int] = []

    def cancel() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            barrier.wait(timeout=20)
            answers.append(c.delete(f"/v1/signal/{pid}/cancel", headers=channel).status_code)

    threads = [threading.Thread(target=cancel) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 20 and all(a < 500 for a in answers), answers
    assert position(client, alice) is None and position(client, bob) is None
    with container.deps.uow(write=False) as uow:
        for caller in (alice, bob):
            sells = [o for o in uow.orders.list([caller.account_id], Page(limit=50))
                     if o.side is Side.SELL]
            exits = [o for o in sells if o.exit_leg is None]
            assert len(exits) == 1, exits
            # The stop and the target that rested at the broker were cancelled, none filled.
            resting = [o for o in sells if o.exit_leg is not None]
            assert {str(o.status) for o in resting} == {"canceled"}, resting
