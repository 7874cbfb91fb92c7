"""Prices in: POST /api/v1/market/prices feeds the paper broker and the exit engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response

from tradewire.adapters.formats.errors import details_of
from tradewire.adapters.formats.fields import Moment, Price
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Scope
from tradewire.entrypoints.api.deps import authenticate, container, decode_json
from tradewire.entrypoints.api.errors import JSON
from tradewire.services.ports import Tick
from tradewire.services.ticks import apply_ticks

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
