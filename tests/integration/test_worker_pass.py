"""The worker's pass runs after every fill and every wake: its checks must not grow with the
history. The paper venue's look for working orders whose expiry or close auction is due reads
them by status (index ix_paper_order_status, migration 0014) instead of scanning every order
the venue ever took."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.support import make_container
from tradewire.adapters.clock import ManualClock
from tradewire.services.submit import apply_clock


def test_the_expiry_check_reads_working_orders_by_index(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 2, 6, 15, 0, tzinfo=UTC))
    c = make_container(f"sqlite:///{tmp_path / 'tw.db'}", tmp_path / "data", clock)
    try:
        seen: list[tuple[str, Any]] = []

        def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "FROM paper_order" in statement and "expires_at" in statement:
                seen.append((statement, parameters))

        event.listen(c.db.engine, "before_cursor_execute", capture)
        try:
            apply_clock(c.deps)
        finally:
            event.remove(c.db.engine, "before_cursor_execute", capture)
        assert seen, "the worker's pass did not look for due paper orders"
        raw = c.db.engine.raw_connection()
        try:
            for statement, parameters in seen:
                plan = raw.cursor().execute("EXPLAIN QUERY PLAN " + statement,
                                            parameters).fetchall()
                details = " ".join(str(row[-1]) for row in plan)
                assert "ix_paper_order_status" in details, details
        finally:
            raw.close()
    finally:
        c.close()
