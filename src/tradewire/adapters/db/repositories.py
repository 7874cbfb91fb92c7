"""Repositories: domain objects in and out of the tables, over one connection."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from tradewire.adapters.db import fast
from tradewire.adapters.db import tables as t
from tradewire.adapters.db.group_commit import batch_memo, forget
from tradewire.domain.accounts import Account, ApiKey, Scope, User
from tradewire.domain.audit import AuditEvent
from tradewire.domain.capabilities import AccessToken, Partner, Trigger
from tradewire.domain.channels import AllocationType, Channel, Subscription
from tradewire.domain.exit_plan import AddLevel, ExitLeg, ExitPlan, PlanState, Target, Trailing
from tradewire.domain.jobs import Job, JobKind, JobStatus
from tradewire.domain.market import Bar
from tradewire.domain.orders import OPEN_STATUSES, Fill, Order, OrderStatus
from tradewire.domain.positions import Position
from tradewire.domain.signals import ExitRule, ExitTrigger, Leg, LinkKind, Signal, SignalStatus
from tradewire.domain.signals import check_transition as check_signal_transition
from tradewire.domain.values import (
    Action,
    ExecuteMode,
    OrderPurpose,
    OrderType,
    QuantityType,
    Side,
    TimeInForce,
)
from tradewire.services.ports import Page, SignalFilter


class _Statements(dict[Table, Any]):
    """One statement object per table, built on first use and reused: the row goes in as
    parameters, so SQLAlchemy neither rebuilds the statement nor recomputes its cache key."""

    def __init__(self, build: Callable[[Table], Any]) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, table: Table) -> Any:
        stmt = self[table] = self._build(table)
        return stmt


_INSERT = _Statements(insert)


def _insert_ignore_stmt(dialect: Any) -> _Statements:
    # RETURNING, not rowcount: drivers report -1 rows for ON CONFLICT inserts.
    return _Statements(lambda table: dialect.insert(table).on_conflict_do_nothing()
                       .returning(next(iter(table.primary_key.columns))))


_INSERT_IGNORE = {"postgresql": _insert_ignore_stmt(postgresql),
                  "sqlite": _insert_ignore_stmt(sqlite)}


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row went in."""
    stmt = _INSERT_IGNORE[conn.dialect.name][table]
    return fast.inserted(conn, stmt, values)


# The hot path's reads (every authenticated request), built once.
_USER_BY_ID = select(t.users).where(t.users.c.id == bindparam("id"))
_ACCOUNT_BY_ID = select(t.accounts).where(t.accounts.c.id == bindparam("id"))
# A key with its owner's admin flag in one statement (the key of a user gone matches nothing),
# and the account the request names, if any (labelled `account__<column>`; a NULL account id
# matches none): the unit storing a signal asks for that account next.
_ACCOUNT_PREFIX = "account__"
_KEY_ADMIN_AND_ACCOUNT = (
    select(t.api_keys, t.users.c.is_admin.label("owner_is_admin"),
           *(c.label(_ACCOUNT_PREFIX + c.name) for c in t.accounts.c))
    .join(t.users, t.users.c.id == t.api_keys.c.user_id)
    .outerjoin(t.accounts, t.accounts.c.id == bindparam("account_id"))
    .where(t.api_keys.c.key_hash == bindparam("key_hash")))


def _labelled_account(m: dict[str, Any]) -> Account | None:
    """The account read beside another row (its columns labelled `account__<column>`, taken
    out of `m`), or None when the outer join found none."""
    n = len(_ACCOUNT_PREFIX)
    fields = {k[n:]: m.pop(k) for k in list(m) if k.startswith(_ACCOUNT_PREFIX)}
    return Account(**fields) if fields["id"] is not None else None


# An access token with its account (labelled like the key's): a signal's unit asks for both.
_TOKEN_AND_ACCOUNT = (
    select(t.access_tokens, *(c.label(_ACCOUNT_PREFIX + c.name) for c in t.accounts.c))
    .outerjoin(t.accounts, t.accounts.c.id == t.access_tokens.c.account_id)
    .where(t.access_tokens.c.token_hash == bindparam("token_hash")))


_o = t.orders.c
_TS = _o.updated_at.type  # UTCDateTime, for bind parameters outside a comparison
_SIGNAL_BY_ID = select(t.signals).where(t.signals.c.id == bindparam("b_id"))
_SIGNAL_BY_ID_FOR_UPDATE = _SIGNAL_BY_ID.with_for_update()
# Compare-and-set updates: the SET clause is the columns each call passes.
_SIGNAL_CAS = update(t.signals).where(t.signals.c.id == bindparam("b_id"),
                                      t.signals.c.status == bindparam("b_expected"))
_WAITING_AFTER = select(t.signals).where(
    t.signals.c.after_signal_id == bindparam("b_id"),
    t.signals.c.status == str(SignalStatus.WAITING))
_ORDER_BY_ID = select(t.orders).where(_o.id == bindparam("b_id"))
_ORDER_BY_CLIENT_ID = select(t.orders).where(_o.client_order_id == bindparam("b_client_id"))
_ORDERS_OF_SIGNAL = select(t.orders).where(_o.signal_id == bindparam("b_id")).order_by(
    _o.created_at)
_ORDER_CAS = update(t.orders).where(_o.id == bindparam("b_id"),
                                    _o.status == bindparam("b_expected"))
_ORDER_CLAIM = (
    update(t.orders)
    .where(_o.id == bindparam("b_id"),
           or_(_o.hold_until.is_(None), _o.hold_until <= bindparam("b_now")), or_(
               and_(_o.status == str(OrderStatus.NEW), or_(
                   _o.lease_until.is_(None), _o.lease_until < bindparam("b_now"),
                   _o.lease_owner == bindparam("b_owner"))),
               and_(_o.status == str(OrderStatus.SUBMITTING),
                    or_(_o.lease_until < bindparam("b_now"),
                        _o.lease_owner == bindparam("b_owner")))))
    .values(status=str(OrderStatus.SUBMITTING), lease_owner=bindparam("b_owner"),
            lease_until=bindparam("b_lease_until"), attempts=_o.attempts + 1,
            updated_at=bindparam("b_now"),
            submitted_at=func.coalesce(_o.submitted_at, bindparam("b_now", type_=_TS))))
_WORKING = select(_o.side, _o.qty, _o.filled_qty).where(
    _o.account_id == bindparam("b_account"), _o.symbol == bindparam("b_symbol"),
    # equalities, not IN of a list (expanded at each execution): a statement compiled once
    _o.exit_leg.is_(None), or_(*(_o.status == str(s) for s in sorted(OPEN_STATUSES))))
_POSITION = select(t.positions).where(t.positions.c.account_id == bindparam("b_account"),
                                      t.positions.c.symbol == bindparam("b_symbol"))
_POSITION_LOCK = _POSITION.with_for_update()
_POSITION_UPDATE = update(t.positions).where(
    t.positions.c.account_id == bindparam("b_account"),
    t.positions.c.symbol == bindparam("b_symbol"))
_RISK_LIMITS = select(t.account_risk.c.limits).where(
    t.account_risk.c.account_id == bindparam("b_account"))
# An order's risk check reads both: the account's limits and the service-wide flag (one
# statement, two scalar subqueries; each NULL when its row is missing).
_RISK_LIMITS_AND_FLAG = select(
    _RISK_LIMITS.scalar_subquery().label("limits"),
    select(t.service_flags.c.value).where(t.service_flags.c.key == bindparam("b_key"))
    .scalar_subquery().label("flag"))
