"""Test support: real databases, a real server on loopback, and ways to make callers."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from tradewire.adapters.db.engine import Database, connect
from tradewire.adapters.db.group_commit import GroupCommit
from tradewire.adapters.db.migrate import upgrade
from tradewire.bootstrap import Container, build
from tradewire.config import PasswordHashSettings, Settings
from tradewire.domain.accounts import Scope
from tradewire.services import accounts
from tradewire.services.ports import Clock

PG_URL = os.environ.get("TRADEWIRE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHEAP_PASSWORDS = PasswordHashSettings(time_cost=1, memory_kib=8, parallelism=1)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_pg_answered = False


def postgres_reachable() -> bool:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def require_postgres() -> None:
    """Skip when PostgreSQL is unreachable, except in CI, where that is a failure. Once it has
    answered it is not asked again (a database that goes away later fails the tests that need
    it, as it should)."""
    global _pg_answered
    if _pg_answered or postgres_reachable():
        _pg_answered = True
        return
    if IN_CI:
        pytest.fail("PostgreSQL at 127.0.0.1:5432 (database test) is required in CI")
    pytest.skip("no PostgreSQL reachable at 127.0.0.1:5432 (and not in CI)")


@contextlib.contextmanager
def database_url(kind: str, tmp_path: Path, *, migrated: bool = False) -> Iterator[str]:
    """A fresh database of the given kind: a SQLite file or a PostgreSQL schema. Empty, or
    with `migrated` at the newest migration and holding only the rows the migrations write,
    as a first start leaves it (migrated once per test process, then copied or reset)."""
    if kind == "sqlite":
        path = tmp_path / "tw.db"
        if migrated:
            shutil.copyfile(_sqlite_template(), path)
        yield f"sqlite:///{path}"
        return
    require_postgres()
    if migrated:
        with _SCHEMAS.lend() as schema:
            yield _schema_url(schema)
        return
    schema = _new_schema()
    try:
        yield _schema_url(schema)
    finally:
        _drop_schema(schema)


def _schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@functools.cache
def _admin() -> Any:
    """An autocommit engine on the test database, for making and dropping schemas."""
    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    atexit.register(engine.dispose)
    return engine


def _new_schema() -> str:
    schema = f"tw_{uuid.uuid4().hex[:12]}"
    with _admin().connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    return schema


def _drop_schema(schema: str) -> None:
    with _admin().connect() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@functools.cache
def _sqlite_template() -> Path:
    """A SQLite file at the newest migration, made once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="tw-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "tw.db"
    db = connect(f"sqlite:///{path}")
    try:
        upgrade(db)
    finally:
        db.close()
    # The last connection to close moved the log into the file: the file is the database.
    assert not path.with_name("tw.db-wal").exists()
    return path


