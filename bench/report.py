"""Ratios against the baselines, the DESIGN targets, the JSON file and the printed table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# DESIGN.md, "Performance", ingest row.
TARGETS = {"min_x_bare_durable": 3.0, "min_share_of_ceiling": 0.40, "max_p99_ms": 25.0}


def add_ratios(results: list[dict[str, Any]]) -> None:
    """Give every tradewire row its same-run ratios to the two baselines."""
    durable = _rps(results, "durable")
    ceiling = _rps(results, "ceiling")
    for row in results:
        if row["kind"] == "tradewire" and "rps" in row:
            row["x_bare_durable"] = row["rps"] / durable if durable else None
            row["share_of_ceiling"] = row["rps"] / ceiling if ceiling else None


def verdict(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each DESIGN target against the first tradewire row (the pending one): value and met?"""
    row = next((r for r in results if r["kind"] == "tradewire" and "rps" in r), None)
    if row is None:
        return {}
    x, share, p99 = row.get("x_bare_durable"), row.get("share_of_ceiling"), row.get("p99_ms")
    errors = row["errors"] + row["warmup_errors"]
    return {
        "row": row["name"],
        "x_bare_durable": {"value": x, "met": x is not None and x >= TARGETS["min_x_bare_durable"]},
        "share_of_ceiling": {"value": share,
                             "met": share is not None and share >= TARGETS["min_share_of_ceiling"]},
        "p99_ms": {"value": p99, "met": p99 is not None and p99 < TARGETS["max_p99_ms"]},
        "errors": {"value": errors, "met": errors == 0},
    }


def write(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def show(doc: dict[str, Any], console: Console) -> None:
    """The results table, the verdict, and whatever went wrong."""
    m, c = doc["machine"], doc["config"]
    table = Table(title=f"ingest: {c['connections']} concurrent clients, {c['warmup']} warm-up "
                  f"requests first; {m['nproc']} cores, {m['python']}")
    for name in ("target", "requests", "req/s", "p50 ms", "p99 ms", "errors", "vs durable",
                 "vs ceiling", "server CPU us/req", "client CPU"):
        table.add_column(name, justify="left" if name == "target" else "right")
    for r in doc["results"]:
        if r.get("skipped") or r.get("failed"):
            table.add_row(r["name"], "skipped (time budget)" if r.get("skipped") else "FAILED")
            continue
        table.add_row(r["name"], f"{r['ok']:,}", f"{r['rps']:,.0f}", _num(r["p50_ms"]),
                      _num(r["p99_ms"]), str(r["errors"] + r["warmup_errors"]),
                      _num(r.get("x_bare_durable"), "x", 2), _pct(r.get("share_of_ceiling")),
                      _num(r.get("server_cpu_us_per_req"), "", 0), _pct(r.get("client_cpu")))
    console.print(table)
    load = doc["loadavg_1m"]
    console.print(f"1-minute load average before/after: {load['before']}/{load['after']} "
                  f"on {m['nproc']} cores (other work skews the figures)")
    if doc["verdict"]:
        console.print(f"DESIGN targets, {doc['verdict']['row']}:")
    for key, v in doc["verdict"].items():
        if key != "row":
            console.print(f"  {key}: {_num(v['value'], '', 2)}  {'met' if v['met'] else 'NOT met'}")
    for r in doc["results"]:
        for problem in _problems(r):
            console.print(f"[yellow]{r['name']}[/yellow]: {problem}")


def _problems(r: dict[str, Any]) -> list[str]:
    if r.get("failed"):
        return [r["failed"]]
    if r.get("skipped"):
        return []
    out = [*r["warmup_samples"], *r["error_samples"], *r.get("server_log_errors", [])]
    if r["unsent"] or r.get("timed_out"):
        out.append(f"deadline reached: {r['unsent']} measured requests not sent")
    unexpected = {k: n for k, n in r.get("answers", {}).items() if k != r["expect"]}
    if unexpected:
        out.append(f"2xx answers with a status other than {r['expect']}: {unexpected}")
    stored = r["warmup_ok"] + r["ok"]
    if "rows" in r and r["rows"] != stored:
        out.append(f"{r['rows']} rows stored for {stored} successful answers")
    return out


def _rps(results: list[dict[str, Any]], kind: str) -> float | None:
    row = next((r for r in results if r["kind"] == kind and "rps" in r), None)
    return row["rps"] if row else None


def _num(value: float | None, suffix: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,}{suffix}" if isinstance(value, int) else f"{value:,.{digits}f}{suffix}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
