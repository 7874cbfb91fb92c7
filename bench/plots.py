"""The three scaling plots, PNG files in docs/, drawn from this run's figures (matplotlib, Agg).

- docs/bench-ingest-scaling.png: requests/s of tradewire (`pending`, PostgreSQL) with 1, 2 and
  4 API processes, beside the bare durable PostgreSQL endpoint and the ceiling of the same run;
- docs/bench-strategies-scaling.png: seconds for a bulk evaluation of 100 to 100,000
  strategies, beside the `ta` + pandas one-by-one cost (its measured mean per strategy times
  N: a line extrapolated from the sample, drawn dashed) and the 1 s target at 10,000;
- docs/bench-engine-scaling.png: µs per quiet tick against armed exits, the trigger book and
  the plain scan.

A plot whose figures are missing from the run (a part not run, or skipped) is not drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent / "docs"
INGEST_PNG = DOCS / "bench-ingest-scaling.png"
STRATEGIES_PNG = DOCS / "bench-strategies-scaling.png"
ENGINE_PNG = DOCS / "bench-engine-scaling.png"


def draw(doc: dict[str, Any]) -> list[str]:
    """Every plot this run has the figures for; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    written = []
    for path, plot in ((INGEST_PNG, _ingest), (STRATEGIES_PNG, _strategies), (ENGINE_PNG, _engine)):
        if plot(doc, path):
            written.append(str(path.relative_to(DOCS.parent)))
    return written


def _subtitle(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    return f"{m['nproc']} cores, {m['cpu']}, {m['python']}; run of {doc['started_at']}"


def _ingest(doc: dict[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt

    rows = doc.get("ingest", {}).get("results", [])
    curve = [r for r in rows if r["kind"] == "tradewire" and r.get("database") == "postgresql"
             and "rps" in r]
    if not curve:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs, ys = [r["processes"] for r in curve], [r["rps"] for r in curve]
    ax.plot(xs, ys, "o-", label="tradewire pending, PostgreSQL")
    for x, y in zip(xs, ys, strict=True):
        ax.annotate(f"{y:,.0f}/s", (x, y), textcoords="offset points", xytext=(0, 8), ha="center")
    for kind, style, label in (("durable_pg", "--", "bare durable, PostgreSQL (1 process)"),
                               ("ceiling", ":", "ceiling: validate, answer, store nothing")):
        base = next((r["rps"] for r in rows if r["kind"] == kind and "rps" in r), None)
        if base is not None:
            ax.axhline(base, linestyle=style, color="grey", label=f"{label}: {base:,.0f}/s")
    ax.set_xticks(xs)
    ax.set_xlabel("tradewire api processes (64 clients spread round robin)")
    ax.set_ylabel("requests / s")
    ax.set_yscale("log")
    ax.set_title("Ingest throughput, POST /api/v1/signals\n" + _subtitle(doc), fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def _strategies(doc: dict[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt

    part = doc.get("strategies", {})
    points = [p for p in part.get("curve", []) if "seconds" in p]
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [p["strategies"] for p in points]
    ax.plot(xs, [p["seconds"] for p in points], "o-", label="tradewire bulk evaluation (decide)")
    ta = part.get("baselines", {}).get("ta_one_by_one")
    if ta:
        ax.plot(xs, [ta["us_per_strategy"] * n / 1e6 for n in xs], "--", color="grey",
                label=f"ta + pandas, one by one (mean of {ta['strategies']} measured x N)")
    floor = part.get("baselines", {}).get("talib_floor")
    if floor:
        ax.plot([part["config"]["strategies"]], [floor["best_s"]], "v", color="green",
                label=f"TA-Lib alone, the {floor['indicators']:,} distinct indicators of 10,000")
    ax.plot([10_000], [1.0], "r*", markersize=10, label="target: 10,000 in < 1 s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("strategies (50 asset/timeframe pairs, 500 bars each)")
    ax.set_ylabel("seconds")
    ax.set_title("Strategy evaluation\n" + _subtitle(doc), fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def _engine(doc: dict[str, Any], path: Path) -> bool:
    import matplotlib.pyplot as plt

    points = doc.get("engine", {}).get("curve", [])
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [p["armed"] for p in points]
    ax.plot(xs, [p["book"]["us_per_tick"] for p in points], "o-", label="TriggerBook.on_tick")
    ax.plot(xs, [p["scan"]["us_per_tick"] for p in points], "s--", color="grey",
            label="plain scan of every armed exit")
    ax.axhline(20, linestyle=":", color="red", label="target: 50,000 ticks/s (20 µs per tick)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("armed exits (1,000 symbols)")
    ax.set_ylabel("µs per tick that fires nothing")
    ax.set_title("Trigger engine\n" + _subtitle(doc), fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
