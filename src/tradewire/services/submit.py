"""Use case: send stored orders to their broker, exactly once, and record what it says.

The order row (with its client_order_id) is committed before the broker is called, the call
runs outside any transaction, and an unknown outcome is settled by looking the order up by its
client_order_id, never by sending a new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from tradewire.domain.accounts import Account
from tradewire.domain.audit import AuditEvent
from tradewire.domain.exit_plan import ExitLeg
from tradewire.domain.exits import exit_due_at
from tradewire.domain.jobs import Job, JobKind
from tradewire.domain.native_exits import native_legs
from tradewire.domain.orders import ACKNOWLEDGED, Fill, Order, OrderStatus, apply_fill
from tradewire.domain.orders import client_order_id as make_client_order_id
from tradewire.domain.positions import apply_fill as position_after
from tradewire.domain.sessions import Session
from tradewire.domain.signals import Signal, SignalStatus
from tradewire.domain.values import OrderPurpose, OrderType, TimeInForce, new_id
from tradewire.services import logcontext
from tradewire.services.audit import order_event, signal_event
from tradewire.services.deps import Deps
from tradewire.services.exit_arming import Arming, after_reports, on_order_filled, on_resting_exit
from tradewire.services.native_exits import NativeWork
from tradewire.services.ports import (
    Broker,
    BrokerOrder,
    BrokerUnavailable,
    MovedUnderUs,
    OrderRequest,
    Page,
    UnitOfWork,
)
from tradewire.services.risk import note_session_start

AUCTIONS = frozenset({TimeInForce.OPG, TimeInForce.CLS})  # orders made to wait for a bell
log = logging.getLogger(__name__)
LOOKUP_DELAYS = (0.05, 0.2, 0.5)  # brokers lag: one "not found" right after a timeout proves nothing
RECORD_ATTEMPTS = 5  # a report that keeps losing a compare-and-set to other writers
# Signals by id, as a transaction that recorded their orders' reports left them.
Seen = dict[str, Signal]


RESERVATION = timedelta(seconds=10)  # how long the worker's sweep leaves a request's order alone


def reservation(order: Order, deps: Deps) -> str:
    """The owner name under which the request that stored `order` sends it."""
    return f"{deps.worker_id}:request:{order.id}"


def submit_after_commit(order: Order, deps: Deps, account: Account | None = None,
                        *, claimed: bool = False, seen: Seen | None = None) -> Order | None:
    """Send an order whose signal is already committed (claimed with it, or not yet).
    Whatever goes wrong here, the signal stays accepted: the failure is logged and the
    worker's sweep sends the order later. `seen`: see `record_reports`."""
    try:
        if claimed and account is not None:
            return send_claimed(order, account, deps, seen=seen)
        return submit_order(order.id, deps, owner=reservation(order, deps), seen=seen)
    except Exception:
        log.exception("sending order %s failed; the worker will retry it", order.id)
        deps.wake()
        return order


def submit_order(order_id: str, deps: Deps, *, owner: str | None = None,
                 seen: Seen | None = None) -> Order | None:
    """Claim the order's submit lease, send it (or find it), record the broker's answer."""
    now = deps.clock.now()
    with deps.uow() as uow:
        order = uow.orders.get(order_id)
        if order is None or not uow.orders.claim(order_id, owner or deps.worker_id, now,
                                                 now + deps.lease):
            return order
        account = uow.accounts.get(order.account_id)
        if order.status is OrderStatus.NEW and _held(uow, order, account.market, deps, now):
            held = uow.orders.get(order_id)
            uow.commit()
            return held
        uow.audit.add(order_event(order.moved_to(OrderStatus.SUBMITTING), "OrderSubmitting", now,
                                  from_status=str(order.status)))
        if order.signal_id is not None:
            uow.timings.mark(order.signal_id, submitted_at=now)
        uow.commit()
    # A lapsed lease means an earlier submitter may have sent it: look before sending.
    return send_claimed(order, account, deps, look_first=order.status is OrderStatus.SUBMITTING,
                        seen=seen)


