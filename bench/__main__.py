"""`python -m bench [ingest|latency|engine|strategies]`: run the benchmarks (all by default).

Each part prints its own tables as it goes; at the end one summary table lists every figure
beside its baseline measured in the same run, and the ratio. Everything goes to
bench/results/latest.json as one document from this run only (a previous file is replaced,
nothing is carried over), the summary table in Markdown to bench/results/latest.md, and the
scaling plots of the parts that ran to docs/*.png. Every
part is bounded in count and time (see docs/benchmarks.md), and the whole run by TOTAL_S: a
part gets its own budget or, on a machine so busy that earlier parts ran long, what is left
after keeping each later part its least (RESERVE_S), so all four take under 10 minutes.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import engine, ingest, latency, pg, plots, report, strategies
from bench.machine import describe

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
SUMMARY_MD = RESULTS.with_suffix(".md")  # the summary table in Markdown, for the README
BENCHMARKS = ("ingest", "latency", "engine", "strategies")
TOTAL_S = 570.0
# The least time each part needs: the engine has no budget of its own (about 40 s of bounded
# steps), the others shrink what they measure to the budget they are given.
RESERVE_S = {"ingest": 60.0, "latency": 45.0, "engine": 60.0, "strategies": 50.0}
NOMINAL_S = {"ingest": ingest.BUDGET_S, "latency": latency.BUDGET_S, "engine": 60.0,
             "strategies": strategies.BUDGET_S}


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
        console = Console(width=180)  # rich assumes 80 columns in a pipe; the tables need more
    started, t0 = datetime.now(UTC), time.monotonic()
    load_before = os.getloadavg()
    doc: dict[str, Any] = {"started_at": started.isoformat(timespec="seconds"),
                           "machine": describe(), "parts": [b for b in BENCHMARKS if b in which]}
    parts: dict[str, Callable[[Console, float], dict[str, Any]]] = {
        "ingest": _ingest, "latency": _latency,
        "engine": lambda c, _: _timed(lambda: engine.run(c.print)),
        "strategies": lambda c, budget: _timed(lambda: strategies.run(c.print, budget))}
    for i, name in enumerate(doc["parts"]):
        later = sum(RESERVE_S[p] for p in doc["parts"][i + 1:])
        budget = max(RESERVE_S[name], min(NOMINAL_S[name], TOTAL_S - (time.monotonic() - t0) - later))
        console.rule(f"{name}")
        doc[name] = parts[name](console, budget)
        doc[name]["budget_s"] = round(budget, 1)
    doc["duration_s"] = round(time.monotonic() - t0, 1)
    # Other work on the machine skews the figures; the load average shows how much there was.
    doc["loadavg_1m"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
    doc["summary"] = report.summary(doc)
    doc["plots"] = plots.draw(doc)
    report.write(doc, RESULTS)
    SUMMARY_MD.write_text(report.markdown(doc))
    console.rule("summary")
    m = doc["machine"]
    report.show_summary(doc["summary"], console, title=(
        f"tradewire benchmarks, {doc['started_at']}: {m['nproc']} cores, {m['cpu']}, {m['memory']}, "
        f"{m['os']}, {m['python']}; load average {doc['loadavg_1m']['before']} before, "
        f"{doc['loadavg_1m']['after']} after"))
    console.print(f"every baseline measured in this run; {doc['duration_s']:.0f} s in all")
    for path in doc["plots"]:
        console.print(f"plot: {path}")
    console.print(f"written to {RESULTS} (the summary in Markdown: {SUMMARY_MD.name})")


def _timed(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    t0 = time.monotonic()
    out = run()
    out["duration_s"] = round(time.monotonic() - t0, 1)
    return out


def _ingest(console: Console, budget_s: float) -> dict[str, Any]:
    t0 = time.monotonic()
    console.print(f"ingest benchmark: {len(ingest.TARGETS)} servers, one after another "
                  f"(at most {budget_s:.0f} s)")
    load_before = os.getloadavg()
    results = ingest.run(budget_s=budget_s)
    report.add_ratios(results)
    doc = {
        "benchmark": "ingest",
        "duration_s": round(time.monotonic() - t0, 1),
        "machine": describe(),
        "loadavg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        "config": {"connections": ingest.CONNECTIONS, "warmup": ingest.WARMUP,
                   "measured": {t.name: t.measured for t in ingest.TARGETS},
                   "warmups": {t.name: t.warmup for t in ingest.TARGETS}, "seed": ingest.SEED,
                   "run_deadline_s": ingest.RUN_DEADLINE_S, "budget_s": budget_s,
                   "postgresql": pg.PG},
        "targets": report.TARGETS,
        "results": results,
        "verdict": report.verdict(results),
    }
    report.show(doc, console)
    return doc


def _latency(console: Console, budget_s: float) -> dict[str, Any]:
    t0 = time.monotonic()
    console.print(f"latency benchmark: paper broker alone, then one tradewire server at "
                  f"{latency.STEADY_RATE:.0f} signals/s and a ladder of rates "
                  f"(at most {budget_s:.0f} s)")
    load_before = os.getloadavg()
    results = latency.run(budget_s)
    doc = {
        "benchmark": "latency",
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
