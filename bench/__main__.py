"""`python -m bench [ingest|latency]`: run the benchmarks (both by default), print tables.

Results go to bench/results/latest.json: the ingest run at the top level (as before) and the
latency run under "latency". A run of one benchmark keeps the other's last figures in the file.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import engine, ingest, latency, report, strategies
from bench.machine import describe

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
BENCHMARKS = ("ingest", "latency", "engine", "strategies")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="*", metavar="{ingest,latency,engine,strategies}",
                        help="which benchmarks to run (default: all)")
    which = parser.parse_args(argv).which or list(BENCHMARKS)
    unknown = sorted(set(which) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (choose from "
                     f"{', '.join(BENCHMARKS)})")
    console = Console()
    if not console.is_terminal:
        console = Console(width=130)  # rich assumes 80 columns in a pipe; the table needs more
    doc = _previous()
    if "ingest" in which:
        doc = {**_ingest(console), "latency": doc.get("latency"), "engine": doc.get("engine")}
    if "latency" in which:
        doc["latency"] = _latency(console)
    if "engine" in which:
        doc["engine"] = engine.run(console.print)
    if "strategies" in which:
        doc["strategies"] = strategies.run(console.print)
    for key in ("latency", "engine", "strategies"):
        if doc.get(key) is None:
            doc.pop(key, None)
    report.write(doc, RESULTS)
    console.print(f"written to {RESULTS}")


def _previous() -> dict[str, Any]:
    """The last results, so that running one benchmark keeps the other's."""
    try:
        previous: dict[str, Any] = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}
    return previous


def _ingest(console: Console) -> dict[str, Any]:
    started, t0 = datetime.now(UTC), time.monotonic()
    console.print(f"ingest benchmark: {len(ingest.TARGETS)} servers, one after another "
                  f"(at most {ingest.BUDGET_S:.0f} s)")
    load_before = os.getloadavg()
    results = ingest.run()
    report.add_ratios(results)
    doc = {
        "benchmark": "ingest",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "machine": describe(),
        # Other work on the machine skews the figures; the load average shows how much there was.
        "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "config": {"connections": ingest.CONNECTIONS, "warmup": ingest.WARMUP,
                   "measured": {t.name: t.measured for t in ingest.TARGETS}, "seed": ingest.SEED,
                   "run_deadline_s": ingest.RUN_DEADLINE_S, "budget_s": ingest.BUDGET_S},
        "targets": report.TARGETS,
        "results": results,
        "verdict": report.verdict(results),
    }
    report.show(doc, console)
    return doc


def _latency(console: Console) -> dict[str, Any]:
    started, t0 = datetime.now(UTC), time.monotonic()
    console.print(f"latency benchmark: paper broker alone, then one tradewire server at "
                  f"{latency.STEADY_RATE:.0f} signals/s and a ladder of rates "
                  f"(at most {latency.BUDGET_S:.0f} s)")
    load_before = os.getloadavg()
    results = latency.run()
    doc = {
        "benchmark": "latency",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "machine": describe(),
        "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "config": latency.config(),
        "target": latency.TARGET,
        "results": results,
        "verdict": latency.verdict(results),
    }
    report.show_latency(doc, console)
    return doc


if __name__ == "__main__":
    main()
