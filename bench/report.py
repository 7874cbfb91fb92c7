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
    """Give every tradewire row its same-run ratios to the baselines: the bare durable endpoint
    on the same database, the ceiling, and (PostgreSQL) the one-process row of the curve."""
    durable = {"sqlite": _rps(results, "durable"), "postgresql": _rps(results, "durable_pg")}
    paired = {r.get("pair", 1): r["rps"] for r in results if r["kind"] == "durable" and "rps" in r}
    ceiling = _rps(results, "ceiling")
    one = next((r["rps"] for r in results if r["kind"] == "tradewire" and "rps" in r
                and r.get("database") == "postgresql" and r.get("processes") == 1), None)
    for row in results:
        if row["kind"] == "tradewire" and "rps" in row:
            base = durable.get(row.get("database", "sqlite"))
            if row.get("database", "sqlite") == "sqlite" and row.get("mode") == "pending":
                base = paired.get(row.get("pair", 1))  # its own pair's baseline
            row["x_bare_durable"] = row["rps"] / base if base else None
            row["share_of_ceiling"] = row["rps"] / ceiling if ceiling else None
            if row.get("database") == "postgresql" and one:
                row["x_one_process"] = row["rps"] / one


ALONE = "tradewire pending, no writer process"  # one process, every unit in it: beside the rest


def _sqlite_pending(r: dict[str, Any], processes: int) -> bool:
    return (r["kind"] == "tradewire" and r.get("database", "sqlite") == "sqlite"
            and r.get("mode") == "pending" and r.get("processes", 1) == processes
            and r["name"] != ALONE)


