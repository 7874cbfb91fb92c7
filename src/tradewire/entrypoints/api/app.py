"""The FastAPI application: routes per dialect, one error mapping, a body limit."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

import tradewire
from tradewire.bootstrap import Container
from tradewire.entrypoints import web
from tradewire.entrypoints.api import errors, observability, redaction
from tradewire.entrypoints.api.errors import JSON
from tradewire.entrypoints.api.limits import BodyLimit, RateLimiter
from tradewire.entrypoints.api.routes import (
    auth,
    execution,
    ingest,
    market,
    notifications,
    partner_signals,
    read,
    risk,
    signals,
    strategies,
)
from tradewire.entrypoints.api.shedding import Shed


def create_app(container: Container) -> FastAPI:
    app = FastAPI(title="tradewire", version=tradewire.__version__,
                  description="Trading signals in, broker orders out.",
                  # tradewire exports its own Prometheus metrics (observability.py); FastAPI's
                  # built-in OpenTelemetry hooks would only ask, on every request, whether a
                  # provider was configured (15% of the GIL's samples in the ingest profile).
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.container = container
    container.limiter = RateLimiter(container.settings.rate_limit_per_minute)
    errors.install(app)
    for module in (signals, ingest, execution, partner_signals, strategies, auth, market, read,
                   risk, notifications):
        app.include_router(module.router)
    web.install(app)
    _plain_front_door(app)

    _hoist_schema_definitions(app)

    @app.get("/healthz", tags=["ops"], summary="The process is up")
    def healthz() -> Response:
        return JSON({"status": "ok"}, 200)

    @app.get("/readyz", tags=["ops"], summary="The database answers")
    async def readyz(request: Request) -> Response:
        def ping() -> None:
            with container.db.engine.connect().execution_options(tw_write=False) as conn:
                conn.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception:
            return JSON({"status": "unavailable"}, 503)
        return JSON({"status": "ready"}, 200)

    app.add_middleware(BodyLimit, max_bytes=container.settings.max_body_bytes)
    app.add_middleware(Shed, max_in_flight=container.settings.max_in_flight)
    observability.install(app, container)  # outermost: ids and counts for shed requests too
    redaction.install()
    return app


def _plain_front_door(app: FastAPI) -> None:
    """POST /api/v1/signals, the busiest way in, is also served by a plain Starlette route
    placed first: the same endpoint (it takes the request and nothing else), without FastAPI
    solving its dependencies on every request (the query string parsed, the parameters
    validated: about 7% of a `pending` signal's CPU in the ingest profile). Its errors go
    through the same application-wide handlers; the declared route keeps its OpenAPI
    description and answers the other methods of the path."""
    app.router.routes.insert(0, _PlainRoute("/api/v1/signals", signals.create_signal,
                                            methods=["POST"], include_in_schema=False))


class _PlainRoute(Route):
    """A Starlette route that names itself in the scope as FastAPI's do (the request metrics
    label requests by the matched route's path)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def _hoist_schema_definitions(app: FastAPI) -> None:
    """Request bodies documented from pydantic models refer to `#/components/schemas/X`; the
    models' own definitions come out under the body's `$defs`. Move them where the references
    point, so every reference in the spec resolves (schemathesis and client generators follow
    them)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = build()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                content = (operation.get("requestBody") or {}).get("content", {})
                for media in content.values():
                    definitions = (media.get("schema") or {}).pop("$defs", {})
                    for name, definition in definitions.items():
                        schemas.setdefault(name, definition)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
