"""Form bodies: read under a size limit, parsed without surprises, each field checked."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs

from fastapi import Request

MAX_FORM_BYTES = 65_536
MAX_FIELDS = 100


class BadForm(Exception):
    """A request the dashboard refuses before doing anything; answered as a page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Form:
    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def names(self) -> list[str]:
        return list(self._fields)

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[0].strip() if values else default

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self._fields.get(name, [])]

    def text(self, name: str, label: str, *, max_len: int = 200) -> str:
        value = self.get(name)
        if not value:
            raise BadForm(f"{label} is required")
        if len(value) > max_len:
            raise BadForm(f"{label} is longer than {max_len} characters")
        return value

    def optional(self, name: str, label: str, *, max_len: int = 200) -> str | None:
        return self.text(name, label, max_len=max_len) if self.get(name) else None

    def decimal(self, name: str, label: str, *, minimum: Decimal | None = None) -> Decimal:
        raw = self.text(name, label, max_len=40)
        try:
            value = Decimal(raw.replace(",", ""))
        except InvalidOperation:
            raise BadForm(f"{label} must be a number, not {raw!r}") from None
        if not value.is_finite() or (minimum is not None and value < minimum):
            raise BadForm(f"{label} must be a number of at least {minimum}")
        return value

    def number(self, name: str, label: str, default: float, *, low: float, high: float) -> float:
        if not self.get(name):
            return default
        value = float(self.decimal(name, label))
        if not low <= value <= high:
            raise BadForm(f"{label} must be between {low:g} and {high:g}")
        return value

    def choice(self, name: str, label: str, options: Iterable[str]) -> str:
        value, allowed = self.get(name), list(options)
        if value not in allowed:
            raise BadForm(f"{label} must be one of: {', '.join(allowed)}")
        return value

    def moment(self, name: str, label: str) -> datetime:
        raw = self.text(name, label, max_len=40)
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            raise BadForm(f"{label} is not a time: {raw!r}") from None
        if value.tzinfo is None:
            raise BadForm(f"{label} has no time zone")
        return value


async def read_form(request: Request) -> Form:
    """An `application/x-www-form-urlencoded` body (what every dashboard form sends)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadForm("This address takes a form submitted from the dashboard", 415)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise BadForm(f"The form is larger than {MAX_FORM_BYTES // 1024} KiB", 413)
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS,
                          encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadForm("The form could not be read (bad encoding or too many fields)") from None
    if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in fields.items()):
        raise BadForm("The form holds a NUL character")
    return Form(fields)
