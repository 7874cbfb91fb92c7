"""The error tree of the core. Each carries a machine-readable code."""

from __future__ import annotations


class TradewireError(Exception):
    """Base of every error the core raises on purpose."""

    code = "ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(TradewireError):
    """The object does not exist, or belongs to someone the caller cannot see."""

    code = "NOT_FOUND"


class Rejected(TradewireError):
    """The request was well formed but tradewire refuses to act on it."""

    code = "SIGNAL_REJECTED"


class InvalidTransition(TradewireError):
    """A state change that the transition table does not allow."""

    code = "INVALID_TRANSITION"


class ServiceDisabled(TradewireError):
    """The kill switch is on: no new signals are taken."""

    code = "SERVICE_DISABLED"