def sends_at_once(order: Order, account: Account, deps: Deps, now: datetime) -> bool:
    """`order`, about to be stored by the request that sends it, may go in holding its submit
    lease (status submitting, leased to `reservation(order, deps)` until `now + deps.lease`,
    one attempt: `OrderRepo.add(..., submitting=True)`), so no second commit is needed before
    the broker call. False when it must wait for the open: stored new and reserved, the
    ordinary submit path then holds it or lets it expire. The caller adds the claim's audit
    event (`submitting_event`) and marks its stage time (`submitted_at`, `now`)."""
    return not _waits_for_open(order, account.market, deps, now)


def submitting_event(order: Order, now: datetime) -> AuditEvent:
    """The audit event of a new order taken for sending."""
    return order_event(order.moved_to(OrderStatus.SUBMITTING), "OrderSubmitting", now,
                       from_status="new")


def send_claimed(order: Order, account: Account, deps: Deps, *,
                 look_first: bool = False, seen: Seen | None = None) -> Order | None:
    """Send an order whose lease we hold (or find it), and record the broker's answer."""
    broker = deps.brokers.for_account(account)
    report = _find(broker, order) if look_first else None
    if report is None:
        try:
            report = broker.submit(_request(order))
        except BrokerUnavailable:
            report = _find(broker, order)
    if report is None:
        return order  # still unknown: the lease lapses and the sweep looks again
    deps.failpoint("broker-accepted")  # the broker has it; we have not recorded it
    return record_reports([(order.client_order_id, report)], deps, seen=seen)[0]


def _waits_for_open(order: Order, market: str, deps: Deps, now: datetime) -> bool:
    if order.order_type is not OrderType.MARKET or order.time_in_force in AUCTIONS:
        return False
    return deps.calendar.next_open(market, now) > now


def _held(uow: UnitOfWork, order: Order, market: str, deps: Deps, now: datetime) -> bool:
    """A market order while the market is shut waits for the open, or expires before it."""
    if not _waits_for_open(order, market, deps, now):
        return False
    opens_at = deps.calendar.next_open(market, now)
    signal = uow.signals.get(order.signal_id) if order.signal_id else None
    if signal is not None and signal.valid_until is not None and signal.valid_until <= opens_at:
        reason = f"market closed until {opens_at.isoformat()}, after validUntil"
        # The claim above already moved the row to submitting.
        uow.orders.save(order.moved_to(OrderStatus.CANCELED, reason=reason),
                        OrderStatus.SUBMITTING, now, lease_owner=None, lease_until=None)
        if uow.signals.move(signal, SignalStatus.EXPIRED, now, reason=reason):
            uow.audit.add(signal_event(signal, "SignalExpired", now, from_status=str(signal.status),
                                       to_status="expired", reason=reason))
        return True
    uow.orders.hold(order.id, opens_at, now)
    uow.audit.add(order_event(order, "OrderHeld", now, hold_until=opens_at.isoformat(),
                              reason="market closed"))
    return True


def _find(broker: Broker, order: Order) -> BrokerOrder | None:
    for delay in LOOKUP_DELAYS:
        try:
            found = broker.lookup(order.account_id, order.client_order_id)
        except BrokerUnavailable:
            found = None
        if found is not None:
            return found
        time.sleep(delay)
    return None


def _request(order: Order) -> OrderRequest:
    return OrderRequest(
        account_ref=order.account_id, client_order_id=order.client_order_id,
        symbol=order.symbol, side=order.side, qty=order.qty, order_type=order.order_type,
        time_in_force=order.time_in_force, limit_price=order.limit_price,
        stop_price=order.stop_price, extended_hours=order.extended_hours,
        expires_at=order.expires_at,
        oco_group=order.link_group if order.link_kind == "oco" else None,
    )


