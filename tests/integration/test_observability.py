"""Metrics, request ids, JSON logs and a signal's timeline, through the real server."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import Caller, Server, make_caller, make_container
from tradewire.bootstrap import Container
from tradewire.services.ports import Tick
from tradewire.services.ticks import apply_ticks


def scrape(client: httpx.Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def signal(caller: Caller, **fields: object) -> dict[str, object]:
    return {"symbol": "AAPL", "action": "openLong", "accountId": caller.account_id,
            "quantity": 1, "executeMode": "immediate", **fields}


def test_metrics_parse_and_counters_move_under_a_short_load(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    apply_ticks([Tick("AAPL", Decimal(100), container.deps.clock.now())], container.deps)
    before = scrape(client)
    for i in range(5):
        r = client.post("/api/v1/signals", json=signal(alice, sourceId=f"load-{i}"),
                        headers=alice.headers)
        assert r.status_code in (200, 201), r.text
    bad = client.post("/api/v1/signals", json=signal(alice, quantity=-1), headers=alice.headers)
    assert bad.status_code == 400
    after = scrape(client)
    door = {"route": "/api/v1/signals"}
    assert value(after, "tradewire_signals_total", **door, outcome="accepted") - value(
        before, "tradewire_signals_total", **door, outcome="accepted") == 5
    assert value(after, "tradewire_signals_total", **door, outcome="refused") - value(
        before, "tradewire_signals_total", **door, outcome="refused") == 1
    assert value(after, "tradewire_http_requests_total", method="POST",
                 route="/api/v1/signals", status="400") >= 1
    assert value(after, "tradewire_request_seconds_count", route="/api/v1/signals") - value(
        before, "tradewire_request_seconds_count", route="/api/v1/signals") == 6
    assert value(after, "tradewire_orders", broker="paper", status="filled") - value(
        before, "tradewire_orders", broker="paper", status="filled") == 5
    assert ("tradewire_scheduler_lag_seconds", ()) in after
    assert ("tradewire_armed_exits", ()) in after
    assert value(after, "tradewire_stage_latency_seconds", stage="total", quantile="0.5") >= 0
    assert ("tradewire_stage_latency_seconds", (("quantile", "0.99"), ("stage", "total"))) in after
    assert value(after, "tradewire_db_pool_connections", state="checkedout") >= 0


def test_request_ids_are_echoed_or_made(client: httpx.Client) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    hostile = client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    made = client.get("/healthz")
    for r in (hostile, made):
        assert len(r.headers["x-request-id"]) == 32 and r.headers["x-request-id"] != "x" * 32


@pytest.fixture
def guarded(db_url: str, tmp_path: Path) -> Iterator[Server]:
    c = make_container(db_url, tmp_path / "data", metrics_token="scrape-me-0123456789")
    with Server(c) as server:
        yield server
    c.close()


def test_a_metrics_token_is_asked_for_when_set(guarded: Server) -> None:
    with httpx.Client(base_url=guarded.url) as http:
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert scrape(http, Authorization="Bearer scrape-me-0123456789")


def test_log_lines_are_json_with_the_request_and_signal_ids(
        log_lines: io.StringIO, client: httpx.Client, container: Container) -> None:
    caller = make_caller(container)
    r = client.post("/api/v1/signals", json=signal(caller),
                    headers={**caller.headers, "X-Request-ID": "req-42"})
    assert r.status_code in (200, 201, 202), r.text
    signal_id = r.json()["signal"]["id"]
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines() if line.strip()]
    mine = [line for line in lines if line.get("signal_id") == signal_id]
    assert mine, lines
    assert all(line["request_id"] == "req-42" for line in mine)
    assert {"timestamp", "level", "logger", "event"} <= set(mine[0])
    assert caller.headers["X-API-Key"] not in log_lines.getvalue()


def test_a_signals_timeline_shows_every_stage_with_its_time(
        client: httpx.Client, alice: Caller, bob: Caller, container: Container) -> None:
    apply_ticks([Tick("AAPL", Decimal(100), container.deps.clock.now())], container.deps)
    r = client.post("/api/v1/signals", json=signal(alice), headers=alice.headers)
    signal_id = r.json()["signal"]["id"]
    t = client.get(f"/api/v1/signals/{signal_id}/timeline", headers=alice.headers)
    assert t.status_code == 200, t.text
    body = t.json()
    assert [s["stage"] for s in body["stages"]][:2] == ["received", "decided"]
    assert {"received", "decided", "submitted", "acked"} <= {s["stage"] for s in body["stages"]}
    assert body["latencyMs"] is not None and body["latencyMs"] >= 0
    events = [e["event"] for e in body["events"]]
    assert events[0] == "SignalReceived" and "OrderFilled" in events
    assert client.get(f"/api/v1/signals/{signal_id}/timeline",
                      headers=bob.headers).status_code == 404


def test_requests_do_not_consult_opentelemetry(client: httpx.Client, alice: Caller,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """tradewire's metrics are its own (/metrics): FastAPI's built-in OpenTelemetry hooks are
    off, so a request does not look up the global providers (15% of the GIL's time on the
    ingest path when they were on, docs/performance.md)."""
    import opentelemetry.metrics
    import opentelemetry.trace

    asked: list[str] = []
    for module, name in ((opentelemetry.trace, "get_tracer_provider"),
                         (opentelemetry.metrics, "get_meter_provider")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda real=real, name=name: (asked.append(name),
                                                                         real())[1])
    r = client.post("/api/v1/signals", headers=alice.headers, json={
        "symbol": "AAPL", "action": "openLong", "accountId": alice.account_id, "quantity": 1,
        "executeMode": "pending"})
    assert r.status_code == 201, r.text
    assert client.get("/healthz").status_code == 200
    assert asked == []
