"""Use cases for people and credentials: users, accounts, API keys, login, first start."""

from __future__ import annotations

import secrets as stdlib_secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tradewire.domain.accounts import ALL_SCOPES, Account, ApiKey, Principal, Scope, User
from tradewire.domain.audit import AuditEvent
from tradewire.domain.errors import NotFound, Rejected
from tradewire.domain.values import new_id
from tradewire.services import credentials
from tradewire.services.capabilities import create_access_token
from tradewire.services.deps import Deps
from tradewire.services.ports import Secrets, UnitOfWork

DEFAULT_KEY_SCOPES = frozenset({Scope.SIGNALS_WRITE, Scope.SIGNALS_READ, Scope.ACCOUNTS_READ,
                                Scope.MARKET_WRITE})


def create_user(username: str, password: str, *, is_admin: bool, deps: Deps,
                secrets: Secrets) -> User:
    user = User(id=new_id(), username=username, password_hash=secrets.hash_password(password),
                is_admin=is_admin, created_at=deps.clock.now())
    with deps.uow() as uow:
        if uow.users.by_username(username) is not None:
            raise Rejected(f"user {username} exists", code="USER_EXISTS")
        uow.users.add(user)
        uow.audit.add(AuditEvent(entity="user", entity_id=user.id, event="UserCreated",
                                 at=user.created_at, data={"username": username}))
        uow.commit()
    return user


def create_account(user_id: str, name: str, *, broker: str, cash: Decimal, deps: Deps,
                   market: str = "XNYS",
                   secret: Mapping[str, Any] | None = None) -> Account:
    """Store the account (with its sealed broker credentials, when the broker needs keys),
    then open its book at the broker outside the transaction: the paper broker opens one, a
    real broker is asked for the account, which proves the keys work."""
    account = Account(id=new_id(), user_id=user_id, name=name, broker=broker,
                      starting_cash=cash, created_at=deps.clock.now(), market=market)
    if credentials.needs_credentials(broker) and not secret:
        raise Rejected(f"broker {broker} needs credentials", code="BROKER_CREDENTIALS_MISSING")
    with deps.uow() as uow:
        if uow.users.get(user_id) is None:
            raise NotFound(f"user {user_id} not found", code="USER_NOT_FOUND")
        uow.accounts.add(account)
        if secret:
            credentials.put(uow, account.id, broker, secret, deps)
        uow.audit.add(AuditEvent(entity="account", entity_id=account.id, event="AccountCreated",
                                 at=account.created_at, account_id=account.id,
                                 data={"broker": broker, "cash": str(cash)}))
        uow.commit()
    deps.brokers.for_account(account).open_account(account.id, cash, market)
    return account


def create_api_key(user_id: str, scopes: Iterable[Scope], account_ids: Iterable[str] | None, *,
                   deps: Deps, secrets: Secrets) -> tuple[ApiKey, str]:
    """A new key; the plaintext is returned once and only its keyed hash is stored."""
    plaintext, prefix = secrets.new_api_key()
    key = ApiKey(id=new_id(), user_id=user_id, prefix=prefix,
                 key_hash=secrets.hash_api_key(plaintext), scopes=frozenset(scopes),
                 account_ids=frozenset(account_ids) if account_ids is not None else None,
                 created_at=deps.clock.now())
    with deps.uow() as uow:
        user = uow.users.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found", code="USER_NOT_FOUND")
        for account_id in key.account_ids or ():
            account = uow.accounts.get(account_id)
            if account is None or (account.user_id != user_id and not user.is_admin):
                raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
        uow.keys.add(key)
        uow.audit.add(AuditEvent(entity="api_key", entity_id=key.id, event="ApiKeyCreated",
                                 at=key.created_at, data={"prefix": prefix,
                                                          "scopes": sorted(key.scopes)}))
        uow.commit()
    return key, plaintext


def revoke_api_key(key_id: str, deps: Deps) -> bool:
    with deps.uow() as uow:
        done = uow.keys.revoke(key_id, deps.clock.now())
        uow.commit()
    return bool(done)


def principal_for_key(plaintext: str, deps: Deps, secrets: Secrets) -> Principal | None:
    with deps.uow(write=False) as uow:
        return principal_in(uow, plaintext, secrets)


def principal_in(uow: UnitOfWork, plaintext: str, secrets: Secrets, *,
                 account_id: str | None = None) -> Principal | None:
    """The holder of API key `plaintext`, read in `uow`: a write unit that stores what the key
    asks for reads it in the same transaction (no read transaction of its own). With
    `account_id` (the account the request names, which the unit reads next), that account is
    read in the same statement and kept by `uow.accounts`; whether the key may use it is
    still `load_account`'s question."""
    return principal_of_key(uow, secrets.hash_api_key(plaintext), account_id=account_id)


def principal_of_key(uow: UnitOfWork, key_hash: str, *, account_id: str | None = None
                     ) -> Principal | None:
    """`principal_in` for a key already hashed (`Secrets.hash_api_key`): hashed before the
    unit, the hash costs the write unit (and the batch holding the write lock) nothing."""
    found = uow.keys.with_owner_admin(key_hash, account_id)
    if found is None:
        return None
    key, is_admin, account = found
    if account is not None:
        uow.accounts.remember(account)
    if key.revoked_at is not None:
        return None
    return Principal(user_id=key.user_id, is_admin=is_admin, scopes=key.scopes,
                     account_ids=key.account_ids, via="api_key", key_id=key.id)


def principal_for_token(token: str, deps: Deps, secrets: Secrets) -> Principal | None:
    user_id = secrets.read_token(token)
    if user_id is None:
        return None
    with deps.uow(write=False) as uow:
        user = uow.users.get(user_id)
    if user is None:
        return None
    scopes = ALL_SCOPES if user.is_admin else ALL_SCOPES - {Scope.ADMIN}
    return Principal(user_id=user.id, is_admin=user.is_admin, scopes=scopes, via="jwt")


def login(username: str, password: str, deps: Deps, secrets: Secrets) -> tuple[str, int]:
    with deps.uow(write=False) as uow:
        user = uow.users.by_username(username)
    # Verify against a dummy hash when the user is unknown, so timing tells nothing.
    stored = user.password_hash if user else secrets.hash_password("x")
    if not secrets.verify_password(stored, password) or user is None:
        raise Rejected("invalid username or password", code="UNAUTHORIZED")
    return secrets.issue_token(user.id)


@dataclass(frozen=True)
class Bootstrap:
    created: bool
    account_id: str | None = None
    api_key: str | None = None
    access_token: str | None = None
    admin_username: str | None = None
    admin_password: str | None = None


def bootstrap(deps: Deps, secrets: Secrets, *, cash: Decimal = Decimal(100_000)) -> Bootstrap:
    """On an empty database: an admin, a paper account and an API key. Idempotent."""
    with deps.uow(write=False) as uow:
        if uow.users.count() > 0:
            return Bootstrap(created=False)
    password = stdlib_secrets.token_urlsafe(18)
    admin = create_user("admin", password, is_admin=True, deps=deps, secrets=secrets)
    # Around the clock, so a first signal fills whatever the hour; an account on an exchange's
    # hours is one `tradewire accounts create --market XNYS` away.
    account = create_account(admin.id, "paper", broker="paper", cash=cash, deps=deps,
                             market="24/7")
    _, key = create_api_key(admin.id, DEFAULT_KEY_SCOPES, None, deps=deps, secrets=secrets)
    _, token = create_access_token(account.id, deps, secrets)
    return Bootstrap(True, account.id, key, token, admin.username, password)
