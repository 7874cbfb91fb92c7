"""Log lines as JSON objects (structlog over the standard library's logging): a timestamp,
the level, the logger, the message, and the request id and signal id bound while the line was
written. Secrets are masked in the message before it is rendered."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog

from tradewire.entrypoints.api.redaction import RedactSecrets, redact
from tradewire.services import logcontext


def _context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in logcontext.fields().items():
        event.setdefault(key, value)
    return event


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    if isinstance(event.get("event"), str):
        event["event"] = redact(event["event"])
    if isinstance(event.get("exception"), str):
        event["exception"] = redact(event["exception"])
    return event


def _orjson(event: dict[str, Any], default: Any = None, **_: Any) -> str:
    return orjson.dumps(event, default=default).decode()


def configure(fmt: str = "json", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Route every logger (tradewire's, uvicorn's, the libraries') through one handler."""
    renderer: Any = (structlog.processors.JSONRenderer(serializer=_orjson) if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    # No line shows the caller's file and line, thread or process: the standard library need
    # not look them up for every record (logging's documented optimisation switches).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    shared = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
              structlog.processors.TimeStamper(fmt="iso", utc=True), _context]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, _redact, renderer])
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "tradewire", False):
            root.removeHandler(old)
    handler.tradewire = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
