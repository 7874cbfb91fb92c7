"""Prices in: POST /api/v1/market/prices feeds the paper broker and the exit engine."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response

from tradewire.adapters.formats import bars as bars_format
from tradewire.adapters.formats.errors import detail, details_of
from tradewire.adapters.formats.fields import Moment, Price
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Scope
from tradewire.domain.errors import Rejected
from tradewire.entrypoints.api.deps import authenticate, container, decode_json
from tradewire.entrypoints.api.errors import JSON
from tradewire.services.market_data import import_bars
from tradewire.services.ports import Tick
from tradewire.services.ticks import apply_ticks

SYMBOL = re.compile(r"^[A-Za-z0-9./:_-]{1,20}$")

router = APIRouter(prefix="/api/v1/market", tags=["market data"])


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9./:_-]+$")
    price: Price
    ts: Moment | None = None


_BATCH = TypeAdapter(Annotated[list[PriceIn], Field(min_length=1, max_length=10_000)])
_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"oneOf": [PriceIn.model_json_schema(), {"type": "array",
                                                        "items": PriceIn.model_json_schema()}]},
    "examples": {"one": {"value": {"symbol": "AAPL", "price": 187.5}},
                 "batch": {"value": [{"symbol": "AAPL", "price": 187.5,
                                      "ts": "2026-02-07T14:30:00Z"},
                                     {"symbol": "BTC/USDT", "price": 64000}]}}}}}}


@router.post("/prices", summary="Record prices (one or a batch)", openapi_extra=_BODY)
async def post_prices(request: Request) -> Response:
    body = await request.body()
    return await run_in_threadpool(_post, container(request), request.headers, body)


def _post(c: Container, headers: Headers, body: bytes) -> Response:
    authenticate(c, headers, Scope.MARKET_WRITE)
    data: Any = decode_json(body)
    try:
        prices = _BATCH.validate_python(data if isinstance(data, list) else [data])
    except ValidationError as exc:
        raise BadRequest(details_of(exc)) from None
    now = c.deps.clock.now()
    ticks = [Tick(symbol=p.symbol.upper(), price=p.price, ts=_aware(p.ts) or now) for p in prices]
    updated = apply_ticks(ticks, c.deps)
    return JSON({"success": True, "accepted": len(ticks), "ordersUpdated": updated}, 200)


def _aware(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


_BARS_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"example": {"symbol": "AAPL", "timeframe": "1d", "bars": [
        {"timestamp": "2026-02-06", "open": 190, "high": 192, "low": 189, "close": 191.5,
         "volume": 1_000_000}]}},
    "text/csv": {"example": "timestamp,open,high,low,close,volume\n"
                            "2026-02-06,190,192,189,191.5,1000000\n"}}}}


@router.post("/bars", summary="Upload bars (JSON, or CSV with ?symbol=&timeframe=)",
             openapi_extra=_BARS_BODY)
async def post_bars(request: Request, symbol: str | None = None,
                    timeframe: str | None = None) -> Response:
    body = await request.body()
    return await run_in_threadpool(_bars, container(request), request.headers, body, symbol,
                                   timeframe)


def _bars(c: Container, headers: Headers, body: bytes, symbol: str | None,
          tf: str | None) -> Response:
    authenticate(c, headers, Scope.MARKET_WRITE)
    if "csv" in headers.get("content-type", ""):
        try:
            rows = bars_format.parse_csv(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest([detail("invalid_string", "CSV must be UTF-8")]) from None
    else:
        data: Any = decode_json(body)
        if not isinstance(data, dict):
            raise BadRequest([detail("invalid_type", "Expected an object with bars")])
        symbol, tf = data.get("symbol", symbol), data.get("timeframe", tf)
        rows = bars_format.parse_json(data.get("bars"))
    if not isinstance(symbol, str) or not SYMBOL.match(symbol):
        raise BadRequest([detail("custom", "symbol is required (1-20 characters)", ["symbol"])])
    if not isinstance(tf, str):
        raise BadRequest([detail("custom", "timeframe is required", ["timeframe"])])
    try:
        count = import_bars(symbol, tf, rows, c.deps)
    except Rejected as exc:
        raise BadRequest([detail(exc.code, exc.message, ["timeframe"])]) from None
    return JSON({"success": True, "symbol": symbol.upper(), "imported": count}, 200)