def median_pair(results: list[dict[str, Any]], processes: int = 1) -> dict[str, Any] | None:
    """The SQLite `pending` row (of `processes` API processes) whose ratio to its own pair's
    bare durable run is the median of the pairs measured (the first pair's row when no ratio
    could be taken)."""
    rows = [r for r in results if "rps" in r and _sqlite_pending(r, processes)]
    rated = sorted((r for r in rows if r.get("x_bare_durable") is not None),
                   key=lambda r: r["x_bare_durable"])
    if rated:
        return rated[(len(rated) - 1) // 2]
    return rows[0] if rows else None


def pair_ratios(results: list[dict[str, Any]], processes: int = 1) -> list[float]:
    """Every pair's `pending` / bare durable ratio, in the order they ran."""
    return [r["x_bare_durable"] for r in results
            if _sqlite_pending(r, processes) and r.get("x_bare_durable") is not None]


def verdict(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each DESIGN target against the median pair's `pending` row of one process (DESIGN's
    setting): value and met? The same for two API processes on the file, under `two_processes`."""
    out = _verdict(results, 1)
    two = _verdict(results, 2)
    if out and two:
        out["two_processes"] = two
    return out


def _verdict(results: list[dict[str, Any]], processes: int) -> dict[str, Any]:
    row = median_pair(results, processes)
    if row is None:
        return {}
    x, share, p99 = row.get("x_bare_durable"), row.get("share_of_ceiling"), row.get("p99_ms")
    errors = row["errors"] + row["warmup_errors"]
    return {
        "row": row["name"],
        "pair_ratios": pair_ratios(results, processes),
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
                  f"requests first; vs durable = against the bare durable endpoint on the same "
                  f"database; {m['nproc']} cores, {m['python']}")
    for name in ("target", "requests", "req/s", "p50 ms", "p99 ms", "errors", "vs durable",
                 "vs ceiling", "vs 1 process", "server CPU us/req", "client CPU"):
        table.add_column(name, justify="left" if name == "target" else "right")
    for r in doc["results"]:
        if r.get("skipped") or r.get("failed"):
            table.add_row(r["name"], f"skipped ({r['skipped']})"[:60] if r.get("skipped") else "FAILED")
            continue
        table.add_row(r["name"], f"{r['ok']:,}", f"{r['rps']:,.0f}", _num(r["p50_ms"]),
                      _num(r["p99_ms"]), str(r["errors"] + r["warmup_errors"]),
                      _num(r.get("x_bare_durable"), "x", 2), _pct(r.get("share_of_ceiling")),
                      _num(r.get("x_one_process"), "x", 2),
                      _num(r.get("server_cpu_us_per_req"), "", 0), _pct(r.get("client_cpu")))
    console.print(table)
    load = doc["loadavg_1m"]
    console.print(f"1-minute load average before/after: {load['before']}/{load['after']} "
                  f"on {m['nproc']} cores (other work skews the figures)")
    verdicts = [doc["verdict"], doc["verdict"].get("two_processes", {})]
    for v in verdicts:
        if v:
            _show_verdict(v, console)
    for r in doc["results"]:
        for problem in _problems(r):
            console.print(f"[yellow]{r['name']}[/yellow]: {problem}")


def _show_verdict(verdict: dict[str, Any], console: Console) -> None:
    console.print(f"DESIGN targets, {verdict['row']}:")
    for key, v in verdict.items():
        if key == "pair_ratios":
            console.print("  pending / bare durable, each pair: "
                          + ", ".join(f"{x:.2f}x" for x in v))
        elif key not in ("row", "two_processes"):
            console.print(f"  {key}: {_num(v['value'], '', 2)}  {'met' if v['met'] else 'NOT met'}")


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


def show_latency(doc: dict[str, Any], console: Console) -> None:
    """The latency table (steady phase, ladder, floor), the verdict and what went wrong."""
    m, c, r = doc["machine"], doc["config"], doc["results"]
    table = Table(title="latency: POST /signal/execute-via-token to the paper broker's "
                  "acknowledgement, open loop, ms from each request's scheduled start; "
                  f"{m['nproc']} cores, {m['python']}")
    for name in ("phase", "sent/s", "done/s", "requests", "ack p50", "ack p99", "p50", "p99",
                 "max", "errors", "executed", "srv p50", "srv p99", "CPU/req", "peak", "held"):
        table.add_column(name, justify="left" if name == "phase" else "right", no_wrap=True)
    steady = r.get("steady")
    if steady is not None:
        _latency_row(table, "steady", steady, "")
    for step in r.get("ladder", []):
        name = f"{step['offered_rps']:.0f}/s"
        if step.get("skipped"):
            table.add_row(name, "skipped (time budget)")
            continue
        _latency_row(table, name, step, "yes" if step["held"] else "NO")
    floor = r.get("floor", {})
    if "p50_ms" in floor:
        table.add_row("floor", "", "", f"{floor['calls']:,}",
                      _num(floor["p50_ms"], "", 2), _num(floor["p99_ms"], "", 2), "", "",
                      _num(floor["max_ms"], "", 0))
    console.print(table)
    console.print(f"steady: {c['steady']['count']:,} requests at {c['steady']['rate']:.0f}/s; "
                  f"then a ladder of rates, {c['step_s']:.0f} s each. done/s = answers per "
                  "second; ack = from the request's scheduled start to tradewire holding the paper "
                  "broker's acknowledgement (signal_timing.acked_at, same clock); p50/p99/max = to "
                  "the full answer (the acknowledgement recorded, the response read); srv = the "
                  "server's signal_timing received_at → acked_at; CPU/req = server "
                  "CPU ms per request; peak = most "
                  "requests in flight; floor = PaperBroker.submit alone, in process")
    load = doc["loadavg_1m"]
    console.print(f"1-minute load average before/after: {load['before']}/{load['after']} "
                  f"on {m['nproc']} cores (other work skews the figures)")
    held = r.get("highest_held_rps")
    console.print(f"highest rate held (p99 < {c['hold']['p99_ms_below']:.0f} ms, no errors, "
                  f"answers keeping pace): "
                  f"{f'{held:.0f} signals/s' if held else 'none of the ladder'}")
    if steady is not None and steady.get("p50_x_floor") is not None:
        console.print(
            f"steady vs floor: acknowledgement p50 {_num(steady['ack_p50_x_floor'], 'x', 1)}, "
            f"p99 {_num(steady['ack_p99_x_floor'], 'x', 1)}; answer p50 "
            f"{_num(steady['p50_x_floor'], 'x', 1)}, "
            f"p99 {_num(steady['p99_x_floor'], 'x', 1)}; server received → acked p50 "
            f"{_num(steady['server_p50_x_floor'], 'x', 1)}, p99 "
            f"{_num(steady['server_p99_x_floor'], 'x', 1)}")
    v = doc["verdict"]
    if v:
        console.print(f"DESIGN target at {v['rate']:.0f} signals/s "
                      f"(p50 < {doc['target']['p50_ms']} ms, p99 < {doc['target']['p99_ms']} ms):")
    for key, item in v.items():
        if key != "rate":
            console.print(f"  {key}: {_num(item['value'], '', 2)}  "
                          f"{'met' if item['met'] else 'NOT met'}")
    for problem in _latency_problems(r):
        console.print(f"[yellow]latency[/yellow]: {problem}")


def _latency_row(table: Table, name: str, row: dict[str, Any], held: str) -> None:
    s = row["server"]
    table.add_row(name, _num(row["offered_rps"], "", 0), _num(row["achieved_rps"], "", 0),
                  f"{row['ok'] + row['errors']:,}", _num(s.get("start_to_acked_p50_ms")),
                  _num(s.get("start_to_acked_p99_ms")), _num(row["p50_ms"]), _num(row["p99_ms"]),
                  _num(row["max_ms"], "", 0), str(row["errors"] + row["warmup_errors"]),
                  _pct(row["executed_share"]), _num(s["received_to_acked_p50_ms"]),
                  _num(s["received_to_acked_p99_ms"]), _num(row.get("server_cpu_ms_per_req")),
                  str(row["peak_in_flight"]), held)


def _latency_problems(r: dict[str, Any]) -> list[str]:
    out = [r["failed"]] if r.get("failed") else []
    if r.get("floor", {}).get("failed"):
        out.append(f"floor: {r['floor']['failed']}")
    statuses = r.get("floor", {}).get("statuses", {})
    if any(k != "filled" for k in statuses):
        out.append(f"floor: orders not filled: {statuses}")
    phases = [("steady", r["steady"])] if r.get("steady") else []
    phases += [(f"step {s['offered_rps']}/s", s) for s in r.get("ladder", [])
               if not s.get("skipped")]
    for name, p in phases:
        out += [f"{name}: {x}" for x in [*p["warmup_samples"], *p["error_samples"]]]
        if p["unsent"]:
            out.append(f"{name}: {p['unsent']} requests not answered or not sent")
        others = {k: n for k, n in p["answers"].items() if k != "executed"}
        if others:
            out.append(f"{name}: 2xx answers not executed: {others}")
        if p["server"]["acked"] != p["ok"]:
            out.append(f"{name}: {p['server']['acked']} acknowledgements in signal_timing "
                       f"for {p['ok']} answers")
        if p["start_lag_p99_ms"] is not None and p["start_lag_p99_ms"] > 5:
            out.append(f"{name}: the load generator started requests late (p99 "
                       f"{p['start_lag_p99_ms']:.1f} ms): the figures include its own lag")
    db = r.get("database", {})
    if db.get("signals_not_finished"):
        out.append(f"signals left unfinished after the run: {db['signals_not_finished']}")
    unfilled = {k: n for k, n in db.get("orders", {}).items() if k != "filled"}
    if unfilled:
        out.append(f"orders not filled after the run: {unfilled}")
    out += r.get("server_log_errors", [])
    return out


# ---- the summary: every figure beside its baseline ---------------------------------------------


def _item(part: str, figure: str, value: float | None, unit: str, baseline: str = "",
          base: float | None = None, better: str = "", target: str = "") -> dict[str, Any]:
    """One summary row; ratio = value / baseline value, both from this run."""
    ratio = value / base if value is not None and base else None
    return {"part": part, "figure": figure, "value": value, "unit": unit, "baseline": baseline,
            "baseline_value": base, "ratio": ratio, "better": better, "target": target}


def summary(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the final table, from whichever parts this run has."""
    rows: list[dict[str, Any]] = []
    if "ingest" in doc:
        rows += _ingest_summary(doc["ingest"]["results"])
    if "latency" in doc:
        rows += _latency_summary(doc["latency"]["results"])
    if "engine" in doc:
        rows += _engine_summary(doc["engine"])
    if "strategies" in doc:
        rows += _strategies_summary(doc["strategies"])
    return rows


def _by_name(results: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in results if r["name"] == name and "rps" in r), None)


