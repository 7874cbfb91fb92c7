"""`python -m bench`: run the ingest benchmark, write bench/results/latest.json, print a table."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from bench import ingest, report
from bench.machine import describe

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def main() -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=130)  # rich assumes 80 columns in a pipe; the table needs more
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
    report.write(doc, RESULTS)
    report.show(doc, console)
    console.print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
