"""Risk controls on every front door (issue 11: "a table test per risk control, on every front
door"), through a real server, on SQLite and PostgreSQL.

The table is DOORS x CONTROLS, in full. Each DOOR sends "open a long of qty in symbol on this
account" its own way and reads back the refusal's machine-readable code where that door tells it:

  door               how the entry arrives                           where the RISK_* code is
  v1-immediate       POST /api/v1/signals, executeMode immediate     body details[0].code
  v1-approved        POST /api/v1/signals pending, then /process     /process body details[0].code
  v1-scheduled       POST /api/v1/signals scheduled, the scheduler   signal timeline (SignalRejected)
  ingest             POST /api/signals/ingest (seed 002)             body details[0].code
  encoded-token      /signal/create-order, then the one-use token    body details[0].code
  access-token       POST /signal/execute-via-token/{token}          signal timeline only (*)
  quick-order        POST /partners/quick-order                      signal timeline only (*)
  partner-channel    POST /v1/signal fanned out to a subscriber      signal timeline only (*)
  tradingview        a TradingView text/plain alert on the token     body messageCode, kebab-case
  strategy           a strategy linked to the account, evaluated     signal timeline only (*)

(*) Only the person-readable reason is in the answer (access-token and quick-order answer
SIGNAL_REJECTED; partner-channel marks the child "rejected" with the reason; the strategy's
evaluation says nothing of it); the RISK_* code is in the stored signal's audit timeline
(GET /api/v1/signals/:id, the SignalRejected event), which is where these doors read it.

Each CONTROL sets an account's limits, prepares the account (a position held elsewhere, a loss
taken today, orders sent this minute), then sends an entry that must be refused with the code
and leave no order at the broker; then, the limit changed to one the entry stays within, the
same entry on the same account, which must reach the broker and fill. Every control runs on
every door (109 cases per database) except the one pair that cannot happen: RISK_NO_PRICE
through partner-channel, whose entries are limit orders and so always carry a price.

Then: the global kill switch on every door at once (exits, a stop-loss among them, still go
out; resuming works), one account's kill switch, reduce-only (closing part, closing exactly,
covering; a TradingView reversal covers but does not go long), baskets (each leg checked, the
legs adding up), the daily loss across sessions (also when a stop takes the loss at the open,
before the day's first order), trading windows by the clock in New York time, the order rate
over a rolling minute, a partner signal refused on one subscriber only, a partner's rebuy level
(an entry the exit engine sends, outside orders_for), and who may read and change limits.

The server, database and one user are shared by the module (per database); every case uses
accounts and symbols of its own, and the clock is put back before each test.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.support import Caller, Server, database_url, login, make_caller, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.db import tables as t
from tradewire.bootstrap import Container
from tradewire.services import accounts, capabilities, channels, risk
from tradewire.services.ports import Tick
from tradewire.services.scheduler import run_due_jobs
from tradewire.services.ticks import apply_ticks

START = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)  # a Friday, 10:00 in New York: XNYS is open
PRICE = Decimal(100)
QTY = Decimal(10)


# ---- the world shared by the module ----------------------------------------------------------


@dataclass
class World:
    container: Container
    client: httpx.Client
    clock: ManualClock
    owner: Caller  # one user; each case opens accounts of its own under it
    jwt: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite",
                                        pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp(f"risk-{request.param}")
    clock = ManualClock(START)
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite" and Path("/dev/shm").is_dir():
            # The database file in memory: SQLite as configured (WAL, synchronous=FULL), whose
            # fsync for each of the module's thousands of commits then costs nothing.
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(dir="/dev/shm")))
        url = stack.enter_context(database_url(request.param, tmp))
        if url.startswith("postgresql"):
            # Commits do not wait for the WAL to reach the disk: the same transactions, locks
            # and isolation, without an fsync for each of the module's thousands of commits.
            assert "options=-csearch_path" in url, url
            url += "%20-csynchronous_commit%3Doff"
        container = make_container(url, tmp / "data", clock, max_in_flight=256)
        try:
            with Server(container) as server, \
                    httpx.Client(base_url=server.url, timeout=30) as client:
                owner = make_caller(container)
                yield World(container, client, clock, owner, login(client, owner))
        finally:
            container.close()


@pytest.fixture(autouse=True)
def _fresh_clock(world: World) -> None:
    world.clock.set(START)


def new_account(world: World) -> Caller:
    """Another paper account of the module's user (its API key and JWT see every one)."""
    account = accounts.create_account(world.owner.user_id, "paper", broker="paper",
                                      cash=Decimal(1_000_000), deps=world.container.deps)
    return replace(world.owner, account_id=account.id)


def unique(prefix: str) -> str:
    return prefix + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(6))


def set_price(world: World, symbol: str, price: Decimal | int = PRICE) -> None:
    apply_ticks([Tick(symbol, Decimal(price), world.clock.now())], world.container.deps)


def set_limits(world: World, caller: Caller, limits: dict[str, Any]) -> None:
    risk.set_limits(caller.account_id, limits, world.container.deps)


