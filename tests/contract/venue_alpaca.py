"""The Alpaca adapter under the broker contract, talking through alpaca-py to the fake Alpaca
server (one per test process; each venue trades in a market of its own there)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.contract.conftest import Venue
from tests.fakes.alpaca import shared_fake_alpaca
from tradewire.adapters.brokers.alpaca import AlpacaBroker
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container


def alpaca_venue(container: Container, clock: ManualClock) -> Venue:
    fake = shared_fake_alpaca()
    market = f"contract-{uuid.uuid4().hex[:12]}"
    fake.set_clock(clock.now(), market=market)
    keys: dict[str, dict[str, Any]] = {}
    broker = AlpacaBroker(keys.__getitem__, timeout=2.0, lookup_delays=(0.02, 0.05),
                          rate_limit_delays=(0.02,), cancel_delays=(0.02,))

    def opener(ref: str, cash: Decimal) -> None:
        account = fake.create_account(cash, market=market)
        keys[ref] = {"key_id": account.key_id, "secret_key": account.secret_key, "paper": True,
                     "base_url": fake.url}
        broker.open_account(ref, cash)

    def trade_at(symbol: str, price: Decimal) -> None:
        clock.advance(timedelta(seconds=1))
        fake.trade(symbol, price, at=clock.now(), market=market)

    return Venue(broker=broker, clock=clock, trade_at=trade_at, with_costs=None,
                 can_short=True, opener=opener)


VENUES: dict[str, Callable[[Container, ManualClock], Venue]] = {"alpaca": alpaca_venue}
