"""The FastAPI application: routes per dialect, one error mapping, a body limit."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

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
    app = _App(title="tradewire", version=tradewire.__version__,
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

    metrics = observability.install(app, container)
    max_body, max_in_flight = container.settings.max_body_bytes, container.settings.max_in_flight
    # Around everything, outermost first: ids and counts (for shed requests too), shedding,
    # the body limit and the NUL guard.
    app.guards = [lambda inner: observability.Observe(inner, metrics),
                  lambda inner: Shed(inner, max_in_flight=max_in_flight),
                  lambda inner: BodyLimit(inner, max_bytes=max_body)]
    redaction.install()
    return app


def _plain_front_door(app: _App) -> None:
    """POST /api/v1/signals, the busiest way in, and TradingView's access-token route are
    answered ahead of FastAPI's own stack (`_FrontDoor`): the same endpoints (taking the
    request and nothing else), without FastAPI solving their dependencies on every request
    (the query string parsed, the parameters validated: about 7% of a `pending` signal's CPU
    in the ingest profile), nor Starlette's and FastAPI's middleware layers and router around
    them (another 10-15%). Their errors go through the same application-wide handlers; the
    declared routes keep their OpenAPI descriptions and answer the other methods."""
    app.front_doors[("POST", "/api/v1/signals")] = Route(
        "/api/v1/signals", signals.create_signal, methods=["POST"], include_in_schema=False)
    # TradingView's way in: the token is the path's last segment. A token over the declared
    # 200 characters goes FastAPI's way, which refuses it as it always did.
    app.tail_doors[("POST", "/signal/execute-via-token/")] = _TailDoor(Route(
        "/signal/execute-via-token/{access_token}", execution.execute_via_token_door,
        methods=["POST"], include_in_schema=False), "access_token", max_length=200)


class _App(FastAPI):
    """FastAPI with tradewire's guards (pure ASGI middleware) around its whole stack, and
    front doors answered inside them but ahead of it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guards: list[Callable[[ASGIApp], ASGIApp]] = []
        self.front_doors: dict[tuple[str, str], Route] = {}
        self.tail_doors: dict[tuple[str, str], _TailDoor] = {}

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = _FrontDoor(super().build_middleware_stack(), self)
        for guard in reversed(self.guards):
            app = guard(app)
        return app


@dataclass(frozen=True)
class _TailDoor:
    """A front door for the paths `prefix` + one segment, the segment its one parameter."""

    route: Route
    param: str
    max_length: int


class _FrontDoor:
    """The front doors' endpoints called directly: the request built once, an exception turned
    into the answer by the application's handler for it (as Starlette's handling would), the
    route named in the scope (the request metrics label requests by its path)."""

    def __init__(self, app: ASGIApp, owner: _App) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except Exception as exc:
            handler = _handler_for(self.owner.exception_handlers, exc)
            if handler is None:
                raise
            response = handler(request, exc)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, receive, send)

    def _route(self, scope: Scope) -> Route | None:
        """The front door of the request's method and path, its path parameter put in the
        scope; None when the path has none (FastAPI's stack answers it)."""
        method, path = scope["method"], scope["path"]
        route = self.owner.front_doors.get((method, path))
        if route is not None or not self.owner.tail_doors:
            return route
        head, _, tail = path.rpartition("/")
        door = self.owner.tail_doors.get((method, head + "/"))
        if door is None or not 0 < len(tail) <= door.max_length:
            return None
        scope["path_params"] = {door.param: tail}
        return door.route


def _handler_for(handlers: dict[Any, Callable[..., Any]], exc: Exception
                 ) -> Callable[..., Any] | None:
    """The handler of the nearest class of `exc` that has one (Exception's last of all)."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


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
