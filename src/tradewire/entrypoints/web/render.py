"""Jinja2 templates and the filters that write money, quantities and times for people."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

import tradewire
from tradewire.domain.values import short_id

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
ASSET_VERSION = tradewire.__version__  # in static URLs, so an upgrade is never served stale


def money(value: Decimal | float | None, places: int = 2) -> str:
    if value is None:
        return "—"
    return f"{Decimal(str(value)):,.{places}f}"


def signed(value: Decimal | float | None, places: int = 2) -> str:
    """Money with its sign always written: +12.00, -3.50."""
    if value is None:
        return "—"
    number = Decimal(str(value))
    text = f"{abs(number):,.{places}f}"
    return f"+{text}" if number > 0 else f"-{text}" if number < 0 else text


def qty(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return format(value.normalize(), "f")


def percent(value: Decimal | float | None, places: int = 2) -> str:
    if value is None:
        return "—"
    return signed(Decimal(str(value)) * 100, places) + "%"


def when(value: datetime | None) -> Markup | str:
    """A UTC time in a <time> element; app.js rewrites it in the reader's own time zone."""
    if value is None:
        return "—"
    utc = value.astimezone(UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        utc.isoformat(), utc.strftime("%Y-%m-%d %H:%M:%S UTC"))


def epoch(value: int | None) -> Markup | str:
    return "—" if value is None else when(datetime.fromtimestamp(value, UTC))


def duration(value: timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    if seconds < 60:
        return f"{sign}{seconds} s"
    if seconds < 3600:
        return f"{sign}{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{sign}{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{sign}{seconds // 86400} d {seconds % 86400 // 3600} h"


def ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def tojson(value: Any) -> Markup:
    """JSON for a <script type="application/json"> block; `<` is escaped so no tag can close it."""
    text = json.dumps(value, default=str, separators=(",", ":"))
    safe = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(safe)  # noqa: S704 - JSON with every character that could end the block escaped


def pretty(value: Any) -> str:
    return json.dumps(value, default=str, indent=2, sort_keys=True)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=money, signed=signed, qty=qty, percent=percent, when=when,
                       epoch=epoch, duration=duration, ms=ms, tojson=tojson, pretty=pretty,
                       short_id=short_id)
    env.globals.update(asset_version=ASSET_VERSION)
    return env
