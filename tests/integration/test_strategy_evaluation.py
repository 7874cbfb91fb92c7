"""The execution API of seed 003 on the sample data: inline, stored, bulk, persist."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import backtesting.test
import httpx
import pytest
from sqlalchemy import text

from tests.support import Caller
from tradewire.bootstrap import Container

SAMPLES = Path(backtesting.test.__file__).parent

SEED_STRATEGY = {
    "name": "btc_rsi_test", "asset": "BTC",
    "rules": {"name": "btc_rsi_test", "asset": "BTC", "exit": [], "entry": [
        {"name": "rsi_oversold", "signal_type": "TRIGGER", "timeframe": "1h",
         "params": {"window": 14, "threshold": 30}},
        {"name": "macd_bullish_cross", "signal_type": "FILTER", "timeframe": "1h",
         "params": {"window_fast": 12, "window_slow": 26, "window_sign": 9}}]},
    "execution_config": {"max_risk_per_trade": 0.01, "reward_factor": 2,
                         "stop_loss_calculation": "dynamic_atr", "atr_period": 14,
                         "atr_volatility_factor": 2.0},
    "execution_state": {"cash_balance": 10000.0, "account_value": 10000.0, "total_trades": 0,
                        "num_open_positions": 0},
}


def named(name: str) -> dict[str, Any]:
    return {**SEED_STRATEGY, "name": name, "rules": {**SEED_STRATEGY["rules"], "name": name}}


@pytest.fixture
def loaded(client: httpx.Client, alice: Caller) -> None:
    for name, symbol, tf in (("EURUSD.csv", "BTC", "1h"), ("GOOG.csv", "GOOG", "1d")):
        r = client.post("/api/v1/market/bars", params={"symbol": symbol, "timeframe": tf},
                        content=(SAMPLES / name).read_bytes(),
                        headers={**alice.headers, "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text


def rows(container: Container) -> dict[str, Any]:
    with container.db.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("strategy", "signal", "trade_order", "audit_event")}


def test_the_seeds_inline_example_evaluates_and_writes_nothing(
        client: httpx.Client, alice: Caller, loaded: None, container: Container) -> None:
    before = rows(container)
    r = client.post("/api/v1/execution/evaluate", json={"strategy": SEED_STRATEGY,
                                                       "persist": False},
                    headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["strategy_name"] == "btc_rsi_test"
    assert body["asset"] == "BTC" and body["current_price"] > 0
    assert set(body["execution_state"]) == {"cash_balance", "account_value", "total_trades",
                                            "num_open_positions"}
    assert isinstance(body["new_orders"], list) and "execution_time_seconds" in body
    assert rows(container) == before


def test_stored_strategies_evaluate_alone_and_in_bulk_sharing_data(
        client: httpx.Client, alice: Caller, loaded: None, container: Container) -> None:
    made = [client.post("/api/v1/strategies", json=named(f"s{i}"), headers=alice.headers)
            for i in range(3)]
    assert all(m.status_code == 201 for m in made), made[0].text
    ids = [m.json()["strategy"]["id"] for m in made]
    goog = {**SEED_STRATEGY, "name": "goog", "asset": "GOOG",
            "rules": {"entry": [{"name": "sma_cross_up", "signal_type": "TRIGGER",
                                 "timeframe": "1d",
                                 "params": {"window_fast": 10, "window_slow": 30}}],
                      "exit": []}}
    goog_id = client.post("/api/v1/strategies", json=goog, headers=alice.headers
                          ).json()["strategy"]["id"]
    one = client.post(f"/api/v1/execution/evaluate/{ids[0]}", json={"persist": False},
                      headers=alice.headers)
    assert one.status_code == 200 and one.json()["strategy_id"] == ids[0], one.text
    bulk = client.post("/api/v1/execution/evaluate/bulk",
                       json={"strategy_ids": [*ids, goog_id], "persist": False},
                       headers=alice.headers)
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["data_fetches"] == 2  # (BTC, 1h) once for three strategies, (GOOG, 1d)
    assert [r["strategy_id"] for r in bulk.json()["results"]] == [*ids, goog_id]


def test_persist_saves_the_execution_state(client: httpx.Client, alice: Caller, loaded: None,
                                           container: Container) -> None:
    sid = client.post("/api/v1/strategies", json=SEED_STRATEGY, headers=alice.headers
                      ).json()["strategy"]["id"]
    before = rows(container)
    client.post(f"/api/v1/execution/evaluate/{sid}", json={"persist": False},
                headers=alice.headers)
    assert rows(container) == before
    r = client.post(f"/api/v1/execution/evaluate/{sid}", json={"persist": True},
                    headers=alice.headers)
    assert r.status_code == 200
    stored = client.get(f"/api/v1/strategies/{sid}", headers=alice.headers).json()["strategy"]
    assert stored["execution_state"]["cash_balance"] == r.json()["execution_state"]["cash_balance"]


def test_another_users_strategy_is_not_found(client: httpx.Client, alice: Caller, bob: Caller,
                                             loaded: None) -> None:
    sid = client.post("/api/v1/strategies", json=SEED_STRATEGY, headers=alice.headers
                      ).json()["strategy"]["id"]
    assert client.get(f"/api/v1/strategies/{sid}", headers=bob.headers).status_code == 404
    r = client.post(f"/api/v1/execution/evaluate/{sid}", json={}, headers=bob.headers)
    assert r.status_code == 404


@pytest.mark.parametrize("change", [
    {"rules": {"entry": [{"name": "moon_phase", "signal_type": "TRIGGER", "timeframe": "1h",
                          "params": {}}], "exit": []}},
    {"rules": {"entry": [{"name": "rsi_oversold", "signal_type": "TRIGGER", "timeframe": "7h",
                          "params": {"window": 14}}], "exit": []}},
    {"rules": {"entry": [{"name": "rsi_oversold", "signal_type": "TRIGGER", "timeframe": "1h",
                          "params": {"window": -3}}], "exit": []}},
    {"execution_config": {"max_risk_per_trade": 5}},
])
def test_bad_strategies_are_refused_with_a_400(client: httpx.Client, alice: Caller,
                                               change: dict[str, Any]) -> None:
    r = client.post("/api/v1/strategies", json={**SEED_STRATEGY, **change}, headers=alice.headers)
    assert r.status_code == 400, r.text
    assert r.json()["success"] is False and r.json()["error"]


def test_a_stored_strategy_acts_once_per_bar(client: httpx.Client, alice: Caller,
                                             loaded: None) -> None:
    always = {**SEED_STRATEGY, "name": "always", "asset": "GOOG", "rules": {
        "name": "always", "asset": "GOOG", "exit": [],
        "entry": [{"name": "price_above_sma", "signal_type": "FILTER", "timeframe": "1d",
                   "params": {"window": 5}}]}}
    sid = client.post("/api/v1/strategies", json=always, headers=alice.headers
                      ).json()["strategy"]["id"]
    first = client.post(f"/api/v1/execution/evaluate/{sid}", json={"persist": True},
                        headers=alice.headers).json()
    again = client.post(f"/api/v1/execution/evaluate/{sid}", json={"persist": True},
                        headers=alice.headers).json()
    # GOOG's last close (806.19) is above its 5-day average: the first evaluation enters.
    assert [o["side"] for o in first["new_orders"]][:1] == ["enter_long"], first
    assert again["new_orders"] == []
    assert again["execution_state"] == first["execution_state"]


GOOG_CROSS = {"name": "goog_cross", "asset": "GOOG", "rules": {
    "name": "goog_cross", "asset": "GOOG", "exit": [],
    "entry": [{"name": "sma_cross_up", "signal_type": "TRIGGER", "timeframe": "1d",
               "params": {"window_fast": 10, "window_slow": 30}}]},
    "execution_config": {"stop_loss_calculation": "fixed_percent", "stop_loss_percent": 0.05,
                         "reward_factor": 2}}


def test_a_backtest_runs_the_live_rules_over_stored_bars(client: httpx.Client, alice: Caller,
                                                         loaded: None) -> None:
    r = client.post("/api/v1/backtests", json={"strategy": GOOG_CROSS, "fee_bps": 5},
                    headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stats"]["trades"] == len(body["trades"]) > 0
    assert set(body["stats"]) >= {"total_return", "max_drawdown", "sharpe", "win_rate",
                                  "exposure"}
    assert 0 < len(body["equity_curve"]) <= 600


def test_the_backtest_command_reads_a_strategy_file_and_a_csv(tmp_path: Path) -> None:
    spec = tmp_path / "strategy.json"
    spec.write_text(json.dumps(GOOG_CROSS))
    cmd = [str(Path(sys.executable).with_name("tradewire")), "backtest", str(spec), "--data",
           str(SAMPLES / "GOOG.csv"), "--fee-bps", "5", "--json"]
    env = {"TRADEWIRE_DATA_DIR": str(tmp_path / "d"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=True)
    stats = json.loads(out.stdout)
    assert stats["trades"] > 0 and -1 < stats["total_return"] < 10


def test_an_enabled_strategy_is_evaluated_by_the_worker_once_per_bar(
        client: httpx.Client, alice: Caller, loaded: None, container: Container) -> None:
    from tradewire.entrypoints.worker import Worker

    always = {**GOOG_CROSS, "enabled": True, "rules": {**GOOG_CROSS["rules"], "entry": [
        {"name": "price_above_sma", "signal_type": "FILTER", "timeframe": "1d",
         "params": {"window": 5}}]}}
    sid = client.post("/api/v1/strategies", json=always, headers=alice.headers
                      ).json()["strategy"]["id"]
    Worker(container).run_once()
    state = client.get(f"/api/v1/strategies/{sid}", headers=alice.headers
                       ).json()["strategy"]["execution_state"]
    assert state["total_trades"] == 1
    Worker(container).run_once()  # the same bar again: nothing more
    again = client.get(f"/api/v1/strategies/{sid}", headers=alice.headers
                       ).json()["strategy"]["execution_state"]
    assert again == state


def test_a_strategy_linked_to_an_account_sends_its_orders_to_the_broker(
        client: httpx.Client, alice: Caller, loaded: None) -> None:
    client.post("/api/v1/market/prices", json={"symbol": "GOOG", "price": 806.19},
                headers=alice.headers)
    linked = {**GOOG_CROSS, "account_id": alice.account_id, "rules": {
        **GOOG_CROSS["rules"], "entry": [{"name": "price_above_sma", "signal_type": "FILTER",
                                          "timeframe": "1d", "params": {"window": 5}}]}}
    sid = client.post("/api/v1/strategies", json=linked, headers=alice.headers
                      ).json()["strategy"]["id"]
    r = client.post(f"/api/v1/execution/evaluate/{sid}", json={"persist": True},
                    headers=alice.headers)
    entry = next(o for o in r.json()["new_orders"] if o["side"] == "enter_long")
    orders = client.get("/api/v1/orders", headers=alice.headers).json()["orders"]
    assert [(o["symbol"], o["side"], o["status"]) for o in orders] == [("GOOG", "buy", "filled")]
    assert float(orders[0]["qty"]) == pytest.approx(entry["position_size"])
    # Evaluating the same bar again sends nothing more.
    client.post(f"/api/v1/execution/evaluate/{sid}", json={"persist": True},
                headers=alice.headers)
    assert len(client.get("/api/v1/orders", headers=alice.headers).json()["orders"]) == 1
    # A dry run never reaches the account.
    client.post(f"/api/v1/execution/evaluate/{sid}", json={"persist": False},
                headers=alice.headers)
    assert len(client.get("/api/v1/orders", headers=alice.headers).json()["orders"]) == 1


def test_a_bulk_evaluation_stores_each_strategys_own_state_and_bar(
        client: httpx.Client, alice: Caller, bob: Caller, loaded: None,
        container: Container) -> None:
    """Over 1,000 strategies (more than one read of STRATEGIES_PER_READ ids): some enter and
    come out with states of their own, most stay flat and share theirs, one is bob's. Each
    stored state and bar is the one its own decision made, and a second evaluation of the
    same bar writes nothing."""
    from tradewire.adapters.db.repositories import STRATEGIES_PER_READ
    from tradewire.domain.accounts import ALL_SCOPES, Principal
    from tradewire.services import evaluation, strategy_store

    owner = Principal(user_id=alice.user_id, is_admin=False, scopes=ALL_SCOPES, via="test",
                      account_ids=frozenset({alice.account_id}))
    enters = {"name": "enters", "signal_type": "FILTER", "timeframe": "1d",
              "params": {"window": 5}}
    made = []
    for i in range(2 * STRATEGIES_PER_READ + 50):
        entry = ([{**enters, "name": "price_above_sma", "params": {"window": 3 + i % 7}}]
                 if i % 10 == 0 else [{**enters, "name": "price_below_sma"}])
        cash = 10_000 + i % 3 * 1_000  # flat strategies share a state in threes
        made.append(strategy_store.create(
            {"name": f"m{i}", "asset": "GOOG", "rules": {"entry": entry, "exit": []},
             "execution_state": {"cash_balance": cash, "account_value": cash}},
            owner, container.deps)["id"])
    bobs = client.post("/api/v1/strategies", json=SEED_STRATEGY, headers=bob.headers
                       ).json()["strategy"]["id"]
    ids = [*made, made[0], bobs, "no-such-strategy"]

    results, fetches = evaluation.evaluate_stored(ids, owner, container.deps, persist=True)
    assert fetches == 1
    assert [r.error for r in results[-2:]] == ["strategy not found"] * 2
    decided = {r.strategy_id: r.decision for r in results[:-2]}  # made[0] twice: once here
    assert sum(bool(d.new_orders) for d in decided.values()) == len(made) // 10
    with container.db.engine.connect() as conn:
        stored = {row.id: row for row in conn.execute(text(
            "SELECT id, execution_state, last_bar_ts, updated_at FROM strategy"))}
    for sid, decision in decided.items():
        state = stored[sid].execution_state
        state = json.loads(state) if isinstance(state, str) else state
        assert state == decision.state.to_dict(), sid
        assert stored[sid].last_bar_ts == int(decision.evaluated_at.timestamp())
    assert stored[bobs].last_bar_ts is None

    container.deps.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    again, _ = evaluation.evaluate_stored(made, owner, container.deps, persist=True)
    assert all(r.decision is not None and r.decision.new_orders == [] for r in again)
    with container.db.engine.connect() as conn:
        after = {row.id: row for row in conn.execute(text(
            "SELECT id, execution_state, last_bar_ts, updated_at FROM strategy"))}
    assert after == stored  # the same bar again: nothing written, updated_at included
