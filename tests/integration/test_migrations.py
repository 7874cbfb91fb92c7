"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tradewire.adapters.db.tables import metadata
from tradewire.bootstrap import Container


def test_migrated_schema_matches_the_tables_in_code(container: Container) -> None:
    with container.db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_upgrading_twice_changes_nothing(container: Container) -> None:
    from tradewire.adapters.db import migrate

    migrate.upgrade(container.db)
    with container.db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
