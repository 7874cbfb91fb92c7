"""The signal API of seed 004: create, process, list, look at and cancel signals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response

from tradewire.adapters.formats import signal_api
from tradewire.adapters.formats.signal_api import BadRequest, SignalRequest
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.errors import Rejected
from tradewire.domain.signals import Signal, SignalStatus
from tradewire.entrypoints.api import handover, views
from tradewire.entrypoints.api.deps import (
    authenticate,
    container,
    decode_json,
    ensure_signals_enabled,
    key_caller,
)
from tradewire.entrypoints.api.errors import JSON, ApiError
from tradewire.entrypoints.api.examples import SIGNAL_EXAMPLES, SIGNAL_RESPONSES
from tradewire.entrypoints.api.views import PageQuery
from tradewire.services import process, queries
from tradewire.services.ingest import (
    IngestResult,
    Outcome,
    ingest_signal,
    stored_for_source,
)

router = APIRouter(prefix="/api/v1/signals", tags=["signals"])

_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": SignalRequest.model_json_schema(ref_template="#/components/schemas/{model}"),
    "examples": SIGNAL_EXAMPLES}}}}


@router.post("", summary="Create signal", openapi_extra=_BODY, responses=SIGNAL_RESPONSES,
             description="Submit a trading signal for execution, scheduling or review. "
             "Authenticate with `X-API-Key` (scope `signals:write`) or `Authorization: Bearer`.")
async def create_signal(request: Request) -> Response:
    body = await request.body()
    c = container(request)
    # An API key's signal is stored by the process's writer thread when there is one.
    handed = await handover.stored(c, request.headers, body, signal_api.parse)
    if handed is not None:
        signal, result = handed
        return _answer(result, signal)
    return await run_in_threadpool(_create, c, request.headers, body)


def _create(c: Container, headers: Headers, body: bytes) -> Response:
    ensure_signals_enabled(c)
    # The bots' and alerts' way in: an API key, checked inside the unit that stores the signal.
    # A body that does not parse is answered on the general path, which authenticates first:
    # a stranger learns nothing from a 400.
    caller = key_caller(c, headers, Scope.SIGNALS_WRITE)
    parsed = _parsed(c, body) if caller is not None else None
    if caller is not None and parsed is not None:
        return _answer(ingest_signal(parsed, caller, c.deps), parsed)
    principal = authenticate(c, headers, Scope.SIGNALS_WRITE)
    raw = decode_json(body)
    try:
        signal = signal_api.parse(raw, now=c.deps.clock.now())
    except BadRequest:
        # A retry of a signal already stored answers as the original did, even when the body
        # no longer validates (its validUntil has passed since): dedup comes first.
        stored = _already_stored(c, principal, raw)
        if stored is None:
            raise
        return JSON(signal_api.duplicate(stored[0], stored[1], raw["sourceId"]), 200)
    return _answer(ingest_signal(signal, principal, c.deps), signal)


def _parsed(c: Container, body: bytes) -> Signal | None:
    """The signal in `body`, or None: whatever refuses the body is raised again on the
    general path, after the caller is known."""
    try:
        return signal_api.parse(decode_json(body), now=c.deps.clock.now())
    except Exception:
        return None


def _answer(result: IngestResult, signal: Signal) -> Response:
    if result.outcome is Outcome.DUPLICATE:
        assert signal.source_id is not None
        return JSON(signal_api.duplicate(result.signal, result.order, signal.source_id), 200)
    if result.outcome is Outcome.REJECTED or result.signal.status is SignalStatus.REJECTED:
        reason = result.signal.status_reason or "signal rejected"
        code = result.reason_code or "BROKER_REJECTED"
        raise ApiError(400, reason, "SIGNAL_REJECTED", [{"code": code, "message": reason,
                                                         "path": []}],
                       signal=signal_api.signal_summary(result.signal, result.order))
    status, payload = signal_api.created(result.signal, result.order)
    return JSON(payload, status)


def _already_stored(c: Container, principal: Principal, raw: Any) -> tuple[Any, Any] | None:
    if not isinstance(raw, dict):
        return None
    source, account = raw.get("sourceId"), raw.get("accountId")
    if not (isinstance(source, str) and source and isinstance(account, str) and account):
        return None
    return stored_for_source(account, source, principal, c.deps)


@router.post("/{signal_id}/process", summary="Process a pending signal",
             description="Requires JWT authentication; turns a pending signal into an order.")
def process_signal(signal_id: str, request: Request) -> Response:
    c = container(request)
    ensure_signals_enabled(c)
    principal = authenticate(c, request.headers, Scope.SIGNALS_WRITE, jwt_only=True)
    signal, order = process.process_pending(signal_id, principal, c.deps)
    if signal.status is SignalStatus.REJECTED:
        raise Rejected(signal.status_reason or "signal rejected")
    return JSON(signal_api.processed(signal, order), 200)


@router.get("", summary="List signals")
def list_signals(request: Request, page: PageQuery, status: SignalStatus | None = None,
                 symbol: str | None = None, accountId: str | None = None) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_READ)
    rows = queries.list_signals(principal, c.deps, page, account_id=accountId, status=status,
                                symbol=symbol.upper() if symbol else None)
    return JSON(views.paginated("signals", [views.signal(s) for s in rows], page), 200)


@router.get("/{signal_id}", summary="A signal with its orders, jobs and audit timeline")
def get_signal(signal_id: str, request: Request) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_READ)
    d = queries.signal_detail(signal_id, principal, c.deps)
    body: dict[str, Any] = views.signal(d.signal)
    body.update(orders=[views.order(o) for o in d.orders], jobs=[views.job(j) for j in d.jobs],
                timeline=[views.event(e) for e in d.timeline])
    return JSON({"success": True, "signal": body}, 200)


@router.get("/{signal_id}/timeline", summary="Every stage of a signal with its timestamp")
def signal_timeline(signal_id: str, request: Request) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_READ)
    t = queries.signal_timeline(signal_id, principal, c.deps)
    stages = [{"stage": name.removesuffix("_at"), "at": views.moment(at)}
              for name, at in t.stages.items() if at is not None]
    stages.sort(key=lambda s: s["at"])
    received, acked = t.stages.get("received_at"), t.stages.get("acked_at")
    return JSON({"success": True, "signalId": t.signal.id, "status": str(t.signal.status),
                 "stages": stages,
                 "latencyMs": (round((acked - received).total_seconds() * 1000, 3)
                               if received and acked else None),
                 "events": [views.event(e) for e in t.events]}, 200)


@router.delete("/{signal_id}", summary="Cancel a pending or scheduled signal")
def cancel_signal(signal_id: str, request: Request) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_WRITE)
    signal = process.cancel_signal(signal_id, principal, c.deps)
    return JSON({"success": True, "message": "Signal cancelled",
                 "signal": signal_api.signal_summary(signal, None)}, 200)
