"""Exchange calendars (exchange-calendars): sessions with holidays and early closes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

from tradewire.domain.sessions import ALWAYS_OPEN, Session

# Extended hours on US equity venues: 04:00-09:30 and 16:00-20:00 New York time.
_EXTENDED = {"XNYS": ("America/New_York", 4, 20), "XNAS": ("America/New_York", 4, 20)}
_lock = threading.Lock()


@lru_cache(maxsize=16)
def _calendar(market: str) -> xcals.ExchangeCalendar:
    with _lock:  # exchange-calendars builds its tables lazily and is not thread-safe doing so
        return xcals.get_calendar(market)


def known_market(market: str) -> bool:
    return market == ALWAYS_OPEN or market in xcals.get_calendar_names()


class ExchangeCalendars:
    """The MarketCalendar port over exchange-calendars; `24/7` never closes."""

    def session_at_or_after(self, market: str, at: datetime) -> Session:
        """The session in progress at `at` (extended hours included), or the next one."""
        if market == ALWAYS_OPEN:
            return _always(at)
        # Start a day early: yesterday's after-hours may run past midnight UTC.
        label = _session_on_or_after(market, (at.astimezone(UTC).date()
                                              - timedelta(days=1)).isoformat())
        for _ in range(10):
            session = _session_cached(market, label)
            if at < (session.post_close_at or session.close_at):
                return session
            label = _session_after(market, label)
        raise RuntimeError(f"no session found after {at} on {market}")

    def timezone(self, market: str) -> tzinfo:
        if market == ALWAYS_OPEN:
            return UTC
        return ZoneInfo(str(_calendar(market).tz))

    def next_open(self, market: str, at: datetime) -> datetime:
        """The next regular open at or after `at` (now, if the market is open)."""
        session = self.session_at_or_after(market, at)
        if session.open_at <= at < session.close_at:
            return at
        if at < session.open_at:
            return session.open_at
        return self.session_at_or_after(market, session.post_close_at or session.close_at).open_at


# Session labels by day, remembered: exchange-calendars answers each through pandas (tens of
# microseconds, and a signal asks several times).
@lru_cache(maxsize=4096)
def _session_on_or_after(market: str, day: str) -> str:
    return _calendar(market).date_to_session(pd.Timestamp(day), direction="next").date().isoformat()


@lru_cache(maxsize=4096)
def _session_after(market: str, label: str) -> str:
    return _calendar(market).next_session(pd.Timestamp(label)).date().isoformat()


@lru_cache(maxsize=4096)
def _session_cached(market: str, label: str) -> Session:
    cal = _calendar(market)
    ts = pd.Timestamp(label)
    open_at = cal.session_open(ts).to_pydatetime().astimezone(UTC)
    close_at = cal.session_close(ts).to_pydatetime().astimezone(UTC)
    pre = post = None
    if market in _EXTENDED:
        zone, start, end = _EXTENDED[market]
        local = datetime.fromisoformat(label).replace(tzinfo=ZoneInfo(zone))
        pre = local.replace(hour=start).astimezone(UTC)
        # After an early close, after-hours still runs to 20:00? Venues end it at 17:00.
        post_end = end if close_at.astimezone(ZoneInfo(zone)).hour >= 16 else 17
        post = local.replace(hour=post_end).astimezone(UTC)
    return Session(open_at=open_at, close_at=close_at, pre_open_at=pre, post_close_at=post)


def _always(at: datetime) -> Session:
    """A 24/7 market: one session per UTC day that is always in progress."""
    start = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Session(open_at=start, close_at=start + timedelta(days=1))
