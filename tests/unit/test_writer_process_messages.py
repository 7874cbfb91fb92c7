"""The writer process's messages (entrypoints/api/writer_process.py), without processes: what a
unit raised reaches the request as the same error; a message split anywhere is read whole; an
answer that cannot be read still ends its request's wait. The processes themselves:
tests/e2e/test_writer_process.py."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

from tradewire.domain.errors import NotFound, Rejected
from tradewire.entrypoints.api import writer_process as wp
from tradewire.entrypoints.api.errors import ApiError


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
    answers.data_received(wp._frame(wp._READY_ID, True, pickle.dumps(7)))  # its pid
    assert client.usable and client.pid == 7
    return client, answers


@pytest.mark.parametrize("error", [
    ApiError(429, "Too many requests", "RATE_LIMITED", headers={"Retry-After": "3"}),
    NotFound("account a not found", code="ACCOUNT_NOT_FOUND"),
    Rejected("sourceId is being written concurrently; retry", code="CONFLICT"),
    ValueError("a plain one"),
])
def test_what_a_unit_raised_reaches_the_request_as_the_same_error(error: Exception) -> None:
    async def scenario() -> BaseException:
        client, answers = _connected()
        waiting = asyncio.ensure_future(client.store("request"))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        answers.data_received(wp._answer(0, None, error))
        with pytest.raises(type(error)) as raised:
            await waiting
        return raised.value

    got = asyncio.run(scenario())
    assert type(got) is type(error) and got.args == error.args
    assert {k: v for k, v in vars(got).items()} == vars(error)


def test_a_message_split_anywhere_is_read_whole() -> None:
    frames = wp._answer(1, {"a": 1}, None) + wp._answer(2, [2, 3], None)
    for cut in range(1, len(frames)):
        buffer = bytearray(frames[:cut])
        got = wp._messages(buffer)
        buffer += frames[cut:]
        got += wp._messages(buffer)
        assert [(msg_id, ok) for msg_id, ok, _ in got] == [(1, True), (2, True)]
        assert buffer == bytearray()


def test_an_answer_that_cannot_be_read_ends_its_requests_wait_with_an_error() -> None:
    async def scenario() -> Any:
        client, answers = _connected()
        waiting = asyncio.ensure_future(client.store("request"))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        answers.data_received(wp._frame(0, True, b"not a pickle"))
        return await asyncio.wait_for(waiting, 5)

    with pytest.raises(RuntimeError, match="could not be read"):
        asyncio.run(scenario())


def test_when_the_connection_goes_every_waiting_request_gets_503_and_none_is_sent_after() -> None:
    async def scenario() -> tuple[list[BaseException], bool]:
        client, answers = _connected()
        waiting = [asyncio.ensure_future(client.store("r")) for _ in range(3)]  # type: ignore[arg-type]
        await asyncio.sleep(0)
        answers.connection_lost(None)
        errors = [e for e in await asyncio.gather(*waiting, return_exceptions=True)
                  if isinstance(e, BaseException)]
        return errors, client.usable

    errors, usable = asyncio.run(scenario())
    assert len(errors) == 3 and all(isinstance(e, wp.WriterGone) for e in errors)
    assert all(e.status == 503 for e in errors if isinstance(e, wp.WriterGone))
    assert not usable
