"""Bars in: CSV (a header with timestamp/date/datetime, open, high, low, close, volume, any
case; the first column when it has no name) or JSON, each row checked with its number."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime
from typing import Any

from tradewire.adapters.formats.errors import detail
from tradewire.adapters.formats.signal_api import BadRequest
from tradewire.domain.market import Bar

MAX_BARS = 200_000
_TIME_NAMES = ("timestamp", "datetime", "date", "time", "")
_FIELDS = ("open", "high", "low", "close", "volume")


def parse_csv(text: str) -> list[Bar]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [f for f in _FIELDS if f not in header]
    time_col = next((header.index(n) for n in _TIME_NAMES if n in header), None)
    if missing or time_col is None:
        raise BadRequest([detail("custom", "the header needs a timestamp (or date/datetime) and "
                                 f"open, high, low, close, volume; missing {missing or ['time']}",
                                 ["header"])])
    cols = [header.index(f) for f in _FIELDS]
    rows = [(row[time_col], *(row[c] for c in cols)) for row in reader if row]
    return _bars(rows)


def parse_json(items: Any) -> list[Bar]:
    if not isinstance(items, list):
        raise BadRequest([detail("invalid_type", "bars must be a list", ["bars"])])
    rows = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest([detail("invalid_type", "each bar must be an object", ["bars", i])])
        when = next((item[k] for k in ("timestamp", "datetime", "date", "time") if k in item), None)
        rows.append((when, *(item.get(f) for f in _FIELDS)))
    return _bars(rows, path=("bars",))


def _bars(rows: list[tuple[Any, ...]], path: tuple[str, ...] = ("row",)) -> list[Bar]:
    if len(rows) > MAX_BARS:
        raise BadRequest([detail("too_big", f"at most {MAX_BARS} bars per upload", [*path])])
    out, problems = [], []
    for i, (when, *values) in enumerate(rows):
        try:
            bar = Bar(_epoch(when), *(_number(v) for v in values))
        except (ValueError, TypeError) as exc:
            problems.append(detail("custom", str(exc), [*path, i]))
            continue
        if (problem := bar.problem()) is not None:
            problems.append(detail("custom", problem, [*path, i]))
        else:
            out.append(bar)
        if len(problems) >= 20:
            break
    if problems:
        raise BadRequest(problems)
    return out


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _epoch(value: Any) -> int:
    """ISO 8601 (UTC when no offset) or epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a time: {value!r}")
    text = value.strip()
    if text.isdigit():
        return int(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if not 1970 <= parsed.year <= 2200:
        raise ValueError(f"time out of range: {value!r}")
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())
