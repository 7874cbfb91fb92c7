"""A short description of the machine a benchmark ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def _nproc() -> int:
    try:
        out = subprocess.run(["nproc"], capture_output=True, text=True, timeout=5, check=True)
        return int(out.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return len(os.sched_getaffinity(0))


def _proc_field(path: str, name: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        return None
    return None


def describe() -> dict[str, object]:
    """nproc, CPU model, memory, OS and the Python that runs the servers and the load."""
    return {
        "nproc": _nproc(),
        "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "memory": _proc_field("/proc/meminfo", "MemTotal"),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"Python {platform.python_version()}",
        "python_executable": sys.executable,
    }