def count(world: World, table: Any, owner_column: str, caller: Caller,
          symbol: str | None = None) -> int:
    q = select(func.count()).select_from(table).where(
        table.c[owner_column] == caller.account_id)
    if symbol is not None:
        q = q.where(table.c.symbol == symbol)
    with world.container.db.engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def at_broker(world: World, caller: Caller, symbol: str | None = None) -> int:
    """Orders the paper broker received for the account (in the symbol), besides the exits
    an entry's plan rests there (its stop and target: protection, never refused by a limit)."""
    resting = select(t.orders.c.client_order_id).where(t.orders.c.exit_leg.isnot(None))
    q = select(func.count()).select_from(t.paper_orders).where(
        t.paper_orders.c.account_ref == caller.account_id,
        t.paper_orders.c.client_order_id.not_in(resting))
    if symbol is not None:
        q = q.where(t.paper_orders.c.symbol == symbol)
    with world.container.db.engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def stored_orders(world: World, caller: Caller, symbol: str | None = None) -> int:
    return count(world, t.orders, "account_id", caller, symbol)


def held(world: World, caller: Caller, symbol: str) -> Decimal:
    return world.container.paper.positions(caller.account_id).get(symbol, Decimal(0))


def v1(world: World, caller: Caller, symbol: str, qty: Decimal | int = QTY,
       action: str = "openLong", **fields: Any) -> httpx.Response:
    body = {"symbol": symbol, "action": action, "accountId": caller.account_id,
            "quantity": float(qty), "executeMode": "immediate", **fields}
    return world.client.post("/api/v1/signals", json=body, headers=caller.headers)


