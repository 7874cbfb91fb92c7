"""The writer process's messages (entrypoints/api/writer_process.py), without processes: a
signal and its answer arrive equal, in msgpack when it gives them back equal and pickled when
not; the requests of one turn of the event loop go out in one write; what a unit raised
reaches the request as the same error; a message split anywhere is read whole; an answer that
cannot be read still ends its request's wait. The processes themselves:
tests/e2e/test_writer_process.py."""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tradewire.domain.accounts import Account
from tradewire.domain.errors import NotFound, Rejected
from tradewire.domain.orders import Order
from tradewire.domain.signals import ExitRule, ExitTrigger, Leg, LinkKind, Signal, SignalStatus
from tradewire.domain.values import (
    Action,
    ExecuteMode,
    OrderPurpose,
    OrderType,
    QuantityType,
    Side,
    TimeInForce,
)
from tradewire.entrypoints.api import writer_process as wp
from tradewire.entrypoints.api.errors import ApiError
from tradewire.services.ingest import IngestResult, Outcome

_AT = datetime(2026, 12, 4, 14, 30, 15, 123456, tzinfo=UTC)


def _signal(**changes: Any) -> Signal:
    """A signal using every kind of field: enums, Decimals, datetimes, legs, an exit rule,
    free-form JSON."""
    signal = Signal(
        id="0193a0b1-0000-7000-8000-000000000001", account_id="acct", symbol="AAPL",
        action=Action.OPEN_LONG, quantity=Decimal("12.50"), execute_mode=ExecuteMode.SCHEDULED,
        created_at=_AT, quantity_type=QuantityType.DOLLAR_AMOUNT, order_type=OrderType.LIMIT,
        limit_price=Decimal("187.125"), time_in_force=TimeInForce.GTC, extended_hours=True,
        scheduled_at=_AT.replace(hour=15), valid_until=_AT.replace(hour=16), source_id="tv-1",
        metadata={"note": "x", "n": 3, "ratio": 0.25, "tags": ["a", {"b": None}], "ok": True},
        exit_rule=ExitRule(ExitTrigger.AT_TIME, at_time="15:55", zone="America/New_York",
                           limit_price=Decimal("190")),
        status=SignalStatus.SCHEDULED, legs=(Leg("MSFT", Action.OPEN_SHORT, Decimal("3")),),
        link=LinkKind.OCO, protection=({"percent": 2.5}, None))
    return replace(signal, **changes)


def _request() -> wp.StoreSignal:
    return wp.StoreSignal(_signal(), "ab" * 32, {})


def _assert_same(got: Any, sent: Any) -> None:
    """Equal, and every field of the same type (an enum stays that enum, a Decimal a Decimal)."""
    assert got == sent and type(got) is type(sent)
    for f in fields(sent):
        ours, theirs = getattr(got, f.name), getattr(sent, f.name)
        assert type(ours) is type(theirs), f.name
        if f.name in ("signal", "account", "exit_rule") and theirs is not None:
            _assert_same(ours, theirs)


