"""The execution flows of seed 000: stored triggers, one-click tokens, access tokens, partners."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response

from tradewire.adapters.formats import execution_api, traderspost
from tradewire.adapters.formats.execution_api import OrderIn
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.errors import Rejected, TradewireError
from tradewire.domain.signals import Signal, SignalStatus
from tradewire.domain.values import new_id
from tradewire.entrypoints.api import handover
from tradewire.entrypoints.api.deps import (
    authenticate,
    container,
    decode_json,
    ensure_signals_enabled,
    rate_limit,
)
from tradewire.entrypoints.api.errors import JSON, ApiError, unauthorized
from tradewire.services import alerts, capabilities, logcontext, triggers
from tradewire.services.ingest import IngestResult, Outcome, ingest_signal, storing
from tradewire.services.ports import UnitOfWork

router = APIRouter(tags=["execution flows"])
MAX_BATCH = 50

_ORDER_SCHEMA = OrderIn.model_json_schema(ref_template="#/components/schemas/{model}")
_EXAMPLE = {"account_id": "550e8400-e29b-41d4-a716-446655440000", "symbol": "AAPL",
            "side": "buy", "quantity": 10, "order_type": "limit", "limit_price": 190}


def _body(example: Any) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": _ORDER_SCHEMA, "example": example}}}}


@router.post("/signal/create-order", summary="Store an order to execute later",
             openapi_extra=_body({**_EXAMPLE, "expires_in": 3600}), status_code=201,
             description="Answers with `trigger_id` (for `GET /signal/execute`) and a one-use "
             "`encoded_token` (for `POST /signal/post-execute-via-encoded-token`), valid "
             "`expires_in` seconds (default 24 h).")
async def create_order(request: Request) -> Response:
    body = await request.body()
    return await run_in_threadpool(_create, container(request), request.headers, body)


def _create(c: Container, headers: Headers, body: bytes) -> Response:
    ensure_signals_enabled(c)
    principal = authenticate(c, headers, Scope.SIGNALS_WRITE, partners=True)
    signal, ttl = execution_api.parse_order(decode_json(body), now=c.deps.clock.now(),
                                            route="signal.create-order")
    kwargs = {"ttl": ttl} if ttl is not None else {}
    result, trigger, token = triggers.create_order(signal, principal, c.deps, c.secrets, **kwargs)
    if trigger is None:
        raise Rejected(f"sourceId {signal.source_id} is held by a signal without a trigger")
    payload = {"success": True, **execution_api.trigger_view(trigger),
               "encoded_token": token, "order": execution_api.order_view(result.signal, None)}
    if result.outcome is Outcome.DUPLICATE:
        payload["message"] = "an order with this source_id exists; its token was shown once"
        return JSON(payload, 200)
    return JSON(payload, 201)


@router.get("/signal/execute", summary="Execute a stored order by trigger id (authenticated)")
def execute(request: Request, trigger_id: Annotated[str, Query(max_length=64)]) -> Response:
    c = container(request)
    ensure_signals_enabled(c)
    principal = authenticate(c, request.headers, Scope.SIGNALS_WRITE, partners=True)
    signal, order = triggers.execute_by_id(trigger_id, principal, c.deps)
    return _executed(signal, order, trigger_id=trigger_id)


@router.post("/signal/post-execute-via-encoded-token",
             summary="Execute a stored order with its one-use token (no other authentication)")
def execute_encoded(request: Request,
                    encoded_token: Annotated[str, Query(max_length=200)]) -> Response:
    c = container(request)
    ensure_signals_enabled(c)
    signal, order = triggers.execute_by_token(encoded_token, c.deps, c.secrets)
    return _executed(signal, order)


@router.delete("/signal/trigger/{trigger_id}", summary="Revoke a stored order's token")
def revoke(request: Request, trigger_id: Annotated[str, Path(max_length=64)]) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_WRITE, partners=True)
    trigger = triggers.revoke(trigger_id, principal, c.deps)
    return JSON({"success": True, **execution_api.trigger_view(trigger)}, 200)


@router.post("/signal/execute-via-token/{access_token}",
             summary="Execute one order or a batch with an access token in the path",
             openapi_extra=_body({k: v for k, v in _EXAMPLE.items() if k != "account_id"}),
             description="For webhooks that cannot set headers (TradingView): the body is JSON "
             "whatever the Content-Type says; one order object or an array of them.")
async def execute_via_token(request: Request,
                            access_token: Annotated[str, Path(max_length=200)]) -> Response:
    body = await request.body()
    c = container(request)
    raw = _one_order(c, body)
    if raw is not None:
        return await _via_token_handed_over(c, access_token, raw)
    return await run_in_threadpool(_via_token, c, access_token, body)


async def execute_via_token_door(request: Request) -> Response:
    """`execute_via_token` answered at the application's front door (app.py), which puts the
    token in the path parameters after checking its length as the route declares it."""
    return await execute_via_token(request, request.path_params["access_token"])


def _one_order(c: Container, body: bytes) -> dict[str, Any] | None:
    """The body, when it is one order (not a batch, not an alert) the writer thread can store
    without asking the broker first (handover.py); None sends it the general way."""
    if not handover.takes_immediate(c):
        return None  # the orders sent here are all immediate
    try:
        raw = decode_json(body)
    except BadRequest:
        return None  # answered on the general way, after the token is checked
    if (not isinstance(raw, dict) or traderspost.looks_like_alert(raw)
            or raw.get("quantity_type") == "percent_equity"):
        return None
    return raw


async def _via_token_handed_over(c: Container, access_token: str, raw: dict[str, Any]
                                 ) -> Response:
    """`_via_token` for one order, its write unit on the writer thread: the token is checked
    there first, then the order parsed and stored; nothing is stored if either refuses."""
    assert c.writer is not None

    def unit(uow: UnitOfWork) -> IngestResult:
        principal = capabilities.access_token_principal_in(uow, access_token, c.secrets)
        principal = _admitted(c, principal)
        signal = _token_order(c, raw, _token_account(principal))
        logcontext.bind(signal_id=signal.id, account_id=signal.account_id)
        return storing(signal, principal, c.deps)(uow)

    try:
        result = await handover.sent(c, await c.writer.run(unit, then=handover.then(c)))
    except (BadRequest, TradewireError) as exc:
        status, item = _refused(exc)
    else:
        status, item = _answered(result)
    return JSON(item, status)


def _admitted(c: Container, principal: Principal | None) -> Principal:
    """401 without a live token; past its rate, 503 (TradingView resends only after a 5xx)."""
    if principal is None:
        raise unauthorized("Invalid or revoked access token")
    rate_limit(c, f"access_token:{principal.key_id or principal.user_id}", webhook=True)
    return principal


def _via_token(c: Container, access_token: str, body: bytes) -> Response:
    ensure_signals_enabled(c)
    principal = _admitted(c, capabilities.principal_for_access_token(access_token, c.deps,
                                                                     c.secrets))
    data = decode_json(body)
    account_id = _token_account(principal)
    if not isinstance(data, list):
        status, item = _run_one(c, principal, account_id, data, ())
        return JSON(item, status)
    if not 1 <= len(data) <= MAX_BATCH:
        raise BadRequest([{"code": "too_big" if data else "too_small",
                           "message": f"a batch holds 1 to {MAX_BATCH} orders", "path": []}])
    results = []
    for index, raw in enumerate(data):
        status, item = _run_one(c, principal, account_id, raw, (index,))
        results.append({"index": index, "status": status, **item})
    ok = all(r["status"] < 400 for r in results)
    return JSON({"success": ok, "results": results}, 200)


def _run_one(c: Container, principal: Principal, account_id: str, raw: Any,
             path: tuple[str | int, ...]) -> tuple[int, dict[str, Any]]:
    """One order of a batch: its HTTP-like status and body; a refusal does not stop the rest."""
    if traderspost.looks_like_alert(raw):
        return _run_alert(c, principal, account_id, raw)
    try:
        signal = _token_order(c, raw, account_id, path)
        result = ingest_signal(signal, principal, c.deps)
    except (BadRequest, TradewireError) as exc:
        return _refused(exc)
    return _answered(result)


def _token_account(principal: Principal) -> str:
    """The one account an access token is for."""
    return next(iter(principal.account_ids or ()))


def _token_order(c: Container, raw: Any, account_id: str,
                 path: tuple[str | int, ...] = ()) -> Signal:
    """One order sent with an access token, for the token's account."""
    signal, _ = execution_api.parse_order(raw, now=c.deps.clock.now(),
                                          route="signal.execute-via-token",
                                          account_id=account_id, path=path)
    return signal


