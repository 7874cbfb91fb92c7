"""Reconciliation against the paper broker: what the broker did that tradewire missed becomes
the ordinary events; what cannot be explained is recorded once and shown, never adopted."""

from __future__ import annotations

from decimal import Decimal

import httpx

from tests.support import Caller
from tradewire.bootstrap import Container
from tradewire.domain.orders import OrderStatus
from tradewire.domain.values import OrderType, Side, TimeInForce
from tradewire.services.ports import OrderRequest, Page, Tick
from tradewire.services.reconciliation import reconcile_all
from tradewire.services.ticks import apply_ticks


def trade(container: Container, symbol: str, price: str) -> None:
    """The market trades there; tradewire hears it (the paper broker matches on it)."""
    apply_ticks([Tick(symbol, Decimal(price), container.deps.clock.now())], container.deps)


def test_an_order_the_broker_filled_unseen_is_brought_up_to_date(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    trade(container, "AAPL", "105")
    r = client.post("/api/v1/signals", headers=alice.headers, json={
        "symbol": "AAPL", "action": "openLong", "accountId": alice.account_id, "quantity": 5,
        "orderType": "limit", "limitPrice": 100, "timeInForce": "gtc",
        "executeMode": "immediate"})
    assert r.status_code in (200, 201), r.text
    with container.deps.uow(write=False) as uow:
        (order,) = uow.orders.list([alice.account_id], Page(limit=10))
    assert order.status is OrderStatus.ACCEPTED
    # The broker fills it while tradewire is not listening (its reports are dropped).
    container.paper.on_ticks([Tick("AAPL", Decimal(99), container.deps.clock.now())])
    r = client.post(f"/api/v1/accounts/{alice.account_id}/reconcile", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == 1 and r.json()["differences"] == []
    with container.deps.uow(write=False) as uow:
        after = uow.orders.get(order.id)
        position = uow.positions.get(alice.account_id, "AAPL")
        events = [e.event for e in uow.audit.of_signal(order.signal_id)]
    assert after.status is OrderStatus.FILLED and position.qty == Decimal(5)
    assert "OrderFilled" in events  # the same event a live report makes
    again = client.post(f"/api/v1/accounts/{alice.account_id}/reconcile", headers=alice.headers)
    assert again.json()["updated"] == 0


def test_an_order_tradewire_never_sent_is_reported_and_left_alone(
        client: httpx.Client, alice: Caller, bob: Caller, container: Container) -> None:
    trade(container, "MSFT", "300")
    stranger = OrderRequest(account_ref=alice.account_id, client_order_id="by-hand-1",
                            symbol="MSFT", side=Side.BUY, qty=Decimal(2),
                            order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
                            limit_price=Decimal(250))
    container.paper.submit(stranger)
    container.paper.submit(OrderRequest(account_ref=alice.account_id, client_order_id="by-hand-2",
                                        symbol="MSFT", side=Side.BUY, qty=Decimal(1),
                                        order_type=OrderType.MARKET,
                                        time_in_force=TimeInForce.DAY))
    for _ in range(2):  # the second pass records nothing new
        outcome = [o for o in reconcile_all(container.deps) if o.account_id == alice.account_id]
        kinds = sorted((d.kind, d.key) for d in outcome[0].differences)
        assert kinds == [("position", "MSFT"), ("unknown_order", "by-hand-1")]
    shown = client.get(f"/api/v1/accounts/{alice.account_id}/reconciliation",
                       headers=alice.headers)
    assert shown.status_code == 200
    body = shown.json()["differences"]
    assert sorted((d["kind"], d["key"]) for d in body) == kinds
    unknown = next(d for d in body if d["kind"] == "unknown_order")
    assert unknown["theirs"]["symbol"] == "MSFT" and unknown["theirs"]["qty"] == "2"
    position = next(d for d in body if d["kind"] == "position")
    assert (position["ours"], position["theirs"]) == ({"qty": "0"}, {"qty": "1"})
    with container.deps.uow(write=False) as uow:
        recorded = uow.audit.of_entity("reconciliation", alice.account_id)
        assert len(recorded) == 2
        assert uow.orders.by_client_id("by-hand-1") is None  # never adopted
    still = container.paper.lookup(alice.account_id, "by-hand-1")
    assert still is not None and still.status is OrderStatus.ACCEPTED  # never cancelled
    # Another account's differences are not shown to bob, and look like a missing account.
    other = client.get(f"/api/v1/accounts/{alice.account_id}/reconciliation",
                       headers=bob.headers)
    assert other.status_code == 404
    # The stranger is cancelled by hand at the broker: its difference is resolved.
    container.paper.cancel(alice.account_id, "by-hand-1")
    reconcile_all(container.deps)
    after = client.get(f"/api/v1/accounts/{alice.account_id}/reconciliation",
                       headers=alice.headers).json()["differences"]
    assert [(d["kind"], d["key"]) for d in after] == [("position", "MSFT")]


def test_the_workers_pass_leaves_paper_accounts_to_their_own_book(
        alice: Caller, container: Container) -> None:
    container.paper.submit(OrderRequest(account_ref=alice.account_id, client_order_id="x-1",
                                        symbol="AAPL", side=Side.BUY, qty=Decimal(1),
                                        order_type=OrderType.LIMIT,
                                        time_in_force=TimeInForce.GTC,
                                        limit_price=Decimal(1)))
    assert reconcile_all(container.deps, include_paper=False) == []
    assert [len(o.differences) for o in reconcile_all(container.deps)
            if o.account_id == alice.account_id] == [1]
