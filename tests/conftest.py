"""Fixtures: each integration test runs on SQLite and on PostgreSQL, behind a real server."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support import Caller, Server, database_url, make_caller, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.entrypoints import logs


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """A database at the newest migration, as a first start leaves it."""
    with database_url(db_kind, tmp_path, migrated=True) as url:
        yield url


@pytest.fixture
def empty_db_url(db_kind: str, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it, not even the migrations' tables."""
    with database_url(db_kind, tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 2, 6, 15, 0, tzinfo=UTC))


@pytest.fixture
def container(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Container]:
    # Concurrency tests send 50 requests at once: shedding (tested on its own) stays out of it.
    c = make_container(db_url, tmp_path / "data", clock, max_in_flight=256)
    yield c
    c.close()


@pytest.fixture
def server(container: Container) -> Iterator[Server]:
    with Server(container) as s:
        yield s


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture
def alice(container: Container) -> Caller:
    return make_caller(container)


@pytest.fixture
def bob(container: Container) -> Caller:
    return make_caller(container)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """tradewire's log lines (JSON) written to a buffer for the test, the handler removed after."""
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    yield stream
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "tradewire", False)]:
        root.removeHandler(handler)
