"""Use cases of the dashboard's setup pages: strategies and their backtests drawn as charts,
credentials (API keys, access tokens), partner channels and their subscribers, kill switches."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from tradewire.domain.accounts import Account, ApiKey, Principal, Scope
from tradewire.domain.capabilities import AccessToken, Partner
from tradewire.domain.channels import AllocationType, Channel, Subscription
from tradewire.domain.errors import NotFound, Rejected
from tradewire.domain.risk import RiskLimits
from tradewire.services import (
    accounts,
    backtests,
    capabilities,
    channels,
    evaluation,
    queries,
    risk,
    strategy_store,
)
from tradewire.services.dashboard import ALL, DashboardViews, visible_accounts
from tradewire.services.deps import Deps
from tradewire.services.ports import Secrets
from tradewire.strategies import rules as ta
from tradewire.strategies.bars import Bars
from tradewire.strategies.evaluator import parse_strategy

CHART_BARS = 3_000  # the chart shows the last this many bars of the backtest
KEY_SCOPES = (Scope.SIGNALS_WRITE, Scope.SIGNALS_READ, Scope.ACCOUNTS_READ, Scope.MARKET_WRITE)
SAMPLE_STRATEGY: dict[str, Any] = {
    "name": "goog_ema_cross", "asset": "GOOG",
    "rules": {"entry": [{"name": "ema_cross_up", "signal_type": "TRIGGER", "timeframe": "1d",
                         "params": {"window_fast": 10, "window_slow": 30}}],
              "exit": [{"name": "ema_cross_down", "signal_type": "TRIGGER", "timeframe": "1d",
                        "params": {"window_fast": 10, "window_slow": 30}}]},
    "execution_config": {"stop_loss_calculation": "fixed_percent", "stop_loss_percent": 0.05,
                         "reward_factor": 3, "max_risk_per_trade": 0.02, "max_hold_bars": None},
}


# ---- strategies ------------------------------------------------------------------------------


def strategies(principal: Principal, deps: Deps) -> list[dict[str, Any]]:
    return strategy_store.listing(principal, deps, ALL)


def strategy(strategy_id: str, principal: Principal, deps: Deps) -> dict[str, Any]:
    return evaluation.require(strategy_id, principal, deps)


def set_enabled(strategy_id: str, enabled: bool, principal: Principal, deps: Deps) -> dict[str, Any]:
    return strategy_store.change(strategy_id, {"enabled": enabled}, principal, deps)


def evaluate_now(strategy_id: str, principal: Principal, deps: Deps) -> evaluation.Evaluated:
    """A dry run on the latest bars: what the strategy would decide now (nothing is stored)."""
    evaluation.require(strategy_id, principal, deps)
    results, _ = evaluation.evaluate_stored([strategy_id], principal, deps, persist=False)
    return results[0]


@dataclass(frozen=True)
class Chart:
    """A backtest as the chart draws it: times are epoch seconds (UTC)."""

    name: str
    asset: str
    timeframe: str
    stats: dict[str, Any]
    candles: list[dict[str, float]]
    equity: list[dict[str, float]]
    markers: list[dict[str, Any]]
    indicators: list[dict[str, Any]]  # {label, pane: "price" | "lower", points}
    trades: list[dict[str, Any]]
    shown_from: int  # the first bar drawn (the backtest ran on every stored bar)
    bars: int


def backtest_chart(raw: Any, deps: Deps, *, timeframe: str | None = None, fee_bps: float = 0.0,
                   slippage_bps: float = 0.0, cash: float = 10_000.0) -> Chart:
    strategy = parse_strategy(raw)
    tf = timeframe or strategy.base_timeframe
    stored = []
    for symbol in evaluation.spellings(strategy.asset):
        stored = deps.bars.bars(symbol, tf, backtests.MAX_BARS)
        if stored:
            break
    if not stored:
        raise Rejected(f"There are no {tf} bars for {strategy.asset}; import some first",
                       code="NO_MARKET_DATA")
    strategy, result = backtests.run(raw, deps, bars=stored, timeframe=tf, fee_bps=fee_bps,
                                     slippage_bps=slippage_bps, cash=cash)
    bars = Bars.of(stored)
    start = max(len(bars) - CHART_BARS, 0)
    ts = [int(x) for x in bars.ts[start:]]
    candles = [{"time": t, "open": float(o), "high": float(h), "low": float(lo), "close": float(c)}
               for t, o, h, lo, c in zip(ts, bars.open[start:], bars.high[start:],
                                         bars.low[start:], bars.close[start:], strict=True)]
    equity = _points(ts, result.equity_curve[start:])
    trades = [t for t in backtests.summary(result)["trades"] if t["exit_ts"] >= (ts[0] if ts else 0)]
    markers = []
    for t in trades:
        if t["entry_ts"] >= ts[0]:
            markers.append({"time": t["entry_ts"], "position": "belowBar", "shape": "arrowUp",
                            "color": "#15803d", "text": "Buy"})
        markers.append({"time": t["exit_ts"], "position": "aboveBar", "shape": "arrowDown",
                        "color": "#b91c1c", "text": "Sell"})
    markers.sort(key=lambda m: m["time"])
    lines = _indicators([*strategy.entry, *strategy.exit], tf, bars, start, ts)
    return Chart(strategy.name, strategy.asset, tf, result.stats.to_dict(), candles, equity,
                 markers, lines, trades, ts[0] if ts else 0, len(bars))


def _points(ts: Sequence[int], values: Any) -> list[dict[str, float]]:
    return [{"time": t, "value": round(float(v), 6)} for t, v in zip(ts, values, strict=True)
            if math.isfinite(float(v))]


Lines = Callable[[Bars, dict[str, float]], list[tuple[str, Any]]]
_PRICE: dict[str, Lines] = {
    "ema_cross": lambda b, p: [(f"EMA {p['window_fast']:g}", ta.ema(b, int(p["window_fast"]))),
                               (f"EMA {p['window_slow']:g}", ta.ema(b, int(p["window_slow"])))],
    "sma_cross": lambda b, p: [(f"SMA {p['window_fast']:g}", ta.sma(b, int(p["window_fast"]))),
                               (f"SMA {p['window_slow']:g}", ta.sma(b, int(p["window_slow"])))],
    "price_sma": lambda b, p: [(f"SMA {p['window']:g}", ta.sma(b, int(p["window"])))],
    "price_ema": lambda b, p: [(f"EMA {p['window']:g}", ta.ema(b, int(p["window"])))],
    "bollinger": lambda b, p: list(zip(
        (f"BB upper {p['window']:g}", f"BB mid {p['window']:g}", f"BB lower {p['window']:g}"),
        ta.bollinger(b, int(p["window"]), p["window_dev"]), strict=True)),
}
_LOWER: dict[str, Lines] = {
    "rsi": lambda b, p: [(f"RSI {p['window']:g}", ta.rsi(b, int(p["window"])))],
    "macd": lambda b, p: list(zip(("MACD", "MACD signal"), ta.macd(
        b, int(p["window_fast"]), int(p["window_slow"]), int(p["window_sign"])), strict=True)),
    "stoch": lambda b, p: [(f"Stoch %K {p['window']:g}",
                            ta.stoch(b, int(p["window"]), int(p["smooth_window"])))],
    "adx": lambda b, p: [(f"ADX {p['window']:g}", ta.adx(b, int(p["window"])))],
    "atr": lambda b, p: [(f"ATR {p['window']:g}", ta.atr(b, int(p["window"])))],
}


def _family(rule_name: str) -> str:
    for prefix in ("ema_cross", "sma_cross", "price_above_sma", "price_below_sma",
                   "price_above_ema", "price_below_ema", "bollinger", "rsi", "macd", "stoch",
                   "adx", "atr"):
        if rule_name.startswith(prefix):
            return prefix.replace("_above", "").replace("_below", "")
    return ""


def _indicators(rules: Sequence[ta.Rule], tf: str, bars: Bars, start: int,
                ts: Sequence[int]) -> list[dict[str, Any]]:
    """The series each rule reads, on the chart's timeframe (rules on a higher timeframe
    read resampled bars and are listed without a line)."""
    out: dict[str, dict[str, Any]] = {}
    for rule in rules:
        family = _family(rule.name)
        pane = "price" if family in _PRICE else "lower" if family in _LOWER else None
        if pane is None or rule.timeframe != tf:
            continue
        for label, series in (_PRICE | _LOWER)[family](bars, dict(rule.params)):
            if label not in out:
                out[label] = {"label": label, "pane": pane,
                              "points": _points(ts, np.asarray(series)[start:])}
    return list(out.values())


# ---- credentials -----------------------------------------------------------------------------


def api_keys(principal: Principal, views: DashboardViews) -> list[ApiKey]:
    return views.api_keys(principal.user_id)


def create_api_key(principal: Principal, scopes: Sequence[str], account_id: str | None,
                   deps: Deps, secrets: Secrets) -> tuple[ApiKey, str]:
    """A key of the person's own, narrowed to one account if asked; shown once."""
    chosen = [Scope(s) for s in scopes if s in {str(k) for k in KEY_SCOPES}]
    if not chosen:
        raise Rejected("Choose at least one scope for the key", code="NO_SCOPE")
    narrowed = None
    if account_id:
        narrowed = [queries.visible_account(principal, deps, account_id).id]
    return accounts.create_api_key(principal.user_id, chosen, narrowed, deps=deps, secrets=secrets)


