"""Apply the migrations to a database (the glue between Alembic and tradewire's engine)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from tradewire.adapters.db.engine import Database

SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest migration's revision (read from the scripts once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(db: Database) -> str | None:
    """The revision the database is at; None when it holds no migrations yet."""
    try:
        with db.engine.connect().execution_options(tw_write=False) as conn:  # a reader
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except DBAPIError:  # no alembic_version table: an empty database
        return None


def upgrade(db: Database, revision: str = "head") -> None:
    if revision == "head" and current_revision(db) == head_revision():
        return  # nothing to apply: every process start and CLI command skips Alembic's run
    cfg = alembic_config()
    with db.writing(), db.engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one; with foreign keys
            # on, that drop fails as soon as another table's rows point at it. The pragma only
            # changes outside a transaction (so on the driver's connection, before SQLAlchemy
            # begins one); the check after the upgrade proves nothing was left dangling.
            _pragma(conn, "foreign_keys=OFF")
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the upgrade left rows pointing nowhere: {broken[:5]}")
        finally:
            if sqlite:
                conn.rollback()
                _pragma(conn, "foreign_keys=ON")


def _pragma(conn: Connection, setting: str) -> None:
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    cur.execute(f"PRAGMA {setting}")
    cur.close()


def revision(db: Database, message: str) -> None:
    """Autogenerate a new revision from the tables (a developer's tool)."""
    cfg = alembic_config()
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
