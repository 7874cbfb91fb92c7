"""Alembic environment: migrations ship inside the package so `tradewire db upgrade` works anywhere."""

from __future__ import annotations

from alembic import context

from tradewire.adapters.db.tables import metadata

config = context.config


def run() -> None:
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