_SESSION_START = select(t.account_session_pnl.c.realized_at_start).where(
    t.account_session_pnl.c.account_id == bindparam("b_account"),
    t.account_session_pnl.c.session == bindparam("b_session"))
_FLAG = select(t.service_flags.c.value).where(t.service_flags.c.key == bindparam("b_key"))
_PLAN = select(t.exit_plans).where(t.exit_plans.c.signal_id == bindparam("b_id"))
# Armed: active, and its entry has filled.
_IS_ARMED = and_(t.exit_plans.c.active.is_(True), t.exit_plans.c.state.isnot(None))
_ARMED = select(t.exit_plans).where(_IS_ARMED)
_ARMED_ON = _ARMED.where(t.exit_plans.c.symbol == bindparam("b_symbol"),
                         t.exit_plans.c.account_id == bindparam("b_account"))
# Armed plans with legs resting at the broker, ids only (the resting-exit sweep, every pass).
_WITH_RESTING_LEGS = select(t.exit_plans.c.signal_id).where(
    _IS_ARMED, cast(t.exit_plans.c.native, Text).notin_(["[]", "null"]))
_STRATEGY_STATE = (
    update(t.strategies).where(t.strategies.c.id == bindparam("b_id"))
    .values(updated_at=bindparam("b_at", type_=t.strategies.c.updated_at.type),
            execution_state=bindparam("b_state", type_=t.strategies.c.execution_state.type),
            last_bar_ts=bindparam("b_bar", type_=t.strategies.c.last_bar_ts.type)))
# Ids per `IN (...)` read: under the 999 parameters older SQLite builds allow in a statement.
STRATEGIES_PER_READ = 500
# The two JSON columns as their text, read by orjson (`_stored_json`).
_FOR_EVALUATION = select(t.strategies.c.id, t.strategies.c.user_id, t.strategies.c.account_id,
                         cast(t.strategies.c.definition, Text).label("definition"),
                         cast(t.strategies.c.execution_state, Text).label("execution_state"),
                         t.strategies.c.last_bar_ts)
# A read of up to STRATEGIES_PER_READ ids with a fixed list of parameters: built once, it runs
# on the driver's cursor (`fast.run`); a shorter list repeats its first id.
_EVALUATION_IDS = tuple(f"b_id{i}" for i in range(STRATEGIES_PER_READ))
_FOR_EVALUATION_OF = _FOR_EVALUATION.where(
    t.strategies.c.id.in_([bindparam(name) for name in _EVALUATION_IDS]))
_LAST_PRICE = select(t.market_prices.c.price).where(
    t.market_prices.c.symbol == bindparam("b_symbol"))


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _columns(obj: Any) -> dict[str, Any]:
    """A dataclass's fields by name, the values as they are (asdict would deep-copy each one
    for nothing: the row is only read)."""
    return {name: getattr(obj, name) for name in _field_names(type(obj))}


class _Repo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn


class UserRepo(_Repo):
    def add(self, user: User) -> None:
        forget(self.conn)  # a batch may remember a read that found no such user
        fast.run(self.conn, _INSERT[t.users], asdict(user))

    def get(self, user_id: str) -> User | None:
        row = fast.run(self.conn, _USER_BY_ID, {"id": user_id}).first()
        return User(**row._mapping) if row else None

    def by_username(self, username: str) -> User | None:
        row = self.conn.execute(select(t.users).where(t.users.c.username == username)).first()
        return User(**row._mapping) if row else None

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.users)).scalar_one())


