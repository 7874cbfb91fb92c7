"""Input guards as ASGI middleware, before any parsing: a body size limit (413) and no NUL
characters in the path or query (400), which text columns cannot hold and no input needs.
NUL inside JSON bodies is refused with its path by `deps.decode_json`."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson

from tradewire.adapters.formats import signal_api


class BodyLimit:
    """Reads at most `max_bytes` of a request body, then hands the buffered body on."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if _has_nul(raw_path) or _has_nul(scope.get("query_string", b"")):
            await _refuse_nul(send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        body = orjson.dumps(signal_api.error(
            f"Request body is larger than {self.max_bytes} bytes", "PAYLOAD_TOO_LARGE"))
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw


async def _refuse_nul(send: Any) -> None:
    body = orjson.dumps(signal_api.error("Validation failed", "VALIDATION_ERROR", [
        {"code": "invalid_string", "message": "NUL characters are not accepted", "path": []}]))
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """A token bucket per credential: `per_minute` requests at once, refilled at
    `per_minute / 60` a second. 0 turns it off. In-process: with several API processes each
    holds its own buckets, so the limit is per credential and process."""

    def __init__(self, per_minute: int, clock: Any = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """None when the request may go; else the seconds until one more may."""
        if self.capacity <= 0:
            return None
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 100_000:  # forget idle credentials, bounded memory
                self._buckets = {k: v for k, v in self._buckets.items() if v[1] > now - 120}
            return None
