"""POST /api/v1/signals with an X-API-Key reads the key inside the unit that stores the signal.

That saves the request a read transaction of its own (a quarter of a pending signal's CPU,
docs/performance.md) and changes nothing a caller can see: a key revoked a moment ago by
another process is refused on its next signal, a key without `signals:write` gets 403, a
stranger's malformed body gets 401 rather than a 400 that would describe it, and a refused
signal leaves nothing behind.

On SQLite the units of one batch (which holds the file's write lock until its commit) sent
with one key read it once; a revocation, a new key or a rolled-back unit in the same batch
makes the batch read it again. On PostgreSQL every unit reads it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from tests.support import Caller, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.db.group_commit import GroupCommit
from tradewire.adapters.db.uow import SqlUnitOfWork
from tradewire.bootstrap import Container
from tradewire.domain.accounts import ApiKey, Principal, Scope
from tradewire.domain.values import new_id
from tradewire.services import accounts


def _body(caller: Caller, source: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 1, "executeMode": "pending", "sourceId": source, **extra}


def _signals(container: Container) -> int:
    with container.db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM signal")).scalar_one())


@pytest.fixture
def other_process(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[Container]:
    """A second tradewire on the same database, as a second `tradewire api` process is."""
    c = make_container(db_url, tmp_path / "other", clock)
    yield c
    c.close()


def test_the_key_is_read_once_and_inside_the_write_unit(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    lookups: list[bool] = []

    def seen(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "api_key" in statement:
            lookups.append(bool(conn.get_execution_options().get("tw_write", True)))

    event.listen(container.db.engine, "before_cursor_execute", seen)
    try:
        r = client.post("/api/v1/signals", headers=alice.headers, json=_body(alice, "in-unit"))
    finally:
        event.remove(container.db.engine, "before_cursor_execute", seen)
    assert r.status_code == 201, r.text
    assert lookups == [True]  # one statement, on the writing connection


def test_a_key_revoked_by_another_process_is_refused_on_its_next_signal(
        client: httpx.Client, alice: Caller, container: Container,
        other_process: Container) -> None:
    key, plaintext = accounts.create_api_key(alice.user_id, accounts.DEFAULT_KEY_SCOPES, None,
                                             deps=other_process.deps,
                                             secrets=other_process.secrets)
    headers = {"X-API-Key": plaintext}
    first = client.post("/api/v1/signals", headers=headers, json=_body(alice, "before-revoke"))
    assert first.status_code == 201, first.text
    assert accounts.revoke_api_key(key.id, other_process.deps)

    before = _signals(container)
    r = client.post("/api/v1/signals", headers=headers, json=_body(alice, "after-revoke"))
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "UNAUTHORIZED"
    assert _signals(container) == before


def test_a_key_without_the_write_scope_gets_403_and_stores_nothing(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    _, plaintext = accounts.create_api_key(alice.user_id, {Scope.SIGNALS_READ}, None,
                                           deps=container.deps, secrets=container.secrets)
    before = _signals(container)
    r = client.post("/api/v1/signals", headers={"X-API-Key": plaintext},
                    json=_body(alice, "read-only"))
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "FORBIDDEN"
    assert _signals(container) == before


@pytest.mark.parametrize("body", [b"{not json", b'{"symbol": "AAPL"}', b"[]"])
def test_a_stranger_learns_nothing_from_a_malformed_body(
        client: httpx.Client, container: Container, body: bytes) -> None:
    r = client.post("/api/v1/signals", headers={"X-API-Key": "tw_" + "x" * 40,
                                                "Content-Type": "application/json"},
                    content=body)
    assert r.status_code == 401, r.text
    assert "details" not in r.json() or not r.json()["details"]


def test_a_key_narrowed_to_another_account_stores_nothing(
        client: httpx.Client, alice: Caller, bob: Caller, container: Container) -> None:
    _, plaintext = accounts.create_api_key(alice.user_id, accounts.DEFAULT_KEY_SCOPES,
                                           [alice.account_id], deps=container.deps,
                                           secrets=container.secrets)
    before = _signals(container)
    r = client.post("/api/v1/signals", headers={"X-API-Key": plaintext},
                    json=_body(bob, "not-mine"))
    assert r.status_code == 404, r.text
    assert _signals(container) == before


@pytest.fixture
def key_reads(container: Container) -> Iterator[list[str]]:
    """The statements that read an API key, as they run."""
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM api_key" in statement:
            reads.append(statement)

    event.listen(container.db.engine, "before_cursor_execute", seen)
    yield reads
    event.remove(container.db.engine, "before_cursor_execute", seen)


def test_the_signals_of_one_batch_read_their_key_once_on_sqlite_and_each_on_postgresql(
        client: httpx.Client, alice: Caller, container: Container, db_kind: str,
        key_reads: list[str]) -> None:
    writer = container.writer
    assert writer is not None
    sent = 8
    answers: list[httpx.Response] = []

    def send(i: int) -> None:
        answers.append(client.post("/api/v1/signals", headers=alice.headers,
                                   json=_body(alice, f"one-batch-{i}")))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(sent)]
    writer._group.acquire()  # as another writer would: the units queue behind it
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        # The writer took the first and waits for the group; the others wait in its queue.
        while writer._queue.qsize() < sent - 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert writer._queue.qsize() == sent - 1
    finally:
        writer._group.release()
    for thread in threads:
        thread.join(10)
    assert sorted(r.status_code for r in answers) == [201] * sent, [r.text for r in answers]
    assert len(key_reads) == (1 if db_kind == "sqlite" else sent)


def _in_one_batch(container: Container,
                  units: list[Callable[[SqlUnitOfWork], Any]]) -> list[Any]:
    """Run `units` one after another in one batch of a group commit (the process's own on
    SQLite, one beside the other writers on PostgreSQL, as the batch writer's is); a unit
    that raises is rolled back alone, and its answer is the exception."""
    group = container.db.group or GroupCommit(container.db.engine)
    answers: list[Any] = []
    group.acquire()
    try:
        for unit in units:
            uow = SqlUnitOfWork.on(container.db, group.begin_unit())
            try:
                answers.append(unit(uow))
            except Exception as exc:
                group.end_unit(commit=False)
                answers.append(exc)
            else:
                group.end_unit(commit=True)
    finally:
        group.release(flush=True)
        if group is not container.db.group:
            group.close()
    return answers


def _holder(container: Container, plaintext: str, account_id: str
            ) -> Callable[[SqlUnitOfWork], Principal | None]:
    def unit(uow: SqlUnitOfWork) -> Principal | None:
        return accounts.principal_in(uow, plaintext, container.secrets, account_id=account_id)
    return unit


def test_a_key_revoked_earlier_in_the_batch_is_refused_by_the_units_after_it(
        alice: Caller, container: Container, key_reads: list[str]) -> None:
    key, plaintext = accounts.create_api_key(alice.user_id, accounts.DEFAULT_KEY_SCOPES, None,
                                             deps=container.deps, secrets=container.secrets)
    holder = _holder(container, plaintext, alice.account_id)

    def revoke(uow: SqlUnitOfWork) -> bool:
        return bool(uow.keys.revoke(key.id, container.deps.clock.now()))

    first, second, revoked, after = _in_one_batch(container, [holder, holder, revoke, holder])
    assert first is not None and first == second
    assert revoked is True
    assert after is None


def test_a_unit_rolled_back_takes_what_the_batch_read_after_its_writes_with_it(
        alice: Caller, container: Container) -> None:
    key, plaintext = accounts.create_api_key(alice.user_id, accounts.DEFAULT_KEY_SCOPES, None,
                                             deps=container.deps, secrets=container.secrets)
    holder = _holder(container, plaintext, alice.account_id)

    def revoke_then_fail(uow: SqlUnitOfWork) -> None:
        assert uow.keys.revoke(key.id, container.deps.clock.now())
        assert holder(uow) is None  # read, revoked, inside this unit
        raise RuntimeError("this unit fails after its revocation")

    failed, after = _in_one_batch(container, [revoke_then_fail, holder])
    assert isinstance(failed, RuntimeError)
    assert after is not None and after.user_id == alice.user_id  # the revocation is gone


def test_a_key_made_earlier_in_the_batch_is_found_by_the_units_after_it(
        alice: Caller, container: Container) -> None:
    plaintext = "tw_" + "k" * 40
    holder = _holder(container, plaintext, alice.account_id)

    def add(uow: SqlUnitOfWork) -> None:
        uow.keys.add(ApiKey(id=new_id(), user_id=alice.user_id, prefix=plaintext[:8],
                            key_hash=container.secrets.hash_api_key(plaintext),
                            scopes=frozenset(accounts.DEFAULT_KEY_SCOPES), account_ids=None,
                            created_at=container.deps.clock.now()))

    before, _, after = _in_one_batch(container, [holder, add, holder])
    assert before is None
    assert after is not None and after.user_id == alice.user_id


def test_every_unit_reads_the_key_on_postgresql_and_once_per_batch_on_sqlite(
        alice: Caller, container: Container, db_kind: str, key_reads: list[str]) -> None:
    holder = _holder(container, alice.key, alice.account_id)
    answers = _in_one_batch(container, [holder] * 4)
    assert all(a is not None and a.user_id == alice.user_id for a in answers)
    assert len(key_reads) == (1 if db_kind == "sqlite" else 4)
    _in_one_batch(container, [holder])  # a new batch reads it again
    assert len(key_reads) == (2 if db_kind == "sqlite" else 5)