class AccountRepo(_Repo):
    """Accounts, read once per unit of work: an account's row never changes once written (a
    fill's unit asks for its account three times)."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self._read: dict[str, Account] = {}

    def add(self, account: Account) -> None:
        forget(self.conn)  # a batch may remember a read that found no such account
        fast.run(self.conn, _INSERT[t.accounts], asdict(account))

    def remember(self, account: Account) -> None:
        """An account read with another row (the key that names it): not read again."""
        self._read[account.id] = account

    def get(self, account_id: str) -> Account | None:
        account = self._read.get(account_id)
        if account is None:
            row = fast.run(self.conn, _ACCOUNT_BY_ID, {"id": account_id}).first()
            if row is None:
                return None
            account = self._read[account_id] = Account(**row._mapping)
        return account

    def list(self, user_id: str | None, account_ids: Sequence[str] | None, page: Page
             ) -> list[Account]:
        q = select(t.accounts).order_by(t.accounts.c.created_at, t.accounts.c.id)
        if user_id is not None:
            q = q.where(t.accounts.c.user_id == user_id)
        if account_ids is not None:
            q = q.where(t.accounts.c.id.in_(list(account_ids)))
        rows = self.conn.execute(q.limit(page.limit).offset(page.offset))
        return [Account(**r._mapping) for r in rows]

    def ids_of_user(self, user_id: str) -> list[str]:
        q = select(t.accounts.c.id).where(t.accounts.c.user_id == user_id)
        return list(self.conn.execute(q).scalars())


class ApiKeyRepo(_Repo):
    def add(self, key: ApiKey) -> None:
        values = asdict(key)
        values["scopes"] = ",".join(sorted(key.scopes))
        values["account_ids"] = sorted(key.account_ids) if key.account_ids is not None else None
        forget(self.conn)  # a batch may remember a read that found no such key
        fast.run(self.conn, _INSERT[t.api_keys], values)

    def with_owner_admin(self, key_hash: str, account_id: str | None = None
                         ) -> tuple[ApiKey, bool, Account | None] | None:
        """The key, whether its owner is an admin, and account `account_id` (None when none
        is asked for or there is none, whoever it belongs to: whether the key may use it is
        the caller's question); None when the key or its owner is unknown. What
        authenticating a request needs, in one statement, read once per SQLite batch: the
        units of one batch sent with one key read it once (`batch_memo`; every write to these
        rows makes the batch forget it)."""
        memo = batch_memo(self.conn)
        if memo is None:
            return self._with_owner_admin(key_hash, account_id)
        asked = ("key", key_hash, account_id)
        if asked not in memo:
            memo[asked] = self._with_owner_admin(key_hash, account_id)
        found: tuple[ApiKey, bool, Account | None] | None = memo[asked]
        return found

    def _with_owner_admin(self, key_hash: str, account_id: str | None
                          ) -> tuple[ApiKey, bool, Account | None] | None:
        m = fast.first(self.conn, _KEY_ADMIN_AND_ACCOUNT,
                       {"key_hash": key_hash, "account_id": account_id})
        if m is None:
            return None
        account = _labelled_account(m)
        is_admin = bool(m.pop("owner_is_admin"))
        m["scopes"] = frozenset(Scope(s) for s in m["scopes"].split(",") if s)
        ids = m["account_ids"]
        m["account_ids"] = frozenset(ids) if ids is not None else None
        return ApiKey(**m), is_admin, account

    def revoke(self, key_id: str, at: datetime) -> bool:
        forget(self.conn)
        q = (update(t.api_keys).where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
             .values(revoked_at=at))
        return self.conn.execute(q).rowcount == 1


def _exit_rule_row(rule: ExitRule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    row = asdict(rule)
    for k in ("trigger", "order_type", "time_in_force"):
        row[k] = str(row[k])
    row["limit_price"] = str(rule.limit_price) if rule.limit_price is not None else None
    return row


def _exit_rule(row: dict[str, Any] | None) -> ExitRule | None:
    if row is None:
        return None
    return ExitRule(**{
        **row, "trigger": ExitTrigger(row["trigger"]), "order_type": OrderType(row["order_type"]),
        "time_in_force": TimeInForce(row["time_in_force"]),
        "limit_price": Decimal(row["limit_price"]) if row["limit_price"] is not None else None,
    })


def _leg_row(leg: Leg) -> dict[str, Any]:
    row = asdict(leg)
    for k, v in row.items():
        if v is not None and not isinstance(v, str):
            row[k] = str(v)
    return row


def _leg(row: dict[str, Any]) -> Leg:
    def dec(v: str | None) -> Decimal | None:
        return Decimal(v) if v is not None else None

    return Leg(symbol=row["symbol"], action=Action(row["action"]), quantity=Decimal(row["quantity"]),
               quantity_type=QuantityType(row["quantity_type"]),
               order_type=OrderType(row["order_type"]), limit_price=dec(row["limit_price"]),
               stop_price=dec(row["stop_price"]), time_in_force=TimeInForce(row["time_in_force"]))


def _signal_row(s: Signal) -> dict[str, Any]:
    return {
        "id": s.id, "account_id": s.account_id, "source_id": s.source_id,
        "dedup_key": s.source_id, "route": s.route, "symbol": s.symbol,
        "action": str(s.action), "execute_mode": str(s.execute_mode), "quantity": s.quantity,
        "quantity_type": str(s.quantity_type), "order_type": str(s.order_type),
        "limit_price": s.limit_price, "stop_price": s.stop_price,
        "time_in_force": str(s.time_in_force), "extended_hours": s.extended_hours,
        "scheduled_at": s.scheduled_at, "valid_until": s.valid_until,
        "strategy_id": s.strategy_id, "metadata": s.metadata or None,
        "exit_rule": _exit_rule_row(s.exit_rule),
        "status": str(s.status), "status_reason": s.status_reason,
        "after_signal_id": s.after_signal_id,
        "legs": [_leg_row(leg) for leg in s.legs] or None,
        "link": str(s.link) if s.link else None,
        "parent_id": s.parent_id,
        "created_at": s.created_at, "updated_at": s.created_at,
    }


def _signal(row: Any) -> Signal:
    m = row._mapping
    return Signal(
        id=m["id"], account_id=m["account_id"], symbol=m["symbol"], action=Action(m["action"]),
        quantity=m["quantity"], execute_mode=ExecuteMode(m["execute_mode"]),
        created_at=m["created_at"], quantity_type=QuantityType(m["quantity_type"]),
        order_type=OrderType(m["order_type"]), limit_price=m["limit_price"],
        stop_price=m["stop_price"], time_in_force=TimeInForce(m["time_in_force"]),
        extended_hours=m["extended_hours"], scheduled_at=m["scheduled_at"],
        valid_until=m["valid_until"], strategy_id=m["strategy_id"], source_id=m["source_id"],
        metadata=m["metadata"] or {},
        exit_rule=_exit_rule(m["exit_rule"]),
        status=SignalStatus(m["status"]), status_reason=m["status_reason"], route=m["route"],
        after_signal_id=m["after_signal_id"],
        legs=tuple(_leg(row) for row in m["legs"] or ()),
        link=LinkKind(m["link"]) if m["link"] else None, parent_id=m["parent_id"],
    )


class SignalRepo(_Repo):
    def add_unique(self, signal: Signal) -> bool:
        """Store the signal unless another holds its sourceId in this account."""
        return insert_ignore(self.conn, t.signals, _signal_row(signal))

    def get(self, signal_id: str, *, for_update: bool = False) -> Signal | None:
        q = _SIGNAL_BY_ID_FOR_UPDATE if for_update else _SIGNAL_BY_ID
        row = fast.run(self.conn, q, {"b_id": signal_id}).first()
        return _signal(row) if row else None

    def holder_of(self, account_id: str, source_id: str) -> Signal | None:
        q = select(t.signals).where(t.signals.c.account_id == account_id,
                                    t.signals.c.dedup_key == source_id)
        row = self.conn.execute(q).first()
        return _signal(row) if row else None

    def move(self, signal: Signal, status: SignalStatus, at: datetime, *,
             reason: str | None = None, free_source_id: bool = False,
             replaced_by: str | None = None) -> bool:
        """Compare-and-set the status, through the transition table; False when another
        writer moved it first."""
        check_signal_transition(signal.status, status)
        values: dict[str, Any] = {"status": str(status), "updated_at": at}
        if reason is not None:
            values["status_reason"] = reason
        if free_source_id:
            values["dedup_key"] = None
        if replaced_by is not None:
            values["replaced_by"] = replaced_by
        values.update(b_id=signal.id, b_expected=str(signal.status))
        return fast.run(self.conn, _SIGNAL_CAS, values).rowcount == 1

    def waiting_after(self, signal_id: str) -> list[Signal]:
        return [_signal(r) for r in fast.run(self.conn, _WAITING_AFTER, {"b_id": signal_id})]

    def list(self, f: SignalFilter, page: Page) -> list[Signal]:
        q = select(t.signals).order_by(t.signals.c.created_at.desc(), t.signals.c.id.desc())
        if f.account_ids is not None:
            q = q.where(t.signals.c.account_id.in_(list(f.account_ids)))
        if f.status is not None:
            q = q.where(t.signals.c.status == str(f.status))
        if f.symbol is not None:
            q = q.where(t.signals.c.symbol == f.symbol)
        return [_signal(r) for r in self.conn.execute(q.limit(page.limit).offset(page.offset))]

    def count(self, account_id: str | None = None) -> int:
        q = select(func.count()).select_from(t.signals)
        if account_id is not None:
            q = q.where(t.signals.c.account_id == account_id)
        return int(self.conn.execute(q).scalar_one())


def _order_row(o: Order, at: datetime) -> dict[str, Any]:
    row = _columns(o)
    for k in ("side", "order_type", "time_in_force", "purpose", "status"):
        row[k] = str(row[k])
    row["updated_at"] = at
    return row


def _order(row: Any) -> Order:
    m = dict(row._mapping)
    for k in ("lease_owner", "lease_until", "attempts", "submitted_at", "updated_at",
              "hold_until"):
        m.pop(k, None)
    return Order(**{
        **m, "side": Side(m["side"]), "order_type": OrderType(m["order_type"]),
        "time_in_force": TimeInForce(m["time_in_force"]), "purpose": OrderPurpose(m["purpose"]),
        "status": OrderStatus(m["status"]),
    })


class OrderRepo(_Repo):
    def add(self, order: Order, *, reserved_by: str | None = None,
            reserved_until: datetime | None = None, submitting: bool = False) -> None:
        """Store an order; a reservation keeps the worker's sweep off it while the request
        that stored it sends it itself (the sweep takes it if that request dies). With
        `submitting`, a new order goes in as `claim` would leave it (submitting, leased to
        `reserved_by` until `reserved_until`, one attempt, submitted at its creation): the
        request that stores it sends it right after the commit, without a second statement."""
        row = {**_order_row(order, order.created_at), "lease_owner": reserved_by,
               "lease_until": reserved_until, "attempts": 0}
        if submitting:
            if order.status is not OrderStatus.NEW:
                raise ValueError(f"order {order.id} is {order.status}, not new")
            row.update(status=str(OrderStatus.SUBMITTING), attempts=1,
                       submitted_at=order.created_at)
        # attempts given (the column's default), so no Python-side default is left to compute
        fast.run(self.conn, _INSERT[t.orders], row)

    def get(self, order_id: str) -> Order | None:
        row = fast.run(self.conn, _ORDER_BY_ID, {"b_id": order_id}).first()
        return _order(row) if row else None

    def by_client_id(self, client_order_id: str) -> Order | None:
        row = fast.run(self.conn, _ORDER_BY_CLIENT_ID, {"b_client_id": client_order_id}).first()
        return _order(row) if row else None

    def of_signal(self, signal_id: str) -> list[Order]:
        return [_order(r) for r in fast.run(self.conn, _ORDERS_OF_SIGNAL, {"b_id": signal_id})]

    def save(self, order: Order, expected: OrderStatus, at: datetime, *,
             before: Order | None = None, **extra: Any) -> bool:
        """Compare-and-set on status; False when another writer moved the order first.

        With `before` (the order as read in this transaction) only the columns that differ
        from it are written, with `updated_at` and `extra`: a column in the SET list has its
        index entries rewritten even when its value stays (SQLite), pages of the commit."""
        values = {k: v for k, v in _order_row(order, at).items() if k not in ("id", "created_at")}
        if before is not None:
            was = _order_row(before, at)
            values = {k: v for k, v in values.items() if k == "updated_at" or v != was[k]}
        values.update(extra, b_id=order.id, b_expected=str(expected))
        return fast.run(self.conn, _ORDER_CAS, values).rowcount == 1

    def hold(self, order_id: str, until: datetime, now: datetime) -> None:
        """Put a claimed order back, not to be claimed again before `until`."""
        q = (update(t.orders).where(t.orders.c.id == order_id)
             .values(status=str(OrderStatus.NEW), hold_until=until, lease_owner=None,
                     lease_until=None, updated_at=now))
        self.conn.execute(q)

    def claim(self, order_id: str, owner: str, now: datetime, lease_until: datetime) -> bool:
        """Take the submit lease of one order if it is free (new and not reserved by another,
        or a lapsed lease)."""
        params = {"b_id": order_id, "b_now": now, "b_owner": owner, "b_lease_until": lease_until}
        return fast.run(self.conn, _ORDER_CLAIM, params).rowcount == 1

    def any_claimable(self, now: datetime) -> bool:
        """A read before `reserve`: an idle sweep takes no write lock."""
        return fast.run(self.conn, _ANY_CLAIMABLE, {"b_now": now}).first() is not None

    def reserve(self, owner: str, now: datetime, until: datetime, limit: int) -> list[str]:
        """The sweep's share of the orders no live submitter holds: leased to `owner` (their
        status unchanged) so other workers pass them by. On PostgreSQL the rows are picked
        with FOR UPDATE SKIP LOCKED: concurrent sweeps split the work instead of racing."""
        o = t.orders.c
        q = _claimable(now, limit)
        if self.conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        ids = list(self.conn.execute(q).scalars())
        if ids:
            self.conn.execute(update(t.orders).where(o.id.in_(ids))
                              .values(lease_owner=owner, lease_until=until))
        return ids

    def list(self, account_ids: Sequence[str] | None, page: Page,
             status: str | None = None, symbol: str | None = None) -> list[Order]:
        q = select(t.orders).order_by(t.orders.c.created_at.desc(), t.orders.c.id.desc())
        if account_ids is not None:
            q = q.where(t.orders.c.account_id.in_(list(account_ids)))
        if status is not None:
            q = q.where(t.orders.c.status == status)
        if symbol is not None:
            q = q.where(t.orders.c.symbol == symbol)
        return [_order(r) for r in self.conn.execute(q.limit(page.limit).offset(page.offset))]

    def count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.orders)).scalar_one())

    def signals_with_resting_exits(self) -> list[str]:
        """Signals with a native exit still open (the resting-exit sweep looks at their plans)."""
        o = t.orders.c
        q = select(o.signal_id).distinct().where(
            o.status.in_([str(s) for s in OPEN_STATUSES]), o.exit_leg.isnot(None))
        return [sid for sid in self.conn.execute(q).scalars() if sid is not None]

    def working_qty(self, account_id: str, symbol: str) -> Decimal:
        """Signed quantity still to fill on the account's open orders in the symbol. Resting
        exits (native stops, take-profits) are left out: they wait on a price, and a close
        that fills first cancels them."""
        rows = fast.run(self.conn, _WORKING, {"b_account": account_id, "b_symbol": symbol})
        return sum((Side(side).sign * (qty - filled) for side, qty, filled in rows), Decimal(0))


class FillRepo(_Repo):
    def add_unique(self, fill: Fill) -> bool:
        """Record a fill; False when its fill id was seen before (a redelivery)."""
        row = _columns(fill)
        row["side"] = str(fill.side)
        return insert_ignore(self.conn, t.fills, row)

    def of_order(self, order_id: str) -> list[Fill]:
        q = select(t.fills).where(t.fills.c.order_id == order_id).order_by(t.fills.c.filled_at)
        return [Fill(**{**r._mapping, "side": Side(r.side)}) for r in self.conn.execute(q)]


class PositionRepo(_Repo):
    def get(self, account_id: str, symbol: str) -> Position:
        return self._read(_POSITION, account_id, symbol) or Position(account_id=account_id,
                                                                      symbol=symbol)

    def lock(self, account_id: str, symbol: str, at: datetime) -> Position:
        """Serialise orders on one account and symbol until commit (rows locked on PostgreSQL);
        the position as locked. A position never held gets its (flat) row first, so that there
        is a row to lock."""
        held = self._read(_POSITION_LOCK, account_id, symbol)
        if held is not None:
            return held
        insert_ignore(self.conn, t.positions, {
            "account_id": account_id, "symbol": symbol, "qty": Decimal(0),
            "avg_entry_price": Decimal(0), "realized_pnl": Decimal(0), "updated_at": at})
        held = self._read(_POSITION_LOCK, account_id, symbol)
        assert held is not None
        return held

    def save(self, p: Position, at: datetime) -> None:
        """Write the position: an update of its row (there is one once it was locked), else
        an insert."""
        if p.qty == 0:  # one spelling of flat ("0", not "0.000000"), so SQL can filter it
            p = replace(p, qty=Decimal(0), avg_entry_price=Decimal(0))
        values = {"qty": p.qty, "avg_entry_price": p.avg_entry_price,
                  "realized_pnl": p.realized_pnl, "updated_at": at}
        update = {"b_account": p.account_id, "b_symbol": p.symbol, **values}
        if fast.run(self.conn, _POSITION_UPDATE, update).rowcount == 1:
            return
        if not insert_ignore(self.conn, t.positions, {**_columns(p), "updated_at": at}):
            fast.run(self.conn, _POSITION_UPDATE, update)  # inserted in between by another

    def _read(self, stmt: Any, account_id: str, symbol: str) -> Position | None:
        row = fast.run(self.conn, stmt, {"b_account": account_id, "b_symbol": symbol}).first()
        if row is None:
            return None
        m = dict(row._mapping)
        m.pop("updated_at")
        return Position(**m)

    def list(self, account_ids: Sequence[str] | None, page: Page, open_only: bool = True
             ) -> list[Position]:
        q = select(t.positions).order_by(t.positions.c.account_id, t.positions.c.symbol)
        if account_ids is not None:
            q = q.where(t.positions.c.account_id.in_(list(account_ids)))
        if open_only:  # a flat position is stored as exactly 0 (see save)
            q = q.where(t.positions.c.qty != Decimal(0))
        out = []
        for r in self.conn.execute(q.limit(page.limit).offset(page.offset)):
            m = dict(r._mapping)
            m.pop("updated_at")
            out.append(Position(**m))
        return out


def _due(now: Any, limit: int) -> Any:
    """Jobs that are due and free: scheduled, or running under a lapsed lease."""
    j = t.jobs.c
    return (select(j.id).where(j.due_at <= now, or_(
                j.status == str(JobStatus.SCHEDULED),
                and_(j.status == str(JobStatus.RUNNING), j.lease_until < now)))
            .order_by(j.due_at).limit(limit))


def _claimable(now: Any, limit: int) -> Any:
    """Orders no live submitter holds: new and free, or submitting under a lapsed lease."""
    o = t.orders.c
    return (select(o.id).where(or_(o.hold_until.is_(None), o.hold_until <= now), or_(
                and_(o.status == str(OrderStatus.NEW),
                     or_(o.lease_until.is_(None), o.lease_until < now)),
                and_(o.status == str(OrderStatus.SUBMITTING), o.lease_until < now)))
            .order_by(o.created_at).limit(limit))


# The worker's idle checks, asked on every pass.
_ANY_DUE = _due(bindparam("b_now"), 1)
_ANY_CLAIMABLE = _claimable(bindparam("b_now"), 1)


def _job(row: Any) -> Job:
    m = dict(row._mapping)
    for k in ("lease_owner", "lease_until", "updated_at"):
        m.pop(k)
    m["payload"] = m["payload"] or {}
    return Job(**{**m, "kind": JobKind(m["kind"]), "status": JobStatus(m["status"])})


class JobRepo(_Repo):
    def add(self, job: Job) -> None:
        row = asdict(job)
        row.update(kind=str(job.kind), status=str(job.status), updated_at=job.created_at)
        fast.run(self.conn, _INSERT[t.jobs], row)

    def of_signal(self, signal_id: str) -> list[Job]:
        q = select(t.jobs).where(t.jobs.c.signal_id == signal_id).order_by(t.jobs.c.due_at)
        return [_job(r) for r in self.conn.execute(q)]

    def any_due(self, now: datetime) -> bool:
        """A read before the claiming write: an idle worker's pass takes no write lock."""
        return fast.run(self.conn, _ANY_DUE, {"b_now": now}).first() is not None

    def claim_due(self, owner: str, now: datetime, lease_until: datetime,
                  limit: int) -> list[Job]:
        """Claim up to `limit` due jobs at once; on PostgreSQL with FOR UPDATE SKIP LOCKED, so
        workers claiming together take different jobs."""
        q = _due(now, limit)
        if self.conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        claimed = [self.claim(i, owner, now, lease_until) for i in self.conn.execute(q).scalars()]
        return [job for job in claimed if job is not None]

    def next_due_at(self) -> datetime | None:
        j = t.jobs.c
        q = select(func.min(j.due_at)).where(j.status == str(JobStatus.SCHEDULED))
        return self.conn.execute(q).scalar_one_or_none()

    def claim(self, job_id: str, owner: str, now: datetime, lease_until: datetime) -> Job | None:
        j = t.jobs.c
        q = (update(t.jobs)
             .where(j.id == job_id, j.due_at <= now, or_(
                 j.status == str(JobStatus.SCHEDULED),
                 and_(j.status == str(JobStatus.RUNNING), j.lease_until < now)))
             .values(status=str(JobStatus.RUNNING), lease_owner=owner, lease_until=lease_until,
                     attempts=j.attempts + 1, updated_at=now))
        if self.conn.execute(q).rowcount != 1:
            return None
        return _job(self.conn.execute(select(t.jobs).where(j.id == job_id)).one())

    def finish(self, job: Job, status: JobStatus, at: datetime, result: str | None = None,
               owner: str | None = None) -> bool:
        """Close a job; with `owner`, only while that worker still holds the lease."""
        j = t.jobs.c
        cond = [j.id == job.id, j.status == str(job.status)]
        if owner is not None:
            cond.append(j.lease_owner == owner)
        q = update(t.jobs).where(*cond).values(status=str(status), result=result, updated_at=at)
        return self.conn.execute(q).rowcount == 1

    def cancel_for_signal(self, signal_id: str, at: datetime, reason: str) -> int:
        j = t.jobs.c
        q = (update(t.jobs)
             .where(j.signal_id == signal_id, j.status == str(JobStatus.SCHEDULED))
             .values(status=str(JobStatus.CANCELLED), result=reason, updated_at=at))
        return self.conn.execute(q).rowcount