def _sqlite_rows(results: list[dict[str, Any]], label: str, row: dict[str, Any],
                 ceiling: dict[str, Any] | None, targets: bool) -> list[dict[str, Any]]:
    """A SQLite `pending` row against the bare durable endpoint of its own pair and the
    ceiling: throughput twice and p99 (with DESIGN's bars when `targets`)."""
    base = next((r for r in results if r["kind"] == "durable" and "rps" in r
                 and r.get("pair", 1) == row.get("pair", 1)), None)
    bars = ("≥ 3x", "≥ 0.40x", "< 25 ms") if targets else ("", "", "")
    return [
        _item("ingest", label, row["rps"], "req/s", "bare durable, SQLite",
              base["rps"] if base else None, "higher", bars[0]),
        _item("ingest", label, row["rps"], "req/s", "ceiling",
              ceiling["rps"] if ceiling else None, "higher", bars[1]),
        _item("ingest", f"{label}, p99", row["p99_ms"], "ms", "bare durable, SQLite",
              base["p99_ms"] if base else None, "lower", bars[2]),
    ]


def _ingest_summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    ceiling = _by_name(results, "ceiling")
    durable_pg = _by_name(results, "bare durable, PostgreSQL")
    first = _by_name(results, "bare durable")
    pend = median_pair(results)
    if pend:
        n = len(pair_ratios(results))
        label = f"pending, SQLite (median of {n} pairs)" if n > 1 else "pending, SQLite"
        rows += _sqlite_rows(results, label, pend, ceiling, targets=True)
    two = median_pair(results, 2)
    if two:
        n = len(pair_ratios(results, 2))
        label = "pending, SQLite, 2 API processes" + (f" (median of {n} pairs)" if n > 1 else "")
        rows += _sqlite_rows(results, label, two, ceiling, targets=True)
    alone = _by_name(results, ALONE)
    if alone:
        rows += _sqlite_rows(results, "pending, SQLite, no writer process (pair 1)", alone,
                             ceiling, targets=False)
    immediate = _by_name(results, "tradewire immediate")
    if immediate:
        rows.append(_item("ingest", "immediate (paper fill), SQLite", immediate["rps"], "req/s",
                          "bare durable, SQLite", first["rps"] if first else None, "higher"))
    pg_dur = ("bare durable, PostgreSQL", durable_pg["rps"] if durable_pg else None)
    one = None
    for r in results:
        if r["kind"] != "tradewire" or r.get("database") != "postgresql" or "rps" not in r:
            continue
        n = r["processes"]
        label = f"pending, PostgreSQL, {n} API process{'es' if n > 1 else ''}"
        rows.append(_item("ingest", label, r["rps"], "req/s", *pg_dur, "higher"))
        if n == 1:
            one = r
        elif one is not None:
            rows.append(_item("ingest", label, r["rps"], "req/s", "tradewire, 1 API process",
                              one["rps"], "higher"))
    if one is not None:
        rows.append(_item("ingest", "pending, PostgreSQL, 1 process, p99", one["p99_ms"], "ms",
                          "bare durable, PostgreSQL", durable_pg["p99_ms"] if durable_pg else None,
                          "lower", "< 25 ms"))
    return rows


