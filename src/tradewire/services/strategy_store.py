"""Use cases for stored strategies: create, change, list, delete (definitions are checked)."""

from __future__ import annotations

from typing import Any

from tradewire.domain.accounts import Principal
from tradewire.domain.errors import NotFound
from tradewire.domain.values import new_id
from tradewire.services.deps import Deps
from tradewire.services.evaluation import DEFAULT_CASH, require
from tradewire.services.ports import Page
from tradewire.strategies.evaluator import parse_strategy
from tradewire.strategies.execution import ExecutionState


def create(body: dict[str, Any], principal: Principal, deps: Deps) -> dict[str, Any]:
    strategy = parse_strategy(body)
    state = body.get("execution_state")
    state = (ExecutionState.from_dict(state) if state else ExecutionState.starting(DEFAULT_CASH))
    now = deps.clock.now()
    row = {"id": new_id(), "user_id": principal.user_id,
           "account_id": _account(body.get("account_id"), principal, deps), "name": strategy.name,
           "asset": strategy.asset, "definition": strategy.to_dict(),
           "execution_state": state.to_dict(), "enabled": bool(body.get("enabled", False)),
           "last_bar_ts": None, "created_at": now, "updated_at": now}
    with deps.uow() as uow:
        uow.strategies.add(row)
        uow.commit()
    return row


def change(strategy_id: str, body: dict[str, Any], principal: Principal,
           deps: Deps) -> dict[str, Any]:
    row = require(strategy_id, principal, deps)
    merged = {**row["definition"], **{k: v for k, v in body.items()
                                      if k in ("name", "asset", "rules", "execution_config")}}
    strategy = parse_strategy(merged)
    values: dict[str, Any] = {"definition": strategy.to_dict(), "name": strategy.name,
                              "asset": strategy.asset}
    if "enabled" in body:
        values["enabled"] = bool(body["enabled"])
    if "execution_state" in body:
        values["execution_state"] = ExecutionState.from_dict(body["execution_state"]).to_dict()
    if "account_id" in body:
        values["account_id"] = _account(body["account_id"], principal, deps)
    with deps.uow() as uow:
        uow.strategies.update(strategy_id, deps.clock.now(), **values)
        uow.commit()
    return {**row, **values}


def remove(strategy_id: str, principal: Principal, deps: Deps) -> None:
    require(strategy_id, principal, deps)
    with deps.uow() as uow:
        uow.strategies.delete(strategy_id)
        uow.commit()


def listing(principal: Principal, deps: Deps, page: Page) -> list[dict[str, Any]]:
    with deps.uow(write=False) as uow:
        return list(uow.strategies.list(None if principal.is_admin else principal.user_id, page))


def _account(account_id: Any, principal: Principal, deps: Deps) -> str | None:
    if account_id is None:
        return None
    with deps.uow(write=False) as uow:
        account = uow.accounts.get(str(account_id))
    if account is None or not principal.can_see(account):
        raise NotFound(f"account {account_id} not found", code="ACCOUNT_NOT_FOUND")
    return account.id
