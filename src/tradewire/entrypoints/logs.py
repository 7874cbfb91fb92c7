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
    # The message was masked by the handler's RedactSecrets filter (formatted with its
    # arguments, before this formatter runs); the exception's text is rendered here.
    if isinstance(event.get("exception"), str):
        event["exception"] = redact(event["exception"])
    return event


def _orjson(event: dict[str, Any], default: Any = None, **_: Any) -> str:
    return orjson.dumps(event, default=default).decode()


class _Lines(logging.Formatter):
    """A standard library record as one line, through structlog's processors.

    What structlog's `ProcessorFormatter` does with a record that did not come from a structlog
    logger (tradewire's, uvicorn's, the libraries'), without its copy of every record and the
    base formatter's pass after it: they were half the cost of a line, and a line is written
    for every signal. The event holds what `add_log_level` and `add_logger_name` would add.
    """

    def __init__(self, processors: list[Any]) -> None:
        super().__init__()
        self._processors = processors

    def format(self, record: logging.LogRecord) -> str:
        method = record.levelname.lower()
        event: Any = {"event": record.getMessage(), "level": method, "logger": record.name}
        if record.exc_info:
            event["exc_info"] = record.exc_info
        if record.stack_info:
            event["stack_info"] = record.stack_info
        for process in self._processors:
            event = process(None, method, event)
        line: str = event
        return line


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
    formatter = _Lines([structlog.processors.TimeStamper(fmt="iso", utc=True), _context,
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
