"""The engine benchmark: price ticks through the trigger book and the exit-plan rules, in-process.

For each book size (100 and 100,000 armed plans over 1,000 symbols) the same seeded ticks go
through `TriggerBook.on_tick`; every fired key goes through `exit_plan.on_price` and is armed
again with its new `levels` (a closed plan is replaced by a fresh one under the same key, so
the book keeps its size). Most ticks stay within 0.5% of the symbol's base price, where no
level waits; a few jump 5% and fire whole groups of plans. A tick should cost about the same
at either size: the ratio of the two rates says how far it does.

Then the curve (`curve`): quiet ticks (they cross nothing) through `TriggerBook.on_tick` with
100, 1,000, 10,000, 100,000 and 1,000,000 exits armed, beside the baseline, a plain scan: per
tick, a loop over every armed exit of every symbol comparing the tick's symbol and price with
its levels (what a first version without an index does). The book grows by the same keys from
one size to the next; their levels come from a pool of real plans (`CURVE_POOL` per symbol,
`levels` of a freshly armed plan), since making a million plans would take a minute. Each size
gets at most `CURVE_TICKS` ticks and `CURVE_TICK_S` seconds per method; the scan at a million
exits gets only a few ticks.

`python -m bench.engine` runs it alone and prints the figures; no server, no database.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tradewire.domain.exit_plan import (
    AddLevel,
    ExitKind,
    ExitPlan,
    PlanState,
    Target,
    Trailing,
    arm,
    levels,
    on_fill_of_add,
    on_price,
)
from tradewire.domain.trigger_book import TriggerBook
from tradewire.domain.values import Side

SEED = 20260207
SYMBOLS = 1000
SIZES = (100, 100_000)
TICKS = 200_000
SPIKE_SHARE = 0.002  # ticks that jump 5% up or down; the others stay within 0.5% of the base
BUDGET_S = 16.0  # ticks of the two sizes with rules; each size gets an equal share
CENT = Decimal("0.01")
CURVE = (100, 1_000, 10_000, 100_000, 1_000_000)
CURVE_POOL = 32  # real plans per symbol whose levels the curve's keys take in turn
CURVE_TICKS = 50_000  # at most, per size and method
CURVE_TICK_S = 1.0  # at most, per size and method (at least MIN_SCAN_TICKS for the scan)
MIN_SCAN_TICKS = 3
Levels = tuple[Decimal | None, Decimal | None]


@dataclass(slots=True)
class _Held:
    symbol: str
    plan: ExitPlan
    state: PlanState


class _Engine:
    """What the service will do with ticks, minus orders: book, rules, re-arm."""

    def __init__(self, rng: random.Random, bases: list[Decimal]) -> None:
        self.book = TriggerBook()
        self.held: dict[str, _Held] = {}
        self.rng, self.bases = rng, bases
        self.actions = 0

    def open(self, key: str, symbol_index: int) -> None:
        plan, entry = _plan(self.rng, self.bases[symbol_index])
        held = _Held(f"S{symbol_index:04d}", plan, arm(plan, Decimal(10), entry))
        self.held[key] = held
        self.book.arm(key, held.symbol, *levels(plan, held.state))

    def tick(self, symbol: str, price: Decimal) -> int:
        keys = self.book.on_tick(symbol, price)
        for key in keys:
            held = self.held[key]
            actions, state = on_price(held.plan, held.state, price)
            self.actions += len(actions)
            for action in actions:
                if action.kind is ExitKind.ADD:  # as if it filled at its level at once
                    state = on_fill_of_add(state, action.qty, action.reference_price)
            if state.closed:
                self.open(key, int(symbol[1:]))
                continue
            held.state = state
            self.book.arm(key, symbol, *levels(held.plan, state))
        return len(keys)


def _plan(rng: random.Random, base: Decimal) -> tuple[ExitPlan, Decimal]:
    """A plan entered within 0.5% of the base, every level at least 2% from the entry."""
    side = rng.choice((Side.BUY, Side.SELL))
    entry = _pct(base, rng.uniform(-0.5, 0.5))
    sign = side.sign
    trailing = None
    if rng.random() < 1 / 3:
        trailing = Trailing(percent=Decimal("1.5"), activation_price=_pct(entry, sign * 4))
    adds = (AddLevel(_pct(entry, -sign * 2.5), Decimal(5)),) if rng.random() < 1 / 3 else ()
    plan = ExitPlan(side=side, targets=(Target(_pct(entry, sign * 3), Decimal("0.5")),
                                        Target(_pct(entry, sign * 6), Decimal("0.5"))),
                    stop_loss=_pct(entry, -sign * rng.uniform(3, 5)), trailing=trailing, adds=adds,
                    break_even_after_first=rng.random() < 0.5)
    return plan, entry


def _pct(price: Decimal, percent: float) -> Decimal:
    return (price * (1 + Decimal(str(round(percent, 4))) / 100)).quantize(CENT)


def _ticks(rng: random.Random, bases: list[Decimal], count: int,
           spike_share: float) -> list[tuple[str, Decimal]]:
    ticks = []
    for _ in range(count):
        index = rng.randrange(len(bases))
        move = rng.choice((-5, 5)) if rng.random() < spike_share else rng.uniform(-0.5, 0.5)
        ticks.append((f"S{index:04d}", _pct(bases[index], move)))
    return ticks


@dataclass(frozen=True, slots=True)
class _Feed:
    """The seeded market, the same for every size."""

    bases: list[Decimal]
    quiet: list[tuple[str, Decimal]]
    mixed: list[tuple[str, Decimal]]


def feed(seed: int = SEED) -> _Feed:
    rng = random.Random(f"{seed}:bases")
    bases = [Decimal(rng.randint(100, 100_000)) * CENT for _ in range(SYMBOLS)]
    return _Feed(bases, _ticks(random.Random(f"{seed}:quiet"), bases, TICKS, 0.0),
                 _ticks(random.Random(f"{seed}:mixed"), bases, TICKS, SPIKE_SHARE))


def measure(armed: int, market: _Feed, deadline_s: float, seed: int = SEED) -> dict[str, Any]:
    """Arm `armed` plans over the symbols, then time the quiet ticks and the mixed ones."""
    engine = _Engine(random.Random(f"{seed}:plans:{armed}"), market.bases)
    t0 = time.perf_counter()
    for i in range(armed):
        engine.open(f"p{i}", i % SYMBOLS)
    row: dict[str, Any] = {"armed": armed, "setup_s": round(time.perf_counter() - t0, 3)}
    # Quiet first: on a fresh book every level is at least 1% beyond the quiet band.
    row["quiet"] = _phase(engine, market.quiet, deadline_s / 2)
    row["mixed"] = _phase(engine, market.mixed, deadline_s / 2)
    row["armed_after"] = len(engine.book)
    return row


def _phase(engine: _Engine, ticks: list[tuple[str, Decimal]], deadline_s: float) -> dict[str, Any]:
    done = fired = 0
    actions_before = engine.actions
    t0 = time.perf_counter()
    end = t0 + deadline_s
    for symbol, price in ticks:
        fired += engine.tick(symbol, price)
        done += 1
        if done % 4096 == 0 and time.perf_counter() > end:
            break
    elapsed = time.perf_counter() - t0
    return {"ticks": done, "seconds": round(elapsed, 3), "ticks_per_s": round(done / elapsed),
            "us_per_tick": round(elapsed / done * 1e6, 2), "fired": fired,
            "actions": engine.actions - actions_before}


def config() -> dict[str, Any]:
    return {"seed": SEED, "symbols": SYMBOLS, "sizes": list(SIZES), "ticks_per_phase": TICKS,
            "spike_share": SPIKE_SHARE, "budget_s": BUDGET_S, "curve": list(CURVE),
            "curve_pool_per_symbol": CURVE_POOL, "curve_max_ticks": CURVE_TICKS,
            "curve_max_s_per_method": CURVE_TICK_S}


# ---- the curve: TriggerBook against a plain scan -----------------------------------------------


def level_pool(market: _Feed, seed: int = SEED) -> list[list[Levels]]:
    """CURVE_POOL (below, above) pairs per symbol, each `levels` of a freshly armed real plan."""
    rng = random.Random(f"{seed}:pool")
    pool = []
    for base in market.bases:
        pairs = []
        for _ in range(CURVE_POOL):
            plan, entry = _plan(rng, base)
            pairs.append(levels(plan, arm(plan, Decimal(10), entry)))
        pool.append(pairs)
    return pool


def scan(armed: list[tuple[str, str, Decimal | None, Decimal | None]], symbol: str,
         price: Decimal) -> list[str]:
    """The baseline: every armed exit of every symbol looked at, its levels compared."""
    fired = []
    for key, sym, below, above in armed:
        if sym == symbol and ((below is not None and price <= below)
                              or (above is not None and price >= above)):
            fired.append(key)
    return fired


def curve(market: _Feed, sizes: tuple[int, ...] = CURVE,
          report: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Per size: µs per quiet tick through the book and through the plain scan."""
    pool = level_pool(market)
    book, armed = TriggerBook(), []
    rows = []
    for size in sizes:
        t0 = time.perf_counter()
        gc.disable()  # a million small objects would trigger full collections over and over
        try:
            for i in range(len(armed), size):
                symbol_index = i % SYMBOLS
                below, above = pool[symbol_index][(i // SYMBOLS) % CURVE_POOL]
                key, symbol = f"k{i}", f"S{symbol_index:04d}"
                book.arm(key, symbol, below, above)
                armed.append((key, symbol, below, above))
        finally:
            gc.enable()
        arm_s = time.perf_counter() - t0
        row = {"armed": size, "arm_s": round(arm_s, 3),
               "book": _curve_phase(lambda sym, price: book.on_tick(sym, price), market.quiet, 1),
               "scan": _curve_phase(lambda sym, price: scan(armed, sym, price), market.quiet,
                                    MIN_SCAN_TICKS)}
        row["scan_x_book"] = round(row["scan"]["us_per_tick"] / row["book"]["us_per_tick"], 1)
        report(f"{size:>9,} armed: book {row['book']['us_per_tick']:>8} us/tick "
               f"({row['book']['ticks']:,} ticks), plain scan {row['scan']['us_per_tick']:>10,} us/tick "
               f"({row['scan']['ticks']:,} ticks), scan / book {row['scan_x_book']:,}x; "
               f"armed in {arm_s:.1f} s")
        rows.append(row)
    return rows


def _curve_phase(tick: Callable[[str, Decimal], list[str]], ticks: list[tuple[str, Decimal]],
                 at_least: int) -> dict[str, Any]:
    """Quiet ticks until CURVE_TICKS or CURVE_TICK_S (but at least `at_least` ticks)."""
    done = fired = 0
    t0 = time.perf_counter()
    end = t0 + CURVE_TICK_S
    for symbol, price in ticks[:CURVE_TICKS]:
        fired += len(tick(symbol, price))
        done += 1
        if done >= at_least and (done % 256 == 0 or at_least > 1) and time.perf_counter() > end:
            break
    elapsed = time.perf_counter() - t0
    if fired:
        raise RuntimeError(f"{fired} keys fired on quiet ticks: the curve measures no firing")
    return {"ticks": done, "seconds": round(elapsed, 3),
            "us_per_tick": round(elapsed / done * 1e6, 3)}


def run(report: Callable[[str], None] = print) -> dict[str, Any]:
    """Each size in turn; `report` hears a line per size and phase as they finish."""
    t0 = time.perf_counter()
    market = feed()
    report(f"{2 * TICKS:,} seeded ticks made in {time.perf_counter() - t0:.1f} s")
    results = []
    for armed in SIZES:
        # Half the budget for ticks; set-up and tick generation take the rest.
        row = measure(armed, market, BUDGET_S / len(SIZES) / 2)
        for phase in ("quiet", "mixed"):
            r = row[phase]
            report(f"{armed:>7,} armed, {phase}: {r['ticks_per_s']:>9,} ticks/s ({r['us_per_tick']} us/tick, "
                   f"{r['ticks']:,} ticks, {r['fired']:,} keys fired, {r['actions']:,} actions)")
        report(f"{armed:>7,} armed: set-up {row['setup_s']} s")
        results.append(row)
    small, large = results[0], results[-1]
    ratios = {phase: round(large[phase]["ticks_per_s"] / small[phase]["ticks_per_s"], 3)
              for phase in ("quiet", "mixed")}
    report(f"curve: quiet ticks through the book and a plain scan at "
           f"{', '.join(f'{s:,}' for s in CURVE)} armed exits")
    points = curve(market, report=report)
    return {"benchmark": "engine", "config": config(), "results": results,
            "ratio_large_to_small": ratios, "curve": points,
            # From 1,000 armed on every symbol has exits armed; at 100, 90% of ticks find none.
            "book_cost_largest_over_1000": round(
                points[-1]["book"]["us_per_tick"] / points[1]["book"]["us_per_tick"], 2)}


def main() -> None:
    print(f"engine benchmark: {SYMBOLS:,} symbols, book sizes {', '.join(f'{s:,}' for s in SIZES)}; "
          f"quiet ticks (no level crossed), then mixed ({SPIKE_SHARE:.1%} of ticks jump 5%)")
    out = run()
    for phase, ratio in out["ratio_large_to_small"].items():
        print(f"{phase}: ticks/s at {SIZES[-1]:,} armed / at {SIZES[0]:,} armed = {ratio}")


if __name__ == "__main__":
    main()
