"""Use cases for capabilities: access tokens and partners (who may execute for an account)."""

from __future__ import annotations

from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.audit import AuditEvent
from tradewire.domain.capabilities import AccessToken, Partner
from tradewire.domain.errors import NotFound
from tradewire.domain.values import new_id
from tradewire.services.deps import Deps
from tradewire.services.ports import Secrets, UnitOfWork

ACCESS_TOKEN_PREFIX = "twat_"
PARTNER_TOKEN_PREFIX = "twp_"


def create_access_token(account_id: str, deps: Deps, secrets: Secrets) -> tuple[AccessToken, str]:
    """A token for /signal/execute-via-token/{token}: one account, signal execution only."""
    plaintext = ACCESS_TOKEN_PREFIX + secrets.random_token()
    token = AccessToken(id=new_id(), account_id=account_id, prefix=plaintext[:12],
                        token_hash=secrets.hash_api_key(plaintext), created_at=deps.clock.now())
    with deps.uow() as uow:
        if uow.accounts.get(account_id) is None:
            raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
        uow.access_tokens.add(token)
        uow.audit.add(AuditEvent(entity="access_token", entity_id=token.id,
                                 event="AccessTokenCreated", at=token.created_at,
                                 account_id=account_id, data={"prefix": token.prefix}))
        uow.commit()
    return token, plaintext


def revoke_access_token(token_id: str, deps: Deps) -> bool:
    with deps.uow() as uow:
        done = uow.access_tokens.revoke(token_id, deps.clock.now())
        uow.commit()
    return bool(done)


def principal_for_access_token(plaintext: str, deps: Deps, secrets: Secrets) -> Principal | None:
    with deps.uow(write=False) as uow:
        return access_token_principal_in(uow, plaintext, secrets)


def access_token_principal_in(uow: UnitOfWork, plaintext: str, secrets: Secrets
                              ) -> Principal | None:
    """The holder of access token `plaintext`, read in `uow` (a write unit that stores what
    the token asks for reads it in the same transaction)."""
    found = uow.access_tokens.with_account(secrets.hash_api_key(plaintext))
    if found is None:
        return None
    token, account = found
    if token.revoked_at is not None or account is None:
        return None
    uow.accounts.remember(account)  # the signal's unit asks for it next
    return Principal(user_id=account.user_id, is_admin=False, scopes=frozenset({Scope.SIGNALS_WRITE}),
                     account_ids=frozenset({account.id}), via="access_token", key_id=token.id)


def create_partner(name: str, deps: Deps, secrets: Secrets) -> tuple[Partner, str]:
    """A partner and its Bearer token (shown once)."""
    plaintext = PARTNER_TOKEN_PREFIX + secrets.random_token()
    partner = Partner(id=new_id(), name=name, token_hash=secrets.hash_api_key(plaintext),
                      created_at=deps.clock.now())
    with deps.uow() as uow:
        uow.partners.add(partner)
        uow.audit.add(AuditEvent(entity="partner", entity_id=partner.id, event="PartnerCreated",
                                 at=partner.created_at, data={"name": name}))
        uow.commit()
    return partner, plaintext


def grant_partner(partner_id: str, account_id: str, deps: Deps) -> None:
    """Let a partner place orders for an account."""
    now = deps.clock.now()
    with deps.uow() as uow:
        if uow.partners.get(partner_id) is None:
            raise NotFound(f"partner {partner_id} not found", code="PARTNER_NOT_FOUND")
        if uow.accounts.get(account_id) is None:
            raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
        if uow.partners.grant(partner_id, account_id, now):
            uow.audit.add(AuditEvent(entity="partner", entity_id=partner_id, event="PartnerGranted",
                                     at=now, account_id=account_id))
        uow.commit()


def principal_for_partner(plaintext: str, deps: Deps, secrets: Secrets) -> Principal | None:
    if not plaintext.startswith(PARTNER_TOKEN_PREFIX):
        return None
    with deps.uow(write=False) as uow:
        partner = uow.partners.by_hash(secrets.hash_api_key(plaintext))
        granted = uow.partners.granted_accounts(partner.id) if partner is not None else []
    if partner is None or partner.revoked_at is not None:
        return None
    return Principal(user_id=f"partner:{partner.id}", is_admin=False,
                     scopes=frozenset({Scope.SIGNALS_WRITE, Scope.SIGNALS_READ}),
                     account_ids=frozenset(granted), via="partner", key_id=partner.id)
