"""Errors as the signal API speaks them: `{success: false, error, code, details?}`."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tradewire.adapters.formats import signal_api
from tradewire.adapters.formats.errors import detail
from tradewire.domain.errors import (
    InvalidTransition,
    NotFound,
    Rejected,
    ServiceDisabled,
    TradewireError,
)

log = logging.getLogger("tradewire.api")


def _default(value: Any) -> Any:
    return str(value)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default)


class ApiError(Exception):
    """An HTTP answer decided by a route: status and body in the dialect's shape."""

    def __init__(self, status: int, message: str, code: str,
                 details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.body = signal_api.error(message, code, details, **extra)


def unauthorized(message: str = "Missing or invalid authentication") -> ApiError:
    return ApiError(401, message, "UNAUTHORIZED")


def install(app: FastAPI) -> None:
    """One place that turns every error into the dialect's response."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else exc.headers
        return JSON(exc.body, status_code=exc.status, headers=headers)

    @app.exception_handler(signal_api.BadRequest)
    async def _bad(_: Request, exc: signal_api.BadRequest) -> Response:
        return JSON(signal_api.error("Validation failed", "VALIDATION_ERROR", exc.details), 400)

    @app.exception_handler(NotFound)
    async def _missing(_: Request, exc: NotFound) -> Response:
        return JSON(signal_api.error(exc.message, exc.code), 404)

    @app.exception_handler(Rejected)
    async def _rejected(_: Request, exc: Rejected) -> Response:
        status = 409 if exc.code in ("CONFLICT", "TRIGGER_UNUSABLE") else 400
        return JSON(signal_api.error(exc.message, "SIGNAL_REJECTED",
                                     [detail(exc.code, exc.message)]), status)

    @app.exception_handler(InvalidTransition)
    async def _transition(_: Request, exc: InvalidTransition) -> Response:
        return JSON(signal_api.error(exc.message, "SIGNAL_REJECTED"), 409)

    @app.exception_handler(ServiceDisabled)
    async def _disabled(_: Request, exc: ServiceDisabled) -> Response:
        return JSON(signal_api.error(exc.message, "SERVICE_DISABLED"), 503)

    @app.exception_handler(TradewireError)
    async def _refused(_: Request, exc: TradewireError) -> Response:
        return JSON(signal_api.error(exc.message, exc.code), 400)

    @app.exception_handler(RequestValidationError)
    async def _query(_: Request, exc: RequestValidationError) -> Response:
        details = [detail("invalid_type", e["msg"], [p for p in e["loc"] if p != "query"])
                   for e in exc.errors()]
        return JSON(signal_api.error("Validation failed", "VALIDATION_ERROR", details), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        return JSON(signal_api.error(str(exc.detail), code), exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return JSON(signal_api.error("Internal error", "INTERNAL_ERROR"), 500)