def record_reports(reports: Sequence[tuple[str, BrokerOrder]], deps: Deps, *,
                   seen: Seen | None = None) -> list[Order | None]:
    """Apply broker reports (acks, fills, cancels) in one transaction; repeats change nothing.
    `seen` gets the signals the reports' orders followed, as this transaction left them (a
    signal another writer moved first is left out): the request that sent an order answers
    with its signal without reading it again."""
    now = deps.clock.now()
    # Position rows are locked in one order (by symbol) so two batches never deadlock.
    order = sorted(range(len(reports)), key=lambda i: (reports[i][1].symbol or "", reports[i][0]))
    for attempt in range(RECORD_ATTEMPTS):
        touched = _Touched()
        out: list[Order | None] = [None] * len(reports)
        try:
            with deps.uow() as uow:
                for i in order:
                    out[i] = _record(uow, reports[i][0], reports[i][1], now, deps, touched)
                work, armings = after_reports(uow, touched.plans, touched.positions, now)
                uow.commit()
            break
        except MovedUnderUs:
            # Another writer (the sender recording its acknowledgement, a stream, a sweep)
            # changed one of these orders between our read and our write: read again.
            if attempt == RECORD_ATTEMPTS - 1:
                raise
            log.info("reports of %d orders met a concurrent update; applying them again",
                     len(reports))
    if seen is not None:
        seen.update(touched.signals)
    for key, symbol, below, above in [*touched.armings, *armings]:
        deps.exits.arm(key, symbol, below, above)
    if touched.due or touched.plans or armings:
        # Work the fills made: released signals, a timed exit, plans that moved (the workers'
        # trigger books follow them). A plain fill leaves the worker to its poll.
        deps.wake()
    settle_native(work, deps)
    return out


@dataclass
class _Touched:
    """What a batch of reports moved: the plans and positions to look at before commit."""

    armings: list[Arming] = field(default_factory=list)
    plans: set[str] = field(default_factory=set)
    positions: set[tuple[str, str]] = field(default_factory=set)
    due: bool = False  # jobs added for the worker: released signals, a timed exit
    signals: Seen = field(default_factory=dict)  # followed, as this transaction leaves them


def settle_native(work: NativeWork, deps: Deps) -> None:
    """After the commit: cancel the resting exits plans no longer want, then send the new ones.
    A replacement is stored once its predecessor's cancel is recorded (by the report below)."""
    reports = []
    for order in work.cancel:
        with deps.uow(write=False) as uow:
            account = uow.accounts.get(order.account_id)
        try:
            report = deps.brokers.for_account(account).cancel(order.account_id,
                                                              order.client_order_id)
        except BrokerUnavailable:
            log.warning("cancelling resting exit %s failed; the sweep tries again", order.id)
            continue
        if report is not None:
            reports.append((order.client_order_id, report))
    if reports:
        record_reports(reports, deps)
    for order_id in work.send:
        submit_order(order_id, deps)


def _record(uow: UnitOfWork, coid: str, report: BrokerOrder, now: datetime,
            deps: Deps, touched: _Touched) -> Order | None:
    before = uow.orders.by_client_id(coid)
    if before is None:
        return None
    order, events = before, []
    for bf in report.fills:
        fill = Fill(fill_id=bf.fill_id, order_id=order.id, account_id=order.account_id,
                    symbol=order.symbol, side=order.side, qty=bf.qty, price=bf.price,
                    fee=bf.fee, filled_at=bf.filled_at)
        if not uow.fills.add_unique(fill):
            continue  # a redelivered fill
        order = apply_fill(order, fill)
        # Two processes recording fills of one symbol at once must not both read the old
        # position and each write their own sum (a lost update): the row is locked first.
        held = uow.positions.lock(order.account_id, order.symbol, now)
        note_session_start(uow, order.account_id, now, deps.calendar)
        position = position_after(held, fill)
        uow.positions.save(position, now)
        events.append(order_event(order, "OrderFilled", now, fill_id=fill.fill_id,
                                  qty=str(fill.qty), price=str(fill.price)))
    order = _settle_status(order, report, events, now)
    if order == before and report.broker_order_id == (before.broker_order_id or ""):
        return order
    extra = {"lease_owner": None, "lease_until": None} if order.status is not OrderStatus.SUBMITTING else {}
    order = replace(order, broker_order_id=report.broker_order_id)
    if not uow.orders.save(order, before.status, now, before=before, **extra):
        raise MovedUnderUs(f"order {order.id} moved under us; the report will be applied again")
    uow.audit.add_many(events)
    if order.filled_qty != before.filled_qty:
        touched.positions.add((order.account_id, order.symbol))
    if order.signal_id is not None:
        arming = on_order_filled(uow, order.signal_id, before, order, now,
                                 _native_legs(uow, order, deps))
        if arming is not None:
            touched.armings.append(arming)
            touched.plans.add(order.signal_id)
        if order.exit_leg is not None:
            on_resting_exit(uow, before, order, now)
            touched.plans.add(order.signal_id)
    touched.due |= _follow_signal(uow, before, order, now, deps, touched.signals)
    return order


