"""The paper broker: a venue that lives in tradewire's database and fills against its ticks.

Fill model (deterministic; see domain/matching.py): market orders fill at the last price plus
slippage against the trader; limits fill at the better of quote and limit once the quote
reaches them; stops become market orders (stop-limits become limits) once the quote reaches
the stop. ioc and fok fill on arrival or are cancelled. A market order sent while no price is
known rests and fills on the next tick. Buying power: cash less what open buy orders reserve;
opening or adding to a short needs cash equal to its notional.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, or_, select, text, update

from tradewire.adapters.db import fast
from tradewire.adapters.db import tables as t
from tradewire.adapters.db.engine import Database, WriteUnit
from tradewire.adapters.db.repositories import insert_ignore, last_price
from tradewire.domain.matching import FillModel, Working, match
from tradewire.domain.orders import OrderStatus
from tradewire.domain.sessions import Phase
from tradewire.domain.values import ZERO, OrderType, Side, TimeInForce, new_id
from tradewire.domain.venues import BrokerCapabilities
from tradewire.services.ports import (
    BrokerAccount,
    BrokerFill,
    BrokerOrder,
    Clock,
    MarketCalendar,
    OrderRequest,
    Tick,
)

WORKING = (str(OrderStatus.ACCEPTED),)

# The statements of every order's path through the venue, built once (bind parameters b_*).
_po, _pa, _pp = t.paper_orders.c, t.paper_accounts.c, t.paper_positions.c
# Equalities, not IN of a list (expanded at each execution): statements compiled once.
_IS_WORKING = or_(*(_po.status == s for s in WORKING))
_INSERT_ORDER = t.paper_orders.insert()
# Working orders whose time has come: expiries and close auctions (the worker asks every pass).
_DUE = select(t.paper_orders).where(_IS_WORKING, or_(
    _po.expires_at <= bindparam("b_now"), _po.auction_at <= bindparam("b_now")))
_ANY_DUE = _DUE.limit(1)
_DUE_LOCKED = _DUE.with_for_update().order_by(_po.created_at)
_INSERT_FILL = t.paper_fills.insert()
_MARKET = select(_pa.market).where(_pa.account_ref == bindparam("b_ref"))
_CASH = select(_pa.cash).where(_pa.account_ref == bindparam("b_ref"))
_ACCOUNT_FOR_UPDATE = select(_pa.cash, _pa.market).where(
    _pa.account_ref == bindparam("b_ref")).with_for_update()
_SET_CASH = update(t.paper_accounts).where(_pa.account_ref == bindparam("b_ref"))
_SET_ORDER = update(t.paper_orders).where(_po.broker_order_id == bindparam("b_id"))
_ORDER = select(t.paper_orders).where(_po.account_ref == bindparam("b_ref"),
                                      _po.client_order_id == bindparam("b_coid"))
_FILLS = (select(t.paper_fills).where(t.paper_fills.c.broker_order_id == bindparam("b_id"))
          .order_by(t.paper_fills.c.filled_at))
_RESTING_BUYS = select(t.paper_orders).where(_po.account_ref == bindparam("b_ref"),
                                             _IS_WORKING, _po.side == str(Side.BUY))
_POSITIONS = select(_pp.symbol, _pp.qty).where(_pp.account_ref == bindparam("b_ref"))
_HELD = select(_pp.qty).where(_pp.account_ref == bindparam("b_ref"),
                              _pp.symbol == bindparam("b_symbol"))
_INSERT_POSITION = t.paper_positions.insert()
_SET_POSITION = update(t.paper_positions).where(_pp.account_ref == bindparam("b_ref"),
                                                _pp.symbol == bindparam("b_symbol"))


class PaperBroker:
    name = "paper"
    # Answers from this process's database, never over a network: a signal's orders may be
    # sent from the writer thread right after their commit (entrypoints/api/handover.py).
    answers_locally = True
    # Stops, limits and one-cancels-other groups rest and match on ticks: exits rest here.
    capabilities = BrokerCapabilities(netting=False, client_order_id_max=48, native_stop=True,
                                      native_take_profit=True, oco=True)

    def __init__(self, db: Database, clock: Clock, calendar: MarketCalendar,
                 model: FillModel | None = None, *, native_exits: bool = True) -> None:
        if not native_exits:  # a venue without resting exits, simulated: every exit emulated
            self.capabilities = replace(self.capabilities, native_stop=False,
                                        native_take_profit=False)
        self._local = threading.local()  # siblings cancelled during one on_ticks call
        self._db = db
        self._clock = clock
        self._calendar = calendar
        self.model = model or FillModel()

    # ---- the Broker port ----------------------------------------------------------------

    def open_account(self, account_ref: str, cash: Decimal, market: str = "XNYS") -> None:
        with self._write() as conn:
            insert_ignore(conn, t.paper_accounts, {"account_ref": account_ref, "cash": cash,
                                                   "market": market,
                                                   "created_at": self._clock.now()})

    def submit(self, request: OrderRequest) -> BrokerOrder:
        # The order taken commits without an fsync of its own: whoever sends it records the
        # answer next in a durable commit, which makes this one durable first (the WAL keeps
        # commits in order), before anyone is told (docs/reliability.md). A crash of the
        # machine between the two loses both: the order was never taken, and is sent again.
        with self._write(rides=True) as conn:
            account = self._lock_account(conn, request.account_ref)
            cash, market = (account.cash, account.market) if account is not None else (None, None)
            existing = self._order_row(conn, request.account_ref, request.client_order_id)
            if existing is not None:  # the same client_order_id again: the same order
                return self._report(conn, existing)
            row = self._new_row(request)
            # Read once, for the buying-power check and the match on arrival; the account's
            # positions likewise, for the check and the fill's move (its row is locked).
            quote = self._last_price(conn, request.symbol)
            positions = self._positions(conn, request.account_ref) if account is not None else {}
            row["status"], row["reason"] = self._admit(conn, request, cash, quote, positions)
            if request.oco_group is not None and self._group_filled(conn, request):
                row["status"] = str(OrderStatus.CANCELED)
                row["reason"] = "one-cancels-other: a linked order already filled"
            if market is not None:
                row.update(self._session_fields(request, market, row["created_at"]))
            # Matched before it is stored: the order goes in as its arrival leaves it (one
            # statement, not an insert and an update), and its fills are the ones made here.
            fills: list[BrokerFill] = []
            if row["status"] == str(OrderStatus.ACCEPTED):
                self._arrive(conn, row, market, quote, account, positions, fresh=fills)
            fast.run(conn, _INSERT_ORDER, row)
            # `row` holds every column the report reads, kept current by _set.
            return self._report(conn, row, fills)

    def _arrive(self, conn: Connection, row: dict[str, Any], market: str | None,
                price: Decimal | None, account: Any, positions: dict[str, Decimal], *,
                fresh: list[BrokerFill]) -> None:
        """The first look at a new order, before its row is stored (`fresh`: see `_set`):
        match it now if it may trade and a price is known."""
        if self._may_trade(row, market, row["created_at"]) and price is not None:
            self._match(conn, row, price, on_arrival=True, account=account, positions=positions,
                        fresh=fresh)
        elif row["time_in_force"] in (str(TimeInForce.IOC), str(TimeInForce.FOK)):
            # ioc and fok never rest: no price or no trading now means cancel.
            self._set(conn, row, fresh=fresh, status=str(OrderStatus.CANCELED),
                      reason=f"{row['time_in_force']} not marketable on arrival")

    def lookup(self, account_ref: str, client_order_id: str) -> BrokerOrder | None:
        with self._read() as conn:
            row = self._order_row(conn, account_ref, client_order_id)
            return self._report(conn, row) if row is not None else None

    def cancel(self, account_ref: str, client_order_id: str) -> BrokerOrder | None:
        with self._write() as conn:
            row = self._order_row(conn, account_ref, client_order_id)
            if row is None:
                return None
            if row["status"] in WORKING:
                self._set(conn, row, status=str(OrderStatus.CANCELED), reason="canceled by user")
                row = self._order_row(conn, account_ref, client_order_id)
            return self._report(conn, row)

    def open_orders(self, account_ref: str) -> list[BrokerOrder]:
        p = t.paper_orders.c
        with self._read() as conn:
            q = (select(t.paper_orders).where(p.account_ref == account_ref, p.status.in_(WORKING))
                 .order_by(p.created_at))
            return [self._report(conn, dict(r._mapping)) for r in conn.execute(q)]

    def account(self, account_ref: str) -> BrokerAccount:
        with self._read() as conn:
            cash = self._cash(conn, account_ref)
            equity = cash
            positions = self._positions(conn, account_ref)
            for symbol, qty in positions.items():
                equity += qty * (self._last_price(conn, symbol) or ZERO)
            return BrokerAccount(cash=cash, equity=equity, buying_power=self._buying_power(
                conn, account_ref, cash, positions))

    def positions(self, account_ref: str) -> dict[str, Decimal]:
        with self._read() as conn:
            return {s: q for s, q in self._positions(conn, account_ref).items() if q != 0}

    def on_ticks(self, ticks: Sequence[Tick]) -> list[tuple[str, BrokerOrder]]:
        """Match resting orders against each tick, in order; report the orders that moved."""
        moved: dict[tuple[str, str], None] = {}
        with self._write() as conn:
            self._serialise_matching(conn)
            self._local.moved = []
            markets: dict[str, str | None] = {}
            for tick in ticks:
                q = select(t.paper_orders).where(t.paper_orders.c.symbol == tick.symbol,
                                                 t.paper_orders.c.status.in_(WORKING))
                q = q.with_for_update()
                for row in [dict(r._mapping) for r in conn.execute(q.order_by(
                        t.paper_orders.c.created_at))]:
                    ref = row["account_ref"]
                    if ref not in markets:
                        markets[ref] = self._market(conn, ref)
                    if self._on_tick(conn, row, tick, markets[ref]):
                        moved[(ref, row["client_order_id"])] = None
            moved.update(dict.fromkeys(self._local.moved))
            self._local.moved = None
            return [(coid, self._report(conn, self._order_row(conn, ref, coid)))
                    for ref, coid in moved]

    def on_clock(self, now: datetime) -> list[tuple[str, BrokerOrder]]:
        """Act on the time: expire day and gtd orders, fill close-auction orders at the close."""
        moved: list[tuple[str, BrokerOrder]] = []
        with self._read() as conn:  # the worker asks on every pass: take the write lock only
            if fast.run(conn, _ANY_DUE, {"b_now": now}).first() is None:  # when something is due
                return moved
        with self._write() as conn:
            self._serialise_matching(conn)
            for row in [dict(r._mapping) for r in fast.run(conn, _DUE_LOCKED, {"b_now": now})]:
                if row["auction_at"] is not None and row["auction_at"] <= now:
                    price = self._last_price(conn, row["symbol"])
                    if price is not None:
                        self._fill(conn, row, row["qty"] - row["filled_qty"], price,
                                   row["auction_at"])
                    else:
                        self._set(conn, row, status=str(OrderStatus.EXPIRED),
                                  reason="no price at the close auction")
                else:
                    self._set(conn, row, status=str(OrderStatus.EXPIRED),
                              reason=f"{row['time_in_force']} order expired")
                moved.append((row["client_order_id"], self._report(conn, row)))
        return moved

    # ---- sessions -------------------------------------------------------------------------

    def _session_fields(self, r: OrderRequest, market: str, now: datetime) -> dict[str, Any]:
        """When the order may first trade, when it expires, and for cls its auction time."""
        session = self._calendar.session_at_or_after(market, now)
        if now >= session.close_at:  # after the close: the next session is the one that counts
            session = self._calendar.session_at_or_after(
                market, session.post_close_at or session.close_at + timedelta(seconds=1))
        out: dict[str, Any] = {"extended_hours": r.extended_hours}
        if r.time_in_force is TimeInForce.OPG:
            opens = session.open_at if now < session.open_at else self._calendar.session_at_or_after(
                market, session.post_close_at or session.close_at).open_at
            out["active_from"] = opens
        elif r.time_in_force is TimeInForce.CLS:
            out["auction_at"] = session.close_at
        elif r.time_in_force is TimeInForce.DAY:
            out["expires_at"] = (session.post_close_at or session.close_at) if r.extended_hours \
                else session.close_at
        elif r.time_in_force is TimeInForce.GTD:
            out["expires_at"] = r.expires_at
        return out

    def _may_trade(self, row: dict[str, Any], market: str | None, at: datetime) -> bool:
        """Continuous trading: regular hours, or extended hours for orders that allow them."""
        if row["time_in_force"] == str(TimeInForce.CLS):
            return False  # fills only at the close auction (on_clock)
        if row["active_from"] is not None and at < row["active_from"]:
            return False
        if row["expires_at"] is not None and at >= row["expires_at"]:
            return False
        if market is None:
            return True
        phase = self._calendar.session_at_or_after(market, at).phase(at)
        return phase is Phase.REGULAR or (row["extended_hours"] and phase in (Phase.PRE,
                                                                              Phase.POST))

    def _on_tick(self, conn: Connection, row: dict[str, Any], tick: Tick,
                 market: str | None) -> bool:
        if row["expires_at"] is not None and tick.ts >= row["expires_at"]:
            return False  # on_clock expires it
        if not self._may_trade(row, market, tick.ts):
            return False
        if row["time_in_force"] == str(TimeInForce.OPG):
            # The opening auction: the first regular-hours price at or after the open.
            self._fill(conn, row, row["qty"] - row["filled_qty"], tick.price, tick.ts)
            return True
        return self._match(conn, row, tick.price, on_arrival=False, at=tick.ts)

    def _market(self, conn: Connection, ref: str) -> str | None:
        return fast.run(conn, _MARKET, {"b_ref": ref}).scalar_one_or_none()

    # ---- the book -----------------------------------------------------------------------

    def _admit(self, conn: Connection, r: OrderRequest, cash: Decimal | None,
               quote: Decimal | None, positions: dict[str, Decimal]) -> tuple[str, str | None]:
        """Accept or reject a new order; `cash` is the account's (None: no such account),
        `quote` the symbol's last price, `positions` the account's position rows."""
        if r.qty <= 0:
            return str(OrderStatus.REJECTED), "quantity must be positive"
        if r.order_type.needs_limit_price and r.limit_price is None:
            return str(OrderStatus.REJECTED), f"{r.order_type} order needs a limit price"
        if r.order_type.needs_stop_price and r.stop_price is None:
            return str(OrderStatus.REJECTED), f"{r.order_type} order needs a stop price"
        if r.extended_hours and (r.order_type is not OrderType.LIMIT
                                 or r.time_in_force is not TimeInForce.DAY):
            return str(OrderStatus.REJECTED), "extended hours takes only day limit orders"
        if cash is None:
            return str(OrderStatus.REJECTED), "unknown paper account"
        need = self._cash_needed(r, quote, positions.get(r.symbol, ZERO))
        if need is not None and need > self._buying_power(conn, r.account_ref, cash, positions):
            return str(OrderStatus.REJECTED), "insufficient buying power"
        return str(OrderStatus.ACCEPTED), None

    def _cash_needed(self, r: OrderRequest, quote: Decimal | None, held: Decimal
                     ) -> Decimal | None:
        opening = r.qty - max(held, ZERO) if r.side is Side.SELL else r.qty - max(-held, ZERO)
        if opening <= 0:
            return None  # only reduces a position
        price = r.limit_price or r.stop_price or quote
        if price is None:
            return None  # priced at the fill; the fill re-checks nothing (documented)
        notional = opening * self.model.market_price(r.side, price)
        return notional + self.model.fee(opening, price)

    def _match(self, conn: Connection, row: dict[str, Any], price: Decimal, *,
               on_arrival: bool, at: datetime | None = None, account: Any = None,
               positions: dict[str, Decimal] | None = None,
               fresh: list[BrokerFill] | None = None) -> bool:
        working = Working(side=Side(row["side"]), order_type=OrderType(row["order_type"]),
                          qty=row["qty"] - row["filled_qty"],
                          time_in_force=TimeInForce(row["time_in_force"]),
                          limit_price=row["limit_price"], stop_price=row["stop_price"],
                          triggered=row["triggered"])
        verdict = match(working, price, self.model, on_arrival=on_arrival)
        if verdict.cancel_reason:
            self._set(conn, row, fresh=fresh, status=str(OrderStatus.CANCELED),
                      reason=verdict.cancel_reason)
            return True
        if not verdict.fills:
            if verdict.triggered and not row["triggered"]:
                self._set(conn, row, fresh=fresh, triggered=True)
            return False
        assert verdict.price is not None
        self._fill(conn, row, working.qty, verdict.price, at or self._clock.now(), account,
                   positions, fresh=fresh)
        return True

    def _fill(self, conn: Connection, row: dict[str, Any], qty: Decimal, price: Decimal,
              at: datetime, account: Any = None,
              positions: dict[str, Decimal] | None = None, *,
              fresh: list[BrokerFill] | None = None) -> None:
        """Fill the order; `account` is its account's row when this transaction locked it
        already (and nothing moved its cash since), else it is locked and read here;
        `positions` its position rows when this transaction read them under that lock;
        `fresh`: see `_set` (the fill is added to it)."""
        side = Side(row["side"])
        fee = self.model.fee(qty, price)
        if account is None:
            account = self._lock_account(conn, row["account_ref"])  # cash read, written back
        assert account is not None, "a paper order of an account that is gone"
        cash = account.cash
        fill_id = new_id()
        fast.run(conn, _INSERT_FILL, dict(
            fill_id=fill_id, broker_order_id=row["broker_order_id"],
            account_ref=row["account_ref"], symbol=row["symbol"], side=str(side), qty=qty,
            price=price, fee=fee, filled_at=at))
        if fresh is not None:
            fresh.append(BrokerFill(fill_id=fill_id, qty=qty, price=price, fee=fee,
                                    filled_at=at))
        self._move_position(conn, row["account_ref"], row["symbol"], side.sign * qty, positions)
        cash = cash - side.sign * qty * price - fee
        fast.run(conn, _SET_CASH, {"b_ref": row["account_ref"], "cash": cash})
        self._set(conn, row, fresh=fresh, status=str(OrderStatus.FILLED), triggered=True,
                  filled_qty=row["filled_qty"] + qty)
        if row["oco_group"] is not None:
            self._cancel_siblings(conn, row)

    def _cancel_siblings(self, conn: Connection, row: dict[str, Any]) -> None:
        """One-cancels-other: a filled order cancels the rest of its group."""
        p = t.paper_orders.c
        q = select(p.client_order_id).where(
            p.account_ref == row["account_ref"], p.oco_group == row["oco_group"],
            p.status.in_(WORKING), p.broker_order_id != row["broker_order_id"])
        siblings = list(conn.execute(q).scalars())
        if siblings:
            conn.execute(update(t.paper_orders)
                         .where(p.account_ref == row["account_ref"],
                                p.client_order_id.in_(siblings))
                         .values(status=str(OrderStatus.CANCELED),
                                 reason="one-cancels-other: a linked order filled"))
            collected = getattr(self._local, "moved", None)
            if collected is not None:  # during on_ticks; after a fill on arrival, reconciliation reports them
                collected.extend((row["account_ref"], coid) for coid in siblings)

    # ---- rows ---------------------------------------------------------------------------

    def _new_row(self, r: OrderRequest) -> dict[str, Any]:
        return {
            "broker_order_id": new_id(), "account_ref": r.account_ref,
            "client_order_id": r.client_order_id, "symbol": r.symbol, "side": str(r.side),
            "qty": r.qty, "order_type": str(r.order_type), "time_in_force": str(r.time_in_force),
            "limit_price": r.limit_price, "stop_price": r.stop_price, "triggered": False,
            "filled_qty": ZERO, "created_at": self._clock.now(), "extended_hours": r.extended_hours,
            "active_from": None, "expires_at": None, "auction_at": None,
            "oco_group": r.oco_group,
        }

    def _set(self, conn: Connection, row: dict[str, Any], *,
             fresh: list[BrokerFill] | None = None, **values: Any) -> None:
        """Move the order's row. `fresh` (the fills made so far) when the row is a new order's
        not stored yet: only `row` moves, and `submit` stores it as it is left."""
        if fresh is None:
            fast.run(conn, _SET_ORDER, {**values, "b_id": row["broker_order_id"]})
        row.update(values)

    def _order_row(self, conn: Connection, ref: str, coid: str) -> dict[str, Any] | None:
        row = fast.run(conn, _ORDER, {"b_ref": ref, "b_coid": coid}).first()
        return dict(row._mapping) if row else None

    def _report(self, conn: Connection, row: dict[str, Any] | None,
                fills: list[BrokerFill] | None = None) -> BrokerOrder:
        """The order's report; `fills`: all of its fills, when they are known (a new order's,
        made in this transaction), else read."""
        assert row is not None
        if fills is None:
            fills = [BrokerFill(fill_id=f.fill_id, qty=f.qty, price=f.price, fee=f.fee,
                                filled_at=f.filled_at)
                     for f in fast.run(conn, _FILLS, {"b_id": row["broker_order_id"]})]
        return BrokerOrder(client_order_id=row["client_order_id"],
                           broker_order_id=row["broker_order_id"],
                           status=OrderStatus(row["status"]), filled_qty=row["filled_qty"],
                           fills=tuple(fills), reason=row["reason"], symbol=row["symbol"],
                           side=Side(row["side"]), qty=row["qty"])

    def _group_filled(self, conn: Connection, r: OrderRequest) -> bool:
        p = t.paper_orders.c
        q = select(p.broker_order_id).where(p.account_ref == r.account_ref,
                                            p.oco_group == r.oco_group,
                                            p.status == str(OrderStatus.FILLED))
        return conn.execute(q.limit(1)).first() is not None

    def _serialise_matching(self, conn: Connection) -> None:
        """One matcher at a time across processes (PostgreSQL); SQLite already has one writer.
        Matching then locks account rows, so without this two matchers could deadlock."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7265626)"))

    def _lock_account(self, conn: Connection, ref: str) -> Any:
        """Serialise one account's orders across processes (PostgreSQL; SQLite locks the file);
        the account's cash and market, None when there is no such account."""
        return fast.run(conn, _ACCOUNT_FOR_UPDATE, {"b_ref": ref}).first()

    def _cash(self, conn: Connection, ref: str) -> Any:
        return fast.run(conn, _CASH, {"b_ref": ref}).scalar_one_or_none() or ZERO

    def _buying_power(self, conn: Connection, ref: str, cash: Decimal,
                      positions: dict[str, Decimal]) -> Decimal:
        """Cash, less what resting buys reserve, less twice the value of open shorts: their
        sale proceeds sit in cash but are owed back, and each holds margin equal to its value.
        `positions`: the account's position rows (`_positions`)."""
        shorts = ZERO
        for symbol, qty in positions.items():
            if qty < 0:
                shorts += -qty * (self._last_price(conn, symbol) or ZERO)
        return cash - self._reserved(conn, ref) - 2 * shorts

    def _reserved(self, conn: Connection, ref: str) -> Decimal:
        """Cash held back for resting buy orders at their limit (or stop) price."""
        total = ZERO
        for r in fast.run(conn, _RESTING_BUYS, {"b_ref": ref}):
            price = r.limit_price or r.stop_price or self._last_price(conn, r.symbol) or ZERO
            total += (r.qty - r.filled_qty) * price
        return total

    def _positions(self, conn: Connection, ref: str) -> dict[str, Decimal]:
        return {symbol: qty for symbol, qty in fast.run(conn, _POSITIONS, {"b_ref": ref})}

    def _position_row_qty(self, conn: Connection, ref: str, symbol: str) -> Decimal | None:
        """The position's quantity, None when it has no row yet."""
        qty: Decimal | None = fast.run(conn, _HELD, {"b_ref": ref, "b_symbol": symbol}
                                           ).scalar_one_or_none()
        return qty

    def _move_position(self, conn: Connection, ref: str, symbol: str, delta: Decimal,
                       positions: dict[str, Decimal] | None = None) -> None:
        """`positions`: the account's rows, read in this transaction (kept current here)."""
        # The account's row is locked (_fill): nobody moves this position in between.
        held = (positions.get(symbol) if positions is not None
                else self._position_row_qty(conn, ref, symbol))
        if held is None:
            fast.run(conn, _INSERT_POSITION, {"account_ref": ref, "symbol": symbol, "qty": delta})
        else:
            fast.run(conn, _SET_POSITION, {"b_ref": ref, "b_symbol": symbol, "qty": held + delta})
        if positions is not None:
            positions[symbol] = (held or ZERO) + delta

    def _last_price(self, conn: Connection, symbol: str) -> Decimal | None:
        return last_price(conn, symbol)

    def _write(self, *, rides: bool = False) -> Any:
        return _Tx(self._db, write=True, rides=rides)

    def _read(self) -> Any:
        return _Tx(self._db, write=False)


class _Tx:
    """A transaction of the paper venue's own (never inside one of tradewire's)."""

    def __init__(self, db: Database, *, write: bool, rides: bool = False) -> None:
        self._db, self._write, self._rides = db, write, rides

    def __enter__(self) -> Connection:
        if self._write:
            self._unit: WriteUnit | None = self._db.write_unit(rides=self._rides)
            return self._unit.begin()
        self._unit = None
        self._conn = self._db.engine.connect().execution_options(tw_write=False)
        self._conn.begin()
        return self._conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._unit is not None:
            try:
                if exc_type is None:
                    self._unit.commit()
            finally:
                self._unit.close()
            return
        self._conn.rollback()
        self._conn.close()


