"""Secrets never reach a log line: access tokens in paths and one-click tokens in queries."""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    (re.compile(r"(/signal/execute-via-token/)[^\s/?\"]+"), r"\1[REDACTED]"),
    (re.compile(r"(encoded_token=)[^\s&\"]+"), r"\1[REDACTED]"),
    (re.compile(r"\b(twat|twet|twp|tw)_[A-Za-z0-9_\-]{8,}"), r"\1_[REDACTED]"),
)


# Where any of the patterns could start: one scan of a line that holds no secret (nearly
# every line) instead of one substitution per pattern.
_ANY = re.compile(r"/signal/execute-via-token/|encoded_token=|\btw(?:at|et|p)?_")


def redact(text: str) -> str:
    if _ANY.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and arguments with the secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Attach the filter to the loggers that see request lines and to tradewire's own."""
    for name in ("uvicorn.access", "uvicorn.error", "tradewire", ""):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
