"""Schema fuzzing (issue 8, point 3): schemathesis against every route of the OpenAPI spec.

The real app is served on loopback by `tests.support.Server` on SQLite and on PostgreSQL.
Every operation of its `/openapi.json` is called with cases generated from the spec:

* valid data (positive) and invalid data (negative) with an admin API key holding every scope,
* valid data with the same user's JWT (`Authorization: Bearer`),
* valid data with the path parameters set to objects that exist (a signal, a strategy, the
  account, a partner signal, an access token), so the routes get past their 404s.

Each response must pass schemathesis' `not_a_server_error` (no 5xx) and
`response_schema_conformance` (a documented status answers in its documented schema). All
failures are collected across all operations and reported together, with a curl command each.
A second test checks that every `$ref` in the spec resolves: the fuzzing repairs references
it cannot follow (so it still reaches those bodies), and that test keeps the defect visible.

Bounded and deterministic: hypothesis is derandomized, with a few examples per operation
(TW_FUZZ_EXAMPLES scales them for a longer run).
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from tests.support import Caller, Server, login, make_caller, make_container
from tradewire.bootstrap import Container
from tradewire.domain.accounts import Scope
from tradewire.services import capabilities, channels

SCALE = float(os.environ.get("TW_FUZZ_EXAMPLES", "1"))
POSITIVE = int(10 * SCALE)  # per operation, API key
NEGATIVE = int(6 * SCALE)  # per operation, API key, invalid data
WITH_JWT = int(4 * SCALE)  # per operation, JWT
KNOWN_IDS = int(6 * SCALE)  # per operation with path parameters, set to existing objects
# Operations whose every call is expensive by design (argon2 on each login attempt).
FEWER = {"POST /api/v1/auth/login": 3}
EXCLUDED_PREFIXES = ("/metrics", "/ui", "/dashboard", "/docs", "/redoc", "/static")
CHECKS = [schemathesis.checks.not_a_server_error,
          schemathesis.checks.response_schema_conformance]
STRATEGY = {  # a stored strategy (seed 003's example), so its routes have one to find
    "name": "fuzz", "asset": "BTC",
    "rules": {"name": "fuzz", "asset": "BTC", "exit": [], "entry": [
        {"name": "rsi_oversold", "signal_type": "TRIGGER", "timeframe": "1h",
         "params": {"window": 14, "threshold": 30}}]},
    "execution_config": {"max_risk_per_trade": 0.01, "reward_factor": 2,
                         "stop_loss_calculation": "dynamic_atr", "atr_period": 14,
                         "atr_volatility_factor": 2.0},
    "execution_state": {"cash_balance": 10000.0, "account_value": 10000.0, "total_trades": 0,
                        "num_open_positions": 0},
}
PARTNER_SIGNAL = {"coin": "BTC", "trade_market": "USDT", "buy_price_min": "95",
                  "buy_price_max": "100", "sell_price_1": "110", "stop_loss": "90",
                  "invest": "50"}


# ---- the spec ----------------------------------------------------------------------------

def dangling_refs(spec: dict[str, Any]) -> list[str]:
    """Every `$ref` in the spec's paths that names nothing in the document."""
    out: list[str] = []

    def resolves(ref: str) -> bool:
        node: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not resolves(ref):
                out.append(f"{where}: {ref}")
            for value in node.values():
                walk(value, where)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            walk(op, f"{method.upper()} {path}")
    return sorted(set(out))


def repaired(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy whose inline `$defs` (pydantic's) are moved to components/schemas, where the
    spec's references point; and without the excluded paths."""
    spec = copy.deepcopy(spec)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})

    def hoist(node: Any) -> None:
        if isinstance(node, dict):
            for name, schema in (node.pop("$defs", None) or {}).items():
                schemas.setdefault(name, schema)
            for value in node.values():
                hoist(value)
        elif isinstance(node, list):
            for value in node:
                hoist(value)

    hoist(spec.get("paths", {}))
    spec["paths"] = {p: ops for p, ops in spec.get("paths", {}).items()
                     if not p.startswith(EXCLUDED_PREFIXES)}
    return spec


# ---- the callers and the objects they own ------------------------------------------------

@dataclass
class World:
    server: Server
    caller: Caller
    key_headers: dict[str, str]
    jwt_headers: dict[str, str]
    known: dict[str, str]  # path parameter name -> the id of an object that exists


