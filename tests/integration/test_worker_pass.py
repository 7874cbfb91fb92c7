"""The worker's pass runs after every fill and every wake: its checks must not grow with the
history. The paper venue's look for working orders whose expiry or close auction is due reads
them by status (index ix_paper_order_status, migration 0014) instead of scanning every order
the venue ever took; the resting-exit sweep reads the ids of armed plans among the active
ones (index ix_exit_plan_active, migration 0015), not every plan ever made. Every immediate
signal sizes against the working orders of its account in its symbol, read by account, symbol
and status (index ix_trade_order_account_symbol_status, migration 0016), not by scanning every
order the account ever had."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.support import make_container
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.services.exit_engine import resync_resting
from tradewire.services.submit import apply_clock


def _plans_of(tmp_path: Path, run: Callable[[Container], object], table: str,
              column: str) -> list[str]:
    """SQLite's query plans of the statements `run` makes on `table` that mention `column`."""
    clock = ManualClock(datetime(2026, 2, 6, 15, 0, tzinfo=UTC))
    c = make_container(f"sqlite:///{tmp_path / 'tw.db'}", tmp_path / "data", clock)
    try:
        seen: list[tuple[str, Any]] = []

        def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if f"FROM {table}" in statement and column in statement:
                seen.append((statement, parameters))

        event.listen(c.db.engine, "before_cursor_execute", capture)
        try:
            run(c)
        finally:
            event.remove(c.db.engine, "before_cursor_execute", capture)
        raw = c.db.engine.raw_connection()
        try:
            return [" ".join(str(row[-1]) for row in raw.cursor().execute(
                "EXPLAIN QUERY PLAN " + statement, parameters).fetchall())
                for statement, parameters in seen]
        finally:
            raw.close()
    finally:
        c.close()


def test_the_expiry_check_reads_working_orders_by_index(tmp_path: Path) -> None:
    plans = _plans_of(tmp_path, lambda c: apply_clock(c.deps), "paper_order", "expires_at")
    assert plans, "the worker's pass did not look for due paper orders"
    for plan in plans:
        assert "ix_paper_order_status" in plan, plan


def test_the_resting_exit_sweep_reads_armed_plans_by_index(tmp_path: Path) -> None:
    plans = _plans_of(tmp_path, lambda c: resync_resting(c.deps), "exit_plan", "native")
    assert plans, "the sweep did not look for plans with resting legs"
    for plan in plans:
        assert "ix_exit_plan_active" in plan, plan


def test_sizing_reads_the_working_orders_by_index(tmp_path: Path) -> None:
    def working(c: Container) -> None:
        with c.deps.uow(write=False) as uow:
            uow.orders.working_qty("an-account", "AAPL")

    plans = _plans_of(tmp_path, working, "trade_order", "filled_qty")
    assert plans, "sizing did not read the working orders"
    for plan in plans:
        # Before migration 0016: SEARCH trade_order USING INDEX ix_trade_order_account_created
        # (account_id=?), every order of the account.
        assert "ix_trade_order_account_symbol_status (account_id=? AND symbol=? AND status=?)" \
            in plan, plan


def test_the_link_indexes_hold_only_the_rows_with_a_link(tmp_path: Path) -> None:
    """A signal's `after_signal_id` and `parent_id` and an order's `link_group` are mostly
    empty: their indexes hold the rows where they are set (migration 0017), so a signal
    without them writes no page of those indexes, and the lookups still use them."""
    from decimal import Decimal

    from tests.support import make_caller
    from tradewire.domain.signals import Signal
    from tradewire.domain.values import Action, ExecuteMode, new_id

    plans = _plans_of(tmp_path / "plans", lambda c: _links_read(c), "signal", "_id = ?")
    assert len(plans) == 2, plans
    assert "ix_signal_after_signal_id" in plans[0], plans
    assert "ix_signal_parent_id" in plans[1], plans

    clock = ManualClock(datetime(2026, 2, 6, 15, 0, tzinfo=UTC))
    c = make_container(f"sqlite:///{tmp_path / 'tw.db'}", tmp_path / "data", clock)
    try:
        account_id = make_caller(c).account_id

        def signal(**links: str) -> Signal:
            return Signal(id=new_id(), account_id=account_id, symbol="AAPL", action=Action.OPEN_LONG,
                          quantity=Decimal(1), execute_mode=ExecuteMode.PENDING,
                          created_at=clock.now(), **links)

        first = signal()
        with c.deps.uow() as uow:
            for s in (first, signal(), signal(), signal(after_signal_id=first.id)):
                assert uow.signals.add_unique(s)
            uow.commit()
        raw = c.db.engine.raw_connection()
        try:
            entries = dict(raw.cursor().execute(
                "SELECT name, sum(ncell) FROM dbstat WHERE pagetype = 'leaf' AND name IN "
                "('ix_signal_after_signal_id', 'ix_signal_parent_id') GROUP BY name").fetchall())
        finally:
            raw.close()
        # Before migration 0017: 4 entries in each (a NULL is indexed like any value).
        assert entries.get("ix_signal_after_signal_id", 0) == 1, entries
        assert entries.get("ix_signal_parent_id", 0) == 0, entries
    finally:
        c.close()


def _links_read(c: Container) -> None:
    with c.deps.uow(write=False) as uow:
        uow.signals.waiting_after("a-signal")
        uow.partner_signals.children("a-signal")
