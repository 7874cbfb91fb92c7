"""Market data behind one port: the database, a CSV folder, and several sources in order.
Evaluation reads whatever the configured sources hold; the answer does not depend on where
the bars came from."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import backtesting.test
import httpx
import pytest

from tests.integration.test_strategy_evaluation import SEED_STRATEGY
from tests.support import Caller, Server, make_caller, make_container
from tradewire.adapters.formats.bars import parse_csv
from tradewire.adapters.market_data.csv_folder import CsvFolderBars
from tradewire.adapters.market_data.sources import BarSources
from tradewire.bootstrap import Container
from tradewire.domain.market import Bar
from tradewire.services.market_data import import_bars

SAMPLES = Path(backtesting.test.__file__).parent
GOOG = parse_csv((SAMPLES / "GOOG.csv").read_text())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "bars"
    out.mkdir()
    shutil.copy(SAMPLES / "GOOG.csv", out / "GOOG_1d.csv")
    (out / "BTC-USD").mkdir()
    shutil.copy(SAMPLES / "EURUSD.csv", out / "BTC-USD" / "1h.csv")
    return out


def test_a_csv_folder_finds_a_symbol_under_its_usual_spellings(folder: Path) -> None:
    source = CsvFolderBars(folder)
    assert source.bars("GOOG", "1d", 10) == GOOG[-10:]
    eur = parse_csv((SAMPLES / "EURUSD.csv").read_text())
    for spelling in ("BTC/USD", "btc-usd", "BTC_USD"):
        assert source.bars(spelling, "1h", 5) == eur[-5:]
    assert source.bars("GOOG", "1h", 10) == [] and source.bars("MSFT", "1d", 10) == []


def test_bars_end_before_the_asked_time_and_are_capped(folder: Path) -> None:
    source = CsvFolderBars(folder)
    end = datetime.fromtimestamp(GOOG[100].ts, UTC)
    assert source.bars("GOOG", "1d", 30, end) == GOOG[70:100]
    assert source.bars("GOOG", "1d", 10_000) == GOOG


def test_a_changed_file_is_read_again(folder: Path) -> None:
    source = CsvFolderBars(folder)
    assert len(source.bars("GOOG", "1d", 10_000)) == len(GOOG)
    lines = (folder / "GOOG_1d.csv").read_text().splitlines()
    (folder / "GOOG_1d.csv").write_text("\n".join(lines[:51]) + "\n")
    later = source.bars("GOOG", "1d", 10_000)
    assert later == GOOG[:50]


class Broken:
    name = "broken"

    def bars(self, symbol: str, timeframe: str, limit: int,
             end: datetime | None = None) -> list[Bar]:
        raise ConnectionError("no route to the exchange")


def test_sources_answer_in_order_and_one_that_fails_is_skipped(
        folder: Path, container: Container, caplog: pytest.LogCaptureFixture) -> None:
    stored = GOOG[:20]
    import_bars("GOOG", "1d", stored, container.deps)
    db_first = BarSources([container.deps.bars, CsvFolderBars(folder)])
    assert db_first.bars("GOOG", "1d", 1000) == stored  # the database had them: it answers
    assert db_first.bars("BTC/USD", "1h", 3) != []  # only the folder has these
    chain = BarSources([Broken(), CsvFolderBars(folder)])
    assert chain.bars("GOOG", "1d", 5) == GOOG[-5:]
    assert "broken failed for GOOG 1d: ConnectionError" in caplog.text


@pytest.fixture
def csv_server(db_url: str, tmp_path: Path, folder: Path) -> Iterator[tuple[Container, Server]]:
    c = make_container(db_url, tmp_path / "data",
                       market_data={"sources": f"db,csv:{folder}"})
    with Server(c) as server:
        yield c, server
    c.close()


def test_evaluation_reads_bars_from_the_configured_folder(
        csv_server: tuple[Container, Server]) -> None:
    c, server = csv_server
    caller = make_caller(c)
    goog = {**SEED_STRATEGY, "name": "goog", "asset": "GOOG",
            "rules": {"exit": [], "entry": [{"name": "sma_cross_up", "signal_type": "TRIGGER",
                                             "timeframe": "1d",
                                             "params": {"window_fast": 10, "window_slow": 30}}]}}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/api/v1/execution/evaluate", json={"strategy": goog, "persist": False},
                      headers=caller.headers)
        assert r.status_code == 200, r.text
        assert r.json()["current_price"] == pytest.approx(GOOG[-1].close)
        with c.deps.uow(write=False) as uow:
            assert uow.bars.count("GOOG", "1d") == 0  # read from the folder, nothing stored
        bt = http.post("/api/v1/backtests", json={"strategy": goog}, headers=caller.headers)
        assert bt.status_code in (200, 201), bt.text


def test_a_timeframe_no_source_has_is_built_from_a_finer_one(
        client: httpx.Client, alice: Caller, container: Container) -> None:
    hourly = parse_csv((SAMPLES / "EURUSD.csv").read_text())
    import_bars("BTC/USD", "1h", hourly, container.deps)
    four_hourly = {**SEED_STRATEGY, "name": "h4", "asset": "BTC-USD",
                   "rules": {"exit": [], "entry": [
                       {"name": "rsi_oversold", "signal_type": "TRIGGER", "timeframe": "4h",
                        "params": {"window": 14, "threshold": 30}}]}}
    r = client.post("/api/v1/execution/evaluate",
                    json={"strategy": four_hourly, "persist": False}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    assert r.json()["current_price"] == pytest.approx(hourly[-1].close)
