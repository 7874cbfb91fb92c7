"""Request ids, request metrics and the Prometheus endpoint.

Every request gets an id (the caller's `X-Request-ID` when it is a sane one, else a new one),
bound for the log lines written while it is handled and echoed in the response. Counters:
requests by route template and status, signals by front door and outcome, request latency.
`/metrics` adds what is read from the database when scraped: orders by broker and status,
scheduler lag, armed exits, stage latencies of recent signals, and the connection pool."""

from __future__ import annotations

import hmac
import re
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradewire.bootstrap import Container
from tradewire.services import logcontext, metrics

_MAX_SERIES = 4096
_SANE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
# The front doors signals come in through (route templates).
SIGNAL_ROUTES = frozenset({
    "/api/v1/signals", "/api/v1/signals/{signal_id}/process", "/api/signals/ingest",
    "/signal/create-order", "/signal/post-execute-via-encoded-token",
    "/signal/execute-via-token/{access_token}", "/partners/quick-order", "/v1/signal",
    "/v2/signal",
})


class Metrics:
    """One registry per app (tests run several apps in one process)."""

    def __init__(self, container: Container) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("tradewire_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.signals = Counter("tradewire_signals", "Signals received, by front door and outcome",
                               ["route", "outcome"], registry=self.registry)
        self.latency = Histogram("tradewire_request_seconds", "Time to answer a request",
                                 ["route"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.registry.register(_StoredCollector(container))


class _StoredCollector:
    def __init__(self, container: Container) -> None:
        self.c = container

    def collect(self) -> Any:
        snap = metrics.snapshot(self.c.deps)
        orders = GaugeMetricFamily("tradewire_orders", "Orders by broker and status",
                                   labels=["broker", "status"])
        for broker, status, count in snap.orders:
            orders.add_metric([broker, status], count)
        yield orders
        yield GaugeMetricFamily("tradewire_scheduler_lag_seconds",
                                "How late the oldest due job is", value=snap.scheduler_lag_s)
        yield GaugeMetricFamily("tradewire_armed_exits", "Exit triggers armed in this process",
                                value=snap.armed_exits)
        stages = GaugeMetricFamily("tradewire_stage_latency_seconds",
                                   "Stage latencies over the most recent signals",
                                   labels=["stage", "quantile"])
        for (stage, q), seconds in sorted(snap.stage_quantiles.items()):
            stages.add_metric([stage, q], seconds)
        yield stages
        pool = self.c.db.engine.pool
        gauge = GaugeMetricFamily("tradewire_db_pool_connections", "Database pool connections",
                                  labels=["state"])
        for state in ("checkedout", "checkedin", "size", "overflow"):
            read = getattr(pool, state, None)
            if callable(read):
                gauge.add_metric([state], float(read()))
        yield gauge


class Observe:
    """Pure ASGI middleware: request id in, counters and latency out."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled series each (method, route, status) moves, looked up once.
        self._series: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        text = given.decode("latin-1")
        request_id = text if _SANE_ID.match(text) else uuid.uuid4().hex
        logcontext.bind(request_id=request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            key = (scope["method"], route, status)
            series = self._series.get(key) or self._labelled(key)
            series[0].inc()
            series[1].observe(time.perf_counter() - started)
            if series[2] is not None:
                series[2].inc()

    def _labelled(self, key: tuple[str, str, int]) -> tuple[Any, Any, Any]:
        method, route, status = key
        m = self.metrics
        signals = (m.signals.labels(route, _outcome(status))
                   if route in SIGNAL_ROUTES and method == "POST" else None)
        series = (m.requests.labels(method, route, str(status)), m.latency.labels(route), signals)
        if len(self._series) < _MAX_SERIES:  # routes are templates: a few hundred at most
            self._series[key] = series
        return series


def _outcome(status: int) -> str:
    if status == 503:
        return "shed"
    if status < 300:
        return "accepted"
    if status < 500:
        return "refused"
    return "error"


def install(app: Any, container: Container) -> Metrics:
    m = Metrics(container)
    token = container.settings.metrics_token

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {token.get_secret_value()}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return Response("unauthorized\n", status_code=401, media_type="text/plain")
        body = await run_in_threadpool(generate_latest, m.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return m  # the caller puts `Observe` with it around the application