def revoke_api_key(key_id: str, principal: Principal, deps: Deps, views: DashboardViews) -> None:
    if key_id not in {k.id for k in views.api_keys(principal.user_id)}:
        raise NotFound(f"API key {key_id} not found", code="KEY_NOT_FOUND")
    if not accounts.revoke_api_key(key_id, deps):
        raise Rejected("This key was already revoked")


def access_tokens(principal: Principal, deps: Deps, views: DashboardViews) -> list[AccessToken]:
    return views.access_tokens([a.id for a in visible_accounts(principal, deps)])


def create_access_token(principal: Principal, account_id: str, deps: Deps,
                        secrets: Secrets) -> tuple[AccessToken, str]:
    account = queries.visible_account(principal, deps, account_id)
    return capabilities.create_access_token(account.id, deps, secrets)


def revoke_access_token(token_id: str, principal: Principal, deps: Deps,
                        views: DashboardViews) -> None:
    if token_id not in {t.id for t in access_tokens(principal, deps, views)}:
        raise NotFound(f"access token {token_id} not found", code="TOKEN_NOT_FOUND")
    if not capabilities.revoke_access_token(token_id, deps):
        raise Rejected("This token was already revoked")


# ---- partner channels ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelsPage:
    partners: list[Partner]
    channels: list[Channel]
    subscriptions: list[Subscription]
    accounts: list[Account]


