"""The CCXT broker under the contract, against the fake Binance spot exchange on loopback.

One fake per test process, made on first use; each venue starts it afresh (no prices, accounts
or orders from an earlier test). The market moves through the fake's control API, stamped with
the test's clock, so fill times compare with `clock.now()`.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.contract.conftest import Venue
from tests.fakes.ccxt_exchange import FakeExchange
from tradewire.adapters.brokers.ccxt import CcxtBroker
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container

# Every symbol the contract trades, listed against USDT.
SYMBOLS = ("AAPL", "NVDA", "AMD", "MSFT", *(f"SYM{i}" for i in range(12)))
_fake: FakeExchange | None = None
_lock = threading.Lock()


def fake_exchange() -> FakeExchange:
    global _fake
    with _lock:
        if _fake is None:
            _fake = FakeExchange(bases=SYMBOLS)
        return _fake


def ccxt_venue(container: Container, clock: ManualClock) -> Venue:
    fake = fake_exchange()
    fake.reset()
    fake.set_clock(clock.now())
    credentials: dict[str, dict[str, Any]] = {}
    broker = CcxtBroker("binance", lambda ref: credentials[ref], timeout_s=5,
                        lookup_delays=(0.01, 0.02), busy_delays=(0.01,), rate_limit_ms=1)

    def opener(ref: str, cash: Decimal) -> None:
        keys = fake.create_account(cash)
        credentials[ref] = {"apiKey": keys.api_key, "secret": keys.secret, "base_url": fake.url}
        broker.open_account(ref, cash)

    def trade_at(symbol: str, price: Decimal) -> None:
        clock.advance(timedelta(seconds=1))
        fake.trade(symbol, price, at=clock.now())

    return Venue(broker=broker, clock=clock, trade_at=trade_at, with_costs=None,
                 can_short=False, opener=opener)


VENUES = {"ccxt": ccxt_venue}