class AuditRepo(_Repo):
    def add(self, event: AuditEvent) -> None:
        fast.run(self.conn, _INSERT[t.audit_events], _columns(event))

    def add_many(self, events: Sequence[AuditEvent]) -> None:
        if len(events) == 1:  # a `pending` signal's unit
            self.add(events[0])
        elif events:  # one executemany
            fast.run_many(self.conn, _INSERT[t.audit_events], [_columns(e) for e in events])

    def of_signal(self, signal_id: str) -> list[AuditEvent]:
        q = (select(t.audit_events).where(t.audit_events.c.signal_id == signal_id)
             .order_by(t.audit_events.c.seq))
        return self._events(q)

    def of_entity(self, entity: str, account_id: str) -> list[AuditEvent]:
        a = t.audit_events.c
        q = select(t.audit_events).where(a.entity == entity, a.account_id == account_id)
        return self._events(q.order_by(a.seq))

    def _events(self, q: Any) -> list[AuditEvent]:
        out = []
        for r in self.conn.execute(q):
            m = dict(r._mapping)
            m.pop("seq")
            out.append(AuditEvent(**{**m, "data": m["data"] or {}}))
        return out


class CredentialRepo(_Repo):
    """Sealed broker credentials, one per account (the repository never sees plaintext)."""

    def put(self, account_id: str, ciphertext: str, now: datetime) -> None:
        row = {"account_id": account_id, "ciphertext": ciphertext, "created_at": now,
               "updated_at": now}
        if not insert_ignore(self.conn, t.broker_credentials, row):
            self.conn.execute(update(t.broker_credentials)
                              .where(t.broker_credentials.c.account_id == account_id)
                              .values(ciphertext=ciphertext, updated_at=now))

    def get(self, account_id: str) -> str | None:
        q = select(t.broker_credentials.c.ciphertext).where(
            t.broker_credentials.c.account_id == account_id)
        return self.conn.execute(q).scalar_one_or_none()

    def all(self) -> list[tuple[str, str]]:
        c = t.broker_credentials.c
        return [(r.account_id, r.ciphertext)
                for r in self.conn.execute(select(c.account_id, c.ciphertext)
                                           .order_by(c.account_id))]


