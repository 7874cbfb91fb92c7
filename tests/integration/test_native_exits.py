"""Native exits: a plan's stop (and, with one-cancels-other, its next target) rests at the
broker; the trigger engine watches only what does not. Real paper broker, both databases."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Caller, Server, make_caller, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.config import PaperSettings
from tradewire.domain.orders import Order
from tradewire.services import capabilities, channels
from tradewire.services.exit_engine import load_armed, resync_resting
from tradewire.services.ports import Page, Tick
from tradewire.services.submit import submit_claimable
from tradewire.services.ticks import apply_ticks


def signal(caller: Caller, **fields: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 10, "executeMode": "immediate"}
    return {**body, **fields}


def price(client: httpx.Client, caller: Caller, value: str, symbol: str = "AAPL") -> None:
    r = client.post("/api/v1/market/prices", json={"symbol": symbol, "price": value},
                    headers=caller.headers)
    assert r.status_code == 200, r.text


def enter(client: httpx.Client, caller: Caller, **fields: Any) -> str:
    """Buy 10 AAPL at 190 with the given protection; the signal's id."""
    price(client, caller, "190")
    r = client.post("/api/v1/signals", json=signal(caller, **fields), headers=caller.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["signal"]["id"])


def orders(container: Container, caller: Caller) -> list[Order]:
    with container.deps.uow(write=False) as uow:
        return list(reversed(uow.orders.list([caller.account_id], Page(limit=100))))


def resting(container: Container, caller: Caller) -> list[Order]:
    """The plan's resting exits, oldest first (a stop before a target made with it)."""
    return sorted((o for o in orders(container, caller) if o.exit_leg is not None),
                  key=lambda o: (o.created_at, o.exit_leg or ""))


def held(client: httpx.Client, caller: Caller) -> str | None:
    rows = client.get("/api/v1/positions", headers=caller.headers).json()["positions"]
    return rows[0]["qty"] if rows else None


PLAN_NEWS = {"NativeExitFilled", "NativeExitRefused", "ExitPlanClosed", "ExitPlanCancelled"}


def plan_events(container: Container, signal_id: str) -> list[str]:
    with container.deps.uow(write=False) as uow:
        return [e.event for e in uow.audit.of_signal(signal_id) if e.event in PLAN_NEWS]


BOTH = {"takeProfit": {"limitPrice": 200}, "stopLoss": {"type": "stop", "stopPrice": 180}}


