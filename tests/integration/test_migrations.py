"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event

from tradewire.adapters.db import migrate
from tradewire.adapters.db.engine import connect
from tradewire.adapters.db.tables import metadata
from tradewire.bootstrap import Container


def test_migrated_schema_matches_the_tables_in_code(container: Container) -> None:
    with container.db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_upgrading_twice_changes_nothing(container: Container) -> None:
    migrate.upgrade(container.db)
    with container.db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_an_empty_database_is_migrated_from_the_first_revision(empty_db_url: str) -> None:
    db = connect(empty_db_url)
    try:
        assert migrate.current_revision(db) is None
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.close()


def test_an_upgrade_at_the_newest_revision_only_reads_the_revision(empty_db_url: str) -> None:
    """Every process start and CLI command upgrades: at the newest revision that is one read
    (Alembic's run loads every migration script); one revision behind, the upgrade runs."""
    db = connect(empty_db_url)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    try:
        migrate.upgrade(db, "0014")
        event.listen(db.engine, "before_cursor_execute", seen)
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
        assert any("ix_exit_plan_active" in s for s in statements)  # 0015 ran
        statements.clear()
        migrate.upgrade(db)
        assert [s for s in statements if s != "BEGIN"] == [  # SQLite's reader: BEGIN
            "SELECT version_num FROM alembic_version"]
    finally:
        db.close()
