"""Bars in: JSON and CSV uploads, the CLI import of the sample data, and refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import backtesting.test
import httpx
import pytest
from backtesting.test import GOOG

from tests.support import Caller
from tradewire.bootstrap import Container

SAMPLES = Path(backtesting.test.__file__).parent


def test_json_bars_are_stored_and_a_reupload_replaces_them(client: httpx.Client, alice: Caller,
                                                           container: Container) -> None:
    bars = [{"timestamp": "2026-02-05", "open": 1, "high": 2, "low": 0.5, "close": 1.5,
             "volume": 10},
            {"timestamp": "2026-02-06T00:00:00Z", "open": 1.5, "high": 2, "low": 1, "close": 2,
             "volume": 5}]
    r = client.post("/api/v1/market/bars", json={"symbol": "abc", "timeframe": "1D",
                                                 "bars": bars}, headers=alice.headers)
    assert r.status_code == 200 and r.json()["imported"] == 2, r.text
    bars[1]["close"] = 1.8
    client.post("/api/v1/market/bars", json={"symbol": "ABC", "timeframe": "1d", "bars": bars},
                headers=alice.headers)
    with container.deps.uow(write=False) as uow:
        stored = uow.bars.latest("ABC", "1d", 10)
    assert [b.close for b in stored] == [1.5, 1.8]


def test_csv_upload_reads_the_sample_format(client: httpx.Client, alice: Caller,
                                            container: Container) -> None:
    text = (SAMPLES / "GOOG.csv").read_text()
    r = client.post("/api/v1/market/bars", params={"symbol": "GOOG", "timeframe": "1d"},
                    content=text.encode(), headers={**alice.headers, "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == len(GOOG)
    with container.deps.uow(write=False) as uow:
        last = uow.bars.latest("GOOG", "1d", 1)[0]
    assert last.close == pytest.approx(float(GOOG["Close"].iloc[-1]))


@pytest.mark.parametrize(("body", "path"), [
    ({"symbol": "X", "timeframe": "2h", "bars": []}, ["timeframe"]),
    ({"symbol": "X", "timeframe": "1d", "bars": [{"timestamp": "2026-01-01", "open": 1,
                                                  "high": 0.5, "low": 0.4, "close": 1,
                                                  "volume": 1}]}, ["bars", 0]),
    ({"symbol": "X", "timeframe": "1d", "bars": [{"timestamp": "nope", "open": 1, "high": 1,
                                                  "low": 1, "close": 1, "volume": 1}]},
     ["bars", 0]),
    ({"timeframe": "1d", "bars": []}, ["symbol"]),
    ({"symbol": "X", "timeframe": "1d", "bars": "many"}, ["bars"]),
])
def test_bad_bars_are_refused_with_a_path_and_store_nothing(client: httpx.Client, alice: Caller,
                                                            container: Container, body: dict,
                                                            path: list) -> None:
    r = client.post("/api/v1/market/bars", json=body, headers=alice.headers)
    assert r.status_code == 400, r.text
    assert path in [d["path"] for d in r.json()["details"]]
    with container.deps.uow(write=False) as uow:
        assert uow.bars.count("X", "1d") == 0


def test_the_cli_imports_the_sample_data(tmp_path: Path) -> None:
    cmd = [str(Path(sys.executable).with_name("tradewire")), "bars", "import",
           str(SAMPLES / "EURUSD.csv"), "--symbol", "EUR/USD", "--timeframe", "1h", "--json"]
    env = {"TRADEWIRE_DATA_DIR": str(tmp_path / "d"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=True)
    rows = len((SAMPLES / "EURUSD.csv").read_text().strip().splitlines()) - 1
    assert json.loads(out.stdout) == {"symbol": "EUR/USD", "timeframe": "1h", "imported": rows}
