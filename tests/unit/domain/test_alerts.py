"""From an alert and the position held to the steps it takes: every action, sentiment and position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradewire.domain.alerts import Alert, AlertAction, Plan, Sentiment, Step, is_stale, plan
from tradewire.domain.errors import Rejected
from tradewire.domain.values import Action

QTY = Decimal(10)
POSITIONS = {"flat": Decimal(0), "long": Decimal(50), "short": Decimal(-50)}
OL, CL = Action.OPEN_LONG, Action.CLOSE_LONG
OS, CS = Action.OPEN_SHORT, Action.CLOSE_SHORT
A, S = AlertAction, Sentiment


def steps(*items: Step) -> Plan:
    return Plan(items)


CANCEL = Plan(cancel_open_orders=True)
REVERSE_TO_LONG = steps(Step(CS, None), Step(OL, QTY, after_previous_fill=True))
REVERSE_TO_SHORT = steps(Step(CL, None), Step(OS, QTY, after_previous_fill=True))

# action, sentiment, position, the plan or the refusal code; alert quantity is QTY throughout.
TABLE: list[tuple[AlertAction, Sentiment | None, str, Plan | str]] = [
    (A.BUY, None, "flat", steps(Step(OL, QTY))),
    (A.BUY, None, "long", "already-long"),
    (A.BUY, None, "short", REVERSE_TO_LONG),
    (A.BUY, S.LONG, "flat", steps(Step(OL, QTY))),
    (A.BUY, S.LONG, "long", "already-long"),
    (A.BUY, S.LONG, "short", REVERSE_TO_LONG),
    (A.BUY, S.FLAT, "flat", "nothing-to-exit"),
    (A.BUY, S.FLAT, "long", "nothing-to-exit"),
    (A.BUY, S.FLAT, "short", steps(Step(CS, None))),
    (A.BUY, S.SHORT, "flat", "nothing-to-exit"),
    (A.BUY, S.SHORT, "long", "nothing-to-exit"),
    (A.BUY, S.SHORT, "short", steps(Step(CS, QTY))),
    (A.SELL, None, "flat", steps(Step(OS, QTY))),
    (A.SELL, None, "long", REVERSE_TO_SHORT),
    (A.SELL, None, "short", "already-short"),
    (A.SELL, S.SHORT, "flat", steps(Step(OS, QTY))),
    (A.SELL, S.SHORT, "long", REVERSE_TO_SHORT),
    (A.SELL, S.SHORT, "short", "already-short"),
    (A.SELL, S.FLAT, "flat", "nothing-to-exit"),
    (A.SELL, S.FLAT, "long", steps(Step(CL, None))),
    (A.SELL, S.FLAT, "short", "nothing-to-exit"),
    (A.SELL, S.LONG, "flat", "nothing-to-exit"),
    (A.SELL, S.LONG, "long", steps(Step(CL, QTY))),
    (A.SELL, S.LONG, "short", "nothing-to-exit"),
    *[(A.EXIT, sentiment, "flat", "no-position") for sentiment in (None, *S)],
    *[(A.EXIT, sentiment, "long", steps(Step(CL, QTY))) for sentiment in (None, *S)],
    *[(A.EXIT, sentiment, "short", steps(Step(CS, QTY))) for sentiment in (None, *S)],
    *[(A.CANCEL, sentiment, pos, CANCEL) for sentiment in (None, *S) for pos in POSITIONS],
    *[(A.ADD, sentiment, "flat", "no-position") for sentiment in (None, *S)],
    *[(A.ADD, sentiment, "long", steps(Step(OL, QTY))) for sentiment in (None, *S)],
    *[(A.ADD, sentiment, "short", steps(Step(OS, QTY))) for sentiment in (None, *S)],
]


def alert(action: AlertAction, sentiment: Sentiment | None = None,
          quantity: Decimal | None = QTY) -> Alert:
    return Alert(ticker="AAPL", action=action, sentiment=sentiment, quantity=quantity)


def case_id(action: AlertAction, sentiment: Sentiment | None, position: str) -> str:
    return f"{action} with sentiment {sentiment or 'none'} while {position}"


def refusal(a: Alert, position: str) -> str:
    with pytest.raises(Rejected) as caught:
        plan(a, POSITIONS[position])
    return caught.value.code


def test_the_table_covers_every_action_sentiment_and_position() -> None:
    seen = {(a, s, p) for a, s, p, _ in TABLE}
    assert len(TABLE) == len(seen) == len(A) * (len(S) + 1) * len(POSITIONS)


@pytest.mark.parametrize(("action", "sentiment", "position", "expected"), [
    pytest.param(*row, id=case_id(*row[:3])) for row in TABLE
])
def test_an_alert_takes_the_steps_its_row_says(
    action: AlertAction, sentiment: Sentiment | None, position: str, expected: Plan | str,
) -> None:
    a = alert(action, sentiment)
    if isinstance(expected, str):
        assert refusal(a, position) == expected
    else:
        assert plan(a, POSITIONS[position]) == expected


# ---- quantities ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "sentiment", "position"), [
    pytest.param(A.BUY, None, "flat", id="buy while flat opens, so it needs one"),
    pytest.param(A.BUY, None, "short", id="buy while short reverses, and the new long needs one"),
    pytest.param(A.BUY, S.SHORT, "short", id="a partial cover needs one"),
    pytest.param(A.SELL, None, "flat", id="sell while flat opens, so it needs one"),
    pytest.param(A.SELL, None, "long", id="sell while long reverses, and the new short needs one"),
    pytest.param(A.SELL, S.LONG, "long", id="a partial sale needs one"),
    pytest.param(A.ADD, None, "long", id="add to a long needs one"),
    pytest.param(A.ADD, None, "short", id="add to a short needs one"),
])
def test_a_step_that_opens_or_exits_part_is_refused_without_a_quantity(
    action: AlertAction, sentiment: Sentiment | None, position: str,
) -> None:
    assert refusal(alert(action, sentiment, quantity=None), position) == "quantity-required"


@pytest.mark.parametrize(("action", "sentiment", "position", "expected"), [
    pytest.param(A.EXIT, None, "long", steps(Step(CL, None)), id="exit closes the whole long"),
    pytest.param(A.EXIT, None, "short", steps(Step(CS, None)), id="exit covers the whole short"),
    pytest.param(A.BUY, S.FLAT, "short", steps(Step(CS, None)), id="buy to flat covers it all"),
    pytest.param(A.SELL, S.FLAT, "long", steps(Step(CL, None)), id="sell to flat sells it all"),
    pytest.param(A.CANCEL, None, "long", CANCEL, id="cancel needs no quantity"),
])
def test_a_step_on_the_whole_position_needs_no_quantity(
    action: AlertAction, sentiment: Sentiment | None, position: str, expected: Plan,
) -> None:
    assert plan(alert(action, sentiment, quantity=None), POSITIONS[position]) == expected


@pytest.mark.parametrize("quantity", ["0", "-5"])
def test_a_quantity_that_is_not_positive_is_refused(quantity: str) -> None:
    assert refusal(alert(A.BUY, quantity=Decimal(quantity)), "flat") == "invalid-quantity"


def test_a_refusal_says_what_to_do_instead() -> None:
    with pytest.raises(Rejected, match="use add"):
        plan(alert(A.BUY), POSITIONS["long"])


# ---- staleness ----------------------------------------------------------------------------------

NOW = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("sent_at", "max_lag_s", "stale"), [
    pytest.param(NOW - timedelta(seconds=31), 30, True, id="older than the lag is stale"),
    pytest.param(NOW - timedelta(seconds=30), 30, False, id="exactly the lag is still fresh"),
    pytest.param(NOW - timedelta(seconds=5), 30, False, id="recent is fresh"),
    pytest.param(NOW + timedelta(seconds=5), 30, False, id="a sender clock ahead is not stale"),
    pytest.param(NOW - timedelta(seconds=1), 0, True, id="a zero lag refuses any delay"),
    pytest.param(NOW - timedelta(days=1), None, False, id="no lag set never refuses"),
    pytest.param(None, 30, False, id="an alert without a time is never stale"),
])
def test_an_alert_is_stale_only_when_sent_longer_ago_than_the_lag(
    sent_at: datetime | None, max_lag_s: int | None, stale: bool,
) -> None:
    assert is_stale(sent_at, NOW, max_lag_s) is stale
