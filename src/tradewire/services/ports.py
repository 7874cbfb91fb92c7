"""The ports: every outside thing the use cases talk to, as a Protocol."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any, Protocol

from tradewire.domain.accounts import Account
from tradewire.domain.market import Bar
from tradewire.domain.orders import OrderStatus
from tradewire.domain.sessions import Session
from tradewire.domain.signals import SignalStatus
from tradewire.domain.values import OrderType, Side, TimeInForce
from tradewire.domain.venues import BrokerCapabilities


class Clock(Protocol):
    def now(self) -> datetime: ...


# ---- broker ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRequest:
    account_ref: str
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    time_in_force: TimeInForce
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    extended_hours: bool = False
    expires_at: datetime | None = None  # gtd
    oco_group: str | None = None  # one-cancels-other with the group's other orders


@dataclass(frozen=True, slots=True)
class BrokerFill:
    fill_id: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    filled_at: datetime


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """The broker's view of one order, with every fill it has so far."""

    client_order_id: str
    broker_order_id: str
    status: OrderStatus
    filled_qty: Decimal
    fills: tuple[BrokerFill, ...] = ()
    reason: str | None = None
    # What was ordered, as the broker holds it (reconciliation reports strangers with it).
    symbol: str | None = None
    side: Side | None = None
    qty: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BrokerAccount:
    cash: Decimal
    equity: Decimal
    buying_power: Decimal


@dataclass(frozen=True, slots=True)
class Tick:
    symbol: str
    price: Decimal
    ts: datetime


class BrokerUnavailable(Exception):
    """The broker did not answer; whether it acted is unknown until looked up."""


class MovedUnderUs(RuntimeError):
    """A compare-and-set lost to another writer: the transaction is rolled back and the
    caller reads again (what it applies is idempotent)."""


# account id → that account's opened broker keys (services/credentials.CredentialSource)
Credentials = Callable[[str], Mapping[str, Any]]


class Broker(Protocol):
    """One venue. `account_ref` is tradewire's account id; an adapter that needs keys gets
    them for that account from its credential source.

    `submit` returns the broker's view of the order, REJECTED with a reason when the broker
    refused it. It raises BrokerUnavailable only when the outcome is unknown (a timeout, a
    dropped connection, a 5xx after sending): the caller then looks the order up by its
    `client_order_id` before anything is sent again. Sending a `client_order_id` the broker
    already has returns that order, never a second one.

    A broker whose calls answer from this process's own database, never waiting on a network
    (the paper venue), says so with a true `answers_locally` attribute."""

    name: str
    capabilities: BrokerCapabilities

    def open_account(self, account_ref: str, cash: Decimal, market: str = "XNYS") -> None: ...
    def submit(self, request: OrderRequest) -> BrokerOrder: ...
    def lookup(self, account_ref: str, client_order_id: str) -> BrokerOrder | None: ...
    def cancel(self, account_ref: str, client_order_id: str) -> BrokerOrder | None: ...
    def account(self, account_ref: str) -> BrokerAccount: ...
    def positions(self, account_ref: str) -> dict[str, Decimal]: ...
    def open_orders(self, account_ref: str) -> list[BrokerOrder]:
        """Every order the broker holds open for the account, including ones tradewire never
        sent (reconciliation reports those)."""
        ...


class PriceDrivenBroker(Broker, Protocol):
    """A broker that matches its own orders against tradewire's ticks (the paper broker)."""

    def on_ticks(self, ticks: Sequence[Tick]) -> list[tuple[str, BrokerOrder]]: ...
    def on_clock(self, now: datetime) -> list[tuple[str, BrokerOrder]]: ...


class MarketCalendar(Protocol):
    """Trading sessions of a market (an exchange-calendars code such as XNYS, or 24/7)."""

    def session_at_or_after(self, market: str, at: datetime) -> Session: ...
    def next_open(self, market: str, at: datetime) -> datetime: ...
    def timezone(self, market: str) -> tzinfo: ...


class Brokers(Protocol):
    def for_account(self, account: Account) -> Broker: ...
    def price_driven(self) -> Iterable[PriceDrivenBroker]: ...


class BarSource(Protocol):
    """OHLCV bars of one symbol and timeframe, oldest first, at most `limit` of them ending at
    the latest closed bar (or before `end`). An empty list: this source has none."""

    name: str

    def bars(self, symbol: str, timeframe: str, limit: int,
             end: datetime | None = None) -> list[Bar]: ...


class MarketPrices(Protocol):
    def last_price(self, symbol: str) -> Decimal | None: ...
    def record(self, ticks: Sequence[Tick]) -> None: ...


# ---- storage ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class SignalFilter:
    account_ids: Sequence[str] | None = None  # None: every account
    status: SignalStatus | None = None
    symbol: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class UnitOfWork(Protocol):
    """One transaction over every repository; leaving without commit rolls back."""

    users: Any
    accounts: Any
    keys: Any
    signals: Any
    orders: Any
    fills: Any
    positions: Any
    jobs: Any
    audit: Any
    access_tokens: Any
    triggers: Any
    partners: Any
    timings: Any
    market: Any
    channels: Any
    partner_signals: Any
    exit_plans: Any
    bars: Any
    strategies: Any
    credentials: Any
    risk: Any
    flags: Any
    notifications: Any
    stats: Any
    trigger_leases: Any

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...
    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = True) -> UnitOfWork: ...


class Sealer(Protocol):
    """Encryption of broker credentials with keys kept outside the database."""

    def seal(self, secret: dict[str, Any]) -> str: ...
    def open(self, sealed: str) -> dict[str, Any]: ...
    def reseal(self, sealed: str) -> str: ...  # the same secret under the current primary key


class Secrets(Protocol):
    """Hashing and signing of credentials, with a key kept outside the database."""

    def new_api_key(self) -> tuple[str, str]: ...  # (plaintext, visible prefix)
    def random_token(self) -> str: ...  # 256 random bits, URL-safe
    def hash_api_key(self, key: str) -> str: ...
    def hash_password(self, password: str) -> str: ...
    def verify_password(self, password_hash: str, password: str) -> bool: ...
    def issue_token(self, user_id: str) -> tuple[str, int]: ...  # (jwt, expires_in seconds)
    def read_token(self, token: str) -> str | None: ...  # user id, or None if invalid
