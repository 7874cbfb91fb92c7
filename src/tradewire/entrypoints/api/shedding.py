"""Load shedding: past a bound of requests in flight, new signals get 503 at once.

TradingView resends after a 5xx (not after a 4xx, 429 included), so overload is answered
with 503 and a Retry-After, before any work is done, and never after a signal was stored.
"""

from __future__ import annotations

from typing import Any

import orjson

from tradewire.adapters.formats import signal_api

SIGNAL_PATHS = ("/api/v1/signals", "/api/signals/", "/signal/", "/partners/", "/v1/signal",
                "/v2/signal")


class Shed:
    def __init__(self, app: Any, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        guarded = (scope["type"] == "http" and scope["method"] == "POST"
                   and scope["path"].startswith(SIGNAL_PATHS))
        if not guarded:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await _busy(send)
            return
        self.in_flight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _busy(send: Any) -> None:
    body = orjson.dumps(signal_api.error("Too many signals in flight; retry shortly",
                                         "SERVICE_OVERLOADED"))
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
