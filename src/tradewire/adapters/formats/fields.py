"""Field types every dialect shares, with the limits that keep hostile input out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import AfterValidator, Field

from tradewire.domain.values import OrderType

MAX_METADATA_CHARS = 8_192
MAX_METADATA_DEPTH = 16
MAX_DECIMAL_PLACES = 20
EARLIEST_YEAR, LATEST_YEAR = 2000, 2200


def _sane_decimal(value: Decimal) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise ValueError(f"at most {MAX_DECIMAL_PLACES} decimal places")
    return value


def _in_range(value: datetime) -> datetime:
    # Keeps every later conversion (to UTC, to the database) inside the calendar.
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


def check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """A small, shallow JSON object: depth and size measured without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise ValueError(f"nested deeper than {MAX_METADATA_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    if len(orjson.dumps(value)) > MAX_METADATA_CHARS:
        raise ValueError(f"larger than {MAX_METADATA_CHARS} bytes")
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA timezone '{value}'") from exc
    return value


Zone = Annotated[str, Field(max_length=64), AfterValidator(_zone)]
Price = Annotated[Decimal, Field(gt=0, lt=Decimal("1e12"), allow_inf_nan=False),
                  AfterValidator(_sane_decimal)]
Quantity = Price
Moment = Annotated[datetime, AfterValidator(_in_range)]
Metadata = Annotated[dict[str, Any], AfterValidator(check_metadata)]


def in_range(value: datetime) -> datetime:
    """The same year check for times parsed by hand (raises ValueError)."""
    return _in_range(value)


def price_problems(kind: OrderType, spelled: str, limit_price: Decimal | None,
                   stop_price: Decimal | None, *, limit_name: str, stop_name: str,
                   stop_limit_name: str) -> list[dict[str, Any]]:
    """Each order type's prices, in one dialect's words: required ones and ignored ones."""
    if (kind.needs_limit_price == (limit_price is not None)
            and kind.needs_stop_price == (stop_price is not None)):
        return []  # the prices the type needs, and no others (every signal that is accepted)
    rules = (
        (not kind.needs_limit_price or limit_price is not None,
         f"{limit_name} is required for {spelled} orders", limit_name),
        (not kind.needs_stop_price or stop_price is not None,
         f"{stop_name} is required for {spelled} orders", stop_name),
        (kind.needs_limit_price or limit_price is None,
         f"{limit_name} is only used by limit and {stop_limit_name} orders", limit_name),
        (kind.needs_stop_price or stop_price is None,
         f"{stop_name} is only used by stop and {stop_limit_name} orders", stop_name),
    )
    return [{"code": "custom", "message": message, "path": [path]}
            for ok, message, path in rules if not ok]
