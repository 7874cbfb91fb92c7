"""The service hashes passwords at the cost its settings give (tests/support.py configures
argon2's cheapest), and a user whose hash was made at another cost still signs in."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from tests.support import CHEAP_PASSWORDS
from tradewire.adapters.security import SecretBox
from tradewire.bootstrap import Container
from tradewire.services import accounts


def _stored_hash(c: Container, user_id: str) -> str:
    with c.db.engine.connect() as conn:
        return str(conn.execute(text("SELECT password_hash FROM app_user WHERE id = :id"),
                                {"id": user_id}).scalar_one())


def test_passwords_are_hashed_at_the_configured_cost_and_any_cost_signs_in(
        container: Container, client: httpx.Client) -> None:
    assert container.settings.password_hash == CHEAP_PASSWORDS
    cheap = accounts.create_user("carol", "pw-carol-0123", is_admin=False, deps=container.deps,
                                 secrets=container.secrets)
    assert _stored_hash(container, cheap.id).startswith("$argon2id$v=19$m=8,t=1,p=1$")

    # Made before the cost was lowered: the default cost, kept in the hash itself.
    strong = accounts.create_user("dave", "pw-dave-0123", is_admin=False, deps=container.deps,
                                  secrets=SecretBox(container.settings.resolved_secret_key()))
    assert _stored_hash(container, strong.id).startswith("$argon2id$v=19$m=65536,t=3,p=4$")

    for username, password in (("carol", "pw-carol-0123"), ("dave", "pw-dave-0123")):
        r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
    r = client.post("/api/v1/auth/login", json={"username": "dave", "password": "pw-dave-0124"})
    assert r.status_code == 401
