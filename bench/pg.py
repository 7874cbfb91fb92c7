"""PostgreSQL for the benchmarks: a fresh schema per run in database `test`, dropped afterwards.

The server is the one the tests use (127.0.0.1:5432, trust auth, database `test`); BENCH_PG
overrides it with a libpq URL. Nothing outside the benchmark's own schema is touched.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg

PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def available() -> str | None:
    """None when PostgreSQL answers, else why not (the PostgreSQL rows are then skipped)."""
    try:
        with psycopg.connect(PG, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {PG} not reachable: {type(exc).__name__}: {exc}"
    return None


def settings() -> dict[str, str]:
    """The settings that decide what a commit costs, as the server reports them."""
    with psycopg.connect(PG, connect_timeout=3) as conn:
        return {name: str(conn.execute(f"SHOW {name}").fetchone()[0])  # type: ignore[index]
                for name in ("server_version", "synchronous_commit", "fsync", "max_connections")}


@contextlib.contextmanager
def schema(prefix: str = "bench") -> Iterator[str]:
    """A new empty schema, dropped with everything in it when the context exits."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def libpq_url(schema_name: str) -> str:
    """A libpq URL whose connections see only `schema_name` (search_path)."""
    return f"{PG}?options=-csearch_path%3D{schema_name}"


def sqlalchemy_url(schema_name: str) -> str:
    """The same for TRADEWIRE_DATABASE_URL (SQLAlchemy with psycopg 3)."""
    return libpq_url(schema_name).replace("postgresql://", "postgresql+psycopg://", 1)


def count(schema_name: str, table: str) -> int:
    with psycopg.connect(libpq_url(schema_name)) as conn:
        return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # type: ignore[index]
