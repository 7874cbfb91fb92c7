"""The hot paths' statements run on the driver's cursor (adapters/db/fast.py): the same SQL,
the same values and rows in and out as `Connection.execute`, the same events and errors, on
SQLite and PostgreSQL. (That a `pending` signal's unit builds no SQLAlchemy execution context
is checked with its statement budget, test_statement_budget.py.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    IntegrityError,
    InvalidRequestError,
    MultipleResultsFound,
    NoResultFound,
)

from tests.support import Caller
from tradewire.adapters.db import fast
from tradewire.adapters.db import tables as t
from tradewire.adapters.db.engine import Database, connect
from tradewire.adapters.db.types import ExactDecimal, UTCDateTime
from tradewire.bootstrap import Container

NOW = datetime(2026, 12, 3, 17, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = connect(db_url)
    yield database
    database.close()


@contextlib.contextmanager
def transaction(db: Database) -> Iterator[Connection]:
    with db.engine.connect() as conn, conn.begin() as tx:
        yield conn
        tx.rollback()  # nothing of a test stays


_probe_md = MetaData()
PROBE = Table("fast_probe", _probe_md, Column("id", String(20), primary_key=True),
              Column("at", UTCDateTime()), Column("amount", ExactDecimal()),
              Column("data", JSON), Column("n", Integer))


@contextlib.contextmanager
def probe(db: Database) -> Iterator[Connection]:
    """A transaction with a table of tradewire's column types (dropped with the rollback)."""
    with transaction(db) as conn:
        _probe_md.create_all(conn)
        yield conn


