"""Pages that set tradewire up: strategies and backtests, credentials, channels, kill switch."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tradewire.domain.channels import AllocationType
from tradewire.entrypoints.web.core import Ui, action, page
from tradewire.entrypoints.web.forms import BadForm, Form
from tradewire.entrypoints.web.pages_trading import arg
from tradewire.services import dashboard
from tradewire.services import dashboard_setup as setup

router = APIRouter(include_in_schema=False)
TIMEFRAMES = ("", "1m", "5m", "15m", "30m", "1h", "4h", "1d")
TRADINGVIEW_MESSAGE = json.dumps({
    "ticker": "{{ticker}}", "action": "{{strategy.order.action}}",
    "sentiment": "{{strategy.market_position}}", "quantity": "{{strategy.order.contracts}}",
    "price": "{{close}}", "time": "{{timenow}}",
    "extras": {"orderId": "{{strategy.order.id}}", "barTime": "{{time}}"}}, indent=2)


# ---- strategies ------------------------------------------------------------------------------


@router.get("/ui/strategies")
async def strategies(request: Request) -> Response:
    return await page(request, lambda ui: ui.html(
        "strategies.html", title="Strategies",
        rows=setup.strategies(ui.me.principal, ui.deps)))


def _strategy(ui: Ui, strategy_id: str, **extra: Any) -> Response:
    row = setup.strategy(strategy_id, ui.me.principal, ui.deps)
    return ui.html("strategy.html", title=f"Strategy {row['name']}", row=row,
                   evaluated=extra.get("evaluated"))


@router.get("/ui/strategies/{strategy_id}")
async def strategy(request: Request, strategy_id: str) -> Response:
    return await page(request, lambda ui: _strategy(ui, strategy_id))


def _switch_strategy(ui: Ui, strategy_id: str, enabled: bool) -> Response:
    row = setup.set_enabled(strategy_id, enabled, ui.me.principal, ui.deps)
    word = "enabled: the worker evaluates it on every new bar" if enabled else "disabled"
    return ui.redirect(f"/ui/strategies/{strategy_id}", f"Strategy {row['name']} {word}.")


@router.post("/ui/strategies/{strategy_id}/enable")
async def enable(request: Request, strategy_id: str) -> Response:
    return await action(request, lambda ui, form: _switch_strategy(ui, strategy_id, True),
                        confirm="Enable this strategy? When it is linked to an account, its "
                                "decisions are sent to the broker as signals.")


@router.post("/ui/strategies/{strategy_id}/disable")
async def disable(request: Request, strategy_id: str) -> Response:
    return await action(request, lambda ui, form: _switch_strategy(ui, strategy_id, False))


@router.post("/ui/strategies/{strategy_id}/evaluate")
async def evaluate(request: Request, strategy_id: str) -> Response:
    return await action(request, lambda ui, form: _strategy(
        ui, strategy_id, evaluated=setup.evaluate_now(strategy_id, ui.me.principal, ui.deps)))


# ---- backtests -------------------------------------------------------------------------------


def _backtest(ui: Ui, choice: str, definition: Any, options: dict[str, Any]) -> Response:
    stored = setup.strategies(ui.me.principal, ui.deps)
    chart = None
    if definition is not None:
        chart = setup.backtest_chart(definition, ui.deps, **options)
    return ui.html("backtests.html", title="Backtests", stored=stored, chart=chart,
                   choice=choice, options=options, timeframes=TIMEFRAMES,
                   sample=json.dumps(setup.SAMPLE_STRATEGY, indent=2),
                   custom=json.dumps(definition, indent=2) if choice == "custom" else "")


def _costs(get: Any) -> dict[str, Any]:
    form = Form({k: [get(k)] for k in ("timeframe", "fee_bps", "slippage_bps", "cash")})
    return {"timeframe": form.choice("timeframe", "Timeframe", TIMEFRAMES) or None,
            "fee_bps": form.number("fee_bps", "Fees (bps)", 0.0, low=0, high=1000),
            "slippage_bps": form.number("slippage_bps", "Slippage (bps)", 0.0, low=0, high=1000),
            "cash": form.number("cash", "Starting cash", 10_000.0, low=1, high=1e12)}


def _run_stored(ui: Ui) -> Response:
    choice = arg(ui, "strategy", max_len=64)
    options = _costs(lambda k: arg(ui, k))
    if not choice:
        return _backtest(ui, "", None, options)
    if choice == "sample":
        return _backtest(ui, choice, setup.SAMPLE_STRATEGY, options)
    row = setup.strategy(choice, ui.me.principal, ui.deps)
    return _backtest(ui, choice, row["definition"], options)


@router.get("/ui/backtests")
async def backtests(request: Request) -> Response:
    return await page(request, _run_stored)


def _run_custom(ui: Ui, form: Form) -> Response:
    text = form.text("definition", "The strategy (JSON)", max_len=60_000)
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadForm(f"The strategy is not valid JSON: {exc.msg} at line {exc.lineno}, "
                      f"column {exc.colno}") from None
    return _backtest(ui, "custom", definition, _costs(form.get))


@router.post("/ui/backtests")
async def backtest_custom(request: Request) -> Response:
    return await action(request, _run_custom)


# ---- credentials -----------------------------------------------------------------------------


def _credentials(ui: Ui, **shown: Any) -> Response:
    base = str(ui.request.base_url).rstrip("/")
    me = ui.me.principal
    return ui.html("credentials.html", title="Credentials", base=base,
                   keys=setup.api_keys(me, ui.web.views),
                   tokens=setup.access_tokens(me, ui.deps, ui.web.views),
                   accounts=dashboard.visible_accounts(me, ui.deps),
                   scopes=[str(s) for s in setup.KEY_SCOPES], message=TRADINGVIEW_MESSAGE,
                   new_key=shown.get("new_key"), new_token=shown.get("new_token"))


@router.get("/ui/credentials")
async def credentials(request: Request) -> Response:
    return await page(request, _credentials)


def _create_key(ui: Ui, form: Form) -> Response:
    key, plaintext = setup.create_api_key(ui.me.principal, form.all("scopes"),
                                          form.get("account") or None, ui.deps,
                                          ui.web.container.secrets)
    return _credentials(ui, new_key={"key": key, "secret": plaintext})


@router.post("/ui/credentials/keys")
async def create_key(request: Request) -> Response:
    return await action(request, _create_key)


def _revoke_key(ui: Ui, key_id: str) -> Response:
    setup.revoke_api_key(key_id, ui.me.principal, ui.deps, ui.web.views)
    return ui.redirect("/ui/credentials", "The API key was revoked; it no longer works.")


@router.post("/ui/credentials/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str) -> Response:
    return await action(request, lambda ui, form: _revoke_key(ui, key_id),
                        confirm="Revoke this API key? Whatever uses it stops working at once.")


def _create_token(ui: Ui, form: Form) -> Response:
    account = form.text("account", "The account", max_len=64)
    token, plaintext = setup.create_access_token(ui.me.principal, account, ui.deps,
                                                 ui.web.container.secrets)
    return _credentials(ui, new_token={"token": token, "secret": plaintext})


@router.post("/ui/credentials/tokens")
async def create_token(request: Request) -> Response:
    return await action(request, _create_token)


def _revoke_token(ui: Ui, token_id: str) -> Response:
    setup.revoke_access_token(token_id, ui.me.principal, ui.deps, ui.web.views)
    return ui.redirect("/ui/credentials", "The access token was revoked; its webhook URL no "
                                          "longer works.")


@router.post("/ui/credentials/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: str) -> Response:
    return await action(request, lambda ui, form: _revoke_token(ui, token_id),
                        confirm="Revoke this access token? Alerts sent to its webhook URL are "
                                "refused from now on.")


# ---- partner channels ------------------------------------------------------------------------


def _channels(ui: Ui, **shown: Any) -> Response:
    data = setup.channels_page(ui.me.principal, ui.deps, ui.web.views)
    names = {c.id: c.name for c in data.channels}
    accounts = {a.id: a.name for a in data.accounts}
    return ui.html("channels.html", title="Channels", data=data, channel_names=names,
                   account_names=accounts, partner_names={p.id: p.name for p in data.partners},
                   allocation_types=[str(t) for t in AllocationType],
                   base=str(ui.request.base_url).rstrip("/"), **shown)


@router.get("/ui/channels")
async def channels(request: Request) -> Response:
    return await page(request, _channels)


def _create_partner(ui: Ui, form: Form) -> Response:
    partner, token = setup.create_partner(form.text("name", "The partner's name", max_len=100),
                                          ui.me.principal, ui.deps, ui.web.container.secrets)
    return _channels(ui, new_partner={"partner": partner, "secret": token})


@router.post("/ui/channels/partners")
async def create_partner(request: Request) -> Response:
    return await action(request, _create_partner)


def _create_channel(ui: Ui, form: Form) -> Response:
    channel, secret = setup.create_channel(form.text("partner", "The partner", max_len=64),
                                           form.text("name", "The channel's name", max_len=100),
                                           ui.me.principal, ui.deps, ui.web.container.secrets)
    return _channels(ui, new_channel={"channel": channel, "secret": secret})


@router.post("/ui/channels/create")
async def create_channel(request: Request) -> Response:
    return await action(request, _create_channel)


def _subscribe(ui: Ui, form: Form) -> Response:
    kind = form.choice("allocation_type", "The allocation type", [str(t) for t in AllocationType])
    sub = setup.subscribe(form.text("channel", "The channel", max_len=64),
                          form.text("account", "The account", max_len=64),
                          form.decimal("allocation", "The allocation"), AllocationType(kind),
                          ui.me.principal, ui.deps, auto_execute=form.get("auto_execute") == "yes")
    return ui.redirect("/ui/channels", f"The account now follows the channel (allocation "
                                       f"{sub.allocation.normalize():f} {sub.allocation_type}).")


@router.post("/ui/channels/subscribe")
async def subscribe(request: Request) -> Response:
    return await action(request, _subscribe,
                        confirm="Follow this channel? With auto-execute on, its signals trade "
                                "this account without asking.")


# ---- kill switches ---------------------------------------------------------------------------


@router.get("/ui/kill-switch")
async def kill(request: Request) -> Response:
    def render(ui: Ui) -> Response:
        halted, rows = setup.switches(ui.me.principal, ui.deps)
        return ui.html("kill_switch.html", title="Kill switch", global_halt=halted, rows=rows)

    return await page(request, render)


def _halt_all(ui: Ui, form: Form) -> Response:
    halted = form.choice("trading", "The new state", ["halted", "running"]) == "halted"
    setup.halt_all(halted, ui.me.principal, ui.deps)
    return ui.redirect("/ui/kill-switch", "Trading is halted on every account: new entries are "
                       "refused, exits still go." if halted else
                       "Trading resumed: new entries are taken again.")


@router.post("/ui/kill-switch")
async def halt_all(request: Request) -> Response:
    return await action(request, _halt_all,
                        confirm="Change whether every account may open new positions?")


def _switch_account(ui: Ui, form: Form) -> Response:
    switch = form.choice("switch", "The switch", setup.ACCOUNT_SWITCHES)
    on = form.choice("state", "The new state", ["on", "off"]) == "on"
    setup.switch_account(form.text("account", "The account", max_len=64), switch, on,
                         ui.me.principal, ui.deps)
    name = "Halted" if switch == "halted" else "Reduce-only"
    return ui.redirect("/ui/kill-switch", f"{name} is now {'on' if on else 'off'} for the account.")


@router.post("/ui/kill-switch/account")
async def switch_account(request: Request) -> Response:
    return await action(request, _switch_account,
                        confirm="Change what this account may trade?")
