"""Test support: real databases, a real server on loopback, and ways to make callers."""

from __future__ import annotations

import contextlib
import os
import socket
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
from tradewire.bootstrap import Container, build
from tradewire.config import Settings
from tradewire.domain.accounts import Scope
from tradewire.services import accounts
from tradewire.services.ports import Clock

PG_URL = os.environ.get("TRADEWIRE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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
    """Skip when PostgreSQL is unreachable, except in CI, where that is a failure."""
    if postgres_reachable():
        return
    if IN_CI:
        pytest.fail("PostgreSQL at 127.0.0.1:5432 (database test) is required in CI")
    pytest.skip("no PostgreSQL reachable at 127.0.0.1:5432 (and not in CI)")


@contextlib.contextmanager
def database_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the given kind: a SQLite file or a PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'tw.db'}"
        return
    require_postgres()
    schema = f"tw_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
    s = Settings(data_dir=data_dir, database_url=url, secret_key="test-secret-" + "x" * 32,
                 **settings)  # type: ignore[arg-type]
    return build(s, clock=clock)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn serving the real app on a loopback port, in a thread of this process."""

    def __init__(self, container: Container, *, access_log: bool = False) -> None:
        from tradewire.entrypoints.api.app import create_app

        self.port = free_port()
        config = uvicorn.Config(create_app(container), host="127.0.0.1", port=self.port,
                                log_level="info" if access_log else "warning",
                                access_log=access_log, lifespan="off")
        self.server = uvicorn.Server(config)
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
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
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
