"""Live updates as server-sent events: each connection polls the audit log and the last
prices of held symbols about once a second, and says what changed (the page then fetches the
pieces it shows again). Bounded: a stream ends after STREAM_SECONDS (the browser reconnects
where it left off, by Last-Event-ID) and at most MAX_STREAMS run at once in a process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from tradewire.entrypoints.web import session
from tradewire.entrypoints.web.core import Web, web_of
from tradewire.services import dashboard

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 0.75
STREAM_SECONDS = 25.0
KEEPALIVE_SECONDS = 10.0
MAX_STREAMS = 64
_open = {"streams": 0}  # one event loop per process: no lock needed


@router.get("/ui/events")
async def events(request: Request) -> Response:
    web = web_of(request)
    person = await run_in_threadpool(session.current, web.container, request)
    if person is None:
        return PlainTextResponse("Sign in to receive live updates", 401)
    last = request.headers.get("last-event-id", "")
    resume = int(last) if last.isdigit() and len(last) < 19 else None
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(web, person, resume), media_type="text/event-stream",
                             headers=headers)


async def _stream(web: Web, person: session.Person, resume: int | None) -> AsyncIterator[str]:
    if _open["streams"] >= MAX_STREAMS:
        yield "retry: 15000\n: too many live connections; retrying later\n\n"
        return
    _open["streams"] += 1
    try:
        deps, views = web.container.deps, web.views
        ids = await run_in_threadpool(dashboard.account_ids, person.principal, deps)
        seq = resume if resume is not None else await run_in_threadpool(views.latest_event_seq)
        # Prices as they stand before "ready": any tick after it is reported as a change.
        marks = await run_in_threadpool(views.marks, ids)
        # The id lets a reconnect resume here even when nothing happened in this stream.
        yield f"retry: 1500\nid: {seq}\nevent: ready\ndata: {{}}\n\n"
        loop = asyncio.get_running_loop()
        end, quiet_since = loop.time() + STREAM_SECONDS, loop.time()
        while loop.time() < end:
            changes, seq = await run_in_threadpool(dashboard.changes_since, seq, marks, ids,
                                                   views)
            for change in changes:
                head = f"id: {change.seq}\n" if change.seq is not None else ""
                yield f"{head}event: {change.kind}\ndata: {json.dumps(change.data)}\n\n"
            if changes:
                quiet_since = loop.time()
            elif loop.time() - quiet_since > KEEPALIVE_SECONDS:
                quiet_since = loop.time()
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_SECONDS)
    finally:
        _open["streams"] -= 1
