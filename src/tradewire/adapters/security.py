"""Credentials: keyed hashes for API keys, argon2id for passwords, HS256 JWTs for sessions,
Fernet for broker keys."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from tradewire.domain.errors import Rejected

KEY_PREFIX = "tw_"


class SecretBox:
    def __init__(self, secret_key: bytes, *, token_ttl: timedelta = timedelta(hours=12),
                 time_cost: int = 3, memory_kib: int = 65_536, parallelism: int = 4) -> None:
        """The last three: argon2id's cost for new password hashes (a hash made under other
        costs still verifies: each carries its own)."""
        self._key = hashlib.sha256(b"tradewire-api-key:" + secret_key).digest()
        self._jwt_key = hashlib.sha256(b"tradewire-jwt:" + secret_key).digest()
        self._ttl = token_ttl
        self._argon = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                     parallelism=parallelism)

    def new_api_key(self) -> tuple[str, str]:
        prefix = KEY_PREFIX + secrets.token_hex(4)
        return f"{prefix}_{secrets.token_urlsafe(32)}", prefix

    def random_token(self) -> str:
        return secrets.token_urlsafe(32)

    def hash_api_key(self, key: str) -> str:
        # Random keys need no slow hash: a keyed HMAC is unguessable without the server secret.
        # hmac.digest: OpenSSL's one-shot HMAC, the same digest as hmac.new(...).hexdigest()
        # without building an HMAC object (every signal's key or token goes through here).
        return hmac.digest(self._key, key.encode(), "sha256").hex()

    def hash_password(self, password: str) -> str:
        return self._argon.hash(password)

    def verify_password(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def issue_token(self, user_id: str) -> tuple[str, int]:
        now = datetime.now(UTC)
        claims = {"sub": user_id, "iat": now, "exp": now + self._ttl, "typ": "session"}
        return jwt.encode(claims, self._jwt_key, algorithm="HS256"), int(self._ttl.total_seconds())

    def read_token(self, token: str) -> str | None:
        try:
            claims = jwt.decode(token, self._jwt_key, algorithms=["HS256"],
                                options={"require": ["exp", "sub"]})
        except jwt.PyJWTError:
            return None
        sub = claims.get("sub")
        return sub if isinstance(sub, str) and claims.get("typ") == "session" else None


class SealError(Rejected):
    """A sealed credential could not be opened (a key is missing or the data was altered).
    The message never holds the secret."""

    code = "BROKER_CREDENTIALS_UNREADABLE"


class CredentialSealer:
    """Broker credentials encrypted with Fernet keys that live outside the database.

    The first key seals; every key opens (MultiFernet), so a new key can be added in front,
    everything resealed, and the old keys dropped."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one credential key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def seal(self, secret: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(secret, sort_keys=True).encode()).decode()

    def open(self, sealed: str) -> dict[str, Any]:
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            raise SealError("broker credentials cannot be opened with the configured keys") from None
        if not isinstance(data, dict):
            raise SealError("broker credentials are not a JSON object")
        return data

    def reseal(self, sealed: str) -> str:
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise SealError("broker credentials cannot be opened with the configured keys") from None

    def __repr__(self) -> str:
        return "CredentialSealer(<keys hidden>)"


def new_credential_key() -> bytes:
    return Fernet.generate_key()


def valid_credential_key(key: bytes) -> bool:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        return False
    return True
