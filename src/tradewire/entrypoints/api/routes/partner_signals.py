"""The partner signal API of seed 001: /v1/signal, /v2/signal, and calls on a signal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response

from tradewire.adapters.formats import partner_api
from tradewire.adapters.formats.partner_api import PartnerInputError
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.bootstrap import Container
from tradewire.domain.channels import Channel
from tradewire.domain.errors import NotFound, Rejected, ServiceDisabled
from tradewire.domain.exit_plan import Trailing
from tradewire.entrypoints.api.deps import container, decode_json, ensure_signals_enabled
from tradewire.entrypoints.api.dialect import dialect_route
from tradewire.entrypoints.api.errors import JSON, ApiError
from tradewire.services import capabilities, channels, partner_signals

log = logging.getLogger("tradewire.api.partner")


def render(exc: Exception) -> Response | None:
    """This API's envelope for every refusal: `{result: {type}, payload}`."""
    if isinstance(exc, PartnerInputError):
        return JSON(partner_api.envelope(exc.kind, {"errors": exc.details}), 400)
    if isinstance(exc, BadRequest):
        return JSON(partner_api.envelope(partner_api.CONTENT, {"errors": exc.details}), 400)
    if isinstance(exc, ApiError) and exc.status in (401, 403):
        return JSON(partner_api.envelope(partner_api.UNAUTHORIZED, {"message": exc.body["error"]}),
                    403)
    if isinstance(exc, NotFound):
        return JSON(partner_api.envelope(partner_api.CONTENT, {"message": exc.message}), 400)
    if isinstance(exc, ServiceDisabled):
        return JSON(partner_api.envelope(partner_api.CRITICAL, {"message": exc.message}), 503)
    if isinstance(exc, RequestValidationError):  # a path or query parameter out of bounds
        errors = [{"code": "invalid", "message": str(e.get("msg", "invalid")),
                   "path": [str(part) for part in e.get("loc", ())]} for e in exc.errors()]
        return JSON(partner_api.envelope(partner_api.CONTENT, {"errors": errors}), 400)
    log.exception("partner API failure", exc_info=exc)
    return JSON(partner_api.envelope(partner_api.CRITICAL, {"message": "internal error"}), 500)


router = APIRouter(tags=["partner signals"], route_class=dialect_route(render))
ParentId = Annotated[str, Path(max_length=64)]


def authenticate_channel(c: Container, headers: Headers, body: object = None) -> Channel:
    """The channel from `anny-api-key` + `anny-api-secret`, or a partner's Bearer token."""
    key, secret = headers.get("anny-api-key"), headers.get("anny-api-secret")
    if key and secret:
        channel = channels.channel_for_keys(key, secret, c.deps, c.secrets)
        if channel is not None:
            return channel
    bearer = headers.get("authorization", "")
    if bearer[:7].lower() == "bearer ":
        principal = capabilities.principal_for_partner(bearer[7:].strip(), c.deps, c.secrets)
        if principal is not None and principal.key_id is not None:
            wanted = body.get("channel_id") if isinstance(body, dict) else None
            channel = channels.channel_of_partner(principal.key_id, wanted, c.deps)
            if channel is not None:
                return channel
    raise ApiError(403, "Invalid API credentials", "UNAUTHORIZED")


def _create(c: Container, headers: Headers, body: bytes, version: str) -> Response:
    ensure_signals_enabled(c)
    channel = authenticate_channel(c, headers)
    spec = partner_api.parse(decode_json(body), version)
    created = partner_signals.create(spec, channel, c.deps)
    if created.refused is not None:
        return JSON(partner_api.performed(created.parent_id, success=False,
                                          reason=created.refused), 200)
    return JSON(partner_api.performed(created.parent_id,
                                      children=[asdict(r) for r in created.children]), 200)


@router.post("/v1/signal", summary="Create a partner signal (V1)")
async def create_v1(request: Request) -> Response:
    body = await request.body()
    return await run_in_threadpool(_create, container(request), request.headers, body, "v1")


@router.post("/v2/signal", summary="Create a partner signal (V2: leverage, margin, split entry)")
async def create_v2(request: Request) -> Response:
    body = await request.body()
    return await run_in_threadpool(_create, container(request), request.headers, body, "v2")


@router.delete("/v1/signal/{parent_signal_id}/cancel",
               summary="Cancel a signal: open orders cancelled, positions closed at market")
def cancel(parent_signal_id: ParentId, request: Request) -> Response:
    c = container(request)
    channel = authenticate_channel(c, request.headers)
    closed = partner_signals.cancel(parent_signal_id, channel, c.deps)
    return JSON(partner_api.performed(parent_signal_id, children=[asdict(r) for r in closed]),
                200)


def _amend(c: Container, headers: Headers, body: bytes, parent_id: str,
           make: Callable[[Any], partner_signals.PlanChange], model: type[Any]) -> Response:
    ensure_signals_enabled(c)
    data = decode_json(body)
    channel = authenticate_channel(c, headers, data)
    call = partner_api.parse_call(data, model)
    try:
        armed = partner_signals.amend(parent_id, channel, make(call), c.deps, body=data)
    except Rejected as refused:
        return JSON(partner_api.performed(parent_id, success=False, reason=refused.message), 200)
    return JSON(partner_api.performed(parent_id, plans_changed=armed), 200)


def _call(path: str, summary: str, model: type[Any],
          make: Callable[[Any], partner_signals.PlanChange], method: str = "POST") -> None:
    async def handler(parent_signal_id: ParentId, request: Request) -> Response:
        body = await request.body()
        return await run_in_threadpool(_amend, container(request), request.headers, body,
                                       parent_signal_id, make, model)

    router.add_api_route(path, handler, methods=[method], summary=summary)


_call("/v1/signal/{parent_signal_id}/call/takeprofit", "Add a take-profit target",
      partner_api.TakeProfitCall,
      lambda b: partner_signals.add_target(b.price, b.share / 100 if b.share else None))
_call("/v1/signal/{parent_signal_id}/call/trailingstop", "Add (or replace) a trailing stop",
      partner_api.TrailingCall,
      lambda b: partner_signals.set_trailing(Trailing(percent=b.percent, amount=b.amount,
                                                      activation_price=b.activation_price)))
_call("/v1/signal/{parent_signal_id}/call/rebuy", "Add a rebuy zone", partner_api.LevelCall,
      lambda b: partner_signals.add_level(b.price, b.invest))
_call("/v1/signal/{parent_signal_id}/call/dca", "Add a DCA level", partner_api.LevelCall,
      lambda b: partner_signals.add_level(b.price, b.invest))
_call("/v1/signal/{parent_signal_id}/updateprice", "Update stop and target prices",
      partner_api.UpdatePriceCall,
      lambda b: partner_signals.update_prices(b.stop_loss, b.targets()), method="PUT")