def code_of(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    return str(r.json()["details"][0]["code"])


# ---- what a door answers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    accepted: bool
    code: str | None = None
    signal_id: str | None = None
    where: str = "body"  # where the code was read: the answer's body or the signal's timeline


def from_timeline(world: World, caller: Caller, signal_id: str) -> Result:
    r = world.client.get(f"/api/v1/signals/{signal_id}", headers=caller.headers)
    assert r.status_code == 200, r.text
    signal = r.json()["signal"]
    if signal["status"] != "rejected":
        assert signal["status"] in ("executed", "queued"), signal
        return Result(True, signal_id=signal_id)
    codes = [e["data"].get("code") for e in signal["timeline"] if e["event"] == "SignalRejected"]
    assert len(codes) == 1, signal["timeline"]
    assert signal["statusReason"], signal  # and a reason a person reads
    return Result(False, codes[0], signal_id, where="timeline")


def from_details(r: httpx.Response, ok: int) -> Result:
    if r.status_code == ok:
        return Result(True)
    return Result(False, code_of(r))


@dataclass
class Ctx:
    world: World
    caller: Caller

    @property
    def client(self) -> httpx.Client:
        return self.world.client

    @property
    def deps(self) -> Any:
        return self.world.container.deps


Send = Callable[[Ctx, str, Decimal], Result]


def send_v1_immediate(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    r = v1(ctx.world, ctx.caller, symbol, qty)
    if r.status_code == 201:
        assert r.json()["signal"]["status"] == "executed", r.text
    return from_details(r, 201)


def send_v1_approved(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    r = v1(ctx.world, ctx.caller, symbol, qty, executeMode="pending")
    assert r.status_code == 201 and r.json()["signal"]["status"] == "pending", r.text
    signal_id = r.json()["signal"]["id"]
    assert at_broker(ctx.world, ctx.caller, symbol) == 0  # nothing is sent before approval
    done = ctx.client.post(f"/api/v1/signals/{signal_id}/process", headers=ctx.world.jwt)
    result = from_details(done, 200)
    assert from_timeline(ctx.world, ctx.caller, signal_id).code == result.code
    return replace(result, signal_id=signal_id)


def send_v1_scheduled(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    due = ctx.world.clock.now() + timedelta(seconds=30)
    r = v1(ctx.world, ctx.caller, symbol, qty, executeMode="scheduled", timezone="UTC",
           scheduledProcessAt=due.replace(tzinfo=None).isoformat())
    assert r.status_code == 202, r.text
    ctx.world.clock.set(due)
    run_due_jobs(ctx.deps)
    return from_timeline(ctx.world, ctx.caller, r.json()["signal"]["id"])


def send_ingest(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    body = {"symbol": symbol, "action": "openLong", "accountId": ctx.caller.account_id,
            "quantity": float(qty), "processAt": "now"}
    r = ctx.client.post("/api/signals/ingest", json=body, headers=ctx.caller.headers)
    if r.status_code == 400:
        assert r.json()["code"] == "SIGNAL_REJECTED" and r.json()["message"], r.text
    return from_details(r, 201)


def send_encoded_token(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    made = ctx.client.post("/signal/create-order", headers=ctx.caller.headers, json={
        "account_id": ctx.caller.account_id, "symbol": symbol, "side": "buy",
        "quantity": str(qty)})
    assert made.status_code == 201, made.text
    r = ctx.client.post("/signal/post-execute-via-encoded-token",
                        params={"encoded_token": made.json()["encoded_token"]})
    return from_details(r, 200)


def _order_answer(ctx: Ctx, r: httpx.Response) -> Result:
    """The access-token and quick-order answer: SIGNAL_REJECTED with the stored signal."""
    assert r.status_code in (201, 400), r.text
    if r.status_code == 201:
        assert r.json()["order"]["status"] == "executed", r.text
        return Result(True)
    assert r.json()["code"] == "SIGNAL_REJECTED" and r.json()["error"], r.text
    stored = from_timeline(ctx.world, ctx.caller, r.json()["order"]["signal_id"])
    assert r.json()["reason_code"] == stored.code, r.text  # the answer names the limit too
    return Result(False, stored.code, stored.signal_id)


def send_access_token(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    _, token = capabilities.create_access_token(ctx.caller.account_id, ctx.deps,
                                                ctx.world.container.secrets)
    r = ctx.client.post(f"/signal/execute-via-token/{token}",
                        json={"symbol": symbol, "side": "buy", "quantity": str(qty)})
    return _order_answer(ctx, r)


def send_quick_order(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    partner, bearer = capabilities.create_partner(unique("desk-"), ctx.deps,
                                                  ctx.world.container.secrets)
    capabilities.grant_partner(partner.id, ctx.caller.account_id, ctx.deps)
    r = ctx.client.post("/partners/quick-order", headers={"Authorization": f"Bearer {bearer}"},
                        json={"account_id": ctx.caller.account_id, "symbol": symbol,
                              "side": "buy", "quantity": str(qty)})
    return _order_answer(ctx, r)


def send_partner_channel(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    """A partner signal fanned out to one subscriber: a limit buy at the range's top (PRICE),
    of qty units (its allocation buys exactly that)."""
    coin, market = symbol.split("/")
    partner, _ = capabilities.create_partner(unique("signals-"), ctx.deps,
                                             ctx.world.container.secrets)
    chan, secret = channels.create_channel(partner.id, unique("chan-"), ctx.deps,
                                           ctx.world.container.secrets)
    channels.subscribe(chan.id, ctx.caller.account_id, ctx.deps, allocation=qty * PRICE)
    body = {"coin": coin, "trade_market": market, "buy_price_min": str(PRICE - 5),
            "buy_price_max": str(PRICE), "sell_price_1": str(PRICE + 10),
            "stop_loss": str(PRICE - 10), "type": "long", "invest": "100"}
    r = ctx.client.post("/v1/signal", json=body, headers={"anny-api-key": chan.api_key,
                                                           "anny-api-secret": secret})
    assert r.status_code == 200 and r.json()["payload"]["result"] == "success", r.text
    [child] = r.json()["payload"]["children"]
    if child["status"] != "rejected":
        return Result(True, signal_id=child["signal_id"])
    assert child["reason"], child
    return from_timeline(ctx.world, ctx.caller, child["signal_id"])


def send_tradingview(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    _, token = capabilities.create_access_token(ctx.caller.account_id, ctx.deps,
                                                ctx.world.container.secrets)
    alert = {"ticker": f"NASDAQ:{symbol}", "action": "buy", "quantity": str(qty)}
    r = ctx.client.post(f"/signal/execute-via-token/{token}", content=json.dumps(alert).encode(),
                        headers={"Content-Type": "text/plain"})
    assert r.status_code in (201, 400), r.text
    if r.status_code == 201:
        return Result(True)
    assert r.json()["success"] is False and r.json()["message"], r.text
    return Result(False, r.json()["messageCode"].upper().replace("-", "_"))


def _bars(last_close: Decimal, n: int = 40) -> list[dict[str, Any]]:
    """Daily bars rising one a day to last_close: always above their 5-day average."""
    day = datetime(2025, 12, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        close = float(last_close) - (n - 1 - i)
        out.append({"timestamp": (day + timedelta(days=i)).isoformat(), "open": close - 0.5,
                    "high": close + 1, "low": close - 1, "close": close, "volume": 1000})
    return out


def _strategy(symbol: str, account_id: str | None = None) -> dict[str, Any]:
    name = f"risk_{uuid.uuid4().hex[:10]}"
    body: dict[str, Any] = {
        "name": name, "asset": symbol,
        "rules": {"name": name, "asset": symbol, "exit": [], "entry": [
            {"name": "price_above_sma", "signal_type": "FILTER", "timeframe": "1d",
             "params": {"window": 5}}]},
        "execution_config": {"stop_loss_calculation": "fixed_percent",
                             "stop_loss_percent": 0.05, "reward_factor": 2}}
    if account_id is not None:
        body["account_id"] = account_id
    return body


def prepare_strategy(world: World, symbol: str) -> Decimal:
    """Bars for the symbol; the quantity the strategy will enter with (a dry run)."""
    r = world.client.post("/api/v1/market/bars", headers=world.owner.headers,
                          json={"symbol": symbol, "timeframe": "1d", "bars": _bars(PRICE)})
    assert r.status_code == 200, r.text
    r = world.client.post("/api/v1/execution/evaluate", headers=world.owner.headers,
                          json={"strategy": _strategy(symbol), "persist": False})
    assert r.status_code == 200, r.text
    [entry] = [o for o in r.json()["new_orders"] if o["side"] == "enter_long"]
    return Decimal(str(entry["position_size"]))


def send_strategy(ctx: Ctx, symbol: str, qty: Decimal) -> Result:
    made = ctx.client.post("/api/v1/strategies", headers=ctx.caller.headers,
                           json=_strategy(symbol, ctx.caller.account_id))
    assert made.status_code == 201, made.text
    sid = made.json()["strategy"]["id"]
    r = ctx.client.post(f"/api/v1/execution/evaluate/{sid}", json={"persist": True},
                        headers=ctx.caller.headers)
    assert r.status_code == 200, r.text
    listed = ctx.client.get("/api/v1/signals", headers=ctx.caller.headers,
                            params={"accountId": ctx.caller.account_id, "symbol": symbol})
    [signal] = [s for s in listed.json()["signals"] if s["strategyId"] == sid]
    assert Decimal(signal["quantity"]) == qty, signal
    return from_timeline(ctx.world, ctx.caller, signal["id"])


@dataclass(frozen=True)
class Door:
    name: str
    send: Send
    symbol: Callable[[], str] = lambda: unique("R")
    prepare: Callable[[World, str], Decimal] | None = None  # the door decides the quantity
    limit_priced: bool = False  # its entries carry a limit price

    def __str__(self) -> str:
        return self.name


DOORS = [
    Door("v1-immediate", send_v1_immediate),
    Door("v1-approved", send_v1_approved),
    Door("v1-scheduled", send_v1_scheduled),
    Door("ingest", send_ingest),
    Door("encoded-token", send_encoded_token),
    Door("access-token", send_access_token),
    Door("quick-order", send_quick_order),
    Door("partner-channel", send_partner_channel, symbol=lambda: unique("C") + "/USDT",
         limit_priced=True),
    Door("tradingview", send_tradingview),
    Door("strategy", send_strategy, prepare=prepare_strategy),
]


# ---- the controls ----------------------------------------------------------------------------


def take_a_loss(ctx: Ctx) -> None:
    """Buy 10 at 100 and sell them at 90 in another symbol: 100 lost today."""
    other = unique("L")
    set_price(ctx.world, other, 100)
    assert v1(ctx.world, ctx.caller, other, 10).status_code == 201
    set_price(ctx.world, other, 90)
    assert v1(ctx.world, ctx.caller, other, 10, action="closeLong").status_code == 201
    assert held(ctx.world, ctx.caller, other) == 0


def send_two_orders(ctx: Ctx) -> None:
    other = unique("O")
    set_price(ctx.world, other)
    for _ in range(2):
        assert v1(ctx.world, ctx.caller, other, 1).status_code == 201


def hold_another_position(ctx: Ctx) -> None:
    other = unique("H")
    set_price(ctx.world, other)
    assert v1(ctx.world, ctx.caller, other, 1).status_code == 201
    assert held(ctx.world, ctx.caller, other) == 1


Limits = Callable[[str, Decimal], dict[str, Any]]


@dataclass(frozen=True)
class Control:
    code: str
    refused: Limits  # (symbol, qty) -> limits the entry breaks
    within: Limits  # (symbol, qty) -> limits the same entry stays within
    setup: Callable[[Ctx], None] | None = None  # run after the limits are set
    priced: bool = True  # whether the entry's symbol has a price when it is refused

    def __str__(self) -> str:
        return self.code


CONTROLS = [
    Control("RISK_HALTED", lambda s, q: {"halted": True}, lambda s, q: {"halted": False}),
    Control("RISK_REDUCE_ONLY", lambda s, q: {"reduce_only": True},
            lambda s, q: {"reduce_only": False}),
    Control("RISK_SYMBOL_NOT_ALLOWED", lambda s, q: {"allowed_symbols": ["SPY"]},
            lambda s, q: {"allowed_symbols": ["SPY", s]}),
    Control("RISK_SYMBOL_BLOCKED", lambda s, q: {"blocked_symbols": ["SPY", s]},
            lambda s, q: {"blocked_symbols": ["SPY"]}),
    # 10:00 in New York (10:00:30 for the scheduled door); the refusing window spans midnight.
    Control("RISK_OUTSIDE_TRADING_WINDOW", lambda s, q: {"trading_windows": ["16:00-09:30"]},
            lambda s, q: {"trading_windows": ["16:00-09:30", "09:30-16:00"]}),
    Control("RISK_DAILY_LOSS_LIMIT", lambda s, q: {"daily_loss_limit": 100},
            lambda s, q: {"daily_loss_limit": 101}, setup=take_a_loss),
    Control("RISK_ORDER_RATE", lambda s, q: {"max_orders_per_minute": 2},
            lambda s, q: {"max_orders_per_minute": 3}, setup=send_two_orders),
    Control("RISK_MAX_POSITION_QTY", lambda s, q: {"max_position_qty": str(q / 2)},
            lambda s, q: {"max_position_qty": str(q)}),
    Control("RISK_MAX_POSITION_NOTIONAL",
            lambda s, q: {"max_position_notional": str(q * PRICE - Decimal("0.01"))},
            lambda s, q: {"max_position_notional": str(q * PRICE)}),
    Control("RISK_NO_PRICE", lambda s, q: {"max_position_notional": 10**9},
            lambda s, q: {"max_position_notional": 10**9}, priced=False),
    Control("RISK_MAX_OPEN_POSITIONS", lambda s, q: {"max_open_positions": 1},
            lambda s, q: {"max_open_positions": 2}, setup=hold_another_position),
]

CASES = [pytest.param(door, control, id=f"{door}-{control}")
         for door in DOORS for control in CONTROLS
         if not (control.code == "RISK_NO_PRICE" and door.limit_priced)]


@pytest.mark.parametrize(("door", "control"), CASES)
def test_each_control_on_each_door(world: World, door: Door, control: Control) -> None:
    """The entry past the limit is refused with the code and nothing reaches the broker; the
    same entry on the same account, once the limit is one it stays within, is sent."""
    symbol = door.symbol()
    qty = door.prepare(world, symbol) if door.prepare is not None else QTY
    if control.priced:
        set_price(world, symbol)
    caller = new_account(world)
    set_limits(world, caller, control.refused(symbol, qty))
    ctx = Ctx(world, caller)
    if control.setup is not None:
        control.setup(ctx)

    refused = door.send(ctx, symbol, qty)
    assert (refused.accepted, refused.code) == (False, control.code), refused
    assert stored_orders(world, caller, symbol) == 0
    assert at_broker(world, caller, symbol) == 0  # nothing of it reached the broker
    assert held(world, caller, symbol) == 0

    set_price(world, symbol)
    world.clock.set(START)
    set_limits(world, caller, control.within(symbol, qty))
    passed = door.send(ctx, symbol, qty)
    assert passed.accepted, passed
    assert at_broker(world, caller, symbol) == 1  # the entry reached the broker
    assert held(world, caller, symbol) == qty  # and filled at the price


# ---- the kill switches -----------------------------------------------------------------------


def test_the_global_kill_switch_refuses_entries_on_every_door_and_lets_exits_out(
        world: World) -> None:
    client, deps = world.client, world.container.deps
    admin = make_caller(world.container, admin=True)
    admin_jwt = login(client, admin)
    stranger = make_caller(world.container)  # another user's account, with no limits at all
    exiting, held_symbol = new_account(world), unique("X")
    set_price(world, held_symbol)
    r = v1(world, exiting, held_symbol, 10, stopLoss={"type": "stop", "amount": 10})  # at 90
    assert r.status_code == 201, r.text

    r = client.put("/api/v1/trading", json={"halted": True}, headers=admin_jwt)
    assert r.status_code == 200 and r.json() == {"halted": True}, r.text
    try:
        assert client.get("/api/v1/trading", headers=world.owner.headers).json() == {
            "halted": True}
        for door in DOORS:
            symbol = door.symbol()
            qty = door.prepare(world, symbol) if door.prepare is not None else QTY
            set_price(world, symbol)
            world.clock.set(START)
            caller = new_account(world)
            refused = door.send(Ctx(world, caller), symbol, qty)
            assert (refused.accepted, refused.code) == (False, "RISK_HALTED"), (door, refused)
            assert at_broker(world, caller, symbol) == 0, door
        r = v1(world, stranger, held_symbol, 1)
        assert code_of(r) == "RISK_HALTED"
        # Exits still go out: part of the position on one door, part on another, and the
        # rest by its stop-loss.
        assert v1(world, exiting, held_symbol, 4, action="closeLong").status_code == 201
        _, token = capabilities.create_access_token(exiting.account_id, deps,
                                                    world.container.secrets)
        r = client.post(f"/signal/execute-via-token/{token}",
                        json={"symbol": held_symbol, "side": "sell", "quantity": "3"})
        assert r.status_code == 201, r.text
        assert held(world, exiting, held_symbol) == 3
        set_price(world, held_symbol, 89)
        assert held(world, exiting, held_symbol) == 0
        set_price(world, held_symbol)

        r = client.put("/api/v1/trading", json={"halted": False}, headers=admin_jwt)
        assert r.status_code == 200 and r.json() == {"halted": False}, r.text
        assert v1(world, stranger, held_symbol, 1).status_code == 201
        assert v1(world, new_account(world), held_symbol, 1).status_code == 201
    finally:
        risk.set_global_halt(False, deps)


def test_one_accounts_kill_switch_stops_only_that_account(world: World) -> None:
    client = world.client
    halted, other, symbol = new_account(world), new_account(world), unique("K")
    set_price(world, symbol)
    assert v1(world, halted, symbol, 10).status_code == 201
    r = client.patch(f"/api/v1/accounts/{halted.account_id}/risk", json={"halted": True},
                     headers=world.jwt)
    assert r.status_code == 200 and r.json()["limits"]["halted"] is True, r.text
    assert code_of(v1(world, halted, symbol, 1)) == "RISK_HALTED"
    assert code_of(v1(world, halted, unique("K"), 1, action="openShort")) == "RISK_HALTED"
    assert v1(world, other, symbol, 1).status_code == 201  # its sibling account trades on
    assert v1(world, halted, symbol, 10, action="closeLong").status_code == 201  # exits go out
    assert held(world, halted, symbol) == 0
    r = client.patch(f"/api/v1/accounts/{halted.account_id}/risk", json={"halted": False},
                     headers=world.jwt)
    assert r.status_code == 200
    assert v1(world, halted, symbol, 1).status_code == 201


def test_reduce_only_lets_exits_through_and_refuses_every_entry(world: World) -> None:
    caller, long_symbol, short_symbol = new_account(world), unique("RL"), unique("RS")
    for symbol in (long_symbol, short_symbol):
        set_price(world, symbol)
    assert v1(world, caller, long_symbol, 10).status_code == 201
    assert v1(world, caller, short_symbol, 5, action="openShort").status_code == 201
    r = world.client.patch(f"/api/v1/accounts/{caller.account_id}/risk",
                           json={"reduce_only": True}, headers=world.jwt)
    assert r.status_code == 200 and r.json()["limits"]["reduce_only"] is True, r.text

    assert code_of(v1(world, caller, long_symbol, 1)) == "RISK_REDUCE_ONLY"  # adding
    assert code_of(v1(world, caller, unique("RN"), 1)) == "RISK_REDUCE_ONLY"  # a new symbol
    assert code_of(v1(world, caller, short_symbol, 1, action="openShort")) == "RISK_REDUCE_ONLY"
    assert v1(world, caller, long_symbol, 4, action="closeLong").status_code == 201
    assert held(world, caller, long_symbol) == 6
    assert v1(world, caller, long_symbol, 6, action="closeLong").status_code == 201  # exactly
    assert v1(world, caller, short_symbol, 5, action="closeShort").status_code == 201
    assert held(world, caller, long_symbol) == held(world, caller, short_symbol) == 0
    assert code_of(v1(world, caller, long_symbol, 1)) == "RISK_REDUCE_ONLY"  # flat: an entry


def test_a_tradingview_reversal_under_reduce_only_covers_but_does_not_go_long(
        world: World) -> None:
    """buy while short: the cover is sent at once; the long waits for the cover's fill and is
    sent by the scheduler, where reduce-only refuses it."""
    caller, symbol = new_account(world), unique("TV")
    set_price(world, symbol)
    assert v1(world, caller, symbol, 5, action="openShort").status_code == 201
    set_limits(world, caller, {"reduce_only": True})
    _, token = capabilities.create_access_token(caller.account_id, world.container.deps,
                                                world.container.secrets)
    r = world.client.post(f"/signal/execute-via-token/{token}", headers={
        "Content-Type": "text/plain"}, content=json.dumps(
        {"ticker": symbol, "action": "buy", "quantity": "10"}).encode())
    assert r.status_code == 201, r.text
    steps = r.json()["payload"]["steps"]
    assert [s["action"] for s in steps] == ["closeShort", "openLong"]
    assert held(world, caller, symbol) == 0
    run_due_jobs(world.container.deps)
    assert held(world, caller, symbol) == 0
    waiting = from_timeline(world, caller, steps[1]["signalId"])
    assert (waiting.accepted, waiting.code) == (False, "RISK_REDUCE_ONLY")
    assert at_broker(world, caller, symbol) == 2  # the short and its cover, no long


def test_every_leg_of_a_basket_is_checked_and_the_legs_add_up(world: World) -> None:
    caller, first, second = new_account(world), unique("LA"), unique("LB")
    for symbol in (first, second):
        set_price(world, symbol)
    set_limits(world, caller, {"blocked_symbols": [second], "max_position_qty": 10})
    _, token = capabilities.create_access_token(caller.account_id, world.container.deps,
                                                world.container.secrets)
    hook = f"/signal/execute-via-token/{token}"

    def basket(*legs: tuple[str, int]) -> Result:
        (symbol, qty), rest = legs[0], legs[1:]
        r = world.client.post(hook, json={
            "symbol": symbol, "side": "buy", "quantity": qty, "link": "all",
            "legs": [{"symbol": s, "side": "buy", "quantity": q} for s, q in rest]})
        return _order_answer(Ctx(world, caller), r)

    assert basket((first, 1), (second, 1)).code == "RISK_SYMBOL_BLOCKED"  # the second leg
    assert basket((first, 6), (first, 6)).code == "RISK_MAX_POSITION_QTY"  # 12 together
    assert at_broker(world, caller) == 0  # no leg of either went out
    assert basket((first, 5), (first, 5)).accepted
    assert held(world, caller, first) == 10


# ---- controls over time ----------------------------------------------------------------------


def test_the_daily_loss_limit_holds_until_the_next_session(world: World) -> None:
    caller, symbol = new_account(world), unique("D")
    set_price(world, symbol)
    set_limits(world, caller, {"daily_loss_limit": 50})
    take_a_loss(Ctx(world, caller))
    assert code_of(v1(world, caller, symbol, 1)) == "RISK_DAILY_LOSS_LIMIT"
    assert v1(world, caller, symbol, 1, action="openShort").status_code == 400
    world.clock.set(datetime(2026, 2, 6, 20, 59, tzinfo=UTC))  # 15:59 New York, same session
    assert code_of(v1(world, caller, symbol, 1)) == "RISK_DAILY_LOSS_LIMIT"
    world.clock.set(datetime(2026, 2, 9, 14, 31, tzinfo=UTC))  # Monday, 09:31 New York
    set_price(world, symbol)
    assert v1(world, caller, symbol, 1).status_code == 201
    assert held(world, caller, symbol) == 1


def test_a_stop_hit_at_the_open_counts_toward_that_days_loss(world: World) -> None:
    """A position held over the weekend is stopped out at Monday's open for a loss of 150;
    the daily loss limit of 50 must refuse the next entry that day."""
    caller, symbol = new_account(world), unique("G")
    set_price(world, symbol)
    set_limits(world, caller, {"daily_loss_limit": 50})
    r = v1(world, caller, symbol, 10, stopLoss={"type": "stop", "amount": 10})  # stop at 90
    assert r.status_code == 201, r.text
    world.clock.set(datetime(2026, 2, 9, 14, 30, tzinfo=UTC))  # Monday's open
    set_price(world, symbol, 85)  # gapped through the stop: sold at 85
    assert held(world, caller, symbol) == 0
    other = unique("G")
    set_price(world, other)
    assert code_of(v1(world, caller, other, 1)) == "RISK_DAILY_LOSS_LIMIT"
    assert at_broker(world, caller, other) == 0


def test_trading_windows_follow_the_clock_in_the_markets_time_zone(world: World) -> None:
    caller, symbol = new_account(world), unique("W")
    set_price(world, symbol)
    set_limits(world, caller, {"trading_windows": ["09:35-15:55"]})
    for hour, minute, code in ((14, 34, "RISK_OUTSIDE_TRADING_WINDOW"),  # 09:34 New York
                               (14, 35, None),  # 09:35
                               (20, 54, None),  # 15:54
                               (20, 55, "RISK_OUTSIDE_TRADING_WINDOW")):  # 15:55, the end
        at = datetime(2026, 2, 6, hour, minute, tzinfo=UTC)
        world.clock.set(at)
        r = v1(world, caller, symbol, 1)
        assert (r.status_code == 201) if code is None else code_of(r) == code, (at, r.text)


def test_the_order_rate_counts_a_rolling_minute(world: World) -> None:
    caller, symbol = new_account(world), unique("M")
    set_price(world, symbol)
    set_limits(world, caller, {"max_orders_per_minute": 2})
    assert v1(world, caller, symbol, 1).status_code == 201
    world.clock.advance(timedelta(seconds=30))
    assert v1(world, caller, symbol, 1).status_code == 201
    assert code_of(v1(world, caller, symbol, 1)) == "RISK_ORDER_RATE"
    world.clock.advance(timedelta(seconds=31))  # the first order is now older than a minute
    assert v1(world, caller, symbol, 1).status_code == 201
    assert code_of(v1(world, caller, symbol, 1)) == "RISK_ORDER_RATE"
    assert v1(world, caller, symbol, 3, action="closeLong").status_code == 201  # exits pass


# ---- entries sent outside orders_for ---------------------------------------------------------


def test_a_partner_signal_is_refused_only_on_the_subscriber_whose_limits_it_breaks(
        world: World) -> None:
    deps, secrets_ = world.container.deps, world.container.secrets
    capped, free, coin = new_account(world), new_account(world), unique("P")
    set_price(world, f"{coin}/USDT", 99)
    set_limits(world, capped, {"max_position_notional": 100})
    partner, _ = capabilities.create_partner(unique("p-"), deps, secrets_)
    chan, secret = channels.create_channel(partner.id, "fan", deps, secrets_)
    for caller in (capped, free):
        channels.subscribe(chan.id, caller.account_id, deps, allocation=Decimal(1000))
    body = {"coin": coin, "trade_market": "USDT", "buy_price_min": "95", "buy_price_max": "100",
            "sell_price_1": "110", "stop_loss": "90", "invest": "50"}
    r = world.client.post("/v1/signal", json=body, headers={"anny-api-key": chan.api_key,
                                                            "anny-api-secret": secret})
    assert r.status_code == 200, r.text
    kids = {k["account_id"]: k for k in r.json()["payload"]["children"]}
    assert kids[capped.account_id]["status"] == "rejected"
    assert from_timeline(world, capped, kids[capped.account_id]["signal_id"]).code == \
        "RISK_MAX_POSITION_NOTIONAL"
    assert kids[free.account_id]["status"] != "rejected"
    assert held(world, free, f"{coin}/USDT") == 5
    assert at_broker(world, capped) == 0


def test_a_partner_rebuy_level_does_not_add_to_a_halted_account(world: World) -> None:
    """A partner's rebuy call arms an add to the position; it must not be sent once the
    account is halted (the add is an entry: it makes the position bigger)."""
    deps, secrets_ = world.container.deps, world.container.secrets
    caller, coin = new_account(world), unique("B")
    symbol = f"{coin}/USDT"
    partner, _ = capabilities.create_partner(unique("p-"), deps, secrets_)
    chan, secret = channels.create_channel(partner.id, "rebuy", deps, secrets_)
    channels.subscribe(chan.id, caller.account_id, deps, allocation=Decimal(1000))
    keys = {"anny-api-key": chan.api_key, "anny-api-secret": secret}
    set_price(world, symbol, 99)
    r = world.client.post("/v1/signal", headers=keys, json={
        "coin": coin, "trade_market": "USDT", "buy_price_min": "95", "buy_price_max": "100",
        "sell_price_1": "140", "stop_loss": "80", "invest": "40"})
    parent = r.json()["payload"]["parent_signal_id"]
    assert held(world, caller, symbol) == 4
    r = world.client.post(f"/v1/signal/{parent}/call/rebuy", json={"price": "92", "invest": "50"},
                          headers=keys)
    assert r.json()["payload"]["result"] == "success", r.text
    set_limits(world, caller, {"halted": True})
    set_price(world, symbol, 91)  # the rebuy level
    assert held(world, caller, symbol) == 4
    assert at_broker(world, caller, symbol) == 1


# ---- who may change limits, and what a bad limit does ----------------------------------------


def test_limits_are_read_and_changed_in_part(world: World) -> None:
    caller = new_account(world)
    url = f"/api/v1/accounts/{caller.account_id}/risk"
    r = world.client.get(url, headers=caller.headers)  # an API key may read them
    assert r.status_code == 200, r.text
    assert r.json() == {"accountId": caller.account_id, "limits": {
        "halted": False, "reduce_only": False, "allowed_symbols": None, "blocked_symbols": [],
        "max_position_qty": None, "max_position_notional": None, "max_open_positions": None,
        "max_orders_per_minute": None, "daily_loss_limit": None, "trading_windows": []}}
    r = world.client.patch(url, json={"max_position_qty": 100, "blocked_symbols": ["gme"]},
                           headers=world.jwt)
    assert r.status_code == 200, r.text
    r = world.client.patch(url, json={"trading_windows": ["09:35-15:55"],
                                      "max_position_qty": None}, headers=world.jwt)
    assert r.status_code == 200, r.text
    limits = world.client.get(url, headers=caller.headers).json()["limits"]
    assert limits["blocked_symbols"] == ["GME"]  # kept from the first change
    assert limits["max_position_qty"] is None  # null lifts it
    assert limits["trading_windows"] == ["09:35-15:55"]


def test_bad_limits_answer_400_and_change_nothing(world: World) -> None:
    caller = new_account(world)
    url = f"/api/v1/accounts/{caller.account_id}/risk"
    assert world.client.patch(url, json={"max_position_qty": 5}, headers=world.jwt
                              ).status_code == 200
    before = world.client.get(url, headers=caller.headers).json()
    bad: list[tuple[Any, str]] = [
        ({"max_position_qty": -1}, "max_position_qty"),
        ({"max_position_qty": 10, "daily_loss_limit": 0}, "daily_loss_limit"),  # not in part
        ({"halted": "yes"}, "halted"),
        ({"max_open_positions": True}, "max_open_positions"),
        ({"max_leverage": 3}, "max_leverage"),
        ({"trading_windows": ["9-5"]}, "trading window"),
        ({"blocked_symbols": "GME"}, "blocked_symbols"),
        ({}, "object"),
        ([{"halted": True}], "object"),
    ]
    for body, named in bad:
        r = world.client.patch(url, json=body, headers=world.jwt)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["code"] == "VALIDATION_ERROR", r.text
        assert named in r.json()["details"][0]["message"], (body, r.text)
    r = world.client.patch(url, content=b"{not json", headers={
        **world.jwt, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert world.client.get(url, headers=caller.headers).json() == before


def test_only_a_signed_in_owner_changes_limits_and_only_an_admin_flips_the_switch(
        world: World) -> None:
    client, caller = world.client, new_account(world)
    url = f"/api/v1/accounts/{caller.account_id}/risk"
    r = client.patch(url, json={"halted": False}, headers=caller.headers)  # an API key
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED", r.text
    assert client.patch(url, json={"halted": False}).status_code == 401
    r = client.put("/api/v1/trading", json={"halted": True}, headers=caller.headers)
    assert r.status_code == 401, r.text
    r = client.put("/api/v1/trading", json={"halted": True}, headers=world.jwt)  # not an admin
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", r.text
    assert client.get("/api/v1/trading", headers=caller.headers).json() == {"halted": False}

    bob = make_caller(world.container)
    bob_jwt = login(client, bob)
    for headers in (bob_jwt, bob.headers):
        assert client.get(url, headers=headers).status_code == 404
    r = client.patch(url, json={"halted": True}, headers=bob_jwt)
    assert r.status_code == 404 and r.json()["code"] == "ACCOUNT_NOT_FOUND", r.text
    missing = "/api/v1/accounts/00000000-0000-4000-8000-000000000000/risk"
    assert client.patch(missing, json={"halted": True}, headers=world.jwt).status_code == 404
    assert client.get(url, headers=caller.headers).json()["limits"]["halted"] is False

    admin_jwt = login(client, make_caller(world.container, admin=True))
    for body in ({"halted": "yes"}, {}, {"halted": True, "why": "x"}):
        r = client.put("/api/v1/trading", json=body, headers=admin_jwt)
        assert r.status_code == 400, (body, r.text)
    assert client.get("/api/v1/trading", headers=caller.headers).json() == {"halted": False}