def _latency_summary(r: dict[str, Any]) -> list[dict[str, Any]]:
    steady, floor = r.get("steady"), r.get("floor", {})
    if steady is None:
        return []
    rate = f"{steady['offered_rps']:.0f}/s"
    server = steady["server"]
    return [
        _item("latency", f"request start → paper ack at {rate}, p50",
              server["start_to_acked_p50_ms"], "ms", "PaperBroker.submit alone",
              floor.get("p50_ms"), "lower", "< 2 ms"),
        _item("latency", f"request start → paper ack at {rate}, p99",
              server["start_to_acked_p99_ms"], "ms", "PaperBroker.submit alone",
              floor.get("p99_ms"), "lower", "< 10 ms"),
        _item("latency", f"request start → full answer at {rate}, p50", steady["p50_ms"], "ms",
              "PaperBroker.submit alone", floor.get("p50_ms"), "lower"),
        _item("latency", f"request start → full answer at {rate}, p99", steady["p99_ms"], "ms",
              "PaperBroker.submit alone", floor.get("p99_ms"), "lower"),
        _item("latency", f"server received → acked at {rate}, p50", server["received_to_acked_p50_ms"],
              "ms", "PaperBroker.submit alone", floor.get("p50_ms"), "lower"),
        _item("latency", "highest rate held", r.get("highest_held_rps"), "signals/s", better="higher",
              target="≥ 100/s"),
    ]


