"""How tradewire's column types store values on SQLite (text) and hand them to PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from tradewire.adapters.db.types import UTCDateTime

SQLITE, PG = sqlite.dialect(), postgresql.psycopg.dialect()


def stored(value: datetime) -> str:
    text: str = UTCDateTime().process_bind_param(value, SQLITE)
    return text


def test_a_time_is_stored_as_fixed_width_utc_text_whatever_its_zone() -> None:
    at = datetime(2026, 12, 3, 17, 0, 0, 120, tzinfo=UTC)
    assert stored(at) == "2026-12-03T17:00:00.000120+00:00"
    paris = datetime(2026, 12, 3, 18, 0, tzinfo=timezone(timedelta(hours=1)))
    assert stored(paris) == "2026-12-03T17:00:00.000000+00:00"
    assert stored(datetime(5, 1, 2, tzinfo=UTC)) == "0005-01-02T00:00:00.000000+00:00"


def test_text_order_is_time_order_and_the_text_reads_back_as_the_same_time() -> None:
    times = [datetime(5, 1, 1, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
             datetime(2026, 12, 3, 17, 0, tzinfo=UTC),
             datetime(2026, 12, 3, 17, 0, 0, 1, tzinfo=UTC),
             datetime(2026, 12, 3, 19, 0, tzinfo=timezone(timedelta(hours=1)))]
    texts = [stored(t) for t in times]
    assert sorted(texts) == texts and {len(t) for t in texts} == {32}
    back = [UTCDateTime().process_result_value(t, SQLITE) for t in texts]
    assert back == times and all(b.tzinfo is UTC for b in back if b is not None)


def test_a_naive_time_is_refused_and_postgresql_gets_the_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        stored(datetime(2026, 12, 3, 17, 0))  # noqa: DTZ001 (the naive time refused)
    paris = datetime(2026, 12, 3, 18, 0, tzinfo=timezone(timedelta(hours=1)))
    assert UTCDateTime().process_bind_param(paris, PG) == paris
    assert UTCDateTime().process_bind_param(None, SQLITE) is None