def _native_legs(uow: UnitOfWork, order: Order, deps: Deps) -> frozenset[ExitLeg]:
    """What the order's broker can rest, for a plan its fill arms."""
    if order.purpose is not OrderPurpose.ENTRY or order.status is not OrderStatus.FILLED:
        return frozenset()
    return native_legs(deps.brokers.for_account(uow.accounts.get(order.account_id)).capabilities)


def _settle_status(order: Order, report: BrokerOrder, events: list[AuditEvent],
                   now: datetime) -> Order:
    target = report.status
    if target in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED) or target == order.status:
        if order.status is OrderStatus.SUBMITTING:
            order = order.moved_to(OrderStatus.ACCEPTED)
            events.append(order_event(order, "OrderAccepted", now, from_status="submitting"))
        return order
    if order.status is OrderStatus.FILLED:
        return order
    previous = order.status
    order = order.moved_to(target, reason=report.reason)
    events.append(order_event(order, f"Order{target.title().replace('_', '')}", now,
                              from_status=str(previous), reason=report.reason))
    return order



def _follow_signal(uow: UnitOfWork, before: Order, order: Order, now: datetime,
                   deps: Deps, seen: Seen) -> bool:
    """Carry the order's news to its signal: executed, rejected, or a timed exit to arm; the
    signal as it leaves it goes in `seen`. True when it gave the worker a job (a released
    signal, a timed exit)."""
    if order.signal_id is None or order.client_order_id != make_client_order_id(
            order.signal_id, "entry"):
        return False
    signal = uow.signals.get(order.signal_id)
    if signal is None:
        return False
    if signal.status is SignalStatus.QUEUED:
        if order.status in ACKNOWLEDGED:
            target, free = SignalStatus.EXECUTED, False
        elif order.status in (OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.EXPIRED):
            target, free = SignalStatus.REJECTED, True
        else:
            target = None
        if target is SignalStatus.EXECUTED:
            uow.timings.mark(signal.id, acked_at=now)
        if target is None:
            seen[signal.id] = signal
        elif uow.signals.move(signal, target, now, reason=order.reason, free_source_id=free):
            uow.audit.add(signal_event(signal, f"Signal{target.title()}", now,
                                       from_status="queued", to_status=str(target),
                                       order_id=order.id))
            # What the move wrote (the freed sourceId is a column of the row, not the signal's).
            reason = order.reason if order.reason is not None else signal.status_reason
            seen[signal.id] = replace(signal, status=target, status_reason=reason)
    else:
        seen[signal.id] = signal
    released = _release_waiting(uow, signal.id, before, order, now)
    arms = (signal.exit_rule is not None and order.purpose is OrderPurpose.ENTRY
            and order.status is OrderStatus.FILLED and before.status is not OrderStatus.FILLED)
    if arms:
        assert signal.exit_rule is not None
        market = uow.accounts.get(order.account_id).market
        due = exit_due_at(signal.exit_rule, now, _closing_session(deps, market, now))
        uow.jobs.add(Job(id=new_id(), kind=JobKind.EXIT, due_at=due, created_at=now,
                         signal_id=signal.id, account_id=signal.account_id,
                         payload={"order_id": order.id}))
        uow.audit.add(signal_event(signal, "ExitArmed", now, due_at=due.isoformat(),
                                   trigger=str(signal.exit_rule.trigger)))
    return released or arms