def _engine_summary(e: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    points = {p["armed"]: p for p in e.get("curve", [])}
    for armed in (100_000, 1_000_000):
        p = points.get(armed)
        if p:
            rows.append(_item("engine", f"quiet tick, {armed:,} armed", p["book"]["us_per_tick"], "µs",
                              f"plain scan, {armed:,} armed", p["scan"]["us_per_tick"], "lower",
                              "≤ 20 µs"))
    if 1_000 in points and 1_000_000 in points:
        rows.append(_item("engine", "quiet tick, 1,000,000 armed", points[1_000_000]["book"]["us_per_tick"],
                          "µs", "the book at 1,000 armed", points[1_000]["book"]["us_per_tick"], "lower",
                          "≈ 1x"))
    large = next((r for r in e.get("results", []) if r["armed"] == 100_000), None)
    if large:
        rows.append(_item("engine", "mixed tick with rules, 100,000 armed", large["mixed"]["us_per_tick"],
                          "µs", better="lower", target="≤ 20 µs"))
    return rows


def _strategies_summary(s: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    decide = s["evaluation"]["decide"]
    n = s["config"]["strategies"]
    base = s.get("baselines", {})
    ta, floor = base.get("ta_one_by_one"), base.get("talib_floor")
    route = s.get("route", {})
    if route.get("first_s") is not None:
        label = f"evaluate/bulk, {route['strategies']:,} stored strategies, bars in the DB"
        if ta:
            rows.append(_item("strategies", label, route["first_s"], "s",
                              f"ta + pandas, one by one (extrapolated from {ta['strategies']})",
                              ta["extrapolated_s"], "lower", "< 1 s"))
        rows.append(_item("strategies", label, route["first_s"], "s",
                          "bulk decide in process (no DB, no HTTP)", decide["shared_s"], "lower"))
        later = [r["seconds"] for r in route["runs"][1:]]
        if later:
            rows.append(_item("strategies", f"{label}, the same bar again", min(later), "s",
                              "the first call", route["first_s"], "lower"))
    if ta:
        rows.append(_item("strategies", f"bulk decide, {n:,} strategies", decide["shared_s"], "s",
                          f"ta + pandas, one by one (extrapolated from {ta['strategies']})",
                          ta["extrapolated_s"], "lower"))
    if floor:
        rows.append(_item("strategies", f"bulk decide, {n:,} strategies", decide["shared_s"], "s",
                          f"TA-Lib alone, {floor['indicators']:,} indicators", floor["best_s"],
                          "lower"))
    rows.append(_item("strategies", f"bulk decide, {n:,} strategies", decide["shared_s"], "s",
                      "tradewire, no shared cache", decide["one_by_one_s"], "lower"))
    points = [p for p in s.get("curve", []) if "seconds" in p]
    if points and points[-1]["strategies"] > n:
        last = points[-1]
        ten = next((p for p in points if p["strategies"] == n), None)
        rows.append(_item("strategies", f"bulk decide, {last['strategies']:,} strategies", last["seconds"],
                          "s", f"{n:,} strategies x {last['strategies'] // n}",
                          ten["seconds"] * last["strategies"] / n if ten else None, "lower"))
    versus = s.get("backtest_vs_backtesting")
    if versus:
        mine, theirs = versus["tradewire"], versus["backtesting"]
        rows.append(_item("strategies", f"backtest, quiet, {mine['bars']:,} bars", mine["best_s"],
                          "s", "backtesting package, same bars", theirs["seconds"], "lower",
                          "< 2 s" if mine["bars"] >= 1_000_000 else ""))
    busy = next((b for b in s.get("backtest", []) if b["strategy"] == "busy"), None)
    if busy:
        rows.append(_item("strategies", f"backtest, busy, {busy['bars']:,} bars", busy["best_s"],
                          "s", better="lower", target="< 2 s"))
    return rows


def show_summary(rows: list[dict[str, Any]], console: Console, title: str) -> None:
    """One table: each figure, its baseline from the same run, and value / baseline."""
    table = Table(title=title)
    for name in ("part", "figure", "value", "baseline (same run)", "baseline value", "value / baseline",
                 "better", "target"):
        table.add_column(name, justify="right" if "value" in name else "left")
    for r in rows:
        table.add_row(r["part"], r["figure"], _fig(r["value"], r["unit"]), r["baseline"] or "-",
                      _fig(r["baseline_value"], r["unit"]) if r["baseline"] else "",
                      _ratio(r["ratio"]),
                      r["better"], r["target"])
    console.print(table)


def _ratio(value: float | None) -> str:
    """2.50x, 0.034x; under 0.01 as a fraction (1/10,243), which reads better than 0.0001x."""
    if value is None:
        return "-"
    if value < 0.01:
        return f"1/{1 / value:,.0f}"
    return f"{value:,.3f}x" if value < 0.1 else f"{value:,.2f}x"


def _fig(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    digits = 0 if abs(value) >= 100 else 2 if abs(value) >= 1 else 4
    return f"{value:,.{digits}f} {unit}"


def markdown(doc: dict[str, Any]) -> str:
    """The summary as a Markdown table under a line naming the machine, for the README."""
    m, load = doc["machine"], doc["loadavg_1m"]
    lines = [f"`make bench`, {doc['started_at']}, {doc['duration_s']:.0f} s: {m['nproc']} cores, "
             f"{m['cpu']}, {m['memory']} memory, {m['os']}, {m['python']}; 1-minute load average "
             f"{load['before']} before, {load['after']} after.", "",
             "| part | figure | value | baseline (same run) | baseline value | value / baseline "
             "| better | target |", "|---|---|---:|---|---:|---:|---|---|"]
    for r in doc["summary"]:
        base = _fig(r["baseline_value"], r["unit"]) if r["baseline"] else ""
        lines.append(f"| {r['part']} | {r['figure']} | {_fig(r['value'], r['unit'])} | "
                     f"{r['baseline'] or '-'} | {base} | {_ratio(r['ratio'])} | {r['better']} | "
                     f"{r['target']} |")
    return "\n".join(lines) + "\n"
