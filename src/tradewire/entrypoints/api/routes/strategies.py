"""Strategies (CRUD) and their evaluation, the execution API of seed 003."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response

from tradewire.adapters.formats.signal_api import BadRequest, iso_z
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Scope
from tradewire.entrypoints.api import views
from tradewire.entrypoints.api.deps import authenticate, container, decode_json
from tradewire.entrypoints.api.errors import JSON
from tradewire.entrypoints.api.views import PageQuery
from tradewire.services import backtests, evaluation, strategy_store
from tradewire.services.evaluation import Evaluated

router = APIRouter(tags=["strategies"])
StrategyId = Annotated[str, Path(max_length=64)]


def _object(body: bytes) -> dict[str, Any]:
    data = decode_json(body)
    if not isinstance(data, dict):
        raise BadRequest([{"code": "invalid_type", "message": "Expected an object", "path": []}])
    return data


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "asset": row["asset"],
            "rules": row["definition"]["rules"],
            "execution_config": row["definition"]["execution_config"],
            "execution_state": row["execution_state"], "enabled": row["enabled"],
            "account_id": row["account_id"], "created_at": iso_z(row["created_at"]),
            "updated_at": iso_z(row["updated_at"])}


@router.post("/api/v1/strategies", summary="Create a strategy", status_code=201)
async def create(request: Request) -> Response:
    body = await request.body()
    return await run_in_threadpool(_create, container(request), request.headers, body)


def _create(c: Container, headers: Headers, body: bytes) -> Response:
    principal = authenticate(c, headers, Scope.SIGNALS_WRITE)
    row = strategy_store.create(_object(body), principal, c.deps)
    return JSON({"success": True, "strategy": _view(row)}, 201)


@router.get("/api/v1/strategies", summary="List strategies")
def listing(request: Request, page: PageQuery) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_READ)
    rows = strategy_store.listing(principal, c.deps, page)
    return JSON(views.paginated("strategies", [_view(r) for r in rows], page), 200)


@router.get("/api/v1/strategies/{strategy_id}", summary="A strategy")
def get(strategy_id: StrategyId, request: Request) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_READ)
    return JSON({"success": True,
                 "strategy": _view(evaluation.require(strategy_id, principal, c.deps))}, 200)


@router.put("/api/v1/strategies/{strategy_id}", summary="Change a strategy")
async def put(strategy_id: StrategyId, request: Request) -> Response:
    body = await request.body()
    c = container(request)

    def run() -> Response:
        principal = authenticate(c, request.headers, Scope.SIGNALS_WRITE)
        row = strategy_store.change(strategy_id, _object(body), principal, c.deps)
        return JSON({"success": True, "strategy": _view(row)}, 200)

    return await run_in_threadpool(run)


@router.delete("/api/v1/strategies/{strategy_id}", summary="Delete a strategy")
def delete(strategy_id: StrategyId, request: Request) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_WRITE)
    strategy_store.remove(strategy_id, principal, c.deps)
    return JSON({"success": True, "deleted": strategy_id}, 200)


def _result(r: Evaluated, elapsed: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"success": r.error is None, "strategy_id": r.strategy_id,
                           "strategy_name": r.strategy.name if r.strategy else None,
                           "asset": r.strategy.asset if r.strategy else None}
    if r.decision is not None:
        state = r.decision.state
        out.update(current_price=float(r.decision.current_price),
                   timestamp=evaluation.iso(r.decision.evaluated_at),
                   execution_state={"cash_balance": float(state.cash_balance),
                                    "account_value": float(state.account_value),
                                    "total_trades": state.total_trades,
                                    "num_open_positions": state.num_open_positions},
                   new_orders=[o.to_dict() for o in r.decision.new_orders])
    else:
        out["new_orders"] = []
    out["error"] = r.error
    if elapsed is not None:
        out["execution_time_seconds"] = round(elapsed, 3)
    return out


def _persist(data: dict[str, Any], default: bool) -> bool:
    value = data.get("persist", default)
    if not isinstance(value, bool):
        raise BadRequest([{"code": "invalid_type", "message": "persist must be a boolean",
                           "path": ["persist"]}])
    return value


@router.post("/api/v1/execution/evaluate/bulk", summary="Evaluate several stored strategies")
async def evaluate_bulk(request: Request) -> Response:
    body = await request.body()
    c = container(request)

    def run() -> Response:
        principal = authenticate(c, request.headers, Scope.SIGNALS_WRITE)
        data = _object(body)
        ids = data.get("strategy_ids")
        if not isinstance(ids, list) or not ids or len(ids) > 10_000 or not all(
                isinstance(i, str) and len(i) <= 64 for i in ids):
            raise BadRequest([{"code": "invalid_type", "path": ["strategy_ids"],
                               "message": "strategy_ids must be a list of 1 to 10,000 ids"}])
        (results, fetches), elapsed = evaluation.timed(
            evaluation.evaluate_stored, ids, principal, c.deps, persist=_persist(data, True))
        return JSON({"success": all(r.error is None for r in results),
                     "results": [_result(r) for r in results], "data_fetches": fetches,
                     "total_execution_time_seconds": round(elapsed, 3)}, 200)

    return await run_in_threadpool(run)


@router.post("/api/v1/execution/evaluate/{strategy_id}", summary="Evaluate a stored strategy")
async def evaluate_one(strategy_id: StrategyId, request: Request) -> Response:
    body = await request.body()
    c = container(request)

    def run() -> Response:
        principal = authenticate(c, request.headers, Scope.SIGNALS_WRITE)
        data = _object(body) if body.strip() else {}
        evaluation.require(strategy_id, principal, c.deps)
        (results, _), elapsed = evaluation.timed(
            evaluation.evaluate_stored, [strategy_id], principal, c.deps,
            persist=_persist(data, True))
        status = 200 if results[0].error is None else 400
        return JSON(_result(results[0], elapsed), status)

    return await run_in_threadpool(run)


@router.post("/api/v1/execution/evaluate", summary="Evaluate a strategy object (dry run)")
async def evaluate_inline(request: Request) -> Response:
    body = await request.body()
    c = container(request)

    def run() -> Response:
        authenticate(c, request.headers, Scope.SIGNALS_READ)
        data = _object(body)
        if _persist(data, False):
            raise BadRequest([{"code": "custom", "path": ["persist"], "message":
                               "an inline strategy is not stored; store it to persist"}])
        result, elapsed = evaluation.timed(evaluation.evaluate_inline, data.get("strategy"),
                                           c.deps)
        return JSON(_result(result, elapsed), 200)

    return await run_in_threadpool(run)


@router.post("/api/v1/backtests", summary="Backtest a strategy on stored bars")
async def create_backtest(request: Request) -> Response:
    body = await request.body()
    c = container(request)

    def run() -> Response:
        authenticate(c, request.headers, Scope.SIGNALS_READ)
        data = _object(body)
        costs = {}
        for key in ("fee_bps", "slippage_bps", "cash"):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise BadRequest([{"code": "invalid_type", "path": [key],
                                       "message": f"{key} must be a number"}])
                costs[key] = float(value)
        strategy, result = backtests.run(data.get("strategy"), c.deps,
                                         timeframe=data.get("timeframe"), **costs)
        return JSON({"success": True, "strategy_name": strategy.name, "asset": strategy.asset,
                     **backtests.summary(result)}, 200)

    return await run_in_threadpool(run)