class RiskRepo(_Repo):
    def get(self, account_id: str) -> dict[str, Any] | None:
        return fast.run(self.conn, _RISK_LIMITS, {"b_account": account_id}).scalar_one_or_none()

    def get_with_flag(self, account_id: str, flag: str) -> tuple[dict[str, Any] | None, str | None]:
        """`get(account_id)` and the service flag `flag` (FlagRepo.get), in one statement."""
        row = fast.run(self.conn, _RISK_LIMITS_AND_FLAG,
                       {"b_account": account_id, "b_key": flag}).first()
        return row.limits, row.flag

    def put(self, account_id: str, limits: dict[str, Any], now: datetime) -> None:
        row = {"account_id": account_id, "limits": limits, "updated_at": now}
        if not insert_ignore(self.conn, t.account_risk, row):
            self.conn.execute(update(t.account_risk)
                              .where(t.account_risk.c.account_id == account_id)
                              .values(limits=limits, updated_at=now))

    def realized_at_start(self, account_id: str, session: str,
                          realized_now: Callable[[], Decimal]) -> Decimal:
        """The account's realized P&L when `session` began. The first call in a session
        records `realized_now()`; later ones read the row and never call it."""
        key = {"b_account": account_id, "b_session": session}
        found = fast.run(self.conn, _SESSION_START, key).scalar_one_or_none()
        if found is None:
            insert_ignore(self.conn, t.account_session_pnl, {
                "account_id": account_id, "session": session,
                "realized_at_start": realized_now()})
            # a concurrent first writer's, if it won
            found = fast.run(self.conn, _SESSION_START, key).scalar_one()
        return Decimal(found)

    def realized_total(self, account_id: str) -> Decimal:
        q = select(t.positions.c.realized_pnl).where(t.positions.c.account_id == account_id)
        return sum((Decimal(v) for v in self.conn.execute(q).scalars()), Decimal(0))

    def open_positions(self, account_id: str) -> list[str]:
        p = t.positions.c
        q = select(p.symbol, p.qty).where(p.account_id == account_id)
        return [r.symbol for r in self.conn.execute(q) if Decimal(r.qty) != 0]

    def orders_since(self, account_id: str, since: datetime) -> int:
        o = t.orders.c
        q = (select(func.count()).select_from(t.orders)
             .where(o.account_id == account_id, o.created_at >= since))
        return int(self.conn.execute(q).scalar_one())