class _SchemaPool:
    """Migrated PostgreSQL schemas lent to tests one at a time, each emptied back to what the
    migrations leave before it is lent again: a TRUNCATE of its tables and a copy of the rows
    the migrations wrote (from a schema kept as migrated) instead of every migration
    again. A schema whose tables, columns, indexes or revision a test changed is dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[str] = []
        self._all: list[str] = []
        self._seed = ""  # the schema kept as migrated
        self._seeded: list[str] = []  # its tables holding rows
        self._shape: tuple[Any, ...] = ()

    @contextlib.contextmanager
    def lend(self) -> Iterator[str]:
        schema = self._take()
        try:
            yield schema
        finally:
            self._give_back(schema)

    def _take(self) -> str:
        with self._lock:
            if not self._seed:
                atexit.register(self._drop_all)
                self._seed = self._migrated()
                with _admin().connect() as conn:
                    self._shape = _shape(conn, self._seed)
                    self._seeded = [t for t in _tables(conn, self._seed) if conn.exec_driver_sql(
                        f'SELECT EXISTS (SELECT 1 FROM "{self._seed}"."{t}")').scalar()]
            if self._free:
                return self._free.pop()
            return self._migrated()

    def _migrated(self) -> str:
        schema = _new_schema()
        self._all.append(schema)
        db = connect(_schema_url(schema))
        try:
            upgrade(db)
        finally:
            db.close()
        return schema

    def _give_back(self, schema: str) -> None:
        try:
            with _admin().connect() as conn, conn.begin():
                conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
                if _shape(conn, schema) != self._shape:
                    raise RuntimeError(f"schema {schema} was changed by its test")
                tables = ", ".join(f'"{schema}"."{t}"' for t in _tables(conn, schema))
                conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
                for t in self._seeded:
                    conn.exec_driver_sql(
                        f'INSERT INTO "{schema}"."{t}" SELECT * FROM "{self._seed}"."{t}"')
        except Exception:  # not reusable (changed, or still locked by a straggler): dropped
            self._drop(schema)
            return
        with self._lock:
            self._free.append(schema)

    def _drop(self, schema: str) -> None:
        with self._lock:
            if schema in self._all:
                self._all.remove(schema)
        with contextlib.suppress(Exception):
            _drop_schema(schema)

    def _drop_all(self) -> None:
        for schema in list(self._all):
            self._drop(schema)


def _tables(conn: Any, schema: str) -> list[str]:
    return list(conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = :s AND tablename <> 'alembic_version'"
        " ORDER BY tablename"), {"s": schema}).scalars())


def _shape(conn: Any, schema: str) -> tuple[Any, ...]:
    """What a test could change of a schema's structure: its columns (in order, with types
    and defaults), its indexes and constraints, its revision."""
    columns = conn.execute(text(
        "SELECT md5(string_agg(table_name || '.' || column_name || ':' || ordinal_position"
        " || ':' || data_type || ':' || replace(coalesce(column_default, ''), :s, ''), ','"
        " ORDER BY table_name,"
        " ordinal_position)) FROM information_schema.columns WHERE table_schema = :s"),
        {"s": schema}).scalar()
    indexes = conn.execute(text(
        "SELECT md5(string_agg(indexname || ':' || replace(indexdef, :s, ''), ','"
        " ORDER BY indexname)) FROM pg_indexes WHERE schemaname = :s"), {"s": schema}).scalar()
    constraints = conn.execute(text(
        "SELECT count(*) FROM information_schema.table_constraints WHERE table_schema = :s"),
        {"s": schema}).scalar()
    revision = conn.exec_driver_sql(f'SELECT version_num FROM "{schema}".alembic_version').scalar()
    return columns, indexes, constraints, revision


_SCHEMAS = _SchemaPool()


@contextlib.contextmanager
def parent_child_db(path: Path) -> Iterator[Database]:
    """A SQLite database of two tables for the group commit's tests: `child` rows refer to
    `parent` 1 by a deferred foreign key (a child of parent 99 fails at COMMIT). The group
    commits only when no writer waits (a long age limit), which the tests control."""
    database = connect(f"sqlite:///{path}")
    database.group = GroupCommit(database.engine, max_units=1000, max_age_s=60)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO parent VALUES (1)")
        conn.exec_driver_sql("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER "
                             "REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    try:
        yield database
    finally:
        database.close()


def make_container(url: str, data_dir: Path, clock: Clock | None = None,
                   **settings: object) -> Container:
    # Passwords hashed at argon2's lowest cost: a test makes users by the thousand, and the
    # default cost (tests/unit/adapters/test_password_cost.py) takes a sixth of a second each here.
    settings.setdefault("password_hash", CHEAP_PASSWORDS)
    s = Settings(data_dir=data_dir, database_url=url, secret_key="test-secret-" + "x" * 32,
                 **settings)  # type: ignore[arg-type]
    return build(s, clock=clock)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, stopped without waiting out its polls: its main loop looks for the
    exit flag every 0.1 s and its shutdown sleeps 0.1 s before it waits, in 0.1 s steps, for
    the connections to close; a test suite starting a server per test spent minutes there.
    The same steps, woken at once."""

    _wake: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def stop(self) -> None:
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(wake.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + 10
        while ((self.server_state.connections or self.server_state.tasks)
               and time.monotonic() < deadline):
            await asyncio.sleep(0.005)
        for task in self.server_state.tasks:
            task.cancel(msg="the test server stopped")
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


class Server:
    """uvicorn serving the real app on a loopback port, in a thread of this process."""

    def __init__(self, container: Container, *, access_log: bool = False) -> None:
        from tradewire.entrypoints.api.app import create_app

        self.port = free_port()
        config = uvicorn.Config(create_app(container), host="127.0.0.1", port=self.port,
                                log_level="info" if access_log else "warning",
                                access_log=access_log, lifespan="off")
        self.server = _Uvicorn(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.thread.join(timeout=10)


@dataclass
class Caller:
    """A user with one paper account and an API key (all scopes but admin)."""

    user_id: str
    username: str
    password: str
    account_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


def make_caller(c: Container, *, cash: Decimal = Decimal(100_000),
                scopes: frozenset[Scope] | None = None, admin: bool = False) -> Caller:
    name = f"u{uuid.uuid4().hex[:8]}"
    password = "pw-" + uuid.uuid4().hex
    user = accounts.create_user(name, password, is_admin=admin, deps=c.deps, secrets=c.secrets)
    account = accounts.create_account(user.id, "paper", broker="paper", cash=cash, deps=c.deps)
    _, key = accounts.create_api_key(user.id, scopes or accounts.DEFAULT_KEY_SCOPES, None,
                                     deps=c.deps, secrets=c.secrets)
    return Caller(user.id, name, password, account.id, key)


def login(client: httpx.Client, caller: Caller) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": caller.username,
                                                "password": caller.password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def settle_after_5xx(response: httpx.Response) -> None:
    """After a 5xx, uvicorn logs the traceback in its own thread once the answer is out. On
    Python 3.11 that logging parses source with `ast` too, and racing pytest's own failure
    report it can crash pytest (SystemError: AST constructor recursion depth mismatch)."""
    if response.status_code >= 500:
        time.sleep(0.25)


HOOKS: dict[str, list[Any]] = {"response": [settle_after_5xx]}


def row_counts(c: Container, tables: Sequence[str]) -> dict[str, int]:
    """Rows per table, read in one round trip."""
    query = "SELECT " + ", ".join(f'(SELECT COUNT(*) FROM "{t}")' for t in tables)
    with c.db.engine.connect().execution_options(tw_write=False) as conn:
        return dict(zip(tables, conn.execute(text(query)).one(), strict=True))
