"""An immediate signal's order goes in already taken for sending by the request that stores it.

The request sends the order right after the commit that stores it, so the order is stored as
the submit lease's claim would leave it (submitting, leased to the request, one attempt,
submitted at its creation) in its INSERT, not by an UPDATE after it: one statement fewer on
the way to the broker. Nothing else changes: a request that dies between its commit and the
broker call leaves an order the sweep takes once the lease lapses, looking at the broker
before it sends (so never twice); an order that must wait for the open is stored new and
only reserved, as before. These tests hold the row and the audit trail to what the claim's
UPDATE left (they pass on the code before it too); the statement saved is counted by
test_statement_budget.py (36 for an immediate signal on SQLite, 37 before).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from tests.support import Caller
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.db import tables as t
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.signals import Signal
from tradewire.domain.values import Action, ExecuteMode, new_id
from tradewire.services.deps import Deps
from tradewire.services.ingest import ingest_signal
from tradewire.services.ports import Tick
from tradewire.services.submit import RESERVATION, submit_claimable
from tradewire.services.ticks import apply_ticks


def _owner(caller: Caller) -> Principal:
    return Principal(user_id=caller.user_id, is_admin=False,
                     scopes=frozenset({Scope.SIGNALS_WRITE}), via="api_key")


def _buy(caller: Caller, now: datetime) -> Signal:
    return Signal(id=new_id(), account_id=caller.account_id, symbol="AAPL",
                  action=Action.OPEN_LONG, quantity=Decimal(2),
                  execute_mode=ExecuteMode.IMMEDIATE, created_at=now, source_id=new_id())


def _dies_after_the_commit(deps: Deps) -> Deps:
    def die(name: str) -> None:
        if name == "signal-committed":
            raise SystemExit("killed after the signal's commit")  # the crash tests' point

    return dataclasses.replace(deps, failpoint=die)


def _order_row(container: Container, signal_id: str) -> Any:
    with container.db.engine.connect() as conn:
        return conn.execute(select(t.orders).where(t.orders.c.signal_id == signal_id)).one()


def _order_events(container: Container, order_id: str) -> list[str]:
    a = t.audit_events.c
    with container.db.engine.connect() as conn:
        return list(conn.execute(select(a.event).where(a.entity_id == order_id)
                                 .order_by(a.seq)).scalars())


def test_the_order_is_stored_leased_to_its_request_and_sent_once_by_the_sweep_if_it_dies(
        container: Container, alice: Caller, clock: ManualClock) -> None:
    apply_ticks([Tick("AAPL", Decimal(100), clock.now())], container.deps)
    signal, stored_at = _buy(alice, clock.now()), clock.now()
    with pytest.raises(SystemExit):  # committed, never sent
        ingest_signal(signal, _owner(alice), _dies_after_the_commit(container.deps))
    row = _order_row(container, signal.id)
    assert row.status == "submitting"
    assert row.lease_owner == f"{container.deps.worker_id}:request:{row.id}"
    assert row.lease_until == stored_at + container.deps.lease
    assert (row.attempts, row.submitted_at, row.updated_at) == (1, stored_at, stored_at)
    assert _order_events(container, row.id) == ["OrderCreated", "OrderSubmitting"]
    assert container.paper.open_orders(alice.account_id) == []

    submit_claimable(container.deps)  # leased to the request that died: left alone
    assert _order_row(container, signal.id).status == "submitting"
    clock.advance(container.deps.lease + timedelta(seconds=1))
    submit_claimable(container.deps)  # lapsed: looked for at the broker, then sent
    row = _order_row(container, signal.id)
    assert (row.status, row.filled_qty, row.attempts) == ("filled", Decimal(2), 2)
    with container.db.engine.connect() as conn:
        fills = conn.execute(select(t.fills).where(t.fills.c.order_id == row.id)).all()
    assert len(fills) == 1


def test_an_order_that_waits_for_the_open_is_stored_new_and_only_reserved(
        container: Container, alice: Caller, clock: ManualClock) -> None:
    apply_ticks([Tick("AAPL", Decimal(100), clock.now())], container.deps)
    clock.advance(timedelta(days=1))  # Saturday: the account's market is closed
    signal, stored_at = _buy(alice, clock.now()), clock.now()
    with pytest.raises(SystemExit):
        ingest_signal(signal, _owner(alice), _dies_after_the_commit(container.deps))
    row = _order_row(container, signal.id)
    assert row.status == "new"
    assert row.lease_owner == f"{container.deps.worker_id}:request:{row.id}"
    assert row.lease_until == stored_at + RESERVATION
    assert (row.attempts, row.submitted_at) == (0, None)
    assert _order_events(container, row.id) == ["OrderCreated"]
