"""Two deliveries of one broker report racing (the sender recording its acknowledgement while
the order stream or a polling pass records the same news): the loser of the order row's
compare-and-set reads again and applies what is left, instead of failing the delivery.

Only PostgreSQL lets two writers interleave like this; SQLite's writers take turns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from tests.support import Caller
from tradewire.bootstrap import Container
from tradewire.domain.orders import OrderStatus
from tradewire.services import submit
from tradewire.services.ports import Page, Tick
from tradewire.services.ticks import apply_ticks


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def resting(client: httpx.Client, alice: Caller, container: Container) -> Iterator[str]:
    """A limit buy resting at the paper broker; yields its client order id."""
    apply_ticks([Tick("AAPL", Decimal(105), container.deps.clock.now())], container.deps)
    r = client.post("/api/v1/signals", headers=alice.headers, json={
        "symbol": "AAPL", "action": "openLong", "accountId": alice.account_id, "quantity": 5,
        "orderType": "limit", "limitPrice": 100, "timeInForce": "gtc",
        "executeMode": "immediate"})
    assert r.status_code in (200, 201), r.text
    with container.deps.uow(write=False) as uow:
        (order,) = uow.orders.list([alice.account_id], Page(limit=10))
    assert order.status is OrderStatus.ACCEPTED
    yield order.client_order_id


def test_a_report_that_loses_the_race_is_read_again_and_applied_once(
        container: Container, alice: Caller, resting: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    report = container.paper.cancel(alice.account_id, resting)
    assert report is not None and report.status is OrderStatus.CANCELED
    settle, raced = submit._settle_status, threading.Event()
    others: list[object] = []

    def the_other_delivery_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not raced.is_set():
            raced.set()  # between our read of the order and our write, the other one commits
            other = threading.Thread(target=lambda: others.append(
                submit.record_reports([(resting, report)], container.deps)))
            other.start()
            other.join(timeout=30)
            assert not other.is_alive()
        return settle(*args, **kwargs)

    monkeypatch.setattr(submit, "_settle_status", the_other_delivery_first)
    (ours,) = submit.record_reports([(resting, report)], container.deps)
    assert raced.is_set() and len(others) == 1
    assert ours is not None and ours.status is OrderStatus.CANCELED
    with container.deps.uow(write=False) as uow:
        order = uow.orders.by_client_id(resting)
        events = [e.event for e in uow.audit.of_signal(order.signal_id)]
    assert order.status is OrderStatus.CANCELED
    assert events.count("OrderCanceled") == 1  # recorded by the winner, not again
