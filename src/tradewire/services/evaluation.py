"""Use cases of strategy evaluation: stored strategies, inline ones, and bulk runs that share
market data and indicator series."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tradewire.domain.accounts import ALL_SCOPES, Principal, Scope
from tradewire.domain.errors import NotFound, TradewireError
from tradewire.domain.signals import Signal
from tradewire.domain.values import Action, ExecuteMode, new_id
from tradewire.services import collector
from tradewire.services.deps import Deps
from tradewire.services.ingest import ingest_signal
from tradewire.services.ports import BarSource
from tradewire.strategies.bars import TIMEFRAMES, Bars
from tradewire.strategies.evaluator import Strategy, parse_strategy
from tradewire.strategies.execution import Decision, ExecutionState, decide
from tradewire.strategies.rules import IndicatorCache

log = logging.getLogger(__name__)
HISTORY = 400  # bars per (asset, timeframe): RSI needs about 300 to match the full history
MAX_RESAMPLED = 100_000  # finer bars read to build a coarser timeframe a source does not have
DEFAULT_CASH = Decimal(10_000)


@dataclass(frozen=True)
class Evaluated:
    strategy_id: str | None
    strategy: Strategy | None
    decision: Decision | None
    error: str | None = None
    account_id: str | None = None  # where its orders go, when linked to an account
    user_id: str | None = None
    # Whether saving it writes its new state and bar (not when evaluated again on the bar its
    # state was stored for).
    store: bool = True


class MarketData:
    """Bars per (asset, timeframe), fetched once per request and shared."""

    def __init__(self, source: BarSource) -> None:
        self._source = source
        self._sets: dict[tuple[str, str], Bars] = {}

    @property
    def fetches(self) -> int:
        return len(self._sets)

    def for_strategy(self, strategy: Strategy) -> dict[str, Bars]:
        """The bars of each timeframe the strategy reads; where a source has none of one, the
        bars of the coarsest finer timeframe it has (the rules resample them)."""
        out: dict[str, Bars] = {}
        for tf in strategy.timeframes:
            bars = self._get(strategy.asset, tf, HISTORY)
            if len(bars):
                out[tf] = bars
                continue
            for finer in _finer(tf):
                ratio = TIMEFRAMES[tf] // TIMEFRAMES[finer]
                bars = self._get(strategy.asset, finer, min(HISTORY * ratio, MAX_RESAMPLED))
                if len(bars):
                    out[finer] = bars
                    break
        return out

    def _get(self, asset: str, tf: str, limit: int) -> Bars:
        key = (asset, tf)
        if key not in self._sets:
            rows = []
            for symbol in spellings(asset):
                rows = self._source.bars(symbol, tf, limit)
                if rows:
                    break
            self._sets[key] = Bars.of(rows)
        return self._sets[key]


def _finer(tf: str) -> list[str]:
    """Timeframes that build `tf` by resampling, coarsest first."""
    seconds = TIMEFRAMES[tf]
    return sorted((k for k, v in TIMEFRAMES.items() if v < seconds and seconds % v == 0),
                  key=TIMEFRAMES.__getitem__, reverse=True)


def spellings(asset: str) -> list[str]:
    """`BTC-USD` is stored as `BTC/USD` (CCXT's spelling) or as given."""
    upper = asset.strip().upper()
    return list(dict.fromkeys([upper, upper.replace("-", "/"), upper.replace("/", "-")]))


def evaluate_inline(raw: Any, deps: Deps) -> Evaluated:
    """A strategy object evaluated once; nothing is written."""
    strategy = parse_strategy(raw)
    state = _state(raw.get("execution_state") if isinstance(raw, dict) else None)
    data = MarketData(deps.bars).for_strategy(strategy)
    return Evaluated(None, strategy, decide(strategy, state, data, IndicatorCache()))


def evaluate_stored(ids: Sequence[str], principal: Principal, deps: Deps, *,
                    persist: bool) -> tuple[list[Evaluated], int]:
    """Stored strategies, sharing bars and indicators; with `persist` their new state is saved."""
    with collector.paused():
        with deps.uow(write=False) as uow:
            found = uow.strategies.for_evaluation(ids)
        rows = [_visible(found.get(i), i, principal) for i in ids]
        market = MarketData(deps.bars)  # read after the transaction: sources may be remote
        out = _decide_all(rows, market, persist=persist)
        if persist:
            _save(out, deps)
    if persist:
        for r in out:
            if r.decision is not None and r.account_id is not None:
                _to_account(r, deps)
    return out, market.fetches


def _decide_all(rows: list[Mapping[str, Any] | str], market: MarketData, *,
                persist: bool) -> list[Evaluated]:
    """Each row decided on its latest bar, the indicators shared through one cache; an id
    that was not found (or not visible) answers so."""
    cache = IndicatorCache()
    out: list[Evaluated] = []
    for row in rows:
        if isinstance(row, str):
            out.append(Evaluated(row, None, None, "strategy not found"))
            continue
        try:
            strategy = parse_strategy(row["definition"])
            state = _state(row["execution_state"])
            decision = decide(strategy, state, market.for_strategy(strategy), cache,
                              make_id=lambda: str(uuid.uuid4()))
            again = persist and row["last_bar_ts"] == int(decision.evaluated_at.timestamp())
            if again:
                # Once per bar: a second evaluation of the same bar changes nothing.
                decision = replace(decision, new_orders=[], state=state,
                                   notes=["already evaluated on this bar"])
            out.append(Evaluated(row["id"], strategy, decision, account_id=row["account_id"],
                                 user_id=row["user_id"], store=not again))
        except TradewireError as exc:
            out.append(Evaluated(row["id"], None, None, exc.message))
    return out


def _visible(row: Mapping[str, Any] | None, strategy_id: str,
             principal: Principal) -> Mapping[str, Any] | str:
    """The stored row if the principal may see it, else the id it asked for."""
    if row is None or not (principal.is_admin or row["user_id"] == principal.user_id):
        return strategy_id
    return row


def _state(raw: Any) -> ExecutionState:
    return ExecutionState.from_dict(raw) if raw else ExecutionState.starting(DEFAULT_CASH)


def _save(results: list[Evaluated], deps: Deps) -> None:
    """Every new state and bar in one transaction, strategies that came out with the same
    state on the same bar together (`save_evaluations`); a strategy evaluated again on the bar
    its state was stored for is left as it is."""
    groups: dict[tuple[ExecutionState, int], list[str]] = {}
    for r in results:
        if r.decision is not None and r.strategy_id is not None and r.store:
            key = (r.decision.state, int(r.decision.evaluated_at.timestamp()))
            groups.setdefault(key, []).append(r.strategy_id)
    if groups:
        with deps.uow() as uow:
            uow.strategies.save_evaluations(
                [(ids, state.to_dict(), bar) for (state, bar), ids in groups.items()],
                deps.clock.now())
            uow.commit()


def _to_account(r: Evaluated, deps: Deps) -> None:
    """A linked strategy's filled decisions become signals on its account (each once: the
    sourceId is the decision's id), sent through the ordinary path to the broker."""
    assert r.decision is not None and r.strategy is not None and r.account_id is not None
    owner = Principal(user_id=r.user_id or "", is_admin=False, via="strategy",
                      scopes=frozenset({Scope.SIGNALS_WRITE}),
                      account_ids=frozenset({r.account_id}))
    symbol = r.strategy.asset.strip().upper().replace("-", "/")
    for order in r.decision.new_orders:
        if str(order.status) != "filled":
            continue  # resting stops and targets: the strategy reports them when they fill
        action = Action.OPEN_LONG if str(order.side) == "enter_long" else Action.CLOSE_LONG
        signal = Signal(id=new_id(), account_id=r.account_id, symbol=symbol, action=action,
                        quantity=order.position_size, execute_mode=ExecuteMode.IMMEDIATE,
                        created_at=deps.clock.now(), strategy_id=r.strategy_id,
                        source_id=f"strategy:{r.strategy_id}:{order.id}", route="strategy",
                        metadata={"strategy_order": order.to_dict()})
        try:
            ingest_signal(signal, owner, deps)
        except TradewireError:
            log.exception("strategy %s could not send %s to its account", r.strategy_id, order.id)


def require(strategy_id: str, principal: Principal, deps: Deps) -> dict[str, Any]:
    with deps.uow(write=False) as uow:
        row = _visible(uow.strategies.get(strategy_id), strategy_id, principal)
    if isinstance(row, str):
        raise NotFound(f"strategy {strategy_id} not found", code="STRATEGY_NOT_FOUND")
    return dict(row)


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def iso(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat()


def auto_evaluate(deps: Deps) -> int:
    """Evaluate every enabled strategy on its latest closed bar (once per bar: a strategy
    already evaluated on that bar is left as it is). Returns how many orders they made."""
    with deps.uow(write=False) as uow:
        ids = [row["id"] for row in uow.strategies.enabled()]
    if not ids:
        return 0
    scheduler = Principal(user_id="scheduler", is_admin=True, scopes=ALL_SCOPES, via="worker")
    results, _ = evaluate_stored(ids, scheduler, deps, persist=True)
    return sum(len(r.decision.new_orders) for r in results if r.decision is not None)
