"""The older ingest API of seed 002: POST /api/signals/ingest."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response

from tradewire.adapters.formats import ingest_api
from tradewire.adapters.formats.ingest_api import IngestRequest
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Scope
from tradewire.domain.errors import NotFound, Rejected, ServiceDisabled
from tradewire.domain.signals import Signal, SignalStatus
from tradewire.entrypoints.api import handover
from tradewire.entrypoints.api.deps import (
    authenticate,
    container,
    decode_json,
    ensure_signals_enabled,
)
from tradewire.entrypoints.api.dialect import dialect_route
from tradewire.entrypoints.api.errors import JSON, ApiError
from tradewire.entrypoints.api.examples import INGEST_EXAMPLES, INGEST_RESPONSES
from tradewire.services.ingest import IngestResult, Outcome, ingest_signal


def render(exc: Exception) -> Response | None:
    """This API's error shape: `{error, code, details?}`, no `success` field."""
    if isinstance(exc, BadRequest):
        return JSON(ingest_api.error("Validation failed", "VALIDATION_ERROR", exc.details), 400)
    if isinstance(exc, ApiError):
        body = {k: v for k, v in exc.body.items() if k != "success"}
        return JSON(body, exc.status)
    if isinstance(exc, NotFound):
        return JSON(ingest_api.error(exc.message, exc.code), 404)
    if isinstance(exc, Rejected):
        return JSON(ingest_api.error("Signal rejected", "SIGNAL_REJECTED", message=exc.message,
                                     details=[{"code": exc.code, "message": exc.message,
                                               "path": []}]), 409 if exc.code == "CONFLICT" else 400)
    if isinstance(exc, ServiceDisabled):
        return JSON(ingest_api.error(exc.message, "SERVICE_DISABLED"), 503)
    return None


router = APIRouter(prefix="/api/signals", tags=["signal ingest (older API)"],
                   route_class=dialect_route(render))

_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": IngestRequest.model_json_schema(ref_template="#/components/schemas/{model}"),
    "examples": INGEST_EXAMPLES}}}}


@router.post("/ingest", summary="Signal ingest", openapi_extra=_BODY, responses=INGEST_RESPONSES,
             description="Submit a trading signal. Requires an API key with `signals:write` in "
             "`X-API-Key`. A duplicate `sourceId` is refused here (400); send `replace: true` "
             "to supersede a signal that has not reached the broker.")
async def ingest(request: Request) -> Response:
    body = await request.body()
    c = container(request)
    key = request.headers.get("x-api-key")
    # Stored by the process's writer thread when there is one (this API reads the key alone).
    handed = (await handover.stored(c, Headers({"x-api-key": key}), body, ingest_api.parse)
              if key else None)
    if handed is not None:
        signal, result = handed
        return _answer(result, signal)
    return await run_in_threadpool(_ingest, c, request.headers, body)


def _ingest(c: Container, headers: Headers, body: bytes) -> Response:
    ensure_signals_enabled(c)
    if not headers.get("x-api-key"):
        raise ApiError(401, "Missing or invalid API key", "UNAUTHORIZED")
    principal = authenticate(c, Headers({"x-api-key": headers["x-api-key"]}), Scope.SIGNALS_WRITE)
    signal = ingest_api.parse(decode_json(body), now=c.deps.clock.now())
    return _answer(ingest_signal(signal, principal, c.deps), signal)


def _answer(result: IngestResult, signal: Signal) -> Response:
    if result.outcome is Outcome.DUPLICATE:
        assert signal.source_id is not None
        return JSON(ingest_api.duplicate(result.signal, signal.source_id), 400)
    if result.outcome is Outcome.REJECTED or result.signal.status is SignalStatus.REJECTED:
        reason = result.signal.status_reason or "signal rejected"
        return JSON(ingest_api.error("Signal rejected", "SIGNAL_REJECTED", message=reason,
                                     details=[{"code": result.reason_code or "BROKER_REJECTED",
                                               "message": reason, "path": []}],
                                     signal=ingest_api.summary(result.signal, None)), 400)
    status, payload = ingest_api.created(result.signal, result.order)
    return JSON(payload, status)