def _upsert(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(PROBE)
    return stmt.on_conflict_do_update(index_elements=[PROBE.c.id],
                                      set_={"n": PROBE.c.n + stmt.excluded.n})


def test_an_upsert_writes_the_values_execute_would(db: Database) -> None:
    """Times, decimals and JSON go through the column types (text on SQLite, timestamptz,
    numeric and json on PostgreSQL) and are stored exactly as `execute` stores them."""
    values = {"at": NOW, "amount": Decimal("12.3400"), "data": {"a": [1, "b"]}, "n": 1}
    with probe(db) as conn:
        stmt = _upsert(conn)
        fast.run(conn, stmt, {"id": "ours", **values})
        conn.execute(stmt, {"id": "theirs", **values})
        fast.run(conn, stmt, {"id": "ours", **values})  # the conflict: n + 1
        conn.execute(stmt, {"id": "theirs", **values})
        read = {r.id: tuple(r)[1:] for r in conn.execute(select(PROBE))}
        raw = {r[0]: r[1:] for r in conn.exec_driver_sql(
            "SELECT id, at, amount, data, n FROM fast_probe")}
    assert read["ours"] == read["theirs"] == (NOW, Decimal("12.3400"), {"a": [1, "b"]}, 2)
    assert raw["ours"] == raw["theirs"]  # the very same stored form


def test_a_row_comes_back_as_execute_reads_it(db: Database, container: Container,
                                              alice: Caller) -> None:
    from tradewire.adapters.db.repositories import _KEY_ADMIN_AND_ACCOUNT
    with container.deps.uow() as uow:
        key_hash = uow.conn.execute(select(t.api_keys.c.key_hash)).scalars().first()
    assert key_hash is not None
    with transaction(db) as conn:
        for account_id in (alice.account_id, None, "no-such-account"):
            values = {"key_hash": key_hash, "account_id": account_id}
            ours = fast.first(conn, _KEY_ADMIN_AND_ACCOUNT, values)
            theirs = conn.execute(_KEY_ADMIN_AND_ACCOUNT, values).first()
            assert theirs is not None and ours == dict(theirs._mapping)
        assert ours["account__id"] is None  # the last one: no such account
        with_account = fast.first(conn, _KEY_ADMIN_AND_ACCOUNT,
                                  {"key_hash": key_hash, "account_id": alice.account_id})
        assert with_account is not None
        assert with_account["account__id"] == alice.account_id
        assert with_account["account__created_at"].tzinfo is not None
        assert fast.first(conn, _KEY_ADMIN_AND_ACCOUNT,
                          {"key_hash": "unknown", "account_id": None}) is None


def test_insert_ignore_says_whether_the_row_went_in(db: Database) -> None:
    with probe(db) as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(PROBE).on_conflict_do_nothing().returning(PROBE.c.id)
        assert fast.inserted(conn, stmt, {"id": "p-1", "n": 1}) is True
        assert fast.inserted(conn, stmt, {"id": "p-1", "n": 2}) is False
        assert conn.execute(select(PROBE.c.n)).scalar_one() == 1


def test_driver_errors_come_out_as_sqlalchemys(db: Database) -> None:
    with probe(db) as conn:
        fast.run(conn, insert(PROBE), {"id": "p-2", "n": 1})
        with pytest.raises(IntegrityError):
            fast.run(conn, insert(PROBE), {"id": "p-2", "n": 1})


def test_a_column_left_to_its_python_default_gets_it(db: Database) -> None:
    """Such statements take `execute`'s path, which computes the default."""
    metadata = MetaData()
    table = Table("fast_defaults", metadata, Column("id", Integer, primary_key=True),
                  Column("label", String(20), default="python-side"))
    with transaction(db) as conn:
        metadata.create_all(conn)
        fast.run(conn, insert(table), {"id": 1})
        assert conn.execute(select(table.c.label)).scalar_one() == "python-side"


def test_the_connections_events_see_each_statement(db: Database) -> None:
    seen: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        with transaction(db) as conn:
            fast.driver_sql(conn, "SAVEPOINT tw_test")
            _probe_md.create_all(conn)
            fast.run(conn, insert(PROBE), {"id": "p-3", "n": 1})
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    assert "SAVEPOINT tw_test" in seen
    assert seen[-1].startswith("INSERT INTO fast_probe")


def test_outside_a_transaction_it_is_executes_own_path(db: Database) -> None:
    with db.engine.connect() as conn:
        assert not conn.in_transaction()
        assert fast.first(conn, select(t.users).where(t.users.c.id == bindparam("id")),
                          {"id": "none"}) is None
        assert conn.in_transaction()  # execute began it, as it does
        conn.rollback()


_BY_N = select(PROBE).where(PROBE.c.n == bindparam("b_n")).order_by(PROBE.c.id)
_IDS_BY_N = select(PROBE.c.id).where(PROBE.c.n == bindparam("b_n")).order_by(PROBE.c.id)
_SET_N = update(PROBE).where(PROBE.c.id == bindparam("b_id"))
_IN_LIST = select(PROBE.c.id).where(PROBE.c.id.in_(["r-1", "r-2"])).order_by(PROBE.c.id)


def _rows(conn: Connection) -> None:
    values = {"at": NOW, "amount": Decimal("7.50"), "data": {"k": [1, 2]}}
    for i, n in ((1, 1), (2, 1), (3, 2)):
        conn.execute(insert(PROBE), {"id": f"r-{i}", "n": n, **values})


def test_run_reads_rows_as_execute_does(db: Database) -> None:
    """Rows by attribute, by position and by `_mapping`, with the column types' values."""
    with probe(db) as conn:
        _rows(conn)
        ours, theirs = fast.run(conn, _BY_N, {"b_n": 1}), conn.execute(_BY_N, {"b_n": 1})
        assert isinstance(ours, fast.Rows)  # not execute's path in disguise
        ours_rows, their_rows = list(ours), list(theirs)
        assert [tuple(r) for r in ours_rows] == [tuple(r) for r in their_rows]
        assert [dict(r._mapping) for r in ours_rows] == [dict(r._mapping) for r in their_rows]
        first = ours_rows[0]
        assert (first.id, first.at, first.amount, first.data) == (
            "r-1", NOW, Decimal("7.50"), {"k": [1, 2]})
        row_id, *_ = first
        assert row_id == "r-1"
        assert fast.run(conn, _IDS_BY_N, {"b_n": 1}).scalars() == ["r-1", "r-2"]
        assert fast.run(conn, _IDS_BY_N, {"b_n": 2}).scalar_one() == "r-3"
        assert fast.run(conn, _IDS_BY_N, {"b_n": 9}).scalar_one_or_none() is None
        assert fast.run(conn, _IDS_BY_N, {"b_n": 9}).first() is None
        with pytest.raises(NoResultFound):
            fast.run(conn, _IDS_BY_N, {"b_n": 9}).scalar_one()
        with pytest.raises(MultipleResultsFound):
            fast.run(conn, _IDS_BY_N, {"b_n": 1}).scalar_one_or_none()


def test_run_counts_the_rows_an_update_changed(db: Database) -> None:
    with probe(db) as conn:
        _rows(conn)
        assert fast.run(conn, _SET_N, {"b_id": "r-1", "n": 5}).rowcount == 1
        assert fast.run(conn, _SET_N, {"b_id": "none", "n": 5}).rowcount == 0
        assert conn.execute(select(PROBE.c.n).where(PROBE.c.id == "r-1")).scalar_one() == 5


def test_a_list_expanded_at_execution_keeps_executes_path(db: Database) -> None:
    with probe(db) as conn:
        _rows(conn)
        result = fast.run(conn, _IN_LIST)
        assert not isinstance(result, fast.Rows)
        assert list(result.scalars()) == ["r-1", "r-2"]


def test_a_listeners_error_comes_out_as_raised(db: Database) -> None:
    """As from `execute`: not wrapped in SQLAlchemy's StatementError."""

    def refuse(*_: object) -> None:
        raise RuntimeError("refused by a listener")

    with probe(db) as conn:
        event.listen(db.engine, "before_cursor_execute", refuse)
        try:
            with pytest.raises(RuntimeError, match="refused by a listener"):
                fast.run(conn, _IDS_BY_N, {"b_n": 1})
        finally:
            event.remove(db.engine, "before_cursor_execute", refuse)


_SET_N_FROM_LITERALS = (update(PROBE).where(PROBE.c.id == bindparam("b_id"))
                        .values(n=7, amount=Decimal("1.25")))
_calls: list[int] = []


def _next_n() -> int:
    _calls.append(1)
    return 100 + len(_calls)


_SET_N_FROM_A_CALLABLE = (update(PROBE).where(PROBE.c.id == bindparam("b_id"))
                          .values(n=bindparam("n_now", callable_=_next_n)))


def test_a_statements_own_values_go_in_as_execute_sends_them(db: Database) -> None:
    """Literal values in the statement, worked out once, still go through the column types;
    a parameter computed by a callable is computed at each execution."""
    _calls.clear()
    with probe(db) as conn:
        _rows(conn)
        assert fast.run(conn, _SET_N_FROM_LITERALS, {"b_id": "r-1"}).rowcount == 1
        conn.execute(_SET_N_FROM_LITERALS, {"b_id": "r-2"})
        rows = {r.id: (r.n, r.amount) for r in conn.execute(select(PROBE))}
        assert rows["r-1"] == rows["r-2"] == (7, Decimal("1.25"))
        fast.run(conn, _SET_N_FROM_A_CALLABLE, {"b_id": "r-1"})
        fast.run(conn, _SET_N_FROM_A_CALLABLE, {"b_id": "r-2"})
        ns = {r.id: r.n for r in conn.execute(select(PROBE.c.id, PROBE.c.n))}
        assert (ns["r-1"], ns["r-2"]) == (101, 102)


def test_a_missing_value_is_refused_before_anything_runs(db: Database) -> None:
    with probe(db) as conn:
        _rows(conn)
        with pytest.raises(InvalidRequestError, match="b_n"):
            fast.run(conn, _IDS_BY_N, {"other": 1})
        assert fast.run(conn, _IDS_BY_N, {"b_n": 2}).scalar_one() == "r-3"


def test_run_many_writes_the_rows_execute_would_in_one_statement(db: Database) -> None:
    """One executemany: the connection's events see it once, as an executemany; the rows go
    in through the column types as `execute` writes them."""
    seen: list[tuple[str, bool]] = []

    def before(_conn: object, _cursor: object, statement: str, _params: object,
               _context: object, executemany: bool) -> None:
        seen.append((statement, executemany))

    rows = [{"id": f"m-{i}", "at": NOW, "amount": Decimal("0.10"), "data": {"i": i}, "n": i}
            for i in range(3)]
    theirs = [{**row, "id": "x" + str(row["id"])} for row in rows]
    with probe(db) as conn:
        event.listen(db.engine, "before_cursor_execute", before)
        try:
            fast.run_many(conn, insert(PROBE), rows)
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        conn.execute(insert(PROBE), theirs)
        raw = {r[0]: r[1:] for r in conn.exec_driver_sql(
            "SELECT id, at, amount, data, n FROM fast_probe")}
    assert [many for _, many in seen] == [True]
    assert seen[0][0].startswith("INSERT INTO fast_probe")
    assert [raw[f"m-{i}"] for i in range(3)] == [raw[f"xm-{i}"] for i in range(3)]


def test_run_many_errors_come_out_as_executes(db: Database) -> None:
    def refuse(*_: object) -> None:
        raise RuntimeError("refused by a listener")

    with probe(db) as conn:
        fast.run_many(conn, insert(PROBE), [{"id": "d-1", "n": 1}])
        with pytest.raises(IntegrityError):
            fast.run_many(conn, insert(PROBE), [{"id": "d-2", "n": 1}, {"id": "d-1", "n": 2}])
        event.listen(db.engine, "before_cursor_execute", refuse)
        try:
            with pytest.raises(RuntimeError, match="refused by a listener"):
                fast.run_many(conn, insert(PROBE), [{"id": "d-3", "n": 1}, {"id": "d-4", "n": 1}])
        finally:
            event.remove(db.engine, "before_cursor_execute", refuse)
