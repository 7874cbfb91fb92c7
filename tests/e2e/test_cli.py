"""The `tradewire` command as DESIGN.md's CLI contract writes it, run as a real process.

Each test runs twice: on the default SQLite file in TRADEWIRE_DATA_DIR, and with
TRADEWIRE_DATABASE_URL pointing at a fresh PostgreSQL schema. Keys made by the CLI are tried
against a real `tradewire serve` on loopback.
"""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.e2e.conftest import Cli, Service, clean_env
from tests.support import database_url

pytestmark = pytest.mark.slow  # runs the real command, and `tradewire serve`, as processes

CREDENTIALS = ("account_id", "api_key", "access_token", "admin_username", "admin_password")
COUNTED = ("app_user", "account", "api_key", "paper_account", "audit_event")


@dataclass
class Setup:
    cli: Cli
    engine: Engine
    tmp_path: Path

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
                    for t in COUNTED}

    def serve(self) -> Service:
        return Service(self.cli.env, self.tmp_path, self.tmp_path).start()


@pytest.fixture
def tw(db_kind: str, tmp_path: Path, data_dir: Path) -> Iterator[Setup]:
    """The CLI on the default SQLite file in the data dir, or on a fresh PostgreSQL schema."""
    if db_kind == "sqlite":
        cli = Cli(clean_env(data_dir), tmp_path)
        engine = create_engine(f"sqlite:///{data_dir / 'tradewire.db'}")
        yield Setup(cli, engine, tmp_path)
        engine.dispose()
        return
    with database_url("postgres", tmp_path) as url:
        cli = Cli(clean_env(data_dir, url), tmp_path)
        engine = create_engine(url)
        yield Setup(cli, engine, tmp_path)
        engine.dispose()


def signal(account_id: str, **fields: Any) -> dict[str, Any]:
    body = {"symbol": "AAPL", "action": "openLong", "accountId": account_id, "quantity": 5,
            "executeMode": "pending"}
    body.update(fields)
    return body


def test_init_prints_the_credentials_once_writes_them_0600_and_is_idempotent(
        tw: Setup) -> None:
    first = tw.cli.json("init")
    for key in CREDENTIALS:
        assert isinstance(first[key], str) and first[key], (key, first)
    assert first["admin_username"] == "admin"
    uuid.UUID(first["account_id"])
    # The first start loads the sample bars the backtesting package ships, for the demo.
    assert first["sample_bars"] == {"GOOG": 2148, "EUR/USD": 5000}

    path = tw.cli.data_dir / "initial-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert {k: saved[k] for k in CREDENTIALS} == {k: first[k] for k in CREDENTIALS}
    secret = tw.cli.data_dir / "secret.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600

    counts = tw.counts()
    assert counts["app_user"] == counts["account"] == counts["api_key"] == 1
    written = path.read_bytes()

    second = tw.cli.json("init")
    assert not any(second.get(k) for k in ("api_key", "access_token", "admin_password")), second
    assert tw.counts() == counts, "a second init created something"
    assert path.read_bytes() == written
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_accounts_and_keys_create_print_one_json_object_and_the_key_is_narrowed(
        tw: Setup) -> None:
    boot = tw.cli.json("init")
    account = tw.cli.json("accounts", "create", "--name", "swing")
    uuid.UUID(account["id"])
    assert account["id"] != boot["account_id"]

    key = tw.cli.json("keys", "create", "--scopes", "signals:write,signals:read",
                      "--account", account["id"])
    assert {"id", "key"} <= set(key) and key["key"] and key["id"]
    assert key["key"] != boot["api_key"]
    with tw.engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash, scopes FROM api_key WHERE id = :i"),
                              {"i": key["id"]}).one()
    assert key["key"] not in stored.key_hash, "the key is stored in clear"
    assert set(stored.scopes.split(",")) == {"signals:write", "signals:read"}

    counts = tw.counts()
    server = tw.serve()
    try:
        narrow = {"X-API-Key": key["key"]}
        admin = {"X-API-Key": boot["api_key"]}
        with httpx.Client(base_url=server.url, timeout=15) as c:
            # What init printed works: the admin's password and key.
            login = c.post("/api/v1/auth/login", json={"username": boot["admin_username"],
                                                       "password": boot["admin_password"]})
            assert login.status_code == 200, login.text
            # The scopes it has.
            mine = c.post("/api/v1/signals", json=signal(account["id"]), headers=narrow)
            assert mine.status_code == 201, mine.text
            listed = c.get("/api/v1/signals", headers=narrow)
            assert listed.status_code == 200
            assert [s["id"] for s in listed.json()["signals"]] == [mine.json()["signal"]["id"]]
            # The scopes it lacks: 403.
            r = c.get("/api/v1/positions", headers=narrow)
            assert r.status_code == 403, r.text
            r = c.get("/api/v1/accounts", headers=narrow)
            assert r.status_code == 403, r.text
            r = c.post("/api/v1/market/prices", json={"symbol": "AAPL", "price": 1},
                       headers=narrow)
            assert r.status_code == 403, r.text
            # Another account, even one of the same owner: 404, as if it did not exist.
            theirs = c.post("/api/v1/signals", json=signal(boot["account_id"]), headers=admin)
            assert theirs.status_code == 201, theirs.text
            r = c.post("/api/v1/signals", json=signal(boot["account_id"]), headers=narrow)
            assert r.status_code == 404, r.text
            r = c.get(f"/api/v1/signals/{theirs.json()['signal']['id']}", headers=narrow)
            assert r.status_code == 404, r.text
            missing = c.get(f"/api/v1/signals/{uuid.uuid4()}", headers=narrow)
            assert missing.status_code == 404
            assert r.json()["code"] == missing.json()["code"]
            r = c.get("/api/v1/signals", params={"accountId": boot["account_id"]},
                      headers=narrow)
            assert r.status_code == 404, r.text
            # The admin's own key sees both accounts.
            r = c.get("/api/v1/accounts", headers=admin)
            assert {a["id"] for a in r.json()["accounts"]} == {boot["account_id"],
                                                               account["id"]}
    finally:
        server.kill()
    after = tw.counts()
    assert {t: after[t] for t in ("app_user", "account", "api_key")} == {
        t: counts[t] for t in ("app_user", "account", "api_key")}, "serve bootstrapped again"


def test_failures_of_json_commands_are_one_json_object_and_a_nonzero_exit(
        cli: Cli, tmp_path: Path) -> None:
    """(On SQLite only: the database plays no part in these refusals.)"""
    engine = create_engine(f"sqlite:///{cli.data_dir / 'tradewire.db'}")
    tw = Setup(cli, engine, tmp_path)
    for args in (("keys", "create", "--scopes", "signals:write,launch:missiles", "--json"),
                 ("accounts", "create", "--name", "x", "--user", "nobody", "--json")):
        done = tw.cli.run(*args, ok=False)
        assert done.returncode != 0, (args, done.stdout)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, (args, done.stdout, done.stderr)
        answer = json.loads(lines[0])
        assert answer["error"] and answer["code"], answer
        assert "Traceback" not in done.stderr, done.stderr
    assert tw.counts() == dict.fromkeys(COUNTED, 0)
    engine.dispose()


def test_db_upgrade_succeeds_on_an_empty_database_and_again(tw: Setup) -> None:
    first = tw.cli.run("db", "upgrade")
    with tw.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    again = tw.cli.run("db", "upgrade")
    assert first.returncode == again.returncode == 0
    with tw.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
            (version,)]
    assert tw.counts() == dict.fromkeys(COUNTED, 0), "db upgrade is not supposed to bootstrap"
