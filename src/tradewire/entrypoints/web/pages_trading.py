"""Pages where trading is watched and acted on: overview, signals, approvals, orders, positions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tradewire.domain.orders import OPEN_STATUSES, OrderStatus
from tradewire.domain.signals import SignalStatus
from tradewire.domain.values import short_id
from tradewire.entrypoints.api import views as api_views
from tradewire.entrypoints.web.core import Ui, action, fragment, page
from tradewire.entrypoints.web.forms import BadForm, Form
from tradewire.services import dashboard, queries
from tradewire.services.ports import Page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


def arg(ui: Ui, name: str, *, max_len: int = 100) -> str:
    value = ui.request.query_params.get(name, "").strip()
    if len(value) > max_len or "\x00" in value:
        raise BadForm(f"The {name} filter is too long")
    return value


def _choice(ui: Ui, name: str, options: list[str]) -> str:
    value = arg(ui, name)
    if value and value not in options:
        raise BadForm(f"Unknown {name} {value!r}; choose one of: {', '.join(options)}")
    return value


def _offset(ui: Ui) -> int:
    raw = arg(ui, "offset")
    if raw and not (raw.isdigit() and int(raw) <= 1_000_000):
        raise BadForm("offset must be a whole number")
    return int(raw) if raw else 0


# ---- overview --------------------------------------------------------------------------------


def overview_ctx(ui: Ui) -> dict[str, Any]:
    ov = dashboard.overview(ui.me.principal, ui.deps, ui.web.views)
    equity = [a.equity for a in ov.accounts if a.equity is not None]
    realized = [a.realized_today for a in ov.accounts]
    return {"ov": ov, "total_equity": sum(equity) if equity else None,
            "realized_today": None if None in realized else sum(r or 0 for r in realized),
            "unrealized": sum(a.unrealized for a in ov.accounts)}


@router.get("/ui")
async def overview(request: Request) -> Response:
    return await page(request, lambda ui: ui.html("overview.html", title="Overview",
                                                  **overview_ctx(ui)))


# ---- signals ---------------------------------------------------------------------------------


def signals_ctx(ui: Ui) -> dict[str, Any]:
    status = _choice(ui, "status", [str(s) for s in SignalStatus])
    account = arg(ui, "account")
    symbol, text, offset = arg(ui, "symbol"), arg(ui, "q"), _offset(ui)
    rows = dashboard.find_signals(ui.me.principal, ui.deps, ui.web.views,
                                  Page(PAGE_SIZE, offset), account_id=account or None,
                                  status=SignalStatus(status) if status else None,
                                  symbol=symbol or None, text=text or None)
    return {"rows": rows, "status": status, "symbol": symbol, "q": text, "account": account,
            "offset": offset, "page_size": PAGE_SIZE, "statuses": [str(s) for s in SignalStatus],
            "accounts": dashboard.visible_accounts(ui.me.principal, ui.deps),
            "query": ui.request.url.query}


@router.get("/ui/signals")
async def signals(request: Request) -> Response:
    return await page(request, lambda ui: ui.html("signals.html", title="Signals",
                                                  **signals_ctx(ui)))


def timeline_ctx(ui: Ui, signal_id: str) -> dict[str, Any]:
    tl = dashboard.timeline(signal_id, ui.me.principal, ui.deps)
    pending = []
    if tl.detail.signal.status is SignalStatus.PENDING:
        pending = dashboard.approval_queue(ui.me.principal, ui.deps, ui.web.views)
        pending = [p for p in pending if p.signal.id == signal_id]
    return {"tl": tl, "raw": api_views.signal(tl.detail.signal), "signal": tl.detail.signal,
            "pending": pending[0] if pending else None, "now": ui.deps.clock.now()}


@router.get("/ui/signals/{signal_id}")
async def signal(request: Request, signal_id: str) -> Response:
    return await page(request, lambda ui: ui.html(
        "signal.html", title=f"Signal {short_id(signal_id)}", **timeline_ctx(ui, signal_id)))


# ---- approvals -------------------------------------------------------------------------------


def approvals_ctx(ui: Ui) -> dict[str, Any]:
    return {"rows": dashboard.approval_queue(ui.me.principal, ui.deps, ui.web.views),
            "now": ui.deps.clock.now(), "window": dashboard.APPROVAL_WINDOW,
            "max_move": dashboard.APPROVAL_PRICE_MOVE}


@router.get("/ui/approvals")
async def approvals(request: Request) -> Response:
    return await page(request, lambda ui: ui.html("approvals.html", title="Approvals",
                                                  **approvals_ctx(ui)))


def _approve(ui: Ui, form: Form, signal_id: str) -> Response:
    seen = form.get("seen_price")
    signal, order = dashboard.approve(
        signal_id, ui.me.principal, ui.deps,
        seen_price=form.decimal("seen_price", "The price shown") if seen else None,
        seen_at=form.moment("seen_at", "The time the signal was shown"),
        signals_on=ui.web.signals_on())
    if signal.status is SignalStatus.REJECTED:
        return ui.error(409, f"The signal was refused: {signal.status_reason}",
                        back=f"/ui/signals/{signal_id}")
    done = f", order {order.status}" if order is not None else ""
    return ui.redirect(f"/ui/signals/{signal_id}",
                       f"Approved {signal.action} {signal.quantity.normalize():f} "
                       f"{signal.symbol}{done}.")


@router.post("/ui/signals/{signal_id}/approve")
async def approve(request: Request, signal_id: str) -> Response:
    return await action(request, lambda ui, form: _approve(ui, form, signal_id),
                        confirm="Approve this signal? Its order goes to the broker at once.")


def _reject(ui: Ui, signal_id: str) -> Response:
    s = dashboard.reject(signal_id, ui.me.principal, ui.deps, by=ui.me.username)
    return ui.redirect("/ui/approvals", f"Rejected {s.action} {s.symbol}; it will not be sent.")


@router.post("/ui/signals/{signal_id}/reject")
async def reject(request: Request, signal_id: str) -> Response:
    return await action(request, lambda ui, form: _reject(ui, signal_id),
                        confirm="Reject this signal? It will never be sent.")


# ---- orders and positions --------------------------------------------------------------------


def orders_ctx(ui: Ui) -> dict[str, Any]:
    status = _choice(ui, "status", [str(s) for s in OrderStatus])
    symbol, account, offset = arg(ui, "symbol"), arg(ui, "account"), _offset(ui)
    rows = queries.list_orders(ui.me.principal, ui.deps, Page(PAGE_SIZE, offset),
                               account_id=account or None, status=status or None,
                               symbol=symbol.upper() or None)
    return {"rows": rows, "status": status, "symbol": symbol, "account": account,
            "offset": offset, "page_size": PAGE_SIZE, "statuses": [str(s) for s in OrderStatus],
            "open_statuses": {str(s) for s in OPEN_STATUSES} - {"submitting"},
            "accounts": dashboard.visible_accounts(ui.me.principal, ui.deps),
            "query": ui.request.url.query}


@router.get("/ui/orders")
async def orders(request: Request) -> Response:
    return await page(request, lambda ui: ui.html("orders.html", title="Orders",
                                                  **orders_ctx(ui)))


def _cancel(ui: Ui, order_id: str) -> Response:
    order = dashboard.cancel_order(order_id, ui.me.principal, ui.deps)
    return ui.redirect("/ui/orders", f"Order {order.symbol} {order.side} "
                                     f"{order.qty.normalize():f}: {order.status}.")


@router.post("/ui/orders/{order_id}/cancel")
async def cancel(request: Request, order_id: str) -> Response:
    return await action(request, lambda ui, form: _cancel(ui, order_id),
                        confirm="Cancel this order?")


def positions_ctx(ui: Ui) -> dict[str, Any]:
    return {"positions": dashboard.open_positions(ui.me.principal, ui.deps, ui.web.views)}


@router.get("/ui/positions")
async def positions(request: Request) -> Response:
    return await page(request, lambda ui: ui.html("positions.html", title="Positions",
                                                  **positions_ctx(ui)))


def _close(ui: Ui, form: Form) -> Response:
    account_id = form.text("account_id", "The account", max_len=64)
    symbol = form.text("symbol", "The symbol", max_len=20).upper()
    result = dashboard.close_position(account_id, symbol, ui.me.principal, ui.deps)
    s = result.signal
    if str(s.status) == "rejected":
        return ui.error(409, f"The close was refused: {s.status_reason}", back="/ui/positions")
    order = f", order {result.order.status}" if result.order is not None else ""
    return ui.redirect("/ui/positions", f"Closing {s.quantity.normalize():f} {symbol}: "
                                        f"signal {s.status}{order}.")


@router.post("/ui/positions/close")
async def close(request: Request) -> Response:
    return await action(request, _close,
                        confirm="Close this position at market? A market order goes out at once.")


# ---- pieces of pages, refreshed by the live updates ------------------------------------------

PANELS: dict[str, tuple[str, Callable[[Ui], dict[str, Any]]]] = {
    "overview": ("panels/overview.html", overview_ctx),
    "signals": ("panels/signals.html", signals_ctx),
    "approvals": ("panels/approvals.html", approvals_ctx),
    "orders": ("panels/orders.html", orders_ctx),
    "positions": ("panels/positions.html", positions_ctx),
    "timeline": ("panels/timeline.html", lambda ui: timeline_ctx(ui, arg(ui, "id", max_len=64))),
}


@router.get("/ui/panels/{name}")
async def panel(request: Request, name: str) -> Response:
    def render(ui: Ui) -> Response:
        if name not in PANELS:
            return ui.error(404, f"There is no panel {name!r}")
        template, ctx = PANELS[name]
        return ui.html(template, **ctx(ui))

    return await fragment(request, render)