class _Wire:
    """Stands for the socket: what the API process writes."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass


def _connected() -> tuple[wp.WriterProcess, wp._Answers]:
    client = wp.WriterProcess()
    answers = wp._Answers(client)
    answers.connection_made(_Wire())  # type: ignore[arg-type]
    answers.data_received(wp._frame(wp._READY_ID, wp._PICKLED, pickle.dumps(7)))  # its pid
    assert client.usable and client.pid == 7
    return client, answers


def test_a_signal_and_its_answer_go_as_msgpack_and_arrive_equal_with_their_types() -> None:
    request = wp.StoreSignal(_signal(), "ab" * 32, {"request_id": "r-1", "signal_id": "s"})
    kind, data = wp._REQUESTS.encode(request)
    assert kind == wp._VALUE
    _assert_same(wp._REQUESTS.decode(kind, data), request)

    order = Order("o-1", "acct", request.signal.id, "cid-1", "AAPL", Side.BUY, Decimal("12.5"),
                  OrderType.LIMIT, TimeInForce.GTC, OrderPurpose.ENTRY, _AT,
                  limit_price=Decimal("187.125"))
    answer = IngestResult(request.signal, Outcome.CREATED, order=order, orders=(order,),
                          account=Account("acct", "u", "paper", "paper", Decimal("1E+5"), _AT),
                          claimed=frozenset({"o-1"}))
    kind, data = wp._ANSWERS.encode(answer)
    assert kind == wp._VALUE
    got = wp._ANSWERS.decode(kind, data)
    _assert_same(got, answer)
    assert got.orders[0] == order and type(got.orders[0].side) is Side


@pytest.mark.parametrize("changes", [
    {"metadata": {"price": Decimal("1.10")}},  # msgpack would give back the string "1.10"
    {"metadata": {"pair": (1, 2)}},  # ... a list
    {"metadata": {"when": datetime(2026, 12, 4, 9, 30)}},  # noqa: DTZ001 (naive: ... a string)
    {"protection": ({"percent": Decimal("2.5")}, None)},
], ids=["decimal", "tuple", "naive datetime", "decimal in protection"])
def test_a_signal_msgpack_would_not_give_back_equal_goes_pickled_and_arrives_equal(
        changes: dict[str, Any]) -> None:
    request = wp.StoreSignal(_signal(**changes), "ab" * 32, {})
    kind, data = wp._REQUESTS.encode(request)
    assert kind == wp._PICKLED
    got = wp._REQUESTS.decode(kind, data)
    _assert_same(got, request)
    for name, sent in changes.items():
        assert getattr(got.signal, name) == sent
        assert repr(getattr(got.signal, name)) == repr(sent)  # the same types all the way down


def test_the_requests_of_one_turn_of_the_event_loop_go_out_in_one_write() -> None:
    async def scenario() -> list[bytes]:
        client, _ = _connected()
        wire = client._transport
        requests = [wp.StoreSignal(_signal(id=f"s-{i}"), "ab" * 32, {}) for i in range(3)]
        waiting = [asyncio.ensure_future(client.store(r)) for r in requests]
        await asyncio.sleep(0)  # every store ran up to its wait
        await asyncio.sleep(0)  # the send they scheduled ran
        sent = list(wire.sent)  # type: ignore[union-attr]
        for w in waiting:
            w.cancel()
        return sent

    sent = asyncio.run(scenario())
    assert len(sent) == 1
    got = wp._messages(bytearray(sent[0]))
    assert [msg_id for msg_id, _, _ in got] == [0, 1, 2]
    assert [wp._REQUESTS.decode(kind, data).signal.id for _, kind, data in got] == [
        "s-0", "s-1", "s-2"]


@pytest.mark.parametrize("error", [
    ApiError(429, "Too many requests", "RATE_LIMITED", headers={"Retry-After": "3"}),
    NotFound("account a not found", code="ACCOUNT_NOT_FOUND"),
    Rejected("sourceId is being written concurrently; retry", code="CONFLICT"),
    ValueError("a plain one"),
])
def test_what_a_unit_raised_reaches_the_request_as_the_same_error(error: Exception) -> None:
    async def scenario() -> BaseException:
        client, answers = _connected()
        waiting = asyncio.ensure_future(client.store(_request()))
        await asyncio.sleep(0)
        answers.data_received(wp._answer(0, None, error))
        with pytest.raises(type(error)) as raised:
            await waiting
        return raised.value

    got = asyncio.run(scenario())
    assert type(got) is type(error) and got.args == error.args
    assert {k: v for k, v in vars(got).items()} == vars(error)


def test_a_message_split_anywhere_is_read_whole() -> None:
    pickled = IngestResult(_signal(metadata={"price": Decimal("1.10")}), Outcome.CREATED)
    frames = wp._answer(1, pickled, None) + wp._answer(2, pickled, None)
    for cut in range(1, len(frames)):
        buffer = bytearray(frames[:cut])
        got = wp._messages(buffer)
        buffer += frames[cut:]
        got += wp._messages(buffer)
        assert [(msg_id, kind) for msg_id, kind, _ in got] == [(1, wp._PICKLED), (2, wp._PICKLED)]
        assert buffer == bytearray()


def test_an_answer_that_cannot_be_read_ends_its_requests_wait_with_an_error() -> None:
    async def scenario() -> Any:
        client, answers = _connected()
        waiting = asyncio.ensure_future(client.store(_request()))
        await asyncio.sleep(0)
        answers.data_received(wp._frame(0, wp._PICKLED, b"not a pickle"))
        return await asyncio.wait_for(waiting, 5)

    with pytest.raises(RuntimeError, match="could not be read"):
        asyncio.run(scenario())


def test_when_the_connection_goes_every_waiting_request_gets_503_and_none_is_sent_after() -> None:
    async def scenario() -> tuple[list[BaseException], bool]:
        client, answers = _connected()
        waiting = [asyncio.ensure_future(client.store(_request())) for _ in range(3)]
        await asyncio.sleep(0)
        answers.connection_lost(None)
        errors = [e for e in await asyncio.gather(*waiting, return_exceptions=True)
                  if isinstance(e, BaseException)]
        return errors, client.usable

    errors, usable = asyncio.run(scenario())
    assert len(errors) == 3 and all(isinstance(e, wp.WriterGone) for e in errors)
    assert all(e.status == 503 for e in errors if isinstance(e, wp.WriterGone))
    assert not usable


def test_the_writer_process_sends_each_batchs_answers_before_it_writes_the_next() -> None:
    """40 requests arrived at once: written in batches of BATCH_UNITS, each batch's answers
    sent before the next batch is written (the API process answers them meanwhile)."""
    events: list[tuple[str, int]] = []

    class Writer:
        def write_here(self, units: list[Any]) -> list[tuple[Any, BaseException | None]]:
            events.append(("write", len(units)))
            return [(None, Rejected("refused", code="X"))] * len(units)

    class Socket:
        def __init__(self, arrived: bytes) -> None:
            self.arrived = [arrived]

        def recv(self, _: int) -> bytes:
            return self.arrived.pop() if self.arrived else b""  # then: closed

        def sendall(self, data: bytes) -> None:
            events.append(("send", len(wp._messages(bytearray(data)))))

    class Container:
        writer = Writer()

    arrived = b"".join(wp._frame(i, wp._PICKLED, pickle.dumps(i)) for i in range(40))
    wp.serve(Container(), Socket(arrived))  # type: ignore[arg-type]
    n = wp.BATCH_UNITS
    assert n < 40
    sizes = [n] * (40 // n) + ([40 % n] if 40 % n else [])
    assert events == [e for size in sizes for e in (("write", size), ("send", size))]
