"""Request plumbing shared by the routes: the container, the caller, the body."""

from __future__ import annotations

import math
from typing import Any

import orjson
from fastapi import Request
from starlette.datastructures import Headers

from tradewire.adapters.formats.errors import detail
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.errors import ServiceDisabled
from tradewire.entrypoints.api.errors import ApiError, unauthorized
from tradewire.services import accounts, capabilities
from tradewire.services.capabilities import PARTNER_TOKEN_PREFIX
from tradewire.services.ingest import Caller
from tradewire.services.ports import UnitOfWork


def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


def authenticate(c: Container, headers: Headers, scope: Scope | None, *,
                 jwt_only: bool = False, partners: bool = False) -> Principal:
    """The caller from `X-API-Key` or `Authorization: Bearer <jwt>` (or a partner's Bearer
    token where `partners`); 401/403 otherwise."""
    principal = None
    api_key = headers.get("x-api-key")
    bearer = headers.get("authorization", "")
    token = bearer[7:].strip() if bearer[:7].lower() == "bearer " else ""
    if token.startswith(PARTNER_TOKEN_PREFIX):
        if partners:
            principal = capabilities.principal_for_partner(token, c.deps, c.secrets)
    elif token:
        principal = accounts.principal_for_token(token, c.deps, c.secrets)
    elif api_key and not jwt_only:
        principal = accounts.principal_for_key(api_key, c.deps, c.secrets)
    elif api_key and jwt_only:
        raise unauthorized("This endpoint requires JWT authentication (Authorization: Bearer)")
    return admit(c, principal, scope)


def key_caller(c: Container, headers: Headers, scope: Scope) -> Caller | None:
    """For a request whose only credential is an X-API-Key: `authenticate`'s check as the
    first step of the unit that stores what the request asks for (no read transaction of its
    own; it raises there, and the unit stores nothing). None for any other credential."""
    key_hash = api_key_hash(c, headers)
    return None if key_hash is None else caller_of_key(c, key_hash, scope)


def api_key_hash(c: Container, headers: Headers) -> str | None:
    """The keyed hash of the request's X-API-Key when that is its only credential (hashed
    here, not in the writer's turn); None for any other credential."""
    api_key = headers.get("x-api-key")
    if not api_key or "authorization" in headers:
        return None
    return c.secrets.hash_api_key(api_key)


def caller_of_key(c: Container, key_hash: str, scope: Scope) -> Caller:
    """`key_caller` for a key already hashed (`api_key_hash`)."""

    def caller(uow: UnitOfWork, account_id: str) -> Principal:
        return admit(c, accounts.principal_of_key(uow, key_hash, account_id=account_id), scope)

    return caller


def admit(c: Container, principal: Principal | None, scope: Scope | None) -> Principal:
    """401 without a caller, 403 without `scope`, 429 past the credential's rate."""
    if principal is None:
        raise unauthorized()
    if scope is not None and not principal.has(scope):
        raise ApiError(403, f"This credential lacks the '{scope}' scope", "FORBIDDEN")
    rate_limit(c, f"{principal.via}:{principal.key_id or principal.user_id}")
    return principal


def rate_limit(c: Container, credential: str, *, webhook: bool = False) -> None:
    """429 with Retry-After past the credential's rate; a webhook that cannot read a 429
    (TradingView resends only after a 5xx) gets 503 instead."""
    limiter = getattr(c, "limiter", None)
    wait = limiter.take(credential) if limiter is not None else None
    if wait is None:
        return
    headers = {"Retry-After": str(max(1, math.ceil(wait)))}
    if webhook:
        raise ApiError(503, "Too many requests with this token; retry shortly",
                       "SERVICE_OVERLOADED", headers=headers)
    raise ApiError(429, "Too many requests with this credential; retry after the Retry-After "
                   "seconds", "RATE_LIMITED", headers=headers)


def ensure_signals_enabled(c: Container) -> None:
    if not c.settings.signals_enabled:
        raise ServiceDisabled("Signal processing is disabled")


def decode_json(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest([detail("invalid_type", "Request body is required")])
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest([detail("invalid_json", f"Malformed JSON: {exc}")]) from None
    path = _nul_path(data)
    if path is not None:
        raise BadRequest([detail("invalid_string", "NUL characters are not accepted", path)])
    return data


def _nul_path(data: Any) -> list[str | int] | None:
    """The path of the first string (value or key) holding a NUL character, if any."""
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return path
        elif isinstance(node, dict):
            for key, value in node.items():
                if "\x00" in key:
                    return [*path, key]
                stack.append((value, [*path, key]))
        elif isinstance(node, list):
            stack.extend((value, [*path, i]) for i, value in enumerate(node))
    return None