def test_the_stop_and_the_target_rest_at_the_broker_once_the_entry_fills(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    sid = enter(client, alice, **BOTH)
    stop, target = resting(container, alice)
    assert (stop.exit_leg, str(stop.order_type), str(stop.side), stop.qty, stop.stop_price,
            str(stop.status)) == ("stop", "stop", "sell", 10, 180, "accepted")
    assert (target.exit_leg, str(target.order_type), target.qty, target.limit_price,
            str(target.status)) == ("take_profit:0", "limit", 10, 200, "accepted")
    # One cancels the other at the paper broker, which holds exactly these two orders.
    assert stop.link_group == target.link_group and stop.link_kind == "oco"
    at_broker = container.paper.open_orders(alice.account_id)
    assert sorted(o.client_order_id for o in at_broker) == sorted(
        [stop.client_order_id, target.client_order_id])
    assert stop.client_order_id.startswith("tw-") and len(stop.client_order_id) == 35
    assert len(container.deps.exits) == 0  # nothing left for the trigger engine to watch
    assert plan_events(container, sid) == []


def test_a_tick_through_the_stop_fills_it_once_closes_the_plan_and_cancels_the_target(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    sid = enter(client, alice, **BOTH)
    price(client, alice, "179")
    assert held(client, alice) is None
    stop, target = resting(container, alice)
    assert (str(stop.status), stop.filled_qty, stop.avg_fill_price) == ("filled", 10, 179)
    assert str(target.status) == "canceled"
    for later in ("178", "201", "170"):  # nothing fires again, nothing else rests
        price(client, alice, later)
    assert held(client, alice) is None
    assert sorted(str(o.purpose) for o in orders(container, alice)) == ["entry", "exit", "exit"]
    assert container.paper.open_orders(alice.account_id) == []
    assert plan_events(container, sid) == ["NativeExitFilled"]
    with container.deps.uow(write=False) as uow:
        assert uow.exit_plans.get(sid).active is False


def test_a_tick_through_the_target_fills_it_and_cancels_the_stop(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    enter(client, alice, **BOTH)
    price(client, alice, "201")
    assert held(client, alice) is None
    stop, target = resting(container, alice)
    assert (str(target.status), target.avg_fill_price) == ("filled", 201)
    assert str(stop.status) == "canceled"
    price(client, alice, "170")
    assert held(client, alice) is None and container.paper.open_orders(alice.account_id) == []


def test_a_trailing_stop_is_moved_at_the_broker_by_cancel_and_replace(
        client: httpx.Client, alice: Caller, container: Container, clock: ManualClock) -> None:
    enter(client, alice, stopLoss={"type": "trailing_stop", "trailAmount": 5})
    [first] = resting(container, alice)
    assert (first.stop_price, str(first.status)) == (185, "accepted")  # 190 - 5
    clock.advance(timedelta(seconds=1))
    price(client, alice, "195")  # a new best price: the stop follows to 190
    price(client, alice, "193")  # below the best: nothing moves
    stops = resting(container, alice)
    assert [(o.stop_price, str(o.status)) for o in stops] == [(185, "canceled"),
                                                              (190, "accepted")]
    assert len({o.client_order_id for o in stops}) == 2
    [live] = container.paper.open_orders(alice.account_id)
    assert live.client_order_id == stops[1].client_order_id  # never two stops at the broker
    price(client, alice, "189")
    assert held(client, alice) is None
    assert str(resting(container, alice)[1].status) == "filled"


def test_closing_the_position_otherwise_cancels_the_resting_exits(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    sid = enter(client, alice, **BOTH)
    r = client.post("/api/v1/signals", json=signal(alice, action="closeLong"),
                    headers=alice.headers)
    assert r.status_code == 201, r.text
    assert held(client, alice) is None
    assert {str(o.status) for o in resting(container, alice)} == {"canceled"}
    assert container.paper.open_orders(alice.account_id) == []
    assert plan_events(container, sid) == ["ExitPlanClosed"]
    price(client, alice, "150")  # the old stop's level: nothing happens to a flat account
    assert held(client, alice) is None
    assert len([o for o in orders(container, alice) if str(o.status) == "filled"]) == 2


def test_a_stop_the_broker_took_before_a_crash_is_found_by_its_client_order_id(
        client: httpx.Client, alice: Caller, container: Container, clock: ManualClock) -> None:
    """The broker took the stop, the process died before recording it: the sweep finds the
    order by its client_order_id once the lease lapses, and never sends a second one."""

    def die(name: str) -> None:
        if name == "broker-accepted":
            raise SystemExit("killed after the broker accepted")  # the crash tests' point

    price(client, alice, "195")
    body = signal(alice, orderType="limit", limitPrice=190, timeInForce="gtc",
                  stopLoss={"type": "stop", "stopPrice": 180})
    assert client.post("/api/v1/signals", json=body, headers=alice.headers).status_code == 201
    dying = dataclasses.replace(container.deps, failpoint=die)
    with pytest.raises(SystemExit):  # the entry fills; the stop reaches the broker; death
        apply_ticks([Tick("AAPL", Decimal(190), clock.now())], dying)
    [stop] = resting(container, alice)
    assert str(stop.status) == "submitting"
    assert len(container.paper.open_orders(alice.account_id)) == 1
    clock.advance(timedelta(seconds=31))  # the lease lapses: the sweep looks before sending
    submit_claimable(container.deps)
    [stop] = resting(container, alice)
    assert str(stop.status) == "accepted"
    assert [o.client_order_id for o in container.paper.open_orders(alice.account_id)] == [
        stop.client_order_id]
    price(client, alice, "179")
    assert held(client, alice) is None
    assert [str(o.status) for o in resting(container, alice)] == ["filled"]


@pytest.fixture
def emulating(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Container]:
    """A paper broker that declares no native stops: a venue where every exit is emulated."""
    c = make_container(db_url, tmp_path / "emulating", clock,
                       paper=PaperSettings(native_exits=False))
    yield c
    c.close()


def test_a_broker_without_native_stops_keeps_every_exit_emulated(
        emulating: Container, db_url: str, tmp_path: Path, clock: ManualClock) -> None:
    assert emulating.paper.capabilities.native_stop is False
    bob = make_caller(emulating)
    with Server(emulating) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        enter(client, bob, **BOTH)
        assert resting(emulating, bob) == []
        assert emulating.paper.open_orders(bob.account_id) == []
        assert len(emulating.deps.exits) == 1  # the trigger engine watches both levels
        again = make_container(db_url, tmp_path / "again", clock,
                               paper=PaperSettings(native_exits=False))
        assert len(again.deps.exits) == 1  # a restart rebuilds the book from the database
        again.close()
        price(client, bob, "179")
        assert held(client, bob) is None
        exits = [o for o in orders(emulating, bob) if str(o.purpose) == "exit"]
        assert [(str(o.order_type), str(o.status), o.avg_fill_price) for o in exits] == [
            ("market", "filled", 179)]


def test_an_upgraded_plan_armed_before_native_exits_stays_emulated(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    """Plans armed before revision 0013 hold no native legs: they keep running here."""
    sid = enter(client, alice, **BOTH)
    with container.deps.uow() as uow:  # as revision 0013 leaves an older plan: native empty
        stored = uow.exit_plans.get(sid)
        uow.exit_plans.save(stored, native=frozenset(), at=container.deps.clock.now())
        uow.commit()
    container.deps.exits.clear()
    resync_resting(container.deps)  # the sweep takes the plan's resting orders away
    load_armed(container.deps)
    assert {str(o.status) for o in resting(container, alice)} == {"canceled"}
    assert len(container.deps.exits) == 1
    price(client, alice, "179")
    assert held(client, alice) is None


def test_an_add_that_fills_and_a_moved_stop_replace_the_resting_orders(
        client: httpx.Client, alice: Caller, container: Container, clock: ManualClock) -> None:
    """A partner signal with a ladder and a stop, a rebuy level, then a stop moved by call:
    the resting stop and target always cover what is held, at the plan's prices."""
    deps, secrets = container.deps, container.secrets
    partner, _ = capabilities.create_partner("desk", deps, secrets)
    chan, secret = channels.create_channel(partner.id, "alpha", deps, secrets)
    channels.subscribe(chan.id, alice.account_id, deps, allocation=Decimal(1000))
    keys = {"anny-api-key": chan.api_key, "anny-api-secret": secret}
    price(client, alice, "99", "BTC/USDT")
    parent = client.post("/v1/signal", headers=keys, json={
        "coin": "BTC", "trade_market": "USDT", "buy_price_min": "95", "buy_price_max": "100",
        "sell_price_1": "110", "sell_price_2": "120", "stop_loss": "80", "invest": "40",
        }).json()["payload"]["parent_signal_id"]
    live = [(o.exit_leg, o.qty, o.stop_price or o.limit_price)
            for o in resting(container, alice) if str(o.status) == "accepted"]
    assert live == [("stop", 4, 80), ("take_profit:0", 2, 110)]
    r = client.post(f"/v1/signal/{parent}/call/rebuy", json={"price": "92", "invest": "50"},
                    headers=keys)
    assert r.json()["payload"]["result"] == "success", r.text
    clock.advance(timedelta(seconds=1))
    price(client, alice, "91", "BTC/USDT")  # the rebuy fills 2 more: 6 held
    assert held(client, alice) == "6.000000"
    live = [(o.exit_leg, o.qty, o.stop_price or o.limit_price)
            for o in resting(container, alice) if str(o.status) == "accepted"]
    assert live == [("stop", 6, 80), ("take_profit:0", 3, 110)]
    clock.advance(timedelta(seconds=1))
    r = client.put(f"/v1/signal/{parent}/updateprice", json={"stop_loss": "90"}, headers=keys)
    assert r.json()["payload"]["result"] == "success", r.text
    live = [(o.exit_leg, o.qty, o.stop_price or o.limit_price)
            for o in resting(container, alice) if str(o.status) == "accepted"]
    assert live == [("take_profit:0", 3, 110), ("stop", 6, 90)]
    assert len(container.paper.open_orders(alice.account_id)) == 2  # one stop, one target
    price(client, alice, "89", "BTC/USDT")
    assert held(client, alice) is None


def test_the_resting_exit_sweep_finds_exactly_the_plans_with_legs_at_the_broker(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    """The sweep runs every few seconds: it asks for the ids of the armed plans holding
    resting legs, instead of loading every armed plan to look; both say the same."""
    sid = enter(client, alice, **BOTH)
    other = enter(client, alice, takeProfit={"limitPrice": 205})

    def looked_up(uow: Any) -> list[str]:
        found = sorted(uow.exit_plans.with_resting_legs())
        assert found == sorted(p.signal_id for p in uow.exit_plans.armed() if p.native)
        return found

    with container.deps.uow() as uow:
        assert looked_up(uow) == sorted([sid, other])
        second = uow.exit_plans.get(other)
        assert second is not None and second.native
        assert uow.exit_plans.save(second, native=frozenset(), at=container.deps.clock.now())
        assert looked_up(uow) == [sid]
        first = uow.exit_plans.get(sid)
        assert first is not None and first.native
        assert uow.exit_plans.save(first, active=False, at=container.deps.clock.now())
        assert looked_up(uow) == []
        uow.commit()
