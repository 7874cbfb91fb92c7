"""Apply the migrations to a database (the glue between Alembic and tradewire's engine)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from tradewire.adapters.db.engine import Database

SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config(db)
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
    cfg = alembic_config(db)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
