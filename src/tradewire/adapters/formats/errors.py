"""Pydantic errors in the signal API's own words (zod-style codes, a path per problem)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

_CODES = {
    "missing": "invalid_type",
    "enum": "invalid_enum_value",
    "literal_error": "invalid_literal",
    "greater_than": "too_small",
    "greater_than_equal": "too_small",
    "less_than": "too_big",
    "less_than_equal": "too_big",
    "string_too_short": "too_small",
    "string_too_long": "too_big",
    "too_long": "too_big",
    "uuid_parsing": "invalid_string",
    "uuid_type": "invalid_string",
    "string_pattern_mismatch": "invalid_string",
    "extra_forbidden": "unrecognized_keys",
    "value_error": "custom",
    "assertion_error": "custom",
}


def detail(code: str, message: str, path: list[str | int] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "path": path or []}


def details_of(error: ValidationError) -> list[dict[str, Any]]:
    out = []
    for e in error.errors(include_url=False):
        kind = e["type"]
        message = "Required" if kind == "missing" else e["msg"]
        if kind == "value_error":
            message = message.removeprefix("Value error, ")
        out.append(detail(_CODES.get(kind, "invalid_type"), message,
                          [p for p in e["loc"] if p != "__root__"]))
    return out
