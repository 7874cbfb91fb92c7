"""`tradewire api` and `tradewire serve` hand uvicorn an application whose start-up objects
the garbage collector no longer walks (cli._serve_http: gc.freeze), so a full collection
does not stop every request of the process for the time it takes to walk them."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from tradewire.entrypoints import cli


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """What uvicorn.run was given, and how many objects were frozen when it was called."""
    for name in [k for k in os.environ if k.startswith("TRADEWIRE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRADEWIRE_DATA_DIR", str(tmp_path / "data"))
    calls: list[dict[str, Any]] = []

    def run(app: Any, **options: Any) -> None:
        calls.append({"app": app, "frozen": gc.get_freeze_count(), **options})

    monkeypatch.setattr(uvicorn, "run", run)
    gc.unfreeze()
    try:
        yield calls
    finally:
        gc.unfreeze()  # back to how the test process had it


@pytest.mark.parametrize("command", ["api", "serve"])
def test_the_server_starts_with_its_start_up_objects_frozen(
        served: list[dict[str, Any]], command: str) -> None:
    result = CliRunner().invoke(cli.app, [command, "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert len(served) == 1
    assert served[0]["port"] == 8123
    # Everything alive at start-up (the application's routes and models among it).
    assert served[0]["frozen"] > 10_000
    assert gc.isenabled()  # the collector still runs for what serving makes