class StatsRepo(_Repo):
    """Counts for the metrics endpoint, read when it is scraped."""

    def orders_by_broker_status(self) -> list[tuple[str, str, int]]:
        o, a = t.orders.c, t.accounts.c
        q = (select(a.broker, o.status, func.count())
             .select_from(t.orders.join(t.accounts, o.account_id == a.id))
             .group_by(a.broker, o.status))
        return [(r[0], r[1], int(r[2])) for r in self.conn.execute(q)]

    def oldest_due_job(self, now: datetime) -> datetime | None:
        j = t.jobs.c
        q = select(func.min(j.due_at)).where(j.status == str(JobStatus.SCHEDULED), j.due_at <= now)
        return self.conn.execute(q).scalar_one_or_none()

    def recent_timings(self, limit: int) -> list[tuple[datetime | None, ...]]:
        s = t.signal_timings.c
        q = (select(s.received_at, s.decided_at, s.submitted_at, s.acked_at)
             .where(s.received_at.is_not(None)).order_by(s.received_at.desc()).limit(limit))
        return [tuple(r) for r in self.conn.execute(q)]


class FlagRepo(_Repo):
    def get(self, key: str) -> str | None:
        return fast.run(self.conn, _FLAG, {"b_key": key}).scalar_one_or_none()

    def set(self, key: str, value: str) -> None:
        if not insert_ignore(self.conn, t.service_flags, {"key": key, "value": value}):
            self.conn.execute(update(t.service_flags).where(t.service_flags.c.key == key)
                              .values(value=value))


class AccessTokenRepo(_Repo):
    def add(self, token: AccessToken) -> None:
        fast.run(self.conn, _INSERT[t.access_tokens], asdict(token))

    def with_account(self, token_hash: str) -> tuple[AccessToken, Account | None] | None:
        """The token and its account (None when the account is gone), in one statement."""
        m = fast.first(self.conn, _TOKEN_AND_ACCOUNT, {"token_hash": token_hash})
        if m is None:
            return None
        account = _labelled_account(m)
        return AccessToken(**m), account

    def revoke(self, token_id: str, at: datetime) -> bool:
        q = (update(t.access_tokens)
             .where(t.access_tokens.c.id == token_id, t.access_tokens.c.revoked_at.is_(None))
             .values(revoked_at=at))
        return self.conn.execute(q).rowcount == 1


class TriggerRepo(_Repo):
    def add(self, trigger: Trigger) -> None:
        fast.run(self.conn, _INSERT[t.triggers], asdict(trigger))

    def get(self, trigger_id: str) -> Trigger | None:
        row = self.conn.execute(select(t.triggers).where(t.triggers.c.id == trigger_id)).first()
        return Trigger(**row._mapping) if row else None

    def by_hash(self, token_hash: str) -> Trigger | None:
        row = self.conn.execute(select(t.triggers).where(t.triggers.c.token_hash == token_hash)).first()
        return Trigger(**row._mapping) if row else None

    def of_signal(self, signal_id: str) -> Trigger | None:
        row = self.conn.execute(select(t.triggers).where(t.triggers.c.signal_id == signal_id)).first()
        return Trigger(**row._mapping) if row else None

    def consume(self, trigger_id: str, at: datetime, by: str) -> bool:
        """Use the trigger once: a compare-and-set that only one caller can win."""
        c = t.triggers.c
        q = (update(t.triggers)
             .where(c.id == trigger_id, c.consumed_at.is_(None), c.revoked_at.is_(None),
                    c.expires_at > at)
             .values(consumed_at=at, consumed_by=by))
        return self.conn.execute(q).rowcount == 1

    def revoke(self, trigger_id: str, at: datetime) -> bool:
        c = t.triggers.c
        q = (update(t.triggers).where(c.id == trigger_id, c.revoked_at.is_(None),
                                      c.consumed_at.is_(None)).values(revoked_at=at))
        return self.conn.execute(q).rowcount == 1


class PartnerRepo(_Repo):
    def add(self, partner: Partner) -> None:
        fast.run(self.conn, _INSERT[t.partners], asdict(partner))

    def get(self, partner_id: str) -> Partner | None:
        row = self.conn.execute(select(t.partners).where(t.partners.c.id == partner_id)).first()
        return Partner(**row._mapping) if row else None

    def by_hash(self, token_hash: str) -> Partner | None:
        row = self.conn.execute(select(t.partners).where(t.partners.c.token_hash == token_hash)).first()
        return Partner(**row._mapping) if row else None

    def grant(self, partner_id: str, account_id: str, at: datetime) -> bool:
        return insert_ignore(self.conn, t.partner_grants, {
            "partner_id": partner_id, "account_id": account_id, "created_at": at})

    def granted_accounts(self, partner_id: str) -> list[str]:
        q = select(t.partner_grants.c.account_id).where(t.partner_grants.c.partner_id == partner_id)
        return list(self.conn.execute(q).scalars())


@functools.cache
def _timing_upsert(dialect_name: str, names: frozenset[str]) -> Any:
    """One statement per set of stages: insert the row, or fill in the stages still empty."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(t.signal_timings)
    c = t.signal_timings.c
    return stmt.on_conflict_do_update(
        index_elements=[c.signal_id],
        set_={name: func.coalesce(c[name], stmt.excluded[name]) for name in sorted(names)})


class TimingRepo(_Repo):
    def mark(self, signal_id: str, **times: datetime | None) -> None:
        """Record stage times of a signal; a time already recorded is kept."""
        times = {k: v for k, v in times.items() if v is not None}
        if not times:
            return
        stmt = _timing_upsert(self.conn.dialect.name, frozenset(times))
        fast.run(self.conn, stmt, {"signal_id": signal_id, **times})

    def of_signal(self, signal_id: str) -> dict[str, datetime | None]:
        row = self.conn.execute(select(t.signal_timings)
                                .where(t.signal_timings.c.signal_id == signal_id)).first()
        if row is None:
            return {}
        m = dict(row._mapping)
        m.pop("signal_id")
        return m


def last_price(conn: Connection, symbol: str) -> Decimal | None:
    """The last recorded price of a symbol, on the given connection."""
    return fast.run(conn, _LAST_PRICE, {"b_symbol": symbol}).scalar_one_or_none()


class MarketPriceRepo(_Repo):
    """Last prices read on the transaction's own connection (never a second one)."""

    def last_price(self, symbol: str) -> Decimal | None:
        return last_price(self.conn, symbol)

    def changed_since(self, since: datetime | None) -> list[tuple[str, Decimal, datetime]]:
        m = t.market_prices.c
        q = select(m.symbol, m.price, m.ts)
        if since is not None:
            q = q.where(m.ts >= since)
        return [(r.symbol, r.price, r.ts) for r in self.conn.execute(q)]


