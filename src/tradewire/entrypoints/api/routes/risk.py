"""Risk limits per account, and the kill switches. Reading needs accounts:read; changing a
limit or a switch needs a signed-in user (JWT): an API key that sends signals cannot lift the
limits that guard it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tradewire.adapters.formats.errors import detail
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.domain.accounts import Scope
from tradewire.domain.errors import Rejected
from tradewire.entrypoints.api.deps import authenticate, container, decode_json
from tradewire.entrypoints.api.errors import JSON, ApiError
from tradewire.services import queries, risk

router = APIRouter(prefix="/api/v1", tags=["risk"])

_LIMITS_EXAMPLE = {"max_position_qty": 100, "max_position_notional": 25000,
                   "max_open_positions": 5, "max_orders_per_minute": 30,
                   "daily_loss_limit": 1000, "blocked_symbols": ["GME"],
                   "trading_windows": ["09:35-15:55"], "reduce_only": False, "halted": False}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "additionalProperties": True}, "example": _LIMITS_EXAMPLE}}}}
_HALT = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "required": ["halted"],
               "properties": {"halted": {"type": "boolean"}}},
    "example": {"halted": True}}}}}


@router.get("/accounts/{accountId}/risk", summary="An account's risk limits")
def get_limits(request: Request, accountId: str) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.ACCOUNTS_READ)
    account = queries.visible_account(principal, c.deps, accountId)
    return JSON({"accountId": account.id, "limits": risk.limits_of(account.id, c.deps).to_dict()},
                200)


@router.patch("/accounts/{accountId}/risk", openapi_extra=_BODY,
              summary="Change some of an account's risk limits (null lifts one)")
async def patch_limits(request: Request, accountId: str) -> Response:
    body = await request.body()
    c = container(request)
    principal = authenticate(c, request.headers, None, jwt_only=True)
    changes = decode_json(body)
    if not isinstance(changes, dict) or not changes:
        raise BadRequest([detail("invalid_type", "A JSON object of limits is required")])

    def apply() -> dict[str, Any]:
        account = queries.visible_account(principal, c.deps, accountId)
        try:
            return risk.set_limits(account.id, changes, c.deps).to_dict()
        except Rejected as exc:
            if exc.code == "INVALID_RISK_LIMITS":
                raise BadRequest([detail("invalid_value", exc.message)]) from None
            raise

    limits = await run_in_threadpool(apply)
    return JSON({"accountId": accountId, "limits": limits}, 200)


@router.get("/trading", summary="Whether trading is halted for every account")
def get_halt(request: Request) -> Response:
    c = container(request)
    authenticate(c, request.headers, Scope.ACCOUNTS_READ)
    return JSON({"halted": risk.global_halt(c.deps)}, 200)


@router.put("/trading", openapi_extra=_HALT,
            summary="The global kill switch: halt or resume new entries on every account")
async def put_halt(request: Request) -> Response:
    body = await request.body()
    c = container(request)
    principal = authenticate(c, request.headers, None, jwt_only=True)
    if not principal.is_admin:
        raise ApiError(403, "Only an administrator may halt or resume trading", "FORBIDDEN")
    data = decode_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("halted"), bool) or len(data) != 1:
        raise BadRequest([detail("invalid_type", "halted must be true or false", ["halted"])])
    await run_in_threadpool(risk.set_global_halt, data["halted"], c.deps)
    return JSON({"halted": data["halted"]}, 200)
