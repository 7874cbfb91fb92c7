"""The write path's busiest statements, run on the driver's cursor.

`Connection.execute` builds an execution context and a result for every statement: more than
half of the writer thread's time per signal went there, not into SQLite or PostgreSQL.
Here a statement is compiled by SQLAlchemy once per dialect and set of parameter names (the
same SQL text it would send), its parameters go through the same column types' conversions
(`bind_processor`, `result_processor` of each type on that dialect), and it runs through
`Connection._cursor_execute`, SQLAlchemy's own path for a statement on a cursor: the
connection's `before/after_cursor_execute` events fire (the statement budget test counts
with them, the group commit checks its owner with them), and a driver's error comes out
translated and, on a lost connection, with the connection invalidated, as from `execute`.

A statement that leaves a column to its Python-side default, and any statement outside a
transaction, takes `execute`'s path instead (which computes the default, and begins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


class _Plan:
    """One statement compiled for one dialect and set of parameter names."""

    __slots__ = ("compiled", "defaults", "names", "processors", "results", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.compiled = compiled
        # Columns left to a Python-side default: computed by `execute`'s execution context,
        # which such a statement keeps.
        self.defaults = bool(getattr(compiled, "insert_prefetch", None)
                             or getattr(compiled, "update_prefetch", None))
        self.sql = compiled.string
        # Positional drivers (SQLite's qmark) take a tuple in the statement's order.
        self.names = tuple(compiled.positiontup) if compiled.positional else None
        self.processors = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process
        self.results: list[Any] | None = None  # per column, from the first cursor.description

    def parameters(self, values: Mapping[str, Any]) -> Any:
        params = self.compiled.construct_params(dict(values))
        for name, process in self.processors.items():
            if name in params:
                params[name] = process(params[name])
        if self.names is not None:
            return tuple(params[name] for name in self.names)
        return params

    def row_processors(self, dialect: Dialect, description: Any) -> list[Any]:
        if self.results is None:
            columns = self.compiled.statement.selected_columns  # type: ignore[attr-defined]
            self.results = [col.type.dialect_impl(dialect).result_processor(dialect, d[1])
                            for col, d in zip(columns, description, strict=True)]
        return self.results


_plans: dict[tuple[int, str, tuple[str, ...]], tuple[ClauseElement, _Plan]] = {}


def _plan(conn: Connection, statement: ClauseElement, keys: tuple[str, ...]) -> _Plan:
    key = (id(statement), conn.dialect.name, keys)
    found = _plans.get(key)
    if found is None or found[0] is not statement:
        # Statements on this path are built once (module constants, or cached builders), so
        # the plans stay few; the statement is kept with its plan so that its id is not reused.
        found = _plans[key] = (statement, _Plan(statement, conn.dialect, keys))
    return found[1]


def _fast(conn: Connection, statement: ClauseElement, values: Mapping[str, Any]
          ) -> _Plan | None:
    """The statement's plan, or None when it keeps `execute`'s path."""
    if not conn.in_transaction():
        return None
    plan = _plan(conn, statement, tuple(values))
    return None if plan.defaults else plan


def _run(conn: Connection, sql: str, params: Any, *, fetch: bool = False
         ) -> tuple[Any, Any] | None:
    """Run `sql` on a cursor of the connection's; with `fetch`, (the first row or None, the
    cursor's description)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        conn._cursor_execute(cursor, sql, params)
        return (cursor.fetchone(), cursor.description) if fetch else None
    finally:
        cursor.close()


def execute(conn: Connection, statement: ClauseElement, values: Mapping[str, Any]) -> None:
    """Run a statement that returns nothing (an INSERT, an upsert)."""
    plan = _fast(conn, statement, values)
    if plan is None:
        conn.execute(statement, dict(values))
    else:
        _run(conn, plan.sql, plan.parameters(values))


def inserted(conn: Connection, statement: ClauseElement, values: Mapping[str, Any]) -> bool:
    """Run an INSERT ... ON CONFLICT DO NOTHING RETURNING ...: True when the row went in."""
    plan = _fast(conn, statement, values)
    if plan is None:
        return conn.execute(statement, dict(values)).first() is not None
    found = _run(conn, plan.sql, plan.parameters(values), fetch=True)
    return found is not None and found[0] is not None


def first(conn: Connection, statement: ClauseElement, values: Mapping[str, Any]
          ) -> dict[str, Any] | None:
    """The first row of a SELECT as {column key: value}, or None."""
    plan = _fast(conn, statement, values)
    if plan is None:
        row = conn.execute(statement, dict(values)).first()
        return dict(row._mapping) if row is not None else None
    found = _run(conn, plan.sql, plan.parameters(values), fetch=True)
    if found is None or found[0] is None:
        return None
    raw, description = found
    processors = plan.row_processors(conn.dialect, description)
    columns = plan.compiled.statement.selected_columns  # type: ignore[attr-defined]
    return {col.key: (process(value) if process is not None else value)
            for col, process, value in zip(columns, processors, raw, strict=True)}


def driver_sql(conn: Connection, sql: str) -> None:
    """A statement of the driver's own (SAVEPOINT ...), without parameters."""
    _run(conn, sql, ())
