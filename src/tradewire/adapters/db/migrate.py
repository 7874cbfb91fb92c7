"""Apply the migrations to a database (the glue between Alembic and tradewire's engine)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from tradewire.adapters.db.engine import Database

SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config(db)
    with db.writing(), db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def revision(db: Database, message: str) -> None:
    """Autogenerate a new revision from the tables (a developer's tool)."""
    cfg = alembic_config(db)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
