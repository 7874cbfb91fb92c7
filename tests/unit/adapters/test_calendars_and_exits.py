"""Exit times on the real exchange calendar: normal days, early closes, holidays, DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tradewire.adapters.calendars import ExchangeCalendars
from tradewire.adapters.formats.signal_api import to_utc
from tradewire.domain.exits import exit_due_at, next_wall_clock
from tradewire.domain.sessions import Phase
from tradewire.domain.signals import ExitRule, ExitTrigger

CAL = ExchangeCalendars()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def closing_session(at: datetime):  # type: ignore[no-untyped-def]
    session = CAL.session_at_or_after("XNYS", at)
    if at >= session.close_at:
        session = CAL.session_at_or_after("XNYS", session.post_close_at or session.close_at)
    return session


@pytest.mark.parametrize(("filled_at", "minutes", "due"), [
    # An ordinary Friday in winter: close 16:00 New York = 21:00 UTC.
    ("2026-02-06T15:00:00", 5, "2026-02-06T20:55:00"),
    # Summer (EDT): close 16:00 New York = 20:00 UTC.
    ("2026-07-07T15:00:00", 0, "2026-07-07T20:00:00"),
    # The day after Thanksgiving closes early, at 13:00 New York = 18:00 UTC.
    ("2026-11-27T15:00:00", 5, "2026-11-27T17:55:00"),
    # Christmas Eve closes early too.
    ("2026-12-24T15:00:00", 30, "2026-12-24T17:30:00"),
    # Filled on Thanksgiving (a holiday, after-hours fill): rolls to the next session's close.
    ("2026-11-26T15:00:00", 5, "2026-11-27T17:55:00"),
    # Filled after Friday's close: Monday's close.
    ("2026-02-06T22:00:00", 10, "2026-02-09T20:50:00"),
    # Either side of the spring DST change (8 March 2026): 21:00 UTC, then 20:00 UTC.
    ("2026-03-06T15:00:00", 0, "2026-03-06T21:00:00"),
    ("2026-03-09T15:00:00", 0, "2026-03-09T20:00:00"),
    # Too late for "5 minutes before": the exit goes out at once.
    ("2026-02-06T20:58:00", 5, "2026-02-06T20:58:00"),
])
def test_market_close_exit_is_due_minutes_before_the_real_close(filled_at: str, minutes: int,
                                                                 due: str) -> None:
    rule = ExitRule(trigger=ExitTrigger.MARKET_CLOSE, minutes=minutes)
    at = utc(filled_at)
    assert exit_due_at(rule, at, closing_session(at)) == utc(due)


def test_immediate_market_on_close_exit_is_placed_at_the_fill() -> None:
    rule = ExitRule(trigger=ExitTrigger.MARKET_CLOSE, immediate=True)
    at = utc("2026-02-06T15:00:00")
    assert exit_due_at(rule, at, closing_session(at)) == at


@pytest.mark.parametrize(("hhmm", "after", "due"), [
    ("15:30", "2026-02-06T15:00:00", "2026-02-06T20:30:00"),  # later today (EST)
    ("09:00", "2026-02-06T15:00:00", "2026-02-07T14:00:00"),  # already past: tomorrow
    ("15:30", "2026-03-07T21:00:00", "2026-03-08T19:30:00"),  # the next day is in EDT
    ("15:30", "2026-11-01T12:00:00", "2026-11-01T20:30:00"),  # DST ended that night
])
def test_exit_time_is_the_next_wall_clock_occurrence(hhmm: str, after: str, due: str) -> None:
    assert next_wall_clock(hhmm, "America/New_York", utc(after)) == utc(due)


def test_duration_exit_counts_minutes_from_the_fill() -> None:
    rule = ExitRule(trigger=ExitTrigger.AFTER_FILL, minutes=60)
    at = utc("2026-02-06T15:00:00")
    assert exit_due_at(rule, at, closing_session(at)) == utc("2026-02-06T16:00:00")


@pytest.mark.parametrize(("local", "zone", "expected"), [
    ("2026-02-07T09:25:00", "America/New_York", "2026-02-07T14:25:00"),
    ("2026-07-07T09:25:00", "America/New_York", "2026-07-07T13:25:00"),
    ("2026-03-29T09:00:00", "Europe/London", "2026-03-29T08:00:00"),
    ("2026-02-07T09:25:00", "Asia/Tokyo", "2026-02-07T00:25:00"),
])
def test_process_at_converts_wall_clock_time_to_utc(local: str, zone: str, expected: str) -> None:
    assert to_utc(datetime.fromisoformat(local), zone) == utc(expected)


@pytest.mark.parametrize(("at", "phase"), [
    ("2026-02-06T15:00:00", Phase.REGULAR),
    ("2026-02-06T12:00:00", Phase.PRE),
    ("2026-02-06T22:00:00", Phase.POST),
    ("2026-02-07T15:00:00", Phase.CLOSED),  # Saturday
    ("2026-11-26T15:00:00", Phase.CLOSED),  # Thanksgiving
    ("2026-11-27T18:30:00", Phase.POST),  # after the early close
])
def test_phase_of_the_market(at: str, phase: Phase) -> None:
    when = utc(at)
    assert CAL.session_at_or_after("XNYS", when).phase(when) is phase


@pytest.mark.parametrize(("at", "opens"), [
    ("2026-02-06T15:00:00", "2026-02-06T15:00:00"),  # open now
    ("2026-02-06T22:00:00", "2026-02-09T14:30:00"),  # Friday evening: Monday
    ("2026-11-26T15:00:00", "2026-11-27T14:30:00"),  # Thanksgiving: Friday
    ("2026-12-24T19:00:00", "2026-12-28T14:30:00"),  # after the early close, over Christmas
])
def test_next_open_respects_holidays(at: str, opens: str) -> None:
    assert CAL.next_open("XNYS", utc(at)) == utc(opens)


def test_a_crypto_market_never_closes() -> None:
    at = utc("2026-02-07T15:00:00")
    assert CAL.next_open("24/7", at) == at
    assert CAL.session_at_or_after("24/7", at).phase(at) is Phase.REGULAR
