"""Users, trading accounts, API keys, and who may see what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class Scope(StrEnum):
    SIGNALS_WRITE = "signals:write"
    SIGNALS_READ = "signals:read"
    ACCOUNTS_READ = "accounts:read"
    MARKET_WRITE = "market:write"
    ADMIN = "admin"


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    password_hash: str
    is_admin: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    user_id: str
    name: str
    broker: str
    starting_cash: Decimal
    created_at: datetime
    market: str = "XNYS"
    max_lag_s: int | None = None  # refuse alerts older than this many seconds (None: off)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user_id: str
    prefix: str
    key_hash: str
    scopes: frozenset[Scope]
    account_ids: frozenset[str] | None  # None: every account of the user
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: a user, through a session (JWT) or one of their API keys."""

    user_id: str
    is_admin: bool
    scopes: frozenset[Scope]
    account_ids: frozenset[str] | None = None
    via: str = "jwt"  # "jwt", "api_key", "access_token" or "partner"
    key_id: str | None = None

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes

    def can_see(self, account: Account) -> bool:
        """Owners see their accounts (narrowed by the key), admins see all, a partner sees
        exactly the accounts that granted it."""
        if self.account_ids is not None and account.id not in self.account_ids:
            return False
        if self.via == "partner":
            return self.account_ids is not None
        return self.is_admin or account.user_id == self.user_id
