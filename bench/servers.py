"""Servers under test as subprocesses on 127.0.0.1: start, wait until ready, stop, CPU used."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import httpx

READY_TIMEOUT_S = 60.0  # a generous guard: 4 servers importing at once on 2 busy cores are slow
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of stat(5); the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """The processes `pid` started and that still run, and theirs (Linux /proc)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            mine = [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in mine:
            found += [child, *children(child)]
    return found


class ServerProcess:
    """A server command run until the context exits; its output goes to `log`."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str], log: Path,
                 cwd: Path) -> None:
        self.argv, self.port, self.env, self.log, self.cwd = argv, port, env, log, cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerProcess:
        self.spawn()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def spawn(self) -> None:
        """Start the process without waiting for it (see `started` for several at once)."""
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def cpu(self) -> float | None:
        """CPU seconds of the server and of the processes it started (tradewire's writer
        process): what serving has cost the machine."""
        if self.proc is None:
            return None
        own = cpu_seconds(self.proc.pid)
        if own is None:
            return None
        return own + sum(cpu_seconds(child) or 0.0 for child in children(self.proc.pid))

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.argv[0]} exited with {self.proc.returncode}:\n"
                                   + self.log.read_text(errors="replace")[-2000:])
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{' '.join(self.argv)} not ready after {READY_TIMEOUT_S} s")

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful stop), then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)


@contextlib.contextmanager
def started(servers: list[ServerProcess]) -> Iterator[list[ServerProcess]]:
    """Several servers started at once (their imports overlap), all ready, all stopped after."""
    try:
        for server in servers:
            server.spawn()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()
