"""Upgrading from the first release's schema with data in it: every row survives, the paper
broker's book is carried over, and the upgraded service trades on it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from tests.support import make_container
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.db import migrate
from tradewire.adapters.db.engine import connect
from tradewire.adapters.db.types import ExactDecimal, UTCDateTime
from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.orders import OrderStatus
from tradewire.domain.signals import Signal
from tradewire.domain.values import Action, ExecuteMode, new_id
from tradewire.services.ingest import ingest_signal
from tradewire.services.ports import Tick
from tradewire.services.ticks import apply_ticks

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
U, A, S, ORDER, BO = (new_id() for _ in range(5))


def _table(table_name: str, **columns: sa.types.TypeEngine | None) -> sa.TableClause:
    return sa.table(table_name, *(sa.column(k, v) for k, v in columns.items()))


def _first_release_rows(url: str) -> None:
    """The schema of revision 0001, and a user who bought 10 AAPL at 100 through it."""
    db = connect(url)
    migrate.upgrade(db, "0001")
    t, d = UTCDateTime(), ExactDecimal()
    with db.engine.begin() as conn:
        conn.execute(sa.insert(_table("app_user", id=None, username=None, password_hash=None,
                                      is_admin=None, created_at=t)),
                     [{"id": U, "username": "early", "password_hash": "x", "is_admin": False,
                       "created_at": T0}])
        conn.execute(sa.insert(_table("account", id=None, user_id=None, name=None, broker=None,
                                      market=None, starting_cash=d, created_at=t)),
                     [{"id": A, "user_id": U, "name": "first", "broker": "paper",
                       "market": "XNYS", "starting_cash": Decimal(10000), "created_at": T0}])
        conn.execute(sa.insert(_table("paper_account", account_ref=None, cash=d, created_at=t)),
                     [{"account_ref": A, "cash": Decimal(9000), "created_at": T0}])
        conn.execute(sa.insert(_table(
            "signal", id=None, account_id=None, source_id=None, dedup_key=None, route=None,
            symbol=None, action=None, execute_mode=None, quantity=d, quantity_type=None,
            order_type=None, time_in_force=None, extended_hours=None, status=None,
            created_at=t, updated_at=t)),
            [{"id": S, "account_id": A, "source_id": "tv-1", "dedup_key": "tv-1",
              "route": "api_v1", "symbol": "AAPL", "action": "openLong",
              "execute_mode": "immediate", "quantity": Decimal(10), "quantity_type": "fixed",
              "order_type": "market", "time_in_force": "day", "extended_hours": False,
              "status": "executed", "created_at": T0, "updated_at": T0}])
        conn.execute(sa.insert(_table(
            "trade_order", id=None, account_id=None, signal_id=None, client_order_id=None,
            broker_order_id=None, symbol=None, side=None, qty=d, order_type=None,
            time_in_force=None, extended_hours=None, purpose=None, status=None, filled_qty=d,
            avg_fill_price=d, attempts=None, created_at=t, updated_at=t)),
            [{"id": ORDER, "account_id": A, "signal_id": S, "client_order_id": "tw-early-1",
              "broker_order_id": BO, "symbol": "AAPL", "side": "buy", "qty": Decimal(10),
              "order_type": "market", "time_in_force": "day", "extended_hours": False,
              "purpose": "entry", "status": "filled", "filled_qty": Decimal(10),
              "avg_fill_price": Decimal(100), "attempts": 1, "created_at": T0,
              "updated_at": T0}])
        conn.execute(sa.insert(_table("fill", fill_id=None, order_id=None, account_id=None,
                                      symbol=None, side=None, qty=d, price=d, fee=d,
                                      filled_at=t)),
                     [{"fill_id": "f-1", "order_id": ORDER, "account_id": A, "symbol": "AAPL",
                       "side": "buy", "qty": Decimal(10), "price": Decimal(100),
                       "fee": Decimal(0), "filled_at": T0}])
        conn.execute(sa.insert(_table("position", account_id=None, symbol=None, qty=d,
                                      avg_entry_price=d, realized_pnl=d, updated_at=t)),
                     [{"account_id": A, "symbol": "AAPL", "qty": Decimal(10),
                       "avg_entry_price": Decimal(100), "realized_pnl": Decimal(0),
                       "updated_at": T0}])
        conn.execute(sa.insert(_table(
            "paper_order", broker_order_id=None, account_ref=None, client_order_id=None,
            symbol=None, side=None, qty=d, order_type=None, time_in_force=None,
            triggered=None, status=None, filled_qty=d, created_at=t)),
            [{"broker_order_id": BO, "account_ref": A, "client_order_id": "tw-early-1",
              "symbol": "AAPL", "side": "buy", "qty": Decimal(10), "order_type": "market",
              "time_in_force": "day", "triggered": False, "status": "filled",
              "filled_qty": Decimal(10), "created_at": T0}])
        conn.execute(sa.insert(_table("paper_fill", fill_id=None, broker_order_id=None,
                                      account_ref=None, symbol=None, side=None, qty=d,
                                      price=d, fee=d, filled_at=t)),
                     [{"fill_id": "f-1", "broker_order_id": BO, "account_ref": A,
                       "symbol": "AAPL", "side": "buy", "qty": Decimal(10),
                       "price": Decimal(100), "fee": Decimal(0), "filled_at": T0}])
    db.engine.dispose()


def test_the_first_releases_data_survives_the_upgrade_and_trades_on(
        empty_db_url: str, tmp_path: Path, clock: ManualClock) -> None:
    db_url = empty_db_url
    _first_release_rows(db_url)
    c = make_container(db_url, tmp_path / "data", clock)  # upgrades to head
    try:
        with c.deps.uow(write=False) as uow:
            assert uow.signals.get(S).symbol == "AAPL"
            order = uow.orders.get(ORDER)
            assert order.status is OrderStatus.FILLED and order.filled_qty == Decimal(10)
            assert uow.positions.get(A, "AAPL").qty == Decimal(10)
            assert uow.accounts.get(A).name == "first"
        assert c.paper.positions(A) == {"AAPL": Decimal(10)}  # the broker's book carried over
        assert c.paper.account(A).cash == Decimal(9000)
        apply_ticks([Tick("AAPL", Decimal(110), clock.now())], c.deps)
        owner = Principal(user_id=U, is_admin=False, scopes=frozenset({Scope.SIGNALS_WRITE}),
                          via="api_key")
        close = Signal(id=new_id(), account_id=A, symbol="AAPL", action=Action.CLOSE_LONG,
                       quantity=Decimal(10), execute_mode=ExecuteMode.IMMEDIATE,
                       created_at=clock.now(),
                       source_id="after-upgrade")
        result = ingest_signal(close, owner, c.deps)
        assert result.orders and result.orders[0].status is OrderStatus.FILLED
        with c.deps.uow(write=False) as uow:
            position = uow.positions.get(A, "AAPL")
        assert position.qty == 0 and position.realized_pnl == Decimal(100)
        assert c.paper.account(A).cash == Decimal(10100)
    finally:
        c.close()
