"""From a signal to the order it asks for: side, quantity, prices, and the refusals."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from tradewire.domain.errors import Rejected
from tradewire.domain.orders import Order, client_order_id
from tradewire.domain.positions import Position
from tradewire.domain.signals import ExitRule, ExitTrigger, Leg, LinkKind, Signal
from tradewire.domain.sizing import order_quantity
from tradewire.domain.values import ZERO, Action, OrderPurpose, OrderType, Side, TimeInForce


def reference_price(signal: Signal, last_price: Decimal | None) -> Decimal | None:
    """The price that sizes the order: its own limit (or stop) when it has one, else the last."""
    return signal.limit_price or signal.stop_price or last_price


def entry_order(
    signal: Signal,
    *,
    order_id: str,
    position: Position,
    last_price: Decimal | None,
    equity: Decimal | None,
    at: datetime,
    working_qty: Decimal = ZERO,
) -> Order:
    """The order a signal asks for, or Rejected with a machine-readable code.

    `working_qty` is the signed remainder of the account's open orders in the symbol: a close
    counts what those orders will already do, so two quick closeLongs never sell twice.
    """
    qty = order_quantity(signal.quantity, signal.quantity_type,
                         price=reference_price(signal, last_price), equity=equity)
    action = signal.action
    projected = position.qty + working_qty
    if action is Action.CLOSE_LONG:
        if projected <= 0:
            raise Rejected(f"no long position in {signal.symbol} to close", code="NO_POSITION")
        qty = min(qty, projected)
    elif action is Action.CLOSE_SHORT:
        if projected >= 0:
            raise Rejected(f"no short position in {signal.symbol} to close", code="NO_POSITION")
        qty = min(qty, -projected)
    elif action is Action.OPEN_LONG and projected < 0:
        raise Rejected(f"a short position in {signal.symbol} is open: close it first",
                       code="OPPOSING_POSITION_OPEN")
    elif action is Action.OPEN_SHORT and projected > 0:
        raise Rejected(f"a long position in {signal.symbol} is open: close it first",
                       code="OPPOSING_POSITION_OPEN")
    return Order(
        id=order_id, account_id=signal.account_id, signal_id=signal.id,
        client_order_id=client_order_id(signal.id, "entry"), symbol=signal.symbol,
        side=action.side, qty=qty, order_type=signal.order_type,
        time_in_force=signal.time_in_force, limit_price=signal.limit_price,
        stop_price=signal.stop_price, extended_hours=signal.extended_hours,
        purpose=OrderPurpose.EXIT if action.is_exit else OrderPurpose.ENTRY, created_at=at,
        expires_at=signal.valid_until if signal.time_in_force is TimeInForce.GTD else None,
    )


def exit_order(
    signal: Signal, rule: ExitRule, *, entry: Order, position: Position, order_id: str,
    at: datetime,
) -> Order | None:
    """The order that undoes an entry's fill, capped by what the position still holds."""
    held = max(position.qty, ZERO) if entry.side is Side.BUY else max(-position.qty, ZERO)
    qty = min(entry.filled_qty, held)
    if qty <= 0:
        return None
    if rule.trigger is ExitTrigger.MARKET_CLOSE:
        tif = rule.time_in_force
    else:
        tif = TimeInForce.GTC if rule.order_type is OrderType.LIMIT else TimeInForce.DAY
    return Order(
        id=order_id, account_id=signal.account_id, signal_id=signal.id,
        client_order_id=client_order_id(signal.id, "exit"), symbol=signal.symbol,
        side=Side.SELL if entry.side is Side.BUY else Side.BUY, qty=qty,
        order_type=rule.order_type, limit_price=rule.limit_price, time_in_force=tif,
        purpose=OrderPurpose.EXIT, created_at=at,
    )


def leg_signal(signal: Signal, leg: Leg) -> Signal:
    """A further leg, seen as a one-order signal (same id, account and validity)."""
    return replace(signal, symbol=leg.symbol, action=leg.action, quantity=leg.quantity,
                   quantity_type=leg.quantity_type, order_type=leg.order_type,
                   limit_price=leg.limit_price, stop_price=leg.stop_price,
                   time_in_force=leg.time_in_force, legs=(), link=None)


def linked(order: Order, signal: Signal, index: int) -> Order:
    """A leg's order: its own client_order_id, and the link it shares with its siblings."""
    if signal.link is None:
        return order
    coid = order.client_order_id if index == 0 else client_order_id(signal.id, f"leg-{index}")
    return replace(order, client_order_id=coid, link_group=signal.id, link_kind=str(signal.link))


def counts_toward_working(signal: Signal) -> bool:
    """One-cancels-other legs close the same quantity once; the others all add up."""
    return signal.link is not LinkKind.OCO
