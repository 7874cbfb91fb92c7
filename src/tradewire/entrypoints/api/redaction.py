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
    """Rewrites a record's message with the secrets masked: the message is formatted with its
    arguments first, so a secret is found wherever it lands (in the format string, in an
    argument, across both), and a format string whose placeholder followed a token prefix
    keeps its arguments' count right."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit: logging reports it when it formats
            return True
        masked = redact(message)
        if record.args or masked is not message:
            record.msg, record.args = masked, ()
        return True


def install() -> None:
    """Attach the filter to the loggers that see request lines and to tradewire's own."""
    for name in ("uvicorn.access", "uvicorn.error", "tradewire", ""):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
