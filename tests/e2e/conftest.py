"""End-to-end plumbing: the installed `tradewire` command, run as real processes on loopback.

`Cli` runs one command to completion; `Service` runs `tradewire serve` in the background and
can be killed with SIGKILL and started again on the same data dir. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port

COMMAND_TIMEOUT_S = 60
START_TIMEOUT_S = 60  # a loaded 2-core machine starts a Python service slowly


def tradewire_command() -> list[str]:
    """The `tradewire` script installed beside this interpreter (or the typer app, directly)."""
    script = Path(sys.executable).with_name("tradewire")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from tradewire.entrypoints.cli import app; app()"]


def clean_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """This process's environment without any TRADEWIRE_* setting, plus the ones given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIRE_")}
    env["TRADEWIRE_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        env["TRADEWIRE_DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Cli:
    """`tradewire ...` with a fixed environment, run to completion (bounded)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd

    @property
    def data_dir(self) -> Path:
        return Path(self.env["TRADEWIRE_DATA_DIR"])

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*tradewire_command(), *args], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                              check=False)
        if ok:
            assert done.returncode == 0, (
                f"tradewire {' '.join(args)} exited {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}")
        return done

    def json(self, *args: str) -> dict[str, Any]:
        """Run a `--json` command; its stdout must be exactly one JSON object."""
        out = self.run(*args, "--json").stdout
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one JSON line, got: {out!r}"
        data = json.loads(lines[0])
        assert isinstance(data, dict), out
        return data


class Service:
    """`tradewire serve` as a child process on a loopback port; SIGKILL-able, restartable."""

    def __init__(self, env: dict[str, str], cwd: Path, log_dir: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None

    def start(self) -> Service:
        assert self.proc is None, "already running"
        self.starts += 1
        self.port = free_port()
        log = self.log_dir / f"serve-{self.starts}.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*tradewire_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        self._wait_ready(log)
        return self

    def _wait_ready(self, log: Path) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tradewire serve exited {self.proc.returncode}:\n"
                                     f"{log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"tradewire serve not ready in {START_TIMEOUT_S}s:\n"
                             f"{log.read_text(errors='replace')}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut of the process."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> Service:
        self.kill()
        return self.start()

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=15)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def cli(data_dir: Path, tmp_path: Path) -> Cli:
    """The CLI on a SQLite database in a fresh data dir."""
    return Cli(clean_env(data_dir), tmp_path)


@pytest.fixture
def service(cli: Cli, tmp_path: Path) -> Iterator[Service]:
    """`tradewire serve` on the same data dir as `cli` (not started yet); killed at the end."""
    s = Service(cli.env, tmp_path, tmp_path)
    try:
        yield s
    finally:
        s.kill()