def _refused(exc: BadRequest | TradewireError) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, BadRequest):
        return 400, {"success": False, "error": "Validation failed", "code": "VALIDATION_ERROR",
                     "details": exc.details}
    return 404 if exc.code.endswith("NOT_FOUND") else 400, {
        "success": False, "error": exc.message, "code": exc.code}


def _answered(result: IngestResult) -> tuple[int, dict[str, Any]]:
    status, body = _outcome(result.signal, result.order, result.outcome, result.reason_code)
    if len(result.orders) > 1:
        body["legs"] = [{"order_id": o.id, "client_order_id": o.client_order_id,
                         "symbol": o.symbol, "side": str(o.side), "link": o.link_kind}
                        for o in result.orders]
    return status, body


def _run_alert(c: Container, principal: Principal, account_id: str,
               raw: Any) -> tuple[int, dict[str, Any]]:
    """A TradersPost-style alert, answered in that format's envelope."""
    received_at = c.deps.clock.now()
    try:
        alert = traderspost.parse_alert(raw)
        done = alerts.handle_alert(alert, principal, account_id, c.deps, received_at=received_at,
                                   route="signal.execute-via-token.alert")
    except BadRequest as exc:
        return 400, traderspost.invalid(exc.details)
    except TradewireError as exc:
        status = 404 if exc.code.endswith("NOT_FOUND") else 400
        return status, traderspost.error(exc.message, exc.code.lower().replace("_", "-"))
    first = done.results[0] if done.results else None
    if first is not None and first.signal.status is SignalStatus.REJECTED:
        return 400, traderspost.error(first.signal.status_reason or "signal rejected",
                                      (first.reason_code or "broker-rejected").lower()
                                      .replace("_", "-"))
    log_id = first.signal.id if first else new_id()  # a cancel stores no signal
    body = traderspost.format_result(alert, alert_id=log_id, log_id=log_id)
    body["payload"]["steps"] = [
        {"signalId": r.signal.id, "action": str(r.signal.action), "status": str(r.signal.status),
         "orderId": r.order.id if r.order else None} for r in done.results
    ] + [{"signalId": w.id, "action": str(w.action), "status": "waiting"} for w in done.waiting]
    body["payload"]["cancelledOrders"] = done.cancelled
    return 201 if done.results else 200, body


