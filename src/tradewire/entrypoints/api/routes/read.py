"""Orders, positions and accounts, as the caller may see them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tradewire.domain.accounts import Scope
from tradewire.domain.orders import OrderStatus
from tradewire.entrypoints.api import views
from tradewire.entrypoints.api.deps import authenticate, container
from tradewire.entrypoints.api.errors import JSON
from tradewire.entrypoints.api.views import PageQuery
from tradewire.services import queries
from tradewire.services import reconciliation as reconciling

router = APIRouter(prefix="/api/v1", tags=["orders, positions, accounts"])


@router.get("/orders", summary="List orders")
def list_orders(request: Request, page: PageQuery, status: OrderStatus | None = None,
                symbol: str | None = None, accountId: str | None = None) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_READ)
    rows = queries.list_orders(principal, c.deps, page, account_id=accountId,
                               status=str(status) if status else None,
                               symbol=symbol.upper() if symbol else None)
    return JSON(views.paginated("orders", [views.order(o) for o in rows], page), 200)


@router.get("/positions", summary="List open positions")
def list_positions(request: Request, page: PageQuery,
                   accountId: str | None = None) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.ACCOUNTS_READ)
    rows = queries.list_positions(principal, c.deps, page, account_id=accountId)
    return JSON(views.paginated("positions", [views.position(p) for p in rows], page), 200)


@router.get("/accounts", summary="List accounts")
def list_accounts(request: Request, page: PageQuery) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.ACCOUNTS_READ)
    rows = queries.list_accounts(principal, c.deps, page)
    return JSON(views.paginated("accounts", [views.account(a) for a in rows], page), 200)


@router.get("/accounts/{accountId}/reconciliation",
            summary="Differences between the broker and tradewire, as last recorded")
def reconciliation(request: Request, accountId: str) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.ACCOUNTS_READ)
    account = queries.visible_account(principal, c.deps, accountId)
    return JSON({"accountId": account.id,
                 "differences": reconciling.standing(account.id, c.deps)}, 200)


@router.post("/accounts/{accountId}/reconcile",
             summary="Compare the broker's open orders and positions with tradewire's now")
def reconcile_now(request: Request, accountId: str) -> Response:
    c = container(request)
    principal = authenticate(c, request.headers, Scope.SIGNALS_WRITE)
    account = queries.visible_account(principal, c.deps, accountId)
    outcome = reconciling.reconcile_account(account, c.deps)
    return JSON({"accountId": account.id, "updated": outcome.updated, "error": outcome.error,
                 "differences": [d.to_dict() for d in outcome.differences]}, 200)
