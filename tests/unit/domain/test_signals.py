"""Signal status: the transition table, the first status per execute mode, and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradewire.domain.errors import InvalidTransition
from tradewire.domain.signals import (
    HOLDS_SOURCE_ID,
    TRANSITIONS,
    Signal,
    SignalStatus,
    check_transition,
)
from tradewire.domain.values import Action, ExecuteMode

S = SignalStatus
AT = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)


def signal(mode: ExecuteMode = ExecuteMode.IMMEDIATE, valid_until: datetime | None = None) -> Signal:
    return Signal(id="s1", account_id="a1", symbol="AAPL", action=Action.OPEN_LONG,
                  quantity=Decimal(100), execute_mode=mode, created_at=AT,
                  valid_until=valid_until)


@pytest.mark.parametrize(("current", "target"), [
    (S.PENDING, S.QUEUED),  # processed by a person
    (S.PENDING, S.REJECTED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.EXPIRED),
    (S.PENDING, S.REPLACED),
    (S.SCHEDULED, S.QUEUED),  # came due
    (S.SCHEDULED, S.REJECTED),
    (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.EXPIRED),  # came due past validUntil
    (S.SCHEDULED, S.REPLACED),
    (S.QUEUED, S.EXECUTED),
    (S.QUEUED, S.REJECTED),  # the broker refused the order
    (S.QUEUED, S.REPLACED),  # its order has not reached the broker yet
])
def test_allowed_signal_moves_pass_the_table(current: SignalStatus, target: SignalStatus) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(("current", "target"), [
    (S.PENDING, S.EXECUTED),  # only through the queue and a broker's answer
    (S.PENDING, S.SCHEDULED),
    (S.SCHEDULED, S.PENDING),
    (S.SCHEDULED, S.EXECUTED),
    (S.QUEUED, S.PENDING),
    (S.QUEUED, S.SCHEDULED),
    (S.EXECUTED, S.REPLACED),  # an order at the broker cannot be superseded
    (S.EXECUTED, S.REJECTED),
    (S.EXECUTED, S.CANCELLED),
    (S.EXECUTED, S.EXECUTED),
    (S.REJECTED, S.QUEUED),
    (S.CANCELLED, S.QUEUED),
    (S.EXPIRED, S.QUEUED),
    (S.REPLACED, S.QUEUED),
    (S.REPLACED, S.REPLACED),
])
def test_refused_signal_moves_raise_invalid_transition(current: SignalStatus,
                                                       target: SignalStatus) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target)


def test_every_signal_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(SignalStatus)


@pytest.mark.parametrize("status", [S.EXECUTED, S.REJECTED, S.CANCELLED, S.EXPIRED, S.REPLACED])
def test_final_signal_statuses_allow_no_move(status: SignalStatus) -> None:
    assert TRANSITIONS[status] == frozenset()


@pytest.mark.parametrize(("status", "holds"), [
    (S.PENDING, True), (S.SCHEDULED, True), (S.QUEUED, True), (S.EXECUTED, True),
    (S.CANCELLED, True), (S.EXPIRED, True),
    (S.REJECTED, False),  # seed 004: only rejected signals allow a retry with the same sourceId
    (S.REPLACED, False),  # its replacement takes the sourceId over
])
def test_which_statuses_keep_the_source_id(status: SignalStatus, holds: bool) -> None:
    assert (status in HOLDS_SOURCE_ID) is holds


@pytest.mark.parametrize(("mode", "status"), [
    (ExecuteMode.IMMEDIATE, S.QUEUED),
    (ExecuteMode.SCHEDULED, S.SCHEDULED),
    (ExecuteMode.PENDING, S.PENDING),
])
def test_a_new_signal_starts_in_the_status_of_its_execute_mode(mode: ExecuteMode,
                                                               status: SignalStatus) -> None:
    assert signal(mode).initial_status() is status


@pytest.mark.parametrize(("valid_until", "now", "expired"), [
    (None, AT + timedelta(days=3650), False),
    (AT + timedelta(minutes=5), AT, False),
    (AT + timedelta(minutes=5), AT + timedelta(minutes=5), True),
    (AT + timedelta(minutes=5), AT + timedelta(minutes=6), True),
])
def test_a_signal_expires_at_its_valid_until(valid_until: datetime | None, now: datetime,
                                             expired: bool) -> None:
    assert signal(valid_until=valid_until).is_expired(now) is expired
