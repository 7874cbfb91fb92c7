"""LISTEN/NOTIFY on PostgreSQL: an API process that stores work due now (or new prices) wakes
the idle workers at once instead of leaving them to their next poll. A lost notification
costs only latency: the workers poll anyway."""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy.engine import make_url

from tradewire.adapters.db.engine import Database

log = logging.getLogger(__name__)
CHANNEL = "tradewire_work"


def is_postgres(db: Database) -> bool:
    return db.engine.dialect.name == "postgresql"


class PgNotifier:
    def __init__(self, db: Database) -> None:
        self._db = db

    def __call__(self) -> None:
        try:
            with self._db.engine.connect() as conn:
                conn.exec_driver_sql(f"NOTIFY {CHANNEL}")
                conn.commit()
        except Exception as exc:  # a missed wake-up only delays the work to the next poll
            log.warning("NOTIFY failed: %s", type(exc).__name__)


def listen(db: Database, wake: threading.Event, stop: threading.Event) -> threading.Thread:
    """A thread that sets `wake` on every notification, reconnecting when the link drops."""
    url = make_url(db.engine.url).set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)

    def run() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            wake.set()
            except psycopg.Error as exc:
                log.warning("LISTEN connection lost (%s); reconnecting", type(exc).__name__)
                stop.wait(1.0)

    thread = threading.Thread(target=run, name="tradewire-listen", daemon=True)
    thread.start()
    return thread