def make_world(container: Container, server: Server) -> World:
    caller = make_caller(container, admin=True, scopes=frozenset(Scope))
    partner, _ = capabilities.create_partner("fuzz", container.deps, container.secrets)
    chan, secret = channels.create_channel(partner.id, "fuzz", container.deps, container.secrets)
    channels.subscribe(chan.id, caller.account_id, container.deps, allocation=Decimal(1000))
    _, access_token = capabilities.create_access_token(caller.account_id, container.deps,
                                                       container.secrets)
    partner_headers = {"anny-api-key": chan.api_key, "anny-api-secret": secret}
    key_headers = {**caller.headers, **partner_headers}
    with httpx.Client(base_url=server.url, headers=key_headers, timeout=30) as c:
        jwt_headers = {**login(c, caller), **partner_headers}
        assert c.post("/api/v1/market/prices",
                      json={"symbol": "BTC/USDT", "price": 99}).status_code == 200
        signal = c.post("/api/v1/signals", json={
            "symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 1, "executeMode": "pending", "sourceId": "fuzz-seed"})
        assert signal.status_code == 201, signal.text
        strategy = c.post("/api/v1/strategies", json=STRATEGY)
        assert strategy.status_code == 201, strategy.text
        parent = c.post("/v1/signal", json=PARTNER_SIGNAL)
        assert parent.status_code == 200, parent.text
    known = {"signal_id": signal.json()["signal"]["id"],
             "strategy_id": strategy.json()["strategy"]["id"],
             "accountId": caller.account_id,
             "parent_signal_id": parent.json()["payload"]["parent_signal_id"],
             "access_token": access_token}
    return World(server, caller, key_headers, jwt_headers, known)


# ---- running the cases -------------------------------------------------------------------

@dataclass
class Findings:
    failures: dict[tuple[str, str, int | None], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    server_errors: int = 0

    def report(self) -> str:
        lines = [f"{len(self.failures)} distinct failures in {self.calls} calls "
                 f"({self.server_errors} answers were 5xx):"]
        for (label, title, status), text in sorted(self.failures.items(),
                                                   key=lambda kv: str(kv[0])):
            lines.append(f"\n--- {label} [{status}] {title}\n{text}")
        lines += [f"\n--- generation error: {e}" for e in self.errors]
        return "\n".join(lines)


def fuzz_operation(op: Any, world: World, session: requests.Session, findings: Findings, *,
                   mode: GenerationMode, headers: dict[str, str], examples: int,
                   label: str, path_parameters: dict[str, str] | None = None) -> None:
    if examples <= 0:
        return

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=op.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: Any) -> None:
        response = case.call(base_url=world.server.url, session=session, headers=headers)
        findings.calls += 1
        if response.status_code >= 500:
            findings.server_errors += 1
            time.sleep(0.25)  # let uvicorn log its traceback first (see tests.support)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseException as failure:  # schemathesis' FailureGroup is a BaseExceptionGroup
            title = str(failure).split("\n- ", 1)[-1].split("\n", 1)[0].strip()
            key = (op.label, title, response.status_code)
            findings.failures.setdefault(key, f"({label})\n{failure}"[:3000])

    try:
        run()
    except Unsatisfiable:
        pass  # no invalid value exists for this operation (negative mode)
    except Exception as exc:
        findings.errors.append(f"{op.label} ({label}): {type(exc).__name__}: {exc}"[:1500])


def fuzz_all(world: World) -> Findings:
    spec = httpx.get(f"{world.server.url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(repaired(spec))
    findings = Findings()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            op = result.ok()
            cap = FEWER.get(op.label)

            def n(count: int, cap: int | None = cap) -> int:
                return min(count, cap) if cap is not None else count

            fuzz_operation(op, world, session, findings, mode=GenerationMode.POSITIVE,
                           headers=world.key_headers, examples=n(POSITIVE), label="API key")
            fuzz_operation(op, world, session, findings, mode=GenerationMode.NEGATIVE,
                           headers=world.key_headers, examples=n(NEGATIVE),
                           label="API key, invalid data")
            fuzz_operation(op, world, session, findings, mode=GenerationMode.POSITIVE,
                           headers=world.jwt_headers, examples=n(WITH_JWT), label="JWT")
            names = [p.name for p in op.path_parameters]
            if names and all(name in world.known for name in names):
                fuzz_operation(op, world, session, findings, mode=GenerationMode.POSITIVE,
                               headers=world.key_headers, examples=n(KNOWN_IDS),
                               label="API key, existing objects",
                               path_parameters={name: world.known[name] for name in names})
    return findings


# ---- the tests ---------------------------------------------------------------------------

def test_no_route_answers_5xx_or_breaks_its_documented_schema(
        container: Container, server: Server) -> None:
    findings = fuzz_all(make_world(container, server))
    assert findings.calls > 500, findings.report()
    assert not findings.failures and not findings.errors, findings.report()


@pytest.fixture
def spec(tmp_path: Path) -> Iterator[dict[str, Any]]:
    c = make_container(f"sqlite:///{tmp_path / 'spec.db'}", tmp_path / "data")
    try:
        with Server(c) as s:
            yield httpx.get(f"{s.url}/openapi.json", timeout=30).json()
    finally:
        c.close()


def test_every_reference_in_the_openapi_spec_resolves(spec: dict[str, Any]) -> None:
    assert dangling_refs(spec) == [], "\n".join(dangling_refs(spec))
    assert not [p for p in spec["paths"] if p.startswith(EXCLUDED_PREFIXES)]