def channels_page(principal: Principal, deps: Deps, views: DashboardViews) -> ChannelsPage:
    """Every channel (to follow one); partners and every subscription for admins, the
    person's own subscriptions for others."""
    mine = visible_accounts(principal, deps)
    subs = views.subscriptions(None if principal.is_admin else [a.id for a in mine])
    return ChannelsPage(views.partners() if principal.is_admin else [], views.channels(), subs,
                        mine)


def _admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Rejected("Only administrators manage partners and channels", code="FORBIDDEN")


def create_partner(name: str, principal: Principal, deps: Deps,
                   secrets: Secrets) -> tuple[Partner, str]:
    _admin(principal)
    return capabilities.create_partner(name, deps, secrets)


def create_channel(partner_id: str, name: str, principal: Principal, deps: Deps,
                   secrets: Secrets) -> tuple[Channel, str]:
    _admin(principal)
    return channels.create_channel(partner_id, name, deps, secrets)


def subscribe(channel_id: str, account_id: str, allocation: Decimal,
              allocation_type: AllocationType, principal: Principal, deps: Deps, *,
              auto_execute: bool) -> Subscription:
    """An account the person may see follows a channel (admins: any channel)."""
    account = queries.visible_account(principal, deps, account_id)
    if allocation <= 0:
        raise Rejected("The allocation must be more than 0", code="BAD_ALLOCATION")
    return channels.subscribe(channel_id, account.id, deps, allocation=allocation,
                              allocation_type=allocation_type, auto_execute=auto_execute)


# ---- kill switches ---------------------------------------------------------------------------


def switches(principal: Principal, deps: Deps) -> tuple[bool, list[tuple[Account, RiskLimits]]]:
    """The global halt and each visible account's own switches (halted, reduce-only)."""
    rows = [(a, risk.limits_of(a.id, deps)) for a in visible_accounts(principal, deps)]
    return risk.global_halt(deps), rows


def halt_all(halted: bool, principal: Principal, deps: Deps) -> None:
    if not principal.is_admin:
        raise Rejected("Only an administrator may halt or resume trading on every account",
                       code="FORBIDDEN")
    risk.set_global_halt(halted, deps)


ACCOUNT_SWITCHES = ("halted", "reduce_only")


def switch_account(account_id: str, switch: str, on: bool, principal: Principal,
                   deps: Deps) -> RiskLimits:
    if switch not in ACCOUNT_SWITCHES:
        raise Rejected(f"There is no switch {switch!r}", code="INVALID_RISK_LIMITS")
    account = queries.visible_account(principal, deps, account_id)
    return risk.set_limits(account.id, {switch: on}, deps)
