"""What every log line carries besides its message: the request id and the signal id being
worked on. Plain contextvars, so the core binds them without knowing how logs are written;
the entrypoints' log formatter reads them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("tradewire_log_fields", default=None)


def bind(**fields: Any) -> None:
    """Add fields for the rest of this context (a request, a worker job)."""
    _fields.set({**(_fields.get() or {}), **fields})


def fields() -> dict[str, Any]:
    return dict(_fields.get() or {})


@contextmanager
def scope(**fields: Any) -> Iterator[None]:
    """Fields for the body of a `with` only (a worker's job, one after another)."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)
