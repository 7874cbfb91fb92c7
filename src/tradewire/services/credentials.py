"""Use cases of broker credentials: sealed on the way in, opened only for the adapter that
talks to the broker, resealed when the keys rotate. Plaintext never reaches a log, an audit
event, an API response or an error message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradewire.domain.audit import AuditEvent
from tradewire.domain.errors import Rejected
from tradewire.services.deps import Deps
from tradewire.services.ports import Sealer, UnitOfWork, UnitOfWorkFactory

# What each broker kind needs (and may take); the rest of a secret is refused, not stored.
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "alpaca": (frozenset({"key_id", "secret_key"}), frozenset({"paper", "base_url"})),
    "ccxt": (frozenset({"apiKey", "secret"}),
             frozenset({"password", "uid", "sandbox", "base_url"})),
}


def broker_kind(broker: str) -> str:
    return broker.partition(":")[0]


def needs_credentials(broker: str) -> bool:
    return broker_kind(broker) in FIELDS


def check(broker: str, secret: Mapping[str, Any]) -> dict[str, Any]:
    """The secret as stored, or Rejected naming the fields (never their values)."""
    required, optional = FIELDS.get(broker_kind(broker), (frozenset(), frozenset()))
    missing = sorted(k for k in required if not secret.get(k))
    unknown = sorted(set(secret) - required - optional)
    if missing:
        raise Rejected(f"{broker} credentials need {', '.join(missing)}",
                       code="BROKER_CREDENTIALS_INVALID")
    if unknown:
        raise Rejected(f"{broker} credentials do not take {', '.join(unknown)}",
                       code="BROKER_CREDENTIALS_INVALID")
    return dict(secret)


def put(uow: UnitOfWork, account_id: str, broker: str, secret: Mapping[str, Any],
        deps: Deps) -> None:
    """Inside the caller's transaction: seal and store an account's credentials."""
    if deps.sealer is None:
        raise Rejected("no credential keys configured", code="BROKER_CREDENTIALS_INVALID")
    now = deps.clock.now()
    uow.credentials.put(account_id, deps.sealer.seal(check(broker, secret)), now)
    uow.audit.add(AuditEvent(entity="account", entity_id=account_id, event="CredentialsStored",
                             at=now, account_id=account_id, data={"fields": sorted(secret)}))


def rotate(deps: Deps) -> int:
    """Reseal every stored credential under the primary key, in one transaction: afterwards
    the older keys can be dropped. Returns how many were resealed."""
    if deps.sealer is None:
        return 0
    with deps.uow() as uow:
        rows = uow.credentials.all()
        now = deps.clock.now()
        for account_id, sealed in rows:
            uow.credentials.put(account_id, deps.sealer.reseal(sealed), now)
        uow.audit.add(AuditEvent(entity="service", entity_id="credentials",
                                 event="CredentialsResealed", at=now, data={"count": len(rows)}))
        uow.commit()
    return len(rows)


class CredentialSource:
    """account id → its opened credentials, for broker adapters (read when a client is made)."""

    def __init__(self, uow: UnitOfWorkFactory, sealer: Sealer) -> None:
        self._uow = uow
        self._sealer = sealer

    def __call__(self, account_id: str) -> dict[str, Any]:
        with self._uow(write=False) as uow:
            sealed = uow.credentials.get(account_id)
        if sealed is None:
            raise Rejected(f"no broker credentials stored for account {account_id}",
                           code="BROKER_CREDENTIALS_MISSING")
        return self._sealer.open(sealed)

    def __repr__(self) -> str:
        return "CredentialSource(<sealed>)"
