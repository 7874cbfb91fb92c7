"""Audit events: every state change, written in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tradewire.domain.values import new_id


@dataclass(frozen=True, slots=True)
class AuditEvent:
    entity: str  # "signal", "order", "job", "position", "account", "api_key"
    entity_id: str
    event: str  # past tense: "SignalReceived", "OrderFilled" ...
    at: datetime
    account_id: str | None = None
    signal_id: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
