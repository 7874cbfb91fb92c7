"""The log line's shape: one JSON object per record, whoever logged it, secrets masked."""

from __future__ import annotations

import contextvars
import io
import json
import logging

from tradewire.entrypoints import logs
from tradewire.services import logcontext


def read(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_the_bound_fields(log_lines: io.StringIO) -> None:
    def log() -> None:
        with logcontext.scope(request_id="req-7", signal_id="sig-1"):
            logging.getLogger("tradewire.services.ingest").info("signal %s: %s", "created",
                                                               "pending")
            logging.getLogger("uvicorn.error").warning("slow %d", 3)

    # In a context of its own: fields other tests bound in this thread stay out of it.
    contextvars.Context().run(log)
    first, second = read(log_lines)
    assert first == {"event": "signal created: pending", "level": "info",
                     "logger": "tradewire.services.ingest", "timestamp": first["timestamp"],
                     "request_id": "req-7", "signal_id": "sig-1"}
    assert str(first["timestamp"]).endswith("Z") and "T" in str(first["timestamp"])
    assert (second["event"], second["level"], second["logger"]) == ("slow 3", "warning",
                                                                    "uvicorn.error")


def test_an_exception_is_rendered_in_its_line_with_secrets_masked(log_lines: io.StringIO) -> None:
    token = "tw_" + "s3cret" * 4
    try:
        raise RuntimeError(f"refused {token}")
    except RuntimeError:
        logging.getLogger("tradewire.x").exception("POST /signal/execute-via-token/%s failed",
                                                   "abcdefgh1234")
    (line,) = read(log_lines)
    assert line["level"] == "error"
    assert line["event"] == "POST /signal/execute-via-token/[REDACTED] failed"
    assert "RuntimeError: refused tw_[REDACTED]" in str(line["exception"])
    assert "s3cret" not in log_lines.getvalue() and "abcdefgh1234" not in log_lines.getvalue()


def test_the_console_format_is_one_line_per_record_with_the_exception_after(
        log_lines: io.StringIO) -> None:
    stream = io.StringIO()
    logs.configure("console", stream=stream)
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("tradewire.y").exception("failed %s", "here")
    text = stream.getvalue()
    assert "failed here" in text and "[tradewire.y]" in text
    assert text.index("failed here") < text.index("ValueError: bad")
