"""Online backups. SQLite: the sqlite3 backup API copies a consistent snapshot while the
service keeps writing (WAL readers are not blocked). PostgreSQL: pg_dump does it better than
any code here, so tradewire prints the command instead."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def backup_sqlite(source: Path, dest: Path) -> int:
    """Copy the database to `dest` (a new file) page by page; returns the pages copied."""
    if dest.exists():
        raise FileExistsError(f"{dest} exists; a backup never overwrites")
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    out = sqlite3.connect(dest)
    pages = 0

    def progress(status: int, remaining: int, total: int) -> None:
        nonlocal pages
        pages = total

    try:
        with out:
            src.backup(out, pages=1024, progress=progress)
        check = out.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise RuntimeError(f"the backup failed its integrity check: {check}")
    finally:
        out.close()
        src.close()
    return pages


def pg_dump_command(url: str, dest: Path) -> str:
    u = make_url(url).set(drivername="postgresql")
    safe = u.render_as_string(hide_password=True)
    return f"pg_dump --format=custom --file={dest} '{safe}'"