def _outcome(signal: Any, order: Any, outcome: Outcome,
             reason_code: str | None = None) -> tuple[int, dict[str, Any]]:
    view = execution_api.order_view(signal, order)
    if signal.status is SignalStatus.REJECTED:
        body = {"success": False, "error": signal.status_reason or "signal rejected",
                "code": "SIGNAL_REJECTED", "order": view}
        if reason_code is not None:  # why, machine-readable (a risk limit's RISK_* code ...)
            body["reason_code"] = reason_code
        return 400, body
    return (200 if outcome is Outcome.DUPLICATE else 201), {"success": True, "order": view}


@router.post("/partners/quick-order", summary="Partners: create and execute in one step",
             openapi_extra=_body(_EXAMPLE), status_code=201,
             description="Bearer partner token only; the account must have granted the partner.")
async def quick_order(request: Request) -> Response:
    body = await request.body()
    return await run_in_threadpool(_quick, container(request), request.headers, body)


def _quick(c: Container, headers: Headers, body: bytes) -> Response:
    ensure_signals_enabled(c)
    principal = authenticate(c, headers, Scope.SIGNALS_WRITE, partners=True)
    if principal.via != "partner":
        raise ApiError(403, "Quick orders are for partners only", "FORBIDDEN")
    signal, _ = execution_api.parse_order(decode_json(body), now=c.deps.clock.now(),
                                          route="partners.quick-order")
    result = ingest_signal(signal, principal, c.deps)
    status, payload = _outcome(result.signal, result.order, result.outcome, result.reason_code)
    return JSON(payload, status)


def _executed(signal: Any, order: Any, **extra: Any) -> Response:
    status, payload = _outcome(signal, order, Outcome.CREATED)
    return JSON({**payload, **extra}, 200 if status == 201 else status)
