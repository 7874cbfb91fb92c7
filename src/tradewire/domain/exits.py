"""Exit rules as pure functions: when an exit is due, given the fill and the session."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tradewire.domain.sessions import Session, minutes_before_close
from tradewire.domain.signals import ExitRule, ExitTrigger


def next_wall_clock(hhmm: str, zone: str, after: datetime) -> datetime:
    """The next moment after `after` when the clock in `zone` reads `hhmm` (DST included)."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    local = after.astimezone(ZoneInfo(zone))
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        day = (local + timedelta(days=1)).date()
        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))
    return candidate.astimezone(after.tzinfo)


def exit_due_at(rule: ExitRule, filled_at: datetime, closing_session: Session) -> datetime:
    """When the exit order is placed. `closing_session` is the next session to close after
    the fill (the fill's own session, or the next one when the fill came after the close)."""
    if rule.trigger is ExitTrigger.AFTER_FILL:
        return filled_at + timedelta(minutes=rule.minutes)
    if rule.trigger is ExitTrigger.AT_TIME:
        assert rule.at_time is not None
        return next_wall_clock(rule.at_time, rule.zone, filled_at)
    if rule.immediate:
        return filled_at  # a close-auction order, placed at once; the broker holds it
    return minutes_before_close(closing_session, rule.minutes, filled_at)