class TriggerLeaseRepo(_Repo):
    """Leases of the trigger engine's symbol partitions (scale-out mode)."""

    def all(self, now: datetime) -> dict[int, tuple[str | None, bool]]:
        """Each partition's owner and whether its lease still holds; on PostgreSQL the rows
        stay locked until commit, so workers hand partitions out one at a time."""
        c = t.trigger_leases.c
        q = select(c.partition, c.owner, c.lease_until)
        if self.conn.dialect.name == "postgresql":
            q = q.with_for_update()
        return {r.partition: (r.owner, r.lease_until is not None and r.lease_until > now)
                for r in self.conn.execute(q)}

    def take(self, partition: int, owner: str, now: datetime, until: datetime) -> bool:
        c = t.trigger_leases.c
        insert_ignore(self.conn, t.trigger_leases,
                      {"partition": partition, "owner": None, "lease_until": None})
        q = (update(t.trigger_leases)
             .where(c.partition == partition,
                    or_(c.owner.is_(None), c.owner == owner, c.lease_until <= now))
             .values(owner=owner, lease_until=until))
        return self.conn.execute(q).rowcount == 1

    def release(self, partition: int, owner: str) -> None:
        c = t.trigger_leases.c
        self.conn.execute(update(t.trigger_leases)
                          .where(c.partition == partition, c.owner == owner)
                          .values(owner=None, lease_until=None))


class ChannelRepo(_Repo):
    def add(self, channel: Channel) -> None:
        fast.run(self.conn, _INSERT[t.channels], asdict(channel))

    def get(self, channel_id: str) -> Channel | None:
        row = self.conn.execute(select(t.channels).where(t.channels.c.id == channel_id)).first()
        return Channel(**row._mapping) if row else None

    def by_api_key(self, api_key: str) -> Channel | None:
        row = self.conn.execute(select(t.channels).where(t.channels.c.api_key == api_key)).first()
        return Channel(**row._mapping) if row else None

    def of_partner(self, partner_id: str) -> list[Channel]:
        q = select(t.channels).where(t.channels.c.partner_id == partner_id)
        return [Channel(**r._mapping) for r in self.conn.execute(q.order_by(t.channels.c.created_at))]

    def subscribe(self, sub: Subscription) -> None:
        row = {**asdict(sub), "allocation_type": str(sub.allocation_type)}
        if not insert_ignore(self.conn, t.subscriptions, row):
            c = t.subscriptions.c
            self.conn.execute(update(t.subscriptions)
                              .where(c.channel_id == sub.channel_id, c.account_id == sub.account_id)
                              .values(**{k: v for k, v in row.items()
                                         if k not in ("channel_id", "account_id", "created_at")}))

    def subscribers(self, channel_id: str) -> list[Subscription]:
        q = (select(t.subscriptions).where(t.subscriptions.c.channel_id == channel_id)
             .order_by(t.subscriptions.c.created_at, t.subscriptions.c.account_id))
        return [Subscription(**{**r._mapping, "allocation_type": AllocationType(r.allocation_type)})
                for r in self.conn.execute(q)]


class PartnerSignalRepo(_Repo):
    def add(self, row: dict[str, Any]) -> None:
        fast.run(self.conn, _INSERT[t.partner_signals], row)

    def get(self, signal_id: str) -> dict[str, Any] | None:
        q = select(t.partner_signals).where(t.partner_signals.c.id == signal_id)
        row = self.conn.execute(q).first()
        return dict(row._mapping) if row else None

    def update(self, signal_id: str, at: datetime, **values: Any) -> None:
        self.conn.execute(update(t.partner_signals).where(t.partner_signals.c.id == signal_id)
                          .values(updated_at=at, **values))

    def count_since(self, channel_id: str, since: datetime) -> int:
        c = t.partner_signals.c
        q = select(func.count()).select_from(t.partner_signals).where(
            c.channel_id == channel_id, c.created_at >= since)
        return int(self.conn.execute(q).scalar_one())

    def children(self, parent_id: str) -> list[Signal]:
        q = select(t.signals).where(t.signals.c.parent_id == parent_id).order_by(t.signals.c.account_id)
        return [_signal(r) for r in self.conn.execute(q)]


def _plan_row(plan: ExitPlan) -> dict[str, Any]:
    return {
        "side": str(plan.side),
        "targets": [{"price": str(x.price), "share": str(x.share)} for x in plan.targets],
        "stop_loss": _s(plan.stop_loss),
        "trailing": None if plan.trailing is None else {
            "percent": _s(plan.trailing.percent), "amount": _s(plan.trailing.amount),
            "activation_price": _s(plan.trailing.activation_price)},
        "adds": [{"price": str(a.price), "qty": str(a.qty)} for a in plan.adds],
        "break_even_after_first": plan.break_even_after_first,
    }


def plan_from_row(row: dict[str, Any]) -> ExitPlan:
    trailing = row.get("trailing")
    side = row["side"]
    return ExitPlan(
        side=Side.BUY if side in ("buy", "long") else Side.SELL,
        targets=tuple(Target(Decimal(x["price"]), Decimal(x["share"])) for x in row["targets"]),
        stop_loss=_d(row.get("stop_loss")),
        trailing=None if trailing is None else Trailing(
            percent=_d(trailing.get("percent")), amount=_d(trailing.get("amount")),
            activation_price=_d(trailing.get("activation_price"))),
        adds=tuple(AddLevel(Decimal(a["price"]), Decimal(a["qty"])) for a in row.get("adds", [])),
        break_even_after_first=bool(row.get("break_even_after_first", False)),
    )


def _state_row(state: PlanState) -> dict[str, Any]:
    return {"entry_qty": str(state.entry_qty), "open_qty": str(state.open_qty),
            "avg_entry_price": str(state.avg_entry_price), "targets_hit": state.targets_hit,
            "adds_done": sorted(state.adds_done), "trail_anchor": _s(state.trail_anchor),
            "stop": _s(state.stop), "closed": state.closed}


