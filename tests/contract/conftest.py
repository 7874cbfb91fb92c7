"""Venues for the broker contract: each broker kind, with a way to move its market."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradewire.adapters.brokers.paper import PaperBroker
from tradewire.adapters.clock import ManualClock
from tradewire.bootstrap import Container
from tradewire.domain.matching import FillModel
from tradewire.services.ports import Broker, Tick


@dataclass
class Venue:
    """A broker under test, the clock it reads, and a hand on its market."""

    broker: Broker
    clock: ManualClock
    trade_at: Callable[[str, Decimal], None]  # the market trades `symbol` at `price`, a second later
    with_costs: Callable[[FillModel], Venue] | None = None  # None: the venue's costs are its own
    can_short: bool = True
    # How a fresh account comes to exist at the venue (a fake broker server makes one through
    # its control API); None: the broker's own open_account.
    opener: Callable[[str, Decimal], None] | None = None

    def open(self, cash: str = "100000") -> str:
        """A fresh account holding `cash`; returns its reference."""
        ref = f"acct-{uuid.uuid4().hex[:12]}"
        (self.opener or self.broker.open_account)(ref, Decimal(cash))
        return ref


def paper_venue(container: Container, clock: ManualClock, model: FillModel | None = None) -> Venue:
    # The `clock` fixture starts on Friday 2026-02-06 at 10:00 in New York: XNYS is open.
    broker = (PaperBroker(container.db, clock, container.deps.calendar, model=model)
              if model else container.paper)
    prices = container.deps.prices

    def trade_at(symbol: str, price: Decimal) -> None:
        clock.advance(timedelta(seconds=1))
        ticks = [Tick(symbol=symbol, price=Decimal(price), ts=clock.now())]
        prices.record(ticks)
        broker.on_ticks(ticks)

    return Venue(broker=broker, clock=clock, trade_at=trade_at,
                 with_costs=lambda m: paper_venue(container, clock, m))


# Each broker kind under the contract. A fake broker server's venue registers itself here from
# its own module (tests/contract/venue_*.py), imported below.
VENUES: dict[str, Callable[[Container, ManualClock], Venue]] = {"paper": paper_venue}
for _module in sorted(Path(__file__).parent.glob("venue_*.py")):
    VENUES.update(importlib.import_module(f"tests.contract.{_module.stem}").VENUES)


# The paper broker keeps its book in tradewire's database: it runs on SQLite and on
# PostgreSQL. A fake broker server keeps its own book, so one database is enough for it.
CASES = [pytest.param(("paper", "sqlite"), id="paper-sqlite"),
         pytest.param(("paper", "postgres"), id="paper-postgres", marks=pytest.mark.postgres),
         *(pytest.param((name, "sqlite"), id=name) for name in sorted(VENUES) if name != "paper")]


@pytest.fixture(params=CASES)
def venue_case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def db_kind(venue_case: tuple[str, str]) -> str:
    """Overrides tests/conftest.py's: the database follows the venue case."""
    return venue_case[1]


@pytest.fixture
def venue(venue_case: tuple[str, str], container: Container, clock: ManualClock) -> Venue:
    return VENUES[venue_case[0]](container, clock)
