"""Bars as arrays, timeframes, and resampling to complete higher-timeframe bars."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.strategies import START, bars_of
from tradewire.domain.errors import Rejected
from tradewire.domain.market import Bar
from tradewire.strategies.bars import TIMEFRAMES, Bars, resample, timeframe_seconds

MINUTE = 60


def minute_bars(n: int, *, start: int = START) -> Bars:
    """Minute bars with close i+1, open i, high close+0.5, low open-0.5, volume 10 (i from 0)."""
    c = np.arange(1, n + 1, dtype=float)
    return Bars(ts=start + MINUTE * np.arange(n), open=c - 1, high=c + 0.5, low=c - 1.5, close=c,
                volume=np.full(n, 10.0))


def test_timeframes_are_the_design_list_and_1D_is_1d() -> None:
    assert TIMEFRAMES == {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400,
                          "1d": 86400}
    assert timeframe_seconds("1D") == timeframe_seconds("1d") == 86400


def test_an_unknown_timeframe_is_refused() -> None:
    with pytest.raises(Rejected, match="unknown timeframe '2h'"):
        timeframe_seconds("2h")


def test_bars_hold_contiguous_float64_prices_and_int64_times() -> None:
    bars = Bars(ts=[1, 2, 3], open=[1, 2, 3], high=[1, 2, 3], low=[1, 2, 3], close=[1, 2, 3],
                volume=[0, 0, 0])
    assert len(bars) == 3
    assert bars.ts.dtype == np.int64
    assert bars.close.dtype == np.float64
    assert bars.close.flags.c_contiguous


@pytest.mark.parametrize(("ts", "close", "message"), [
    ([1, 2, 3], [1.0, 2.0], "one length"),
    ([1, 3, 2], [1.0, 2.0, 3.0], "increase strictly"),
    ([1, 1, 2], [1.0, 2.0, 3.0], "increase strictly"),
])
def test_bars_refuse_ragged_arrays_and_times_out_of_order(ts: list[int], close: list[float],
                                                           message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Bars(ts=ts, open=close, high=close, low=close, close=close, volume=close)


def test_tail_and_head_cut_the_series_without_copying() -> None:
    bars = bars_of([1, 2, 3, 4, 5])
    assert bars.tail(2).close.tolist() == [4, 5]
    assert bars.head(2).close.tolist() == [1, 2]
    assert len(bars.tail(0)) == 0
    assert len(bars.tail(10)) == 5
    assert np.shares_memory(bars.tail(2).close, bars.close)


def test_bars_are_built_from_the_core_bar_records() -> None:
    bars = Bars.of([Bar(60, 1, 2, 0.5, 1.5, 10), Bar(120, 1.5, 3, 1, 2, 20)])
    assert bars.ts.tolist() == [60, 120]
    assert bars.high.tolist() == [2, 3]
    assert bars.volume.tolist() == [10, 20]


def test_resampling_aggregates_open_high_low_close_and_volume() -> None:
    five = resample(minute_bars(10), "1m", "5m")
    assert five.ts.tolist() == [START, START + 300]
    assert five.open.tolist() == [0, 5]  # the first bar's open
    assert five.close.tolist() == [5, 10]  # the last bar's close
    assert five.high.tolist() == [5.5, 10.5]
    assert five.low.tolist() == [-0.5, 4.5]
    assert five.volume.tolist() == [50, 50]


def test_resampling_drops_a_last_group_that_has_not_closed() -> None:
    five = resample(minute_bars(13), "1m", "5m")  # minutes 10-12 of the third group only
    assert five.ts.tolist() == [START, START + 300]


def test_resampling_aligns_groups_to_utc_boundaries() -> None:
    # Hourly bars from 01:00 to 08:59: the 4h groups are 00:00 (01:00-03:59) and 04:00.
    hours = bars_of(list(range(1, 9)), start=START + 3600)
    four = resample(hours, "1h", "4h")
    assert four.ts.tolist() == [START, START + 4 * 3600]
    assert four.close.tolist() == [3, 7]  # the 08:00 bar starts a group that has not closed


def test_a_group_with_a_missing_bar_inside_still_counts() -> None:
    bars = minute_bars(10)
    keep = np.array([0, 1, 3, 4, 5, 6, 7, 8, 9])
    gappy = Bars(bars.ts[keep], bars.open[keep], bars.high[keep], bars.low[keep], bars.close[keep],
                 bars.volume[keep])
    five = resample(gappy, "1m", "5m")
    assert five.volume.tolist() == [40, 50]


@pytest.mark.parametrize(("source", "target"), [("1h", "5m"), ("1d", "4h")])
def test_resampling_to_a_lower_timeframe_is_refused(source: str, target: str) -> None:
    with pytest.raises(ValueError, match="cannot resample"):
        resample(bars_of([1, 2]), source, target)


def test_resampling_to_the_same_timeframe_or_no_bars_changes_nothing() -> None:
    bars = bars_of([1, 2])
    assert resample(bars, "1h", "1h") is bars
    assert len(resample(bars.head(0), "1h", "4h")) == 0
    assert len(resample(bars.head(1), "1h", "4h")) == 0


def test_a_resampled_series_never_changes_when_bars_are_appended() -> None:
    bars = minute_bars(600)
    full = resample(bars, "1m", "15m")
    for n in (1, 14, 15, 16, 299, 300, 451):
        part = resample(bars.head(n), "1m", "15m")
        assert part.close.tolist() == full.close[: len(part)].tolist()
        assert part.high.tolist() == full.high[: len(part)].tolist()
        assert len(part) == n // 15
