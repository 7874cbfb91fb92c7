"""Read views for the dashboard: listings the repositories do not offer, read on their own
connection (never inside a write transaction), each bounded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, func, or_, select

from tradewire.adapters.db import tables as t
from tradewire.adapters.db.engine import Database
from tradewire.domain.accounts import ApiKey, Scope
from tradewire.domain.audit import AuditEvent
from tradewire.domain.capabilities import AccessToken, Partner
from tradewire.domain.channels import AllocationType, Channel, Subscription
from tradewire.domain.orders import Fill
from tradewire.domain.signals import SignalStatus
from tradewire.domain.values import Side
from tradewire.services.ports import Page

MAX_ROWS = 500  # every listing here is cut at this many rows
MAX_FILLS = 20_000  # fills replayed for one account's realized P&L of the day


class SqlDashboardViews:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _read(self) -> Connection:
        return self._db.engine.connect().execution_options(tw_write=False)

    def _all(self, q: Select[Any]) -> list[Any]:
        with self._read() as conn:
            return list(conn.execute(q))

    # ---- live updates ------------------------------------------------------------------------

    def latest_event_seq(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.coalesce(func.max(t.audit_events.c.seq), 0)))
                       .scalar_one())

    def events_after(self, seq: int, account_ids: Sequence[str] | None,
                     limit: int) -> list[tuple[int, AuditEvent]]:
        """Audit events after `seq`, oldest first; None: every account (and events of none)."""
        a = t.audit_events.c
        q = select(t.audit_events).where(a.seq > seq).order_by(a.seq).limit(min(limit, MAX_ROWS))
        if account_ids is not None:
            q = q.where(a.account_id.in_(list(account_ids)))
        return [(r.seq, AuditEvent(entity=r.entity, entity_id=r.entity_id, event=r.event,
                                   at=r.at, account_id=r.account_id, signal_id=r.signal_id,
                                   from_status=r.from_status, to_status=r.to_status,
                                   data=r.data or {}, id=r.id))
                for r in self._all(q)]

    def marks(self, account_ids: Sequence[str] | None) -> dict[str, tuple[Decimal, datetime]]:
        """The last price and its time of each symbol held open in these accounts."""
        p, m = t.positions.c, t.market_prices.c
        held = select(p.symbol).where(p.qty != Decimal(0))
        if account_ids is not None:
            held = held.where(p.account_id.in_(list(account_ids)))
        q = (select(m.symbol, m.price, m.ts).where(m.symbol.in_(held.distinct()))
             .order_by(m.symbol).limit(MAX_ROWS))
        return {r.symbol: (r.price, r.ts) for r in self._all(q)}

    def prices(self, symbols: Sequence[str]) -> dict[str, tuple[Decimal, datetime]]:
        m = t.market_prices.c
        q = select(m.symbol, m.price, m.ts).where(m.symbol.in_(list(symbols)[:MAX_ROWS]))
        return {r.symbol: (r.price, r.ts) for r in self._all(q)}

    # ---- signals -----------------------------------------------------------------------------

    def find_signal_ids(self, account_ids: Sequence[str] | None, page: Page, *,
                        status: SignalStatus | None = None, symbol: str | None = None,
                        text: str | None = None) -> list[str]:
        """Newest first; `text` matches an id prefix, the sourceId, the symbol or the reason."""
        s = t.signals.c
        q = select(s.id).order_by(s.created_at.desc(), s.id.desc())
        if account_ids is not None:
            q = q.where(s.account_id.in_(list(account_ids)))
        if status is not None:
            q = q.where(s.status == str(status))
        if symbol:
            q = q.where(s.symbol == symbol.upper())
        if text:
            low = text.lower()
            q = q.where(or_(s.id.startswith(low, autoescape=True),
                            func.lower(s.source_id).contains(low, autoescape=True),
                            s.symbol == text.upper(),
                            func.lower(s.status_reason).contains(low, autoescape=True)))
        q = q.limit(min(page.limit, MAX_ROWS)).offset(page.offset)
        return [r.id for r in self._all(q)]

    def arrival_prices(self, signal_ids: Sequence[str]) -> dict[str, Decimal]:
        """The last price recorded with each signal's arrival, where its audit event has one."""
        a = t.audit_events.c
        q = select(a.signal_id, a.data).where(a.signal_id.in_(list(signal_ids)[:MAX_ROWS]),
                                              a.event == "SignalReceived")
        out = {}
        for r in self._all(q):
            price = (r.data or {}).get("last_price")
            if price is not None:
                out[r.signal_id] = Decimal(str(price))
        return out

    def fills(self, account_id: str, symbols: Sequence[str]) -> list[Fill] | None:
        """Every fill of these symbols in the account, oldest first; None beyond MAX_FILLS."""
        f = t.fills.c
        q = (select(t.fills).where(f.account_id == account_id, f.symbol.in_(list(symbols)))
             .order_by(f.filled_at, f.fill_id).limit(MAX_FILLS + 1))
        rows = self._all(q)
        if len(rows) > MAX_FILLS:
            return None
        return [Fill(**{**r._mapping, "side": Side(r.side)}) for r in rows]

    def symbols_filled_since(self, account_id: str, since: datetime) -> list[str]:
        f = t.fills.c
        q = (select(f.symbol).where(f.account_id == account_id, f.filled_at >= since)
             .distinct().order_by(f.symbol).limit(MAX_ROWS))
        return [r.symbol for r in self._all(q)]

    # ---- credentials and channels ------------------------------------------------------------

    def api_keys(self, user_id: str) -> list[ApiKey]:
        k = t.api_keys.c
        q = select(t.api_keys).where(k.user_id == user_id).order_by(k.created_at.desc())
        out = []
        for r in self._all(q.limit(MAX_ROWS)):
            m = dict(r._mapping)
            m["scopes"] = frozenset(Scope(s) for s in m["scopes"].split(",") if s)
            m["account_ids"] = frozenset(m["account_ids"]) if m["account_ids"] is not None else None
            out.append(ApiKey(**m))
        return out

    def access_tokens(self, account_ids: Sequence[str] | None) -> list[AccessToken]:
        a = t.access_tokens.c
        q = select(t.access_tokens).order_by(a.created_at.desc()).limit(MAX_ROWS)
        if account_ids is not None:
            q = q.where(a.account_id.in_(list(account_ids)))
        return [AccessToken(**r._mapping) for r in self._all(q)]

    def partners(self) -> list[Partner]:
        q = select(t.partners).order_by(t.partners.c.created_at).limit(MAX_ROWS)
        return [Partner(**r._mapping) for r in self._all(q)]

    def channels(self) -> list[Channel]:
        q = select(t.channels).order_by(t.channels.c.created_at).limit(MAX_ROWS)
        return [Channel(**r._mapping) for r in self._all(q)]

    def subscriptions(self, account_ids: Sequence[str] | None) -> list[Subscription]:
        s = t.subscriptions.c
        q = select(t.subscriptions).order_by(s.created_at, s.account_id).limit(MAX_ROWS)
        if account_ids is not None:
            q = q.where(s.account_id.in_(list(account_ids)))
        return [Subscription(**{**r._mapping, "allocation_type": AllocationType(r.allocation_type)})
                for r in self._all(q)]
