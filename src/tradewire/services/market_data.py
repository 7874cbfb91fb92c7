"""Use cases for market data: bars in (upload, CSV import)."""

from __future__ import annotations

from collections.abc import Sequence

from tradewire.domain.audit import AuditEvent
from tradewire.domain.market import Bar, timeframe
from tradewire.services.deps import Deps


def import_bars(symbol: str, tf: str, bars: Sequence[Bar], deps: Deps) -> int:
    """Store bars for a symbol and timeframe (a bar already stored is replaced)."""
    tf = timeframe(tf)
    symbol = symbol.strip().upper()
    with deps.uow() as uow:
        n = uow.bars.upsert(symbol, tf, bars)
        uow.audit.add(AuditEvent(entity="bars", entity_id=f"{symbol}:{tf}", event="BarsImported",
                                 at=deps.clock.now(), data={"count": n}))
        uow.commit()
    return n