def _release_waiting(uow: UnitOfWork, signal_id: str, before: Order, order: Order,
                     now: datetime) -> bool:
    """Signals waiting for this one's fill go to the scheduler; if it never fills, they end.
    True when one was released (a job due now)."""
    filled = order.status is OrderStatus.FILLED and before.status is not OrderStatus.FILLED
    dead = order.status in (OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.EXPIRED)
    if not (filled or dead):
        return False
    released = False
    for waiting in uow.signals.waiting_after(signal_id):
        if filled:
            if uow.signals.move(waiting, SignalStatus.SCHEDULED, now):
                released = True
                uow.jobs.add(Job(id=new_id(), kind=JobKind.PROCESS_SIGNAL, due_at=now,
                                 created_at=now, signal_id=waiting.id,
                                 account_id=waiting.account_id, valid_until=waiting.valid_until))
                uow.audit.add(signal_event(waiting, "SignalReleased", now, from_status="waiting",
                                           to_status="scheduled", after=signal_id))
        elif uow.signals.move(waiting, SignalStatus.CANCELLED, now,
                              reason=f"the order it waited for ended {order.status}"):
            uow.audit.add(signal_event(waiting, "SignalCancelled", now, from_status="waiting",
                                       to_status="cancelled", after=signal_id))
    return released


def _closing_session(deps: Deps, market: str, at: datetime) -> Session:
    """The next session to close after `at`: today's, or the next one after today's close."""
    session = deps.calendar.session_at_or_after(market, at)
    if at >= session.close_at:
        session = deps.calendar.session_at_or_after(market, session.post_close_at
                                                    or session.close_at + timedelta(seconds=1))
    return session


def submit_claimable(deps: Deps, limit: int = 50) -> int:
    """The sweep: send every stored order no live submitter holds. Returns how many it tried.
    The orders are reserved for this worker first, so sweeps of other workers skip them."""
    now = deps.clock.now()
    with deps.uow(write=False) as uow:
        if not uow.orders.any_claimable(now):
            return 0
    with deps.uow() as uow:
        ids = uow.orders.reserve(deps.worker_id, now, now + deps.lease, limit)
        uow.commit()
    for order_id in ids:
        with logcontext.scope(order_id=order_id):
            submit_order(order_id, deps)
    return len(ids)


def reconcile_open_orders(deps: Deps, limit: int = 200, *,
                          account_ids: Sequence[str] | None = None,
                          skip_accounts: Collection[str] = ()) -> int:
    """Ask the broker about every order it holds open (of `account_ids`, when given, and not
    of `skip_accounts`, whose broker streams their updates) and record any news."""
    with deps.uow(write=False) as uow:
        open_orders = [o for status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
                       for o in uow.orders.list(account_ids, Page(limit=limit), status=str(status))
                       if o.account_id not in skip_accounts]
        accounts = {o.account_id: uow.accounts.get(o.account_id) for o in open_orders}
    reports = []
    for order in open_orders:
        try:
            found = deps.brokers.for_account(accounts[order.account_id]).lookup(
                order.account_id, order.client_order_id)
        except BrokerUnavailable:
            continue
        if found is not None and (found.status != order.status or found.filled_qty != order.filled_qty):
            reports.append((order.client_order_id, found))
    if reports:
        record_reports(reports, deps)
    return len(reports)


def apply_clock(deps: Deps) -> int:
    """Let price-driven brokers act on the time: session closes, auctions, expiries."""
    now = deps.clock.now()
    reports = [r for broker in deps.brokers.price_driven() for r in broker.on_clock(now)]
    if reports:
        record_reports(reports, deps)
    return len(reports)
