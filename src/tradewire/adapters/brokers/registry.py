"""Which broker serves which account: `paper`, `alpaca`, `ccxt:EXCHANGE`.

Adapters for real brokers are made on first use (their SDKs load then), one per broker name,
each reading an account's keys from the credential source when it first talks for it."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable

from tradewire.adapters.brokers.paper import PaperBroker
from tradewire.domain.accounts import Account
from tradewire.domain.errors import Rejected
from tradewire.services.ports import Broker, Credentials, PriceDrivenBroker


def _alpaca(arg: str, credentials: Credentials) -> Broker:
    module = importlib.import_module("tradewire.adapters.brokers.alpaca")
    return module.AlpacaBroker(credentials)  # type: ignore[no-any-return]


def _ccxt(arg: str, credentials: Credentials) -> Broker:
    if not arg:
        raise Rejected("a ccxt broker names its exchange: ccxt:EXCHANGE", code="BROKER_UNAVAILABLE")
    module = importlib.import_module("tradewire.adapters.brokers.ccxt")
    return module.CcxtBroker(arg, credentials)  # type: ignore[no-any-return]


FACTORIES: dict[str, Callable[[str, Credentials], Broker]] = {"alpaca": _alpaca, "ccxt": _ccxt}


def known_broker(name: str) -> bool:
    kind, _, arg = name.partition(":")
    return name == "paper" or (kind in FACTORIES and (kind != "ccxt" or bool(arg)))


class BrokerRegistry:
    def __init__(self, paper: PaperBroker, credentials: Credentials | None = None) -> None:
        self.paper = paper
        self._credentials = credentials
        self._by_name: dict[str, Broker] = {"paper": paper}
        self._lock = threading.Lock()

    def register(self, name: str, broker: Broker) -> None:
        """Serve accounts of broker `name` with `broker` (tests hand in a configured one)."""
        with self._lock:
            self._by_name[name] = broker

    def for_account(self, account: Account) -> Broker:
        return self.named(account.broker)

    def named(self, name: str) -> Broker:
        broker = self._by_name.get(name)
        if broker is not None:
            return broker
        kind, _, arg = name.partition(":")
        factory = FACTORIES.get(kind)
        if factory is None or self._credentials is None:
            raise Rejected(f"broker {name} is not configured", code="BROKER_UNAVAILABLE")
        with self._lock:
            if name not in self._by_name:
                self._by_name[name] = factory(arg, self._credentials)
            return self._by_name[name]

    def in_use(self) -> list[Broker]:
        """Every broker made so far (reconciliation and streams walk them)."""
        with self._lock:
            return list(self._by_name.values())

    def price_driven(self) -> Iterable[PriceDrivenBroker]:
        return [self.paper]
