"""Trading sessions as data, and the pure rules that place times on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

ALWAYS_OPEN = "24/7"


class Phase(StrEnum):
    CLOSED = "closed"
    PRE = "pre"  # pre-market (extended hours)
    REGULAR = "regular"
    POST = "post"  # after-hours (extended hours)


@dataclass(frozen=True, slots=True)
class Session:
    """One trading day: its regular open and close, and its extended-hours edges (UTC)."""

    open_at: datetime
    close_at: datetime
    pre_open_at: datetime | None = None
    post_close_at: datetime | None = None

    def phase(self, at: datetime) -> Phase:
        if self.open_at <= at < self.close_at:
            return Phase.REGULAR
        if self.pre_open_at is not None and self.pre_open_at <= at < self.open_at:
            return Phase.PRE
        if self.post_close_at is not None and self.close_at <= at < self.post_close_at:
            return Phase.POST
        return Phase.CLOSED


def minutes_before_close(session: Session, minutes: int, not_before: datetime) -> datetime:
    """`minutes` before the session's real close; at once if that moment has passed."""
    return max(session.close_at - timedelta(minutes=minutes), not_before)
