"""The hot paths' statements, run on the driver's cursor.

`Connection.execute` builds an execution context and a result for every statement: more than
half of the writer thread's time per signal went there, not into SQLite or PostgreSQL.
Here a statement is compiled by SQLAlchemy once per dialect and set of parameter names (the
same SQL text it would send), its parameters go through the same column types' conversions
(`bind_processor`, `result_processor` of each type on that dialect), and it runs through
`Connection._cursor_execute`, SQLAlchemy's own path for a statement on a cursor: the
connection's `before/after_cursor_execute` events fire (the statement budget test counts
with them, the group commit checks its owner with them), and a driver's error comes out
translated and, on a lost connection, with the connection invalidated, as from `execute`.

`run` is `Connection.execute` for the repositories' module-level statements (`inserted` and
`first` read its answer two common ways): its rows are
tuples with attribute and `_mapping` access as SQLAlchemy's rows have, its `rowcount` the
driver's. Only statements built once go through here (module constants, cached builders): a
plan is kept per statement object.

A statement that leaves a column to its Python-side default, one with parameters expanded at
execution (`IN` of a list), and any statement outside a transaction, take `execute`'s path
instead (which computes the default, expands, and begins).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound, StatementError
from sqlalchemy.sql import ClauseElement


class _Plan:
    """One statement compiled for one dialect and set of parameter names."""

    __slots__ = ("compiled", "fields", "names", "needs_execute", "processors", "results", "row",
                 "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.compiled = compiled
        # Columns left to a Python-side default, parameters expanded at execution (`IN` of a
        # list): `execute`'s execution context computes and expands them; such a statement
        # keeps its path.
        self.needs_execute = bool(getattr(compiled, "insert_prefetch", None)
                                  or getattr(compiled, "update_prefetch", None)
                                  or compiled.post_compile_params
                                  or compiled.literal_execute_params)
        self.sql = compiled.string
        # Positional drivers (SQLite's qmark) take a tuple in the statement's order.
        self.names = tuple(compiled.positiontup) if compiled.positional else None
        self.processors = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process
        self.fields = self._fields(set(keys))
        self.results: list[Any] | None = None  # per column, from the first cursor.description
        self.row: Any = None  # the class of its rows, once it returned some

    def _fields(self, keys: set[str]) -> list[tuple[str, str | None, Any, Any]] | None:
        """What `construct_params` would do for values with these keys, worked out once: for
        each parameter sent (in the driver's order), the key of the values it takes or else
        its constant, and its type's conversion. None when some parameter must be computed at
        each execution (a callable's value), is missing (construct_params says which), or
        the statement collected parameters of its own: `construct_params` then runs each
        time."""
        compiled = self.compiled
        if getattr(compiled, "_collected_params", None) or compiled.escaped_bind_names:
            return None
        sources: dict[str, tuple[str | None, Any]] = {}
        for bind, name in compiled.bind_names.items():
            if bind.key in keys:
                sources[name] = (bind.key, None)
            elif name in keys:
                sources[name] = (name, None)
            elif bind.required or bind.callable:
                return None
            else:
                sources[name] = (None, bind.value)
        order = self.names if self.names is not None else tuple(sources)
        return [(name, *sources[name], self.processors.get(name)) for name in order]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        if self.fields is not None:
            sent = []
            for _, key, constant, process in self.fields:
                value = constant if key is None else values[key]
                sent.append(value if process is None else process(value))
            if self.names is not None:
                return tuple(sent)
            return {f[0]: v for f, v in zip(self.fields, sent, strict=True)}
        params = self.compiled.construct_params(dict(values))
        for name, process in self.processors.items():
            if name in params:
                params[name] = process(params[name])
        if self.names is not None:
            return tuple(params[name] for name in self.names)
        return params

    def row_processors(self, dialect: Dialect, description: Any) -> list[Any]:
        if self.results is None:
            columns = getattr(self.compiled.statement, "selected_columns", None)
            if columns is None:  # text(): values as the driver gives them, as `execute` does
                self.results = [None] * len(description)
            else:
                self.results = [col.type.dialect_impl(dialect).result_processor(dialect, d[1])
                                for col, d in zip(columns, description, strict=True)]
        return self.results

    def rows(self, dialect: Dialect, description: Any, raw: list[Any]) -> list[Any]:
        processors = self.row_processors(dialect, description)
        if self.row is None:
            columns = getattr(self.compiled.statement, "selected_columns", None)
            keys = [c.key for c in columns] if columns is not None else [d[0] for d in description]
            self.row = _row_class(tuple(keys))
        make = self.row._make
        if not any(processors):
            return [make(r) for r in raw]
        return [make([p(v) if p is not None else v for p, v in zip(processors, r, strict=True)])
                for r in raw]


def _row_class(keys: tuple[str, ...]) -> Any:
    """A tuple with the columns as attributes and `_mapping`, like SQLAlchemy's Row."""
    base = namedtuple("Row", keys, rename=True)  # type: ignore[misc]

    class Row(base):  # type: ignore[valid-type, misc]
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(zip(keys, self, strict=True))

    return Row


class Rows:
    """What `run` gives back: the rows and the rowcount, read as from a CursorResult."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return list(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalars(self) -> list[Any]:
        return [r[0] for r in self._rows]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one_or_none(self) -> Any:
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when one or none was required")
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        return self.scalar_one_or_none()


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
    return None if plan.needs_execute else plan


def _run(conn: Connection, sql: str, params: Any) -> tuple[list[Any], Any, int]:
    """Run `sql` on a cursor of the connection's: (its rows, none when it returns none; the
    cursor's description; its rowcount)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        _unwrapped(conn, cursor, sql, params, many=False)
        description = cursor.description
        return (cursor.fetchall() if description is not None else [], description,
                cursor.rowcount)
    finally:
        cursor.close()


def run(conn: Connection, statement: ClauseElement, values: Mapping[str, Any] | None = None
        ) -> Any:
    """`conn.execute(statement, values)` for a statement built once: its rows (`Rows`, or
    the CursorResult of `execute`'s path)."""
    values = values or {}
    plan = _fast(conn, statement, values)
    if plan is None:
        return conn.execute(statement, dict(values))
    raw, description, rowcount = _run(conn, plan.sql, plan.parameters(values))
    if description is None:
        return Rows([], rowcount)
    return Rows(plan.rows(conn.dialect, description, raw), rowcount)


def run_many(conn: Connection, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]
             ) -> None:
    """`conn.execute(statement, rows)`, one executemany, for a statement built once and rows
    with the same keys (a unit's audit events): the connection's events see it once, with
    `executemany` true, as from `execute`."""
    if not rows:
        return
    keys = tuple(rows[0])
    plan = _fast(conn, statement, rows[0])
    if (plan is None or conn.dialect._has_events
            or any(tuple(row) != keys for row in rows)):
        conn.execute(statement, [dict(row) for row in rows])
        return
    sql, params = plan.sql, [plan.parameters(row) for row in rows]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        _unwrapped(conn, cursor, sql, params, many=True)
    finally:
        cursor.close()


def _unwrapped(conn: Connection, cursor: Any, sql: str, params: Any, *, many: bool) -> None:
    """Run on the cursor as SQLAlchemy does without an execution context, a listener's error
    let through as raised (`execute` does not wrap those either)."""
    try:
        if many:
            _cursor_executemany(conn, cursor, sql, params)
        else:
            conn._cursor_execute(cursor, sql, params)
    except StatementError as e:
        # Without an execution context SQLAlchemy wraps any error, a listener's too (the
        # group commit's guard); `execute` lets those through as they are, and so do we.
        if isinstance(e, DBAPIError) or e.orig is None:
            raise
        raise e.orig from None


def _cursor_executemany(conn: Connection, cursor: Any, sql: str, params: list[Any]) -> None:
    """`Connection._cursor_execute` for an executemany: the connection's cursor events (with
    `executemany` true), the dialect's `do_executemany`, an error translated as there."""
    try:
        events = conn._has_events or conn.engine._has_events
        if events:
            for fn in conn.dispatch.before_cursor_execute:
                sql, params = fn(conn, cursor, sql, params, None, True)
        conn.dialect.do_executemany(cursor, sql, params, None)
        if events:
            conn.dispatch.after_cursor_execute(conn, cursor, sql, params, None, True)
    except BaseException as e:
        conn._handle_dbapi_exception(e, sql, params, cursor, None)


def inserted(conn: Connection, statement: ClauseElement, values: Mapping[str, Any]) -> bool:
    """Run an INSERT ... ON CONFLICT DO NOTHING RETURNING ...: True when the row went in."""
    return run(conn, statement, values).first() is not None


def first(conn: Connection, statement: ClauseElement, values: Mapping[str, Any]
          ) -> dict[str, Any] | None:
    """The first row of a SELECT as {column key: value}, or None."""
    row = run(conn, statement, values).first()
    return dict(row._mapping) if row is not None else None


def driver_sql(conn: Connection, sql: str) -> None:
    """A statement of the driver's own (SAVEPOINT ...), without parameters."""
    _run(conn, sql, ())