def _state(row: dict[str, Any] | None) -> PlanState | None:
    if row is None:
        return None
    return PlanState(entry_qty=Decimal(row["entry_qty"]), open_qty=Decimal(row["open_qty"]),
                     avg_entry_price=Decimal(row["avg_entry_price"]),
                     targets_hit=row["targets_hit"], adds_done=frozenset(row["adds_done"]),
                     trail_anchor=_d(row["trail_anchor"]), stop=_d(row["stop"]),
                     closed=row["closed"])


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _d(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@dataclass(frozen=True)
class StoredPlan:
    signal_id: str
    account_id: str
    symbol: str
    plan: ExitPlan
    state: PlanState | None
    version: int
    active: bool
    native: frozenset[ExitLeg] = frozenset()  # the legs resting at the broker


class ExitPlanRepo(_Repo):
    def add(self, signal_id: str, account_id: str, symbol: str, plan: ExitPlan,
            at: datetime) -> None:
        fast.run(self.conn, _INSERT[t.exit_plans], dict(
            signal_id=signal_id, account_id=account_id, symbol=symbol, plan=_plan_row(plan),
            state=None, version=0, active=True, updated_at=at))

    def get(self, signal_id: str) -> StoredPlan | None:
        row = fast.run(self.conn, _PLAN, {"b_id": signal_id}).first()
        return self._stored(row) if row else None

    def armed(self) -> list[StoredPlan]:
        """Active plans whose entry has filled: what the trigger book holds."""
        return [self._stored(r) for r in fast.run(self.conn, _ARMED)]

    def with_resting_legs(self) -> list[str]:
        """The signal ids of the armed plans that hold legs resting at the broker."""
        return list(fast.run(self.conn, _WITH_RESTING_LEGS).scalars())

    def changed_since(self, since: datetime) -> list[StoredPlan]:
        """Plans changed at or after `since`, active or not (a worker's book follows them)."""
        q = select(t.exit_plans).where(t.exit_plans.c.updated_at >= since)
        return [self._stored(r) for r in self.conn.execute(q)]

    def armed_on(self, account_id: str, symbol: str) -> list[StoredPlan]:
        """The armed plans of one account's position (a fill that moves it concerns them)."""
        rows = fast.run(self.conn, _ARMED_ON, {"b_symbol": symbol, "b_account": account_id})
        return [self._stored(r) for r in rows]

    def save(self, stored: StoredPlan, *, plan: ExitPlan | None = None,
             state: PlanState | None = None, active: bool | None = None,
             native: frozenset[ExitLeg] | None = None, at: datetime) -> bool:
        """Compare-and-set on the version: only one writer moves a plan from one version."""
        c = t.exit_plans.c
        values: dict[str, Any] = {"version": stored.version + 1, "updated_at": at}
        if plan is not None:
            values["plan"] = _plan_row(plan)
        if state is not None:
            values["state"] = _state_row(state)
        if active is not None:
            values["active"] = active
        if native is not None:
            values["native"] = sorted(str(leg) for leg in native)
        q = (update(t.exit_plans).where(c.signal_id == stored.signal_id,
                                        c.version == stored.version).values(**values))
        return self.conn.execute(q).rowcount == 1

    @staticmethod
    def _stored(row: Any) -> StoredPlan:
        m = row._mapping
        return StoredPlan(m["signal_id"], m["account_id"], m["symbol"], plan_from_row(m["plan"]),
                          _state(m["state"]), m["version"], m["active"],
                          frozenset(ExitLeg(leg) for leg in m["native"] or ()))


class BarRepo(_Repo):
    def upsert(self, symbol: str, timeframe: str, bars: Sequence[Bar]) -> int:
        """Insert or replace bars (a re-import corrects a bar rather than failing)."""
        if not bars:
            return 0
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(t.bars)
        stmt = stmt.on_conflict_do_update(
            index_elements=["symbol", "timeframe", "ts"],
            set_={c: stmt.excluded[c] for c in ("open", "high", "low", "close", "volume")})
        rows = [{"symbol": symbol, "timeframe": timeframe, "ts": b.ts, "open": b.open,
                 "high": b.high, "low": b.low, "close": b.close, "volume": b.volume} for b in bars]
        for start in range(0, len(rows), 5_000):
            self.conn.execute(stmt, rows[start:start + 5_000])
        return len(rows)

    def latest(self, symbol: str, timeframe: str, limit: int,
               before: int | None = None) -> list[Bar]:
        """The last `limit` bars (starting before `before`, epoch seconds), oldest first."""
        c = t.bars.c
        q = (select(c.ts, c.open, c.high, c.low, c.close, c.volume)
             .where(c.symbol == symbol, c.timeframe == timeframe)
             .order_by(c.ts.desc()).limit(limit))
        if before is not None:
            q = q.where(c.ts < before)
        return [Bar(*r) for r in reversed(self.conn.execute(q).all())]

    def count(self, symbol: str, timeframe: str) -> int:
        c = t.bars.c
        q = select(func.count()).select_from(t.bars).where(c.symbol == symbol,
                                                           c.timeframe == timeframe)
        return int(self.conn.execute(q).scalar_one())


def _stored_json(text: str | None) -> Any:
    """A strategy's definition or state from its column's text: by orjson (a third of the
    standard library's cost, 20,000 of them in a bulk evaluation), which reads what tradewire
    writes there (validated numbers, strings); anything it refuses by the standard library."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class StrategyRepo(_Repo):
    """Strategies as stored rows (their definition is parsed by the strategies layer)."""

    def add(self, row: dict[str, Any]) -> None:
        fast.run(self.conn, _INSERT[t.strategies], row)

    def get(self, strategy_id: str) -> dict[str, Any] | None:
        q = select(t.strategies).where(t.strategies.c.id == strategy_id)
        row = self.conn.execute(q).first()
        return dict(row._mapping) if row else None

    def for_evaluation(self, ids: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        """What an evaluation reads of the stored strategies among `ids` (id, user_id,
        account_id, definition, execution_state, last_bar_ts), by id: one statement per
        STRATEGIES_PER_READ ids."""
        unique = list(dict.fromkeys(ids))
        out: dict[str, Mapping[str, Any]] = {}
        for i in range(0, len(unique), STRATEGIES_PER_READ):
            chunk = unique[i:i + STRATEGIES_PER_READ]
            chunk += chunk[:1] * (STRATEGIES_PER_READ - len(chunk))
            values = dict(zip(_EVALUATION_IDS, chunk, strict=True))
            for row in fast.run(self.conn, _FOR_EVALUATION_OF, values):
                out[row.id] = {"id": row.id, "user_id": row.user_id, "account_id": row.account_id,
                               "definition": _stored_json(row.definition),
                               "execution_state": _stored_json(row.execution_state),
                               "last_bar_ts": row.last_bar_ts}
        return out

    def list(self, user_id: str | None, page: Page) -> list[dict[str, Any]]:
        q = select(t.strategies).order_by(t.strategies.c.created_at, t.strategies.c.id)
        if user_id is not None:
            q = q.where(t.strategies.c.user_id == user_id)
        return [dict(r._mapping) for r in self.conn.execute(q.limit(page.limit).offset(page.offset))]

    def update(self, strategy_id: str, at: datetime, **values: Any) -> bool:
        q = (update(t.strategies).where(t.strategies.c.id == strategy_id)
             .values(updated_at=at, **values))
        return self.conn.execute(q).rowcount == 1

    def save_evaluations(self, groups: Sequence[tuple[Sequence[str], dict[str, Any], int]],
                         at: datetime) -> None:
        """After an evaluation: (ids, execution_state, last_bar_ts) of strategies that came out
        with the same state on the same bar. A group of one goes into one executemany with
        the other groups of one, a larger group is one `UPDATE ... WHERE id IN` per
        STRATEGIES_PER_READ ids (most flat strategies share their state)."""
        single = []
        for ids, state, bar in groups:
            if len(ids) == 1:
                single.append({"b_id": ids[0], "b_state": state, "b_bar": bar, "b_at": at})
                continue
            for i in range(0, len(ids), STRATEGIES_PER_READ):
                self.conn.execute(
                    update(t.strategies)
                    .where(t.strategies.c.id.in_(ids[i:i + STRATEGIES_PER_READ]))
                    .values(execution_state=state, last_bar_ts=bar, updated_at=at))
        fast.run_many(self.conn, _STRATEGY_STATE, single)

    def delete(self, strategy_id: str) -> bool:
        return self.conn.execute(t.strategies.delete().where(
            t.strategies.c.id == strategy_id)).rowcount == 1

    def enabled(self) -> list[dict[str, Any]]:
        q = select(t.strategies).where(t.strategies.c.enabled.is_(True))
        return [dict(r._mapping) for r in self.conn.execute(q)]
