"""Operations from the command line, as real processes: risk limits, kill switches,
reconciliation and credential rotation."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.e2e.conftest import Cli, clean_env

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    c = Cli(clean_env(tmp_path / "data"), tmp_path)
    c.json("init")
    return c


def test_risk_limits_are_set_shown_and_bad_ones_refused(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "capped")["id"]
    set_ = cli.json("risk", "set", account, "--limits",
                    '{"max_position_qty": 50, "blocked_symbols": ["gme"]}')
    assert set_["limits"]["max_position_qty"] == "50"
    assert set_["limits"]["blocked_symbols"] == ["GME"]
    shown = cli.json("risk", "show", account)
    assert shown["limits"] == set_["limits"]
    bad = cli.run("risk", "set", account, "--limits", '{"max_position_qty": -1}', "--json",
                  ok=False)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["code"] == "INVALID_RISK_LIMITS"
    assert cli.json("risk", "show", account)["limits"] == set_["limits"]
    missing = cli.run("risk", "show", "no-such-account", "--json", ok=False)
    assert json.loads(missing.stdout)["code"] == "ACCOUNT_NOT_FOUND"


def test_kill_switches_for_one_account_and_for_all(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "switched")["id"]
    assert cli.json("halt", "--account", account) == {"scope": account, "halted": True}
    assert cli.json("risk", "show", account)["limits"]["halted"] is True
    assert cli.json("resume", "--account", account)["halted"] is False
    assert cli.json("risk", "show", account)["limits"]["halted"] is False
    assert cli.json("halt") == {"scope": "all", "halted": True}
    assert cli.json("resume") == {"scope": "all", "halted": False}


def test_reconcile_reports_every_account(cli: Cli) -> None:
    account = cli.json("accounts", "create", "--name", "checked")["id"]
    report = cli.json("reconcile")
    mine = [a for a in report["accounts"] if a["accountId"] == account]
    assert mine == [{"accountId": account, "updated": 0, "error": None, "differences": []}]


def test_rotation_replaces_the_keys_file_with_one_new_key(cli: Cli) -> None:
    keys_file = cli.data_dir / "credentials.keys"
    before = keys_file.read_text().split()
    assert len(before) == 1
    Fernet(before[0].encode())  # a real Fernet key
    done = cli.json("credentials", "rotate")
    assert done == {"resealed": 0, "keys": "file", "next": "done"}
    after = keys_file.read_text().split()
    assert len(after) == 1 and after != before
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"


def test_broker_keys_are_never_taken_as_command_line_values(cli: Cli) -> None:
    help_text = cli.run("accounts", "create", "--help").stdout
    for flag in ("--api-key", "--secret", "--key-id", "--password"):
        assert flag not in help_text
    missing = cli.run("accounts", "create", "--name", "x", "--broker", "alpaca",
                      "--credentials-env", "--json", ok=False)
    assert json.loads(missing.stdout)["code"] == "BROKER_CREDENTIALS_INVALID"
    unknown = cli.run("accounts", "create", "--name", "x", "--broker", "nope", "--json", ok=False)
    assert json.loads(unknown.stdout)["code"] == "UNKNOWN_BROKER"


def test_an_online_backup_is_a_consistent_copy_and_never_overwrites(cli: Cli,
                                                                    tmp_path: Path) -> None:
    cli.json("accounts", "create", "--name", "kept")
    dest = tmp_path / "backups" / "tw.db"
    done = cli.json("db", "backup", str(dest))
    assert done["database"] == "sqlite" and done["pages"] > 0
    with sqlite3.connect(dest) as copy, sqlite3.connect(cli.data_dir / "tradewire.db") as live:
        for table in ("account", "app_user", "api_key", "audit_event"):
            query = f"SELECT count(*) FROM {table}"
            assert copy.execute(query).fetchone() == live.execute(query).fetchone()
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = cli.run("db", "backup", str(dest), "--json", ok=False)
    assert again.returncode == 1 and json.loads(again.stdout)["code"] == "BACKUP_FAILED"


def test_a_postgresql_backup_points_at_pg_dump_without_the_password(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "data", "postgresql://tw:hunter2@127.0.0.1:5999/tw")
    done = Cli(env, tmp_path).run("db", "backup", str(tmp_path / "x.dump"), "--json", ok=False)
    assert done.returncode == 2
    answer = json.loads(done.stdout)
    assert answer["command"].startswith("pg_dump --format=custom")
    assert "hunter2" not in done.stdout
