"""Capabilities: access tokens (one account, signal execution), triggers, partners."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A secret in a URL path that may execute signals on one account, and nothing else."""

    id: str
    account_id: str
    prefix: str
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Trigger:
    """A stored order (a pending signal) and the one-click token that may execute it once."""

    id: str
    signal_id: str
    account_id: str
    token_hash: str
    expires_at: datetime
    created_at: datetime
    consumed_at: datetime | None = None
    consumed_by: str | None = None
    revoked_at: datetime | None = None

    def usable(self, now: datetime) -> str | None:
        """None when it may be used now, else why not."""
        if self.revoked_at is not None:
            return "revoked"
        if self.consumed_at is not None:
            return "already used"
        if now >= self.expires_at:
            return "expired"
        return None


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    name: str
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
