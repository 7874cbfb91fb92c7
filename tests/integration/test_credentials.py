"""Broker credentials: sealed with keys kept outside the database, opened only for the adapter,
resealed when the keys rotate; no secret in the database, an audit event or an error."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from tests.support import make_caller
from tradewire.adapters.security import CredentialSealer, SealError
from tradewire.bootstrap import Container
from tradewire.domain.errors import Rejected
from tradewire.services import accounts, credentials
from tradewire.services.credentials import CredentialSource
from tradewire.services.ports import Page

SECRET = {"key_id": "PKTESTKEYID0000001", "secret_key": "s3cr3t-do-not-leak-0123456789",
          "paper": True}


def _store(c: Container, account_id: str, secret: dict[str, object]) -> None:
    with c.deps.uow() as uow:
        credentials.put(uow, account_id, "alpaca", secret, c.deps)
        uow.commit()


def _everything_stored(c: Container) -> str:
    with c.db.engine.connect() as conn:
        rows = [conn.execute(text(f"SELECT * FROM {t}")).all()
                for t in ("broker_credential", "audit_event", "account")]
    return json.dumps([[list(map(str, r)) for r in t] for t in rows])


def test_credentials_are_sealed_at_rest_and_open_for_the_adapter(container: Container) -> None:
    owner = make_caller(container)
    _store(container, owner.account_id, SECRET)
    stored = _everything_stored(container)
    assert SECRET["key_id"] not in stored and SECRET["secret_key"] not in stored
    source = CredentialSource(container.deps.uow, container.deps.sealer)  # type: ignore[arg-type]
    assert source(owner.account_id) == SECRET
    assert "s3cr3t" not in repr(source) and "s3cr3t" not in repr(container.deps.sealer)


def test_an_account_without_credentials_is_refused_by_name(container: Container) -> None:
    owner = make_caller(container)
    source = CredentialSource(container.deps.uow, container.deps.sealer)  # type: ignore[arg-type]
    with pytest.raises(Rejected) as err:
        source(owner.account_id)
    assert err.value.code == "BROKER_CREDENTIALS_MISSING"


@pytest.mark.parametrize(("secret", "says"), [
    ({"key_id": "PK1"}, "need secret_key"),
    ({"key_id": "PK1", "secret_key": "s3cr3t-x", "sneaky": "s3cr3t-y"}, "do not take sneaky"),
])
def test_incomplete_or_unknown_credentials_are_refused_without_echoing_them(
        container: Container, secret: dict[str, str], says: str) -> None:
    owner = make_caller(container)
    with pytest.raises(Rejected) as err:
        _store(container, owner.account_id, secret)
    assert says in err.value.message and "s3cr3t" not in err.value.message
    with container.deps.uow(write=False) as uow:
        assert uow.credentials.get(owner.account_id) is None


def test_a_real_broker_account_needs_credentials(container: Container) -> None:
    owner = make_caller(container)
    with pytest.raises(Rejected) as err:
        accounts.create_account(owner.user_id, "live", broker="alpaca", cash=Decimal(1),
                                deps=container.deps)
    assert err.value.code == "BROKER_CREDENTIALS_MISSING"
    with container.deps.uow(write=False) as uow:
        assert [a.broker for a in uow.accounts.list(owner.user_id, None, Page())] == ["paper"]


def test_rotation_reseals_everything_so_the_old_key_can_go(container: Container) -> None:
    old = Fernet.generate_key()
    new = Fernet.generate_key()
    before = replace(container.deps, sealer=CredentialSealer([old]))
    owners = [make_caller(container) for _ in range(3)]
    for i, o in enumerate(owners):
        with before.uow() as uow:
            credentials.put(uow, o.account_id, "alpaca", {**SECRET, "key_id": f"PK{i}"}, before)
            uow.commit()
    during = replace(container.deps, sealer=CredentialSealer([new, old]))
    assert credentials.rotate(during) == 3
    after = CredentialSource(container.deps.uow, CredentialSealer([new]))
    assert [after(o.account_id)["key_id"] for o in owners] == ["PK0", "PK1", "PK2"]
    stale = CredentialSource(container.deps.uow, CredentialSealer([old]))
    with pytest.raises(SealError) as err:
        stale(owners[0].account_id)
    assert "s3cr3t" not in str(err.value)
