"""Which broker serves which account."""

from __future__ import annotations

from collections.abc import Iterable

from tradewire.adapters.brokers.paper import PaperBroker
from tradewire.domain.accounts import Account
from tradewire.domain.errors import Rejected
from tradewire.services.ports import Broker, PriceDrivenBroker


class BrokerRegistry:
    def __init__(self, paper: PaperBroker) -> None:
        self.paper = paper
        self._by_name: dict[str, Broker] = {"paper": paper}

    def for_account(self, account: Account) -> Broker:
        broker = self._by_name.get(account.broker)
        if broker is None:
            raise Rejected(f"broker {account.broker} is not configured", code="BROKER_UNAVAILABLE")
        return broker

    def price_driven(self) -> Iterable[PriceDrivenBroker]:
        return [self.paper]
