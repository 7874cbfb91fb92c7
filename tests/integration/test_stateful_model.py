"""Hypothesis drives signals, duplicates, cancels, ticks, restarts and clock moves against a
simple reference model of positions and cash; after every step tradewire's positions, the
paper broker's book and its cash must equal the model's."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.support import make_container
from tradewire.adapters.clock import ManualClock
from tradewire.domain.accounts import Principal, Scope
from tradewire.domain.signals import Signal
from tradewire.domain.values import Action, ExecuteMode, new_id
from tradewire.services import accounts
from tradewire.services.ingest import ingest_signal
from tradewire.services.ports import Tick
from tradewire.services.process import cancel_signal
from tradewire.services.ticks import apply_ticks

SYMBOLS = ("AAA", "BBB")
CASH = Decimal(1_000_000)


class Trading(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="tw-model-"))
        self.url = f"sqlite:///{self.dir / 'tw.db'}"
        self.clock = ManualClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
        self.c = make_container(self.url, self.dir / "data", self.clock)
        user = accounts.create_user(f"m{uuid.uuid4().hex[:8]}", "pw-" + uuid.uuid4().hex,
                                    is_admin=False, deps=self.c.deps, secrets=self.c.secrets)
        self.account = accounts.create_account(user.id, "model", broker="paper", cash=CASH,
                                               deps=self.c.deps, market="24/7").id
        self.owner = Principal(user_id=user.id, is_admin=False, via="api_key",
                               scopes=frozenset({Scope.SIGNALS_WRITE, Scope.SIGNALS_READ}))
        self.last: dict[str, Decimal] = {}
        self.held: dict[str, Decimal] = dict.fromkeys(SYMBOLS, Decimal(0))
        self.cash = CASH
        self.sent: list[Signal] = []
        self.pending: list[str] = []

    def teardown(self) -> None:
        self.c.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _signal(self, symbol: str, action: Action, qty: Decimal,
                mode: ExecuteMode = ExecuteMode.IMMEDIATE) -> Signal:
        return Signal(id=new_id(), account_id=self.account, symbol=symbol, action=action,
                      quantity=qty, execute_mode=mode, created_at=self.clock.now(),
                      source_id=f"src-{uuid.uuid4().hex[:12]}")

    @rule(symbol=st.sampled_from(SYMBOLS), price=st.integers(min_value=50, max_value=150))
    def tick(self, symbol: str, price: int) -> None:
        self.clock.advance(timedelta(seconds=1))
        apply_ticks([Tick(symbol, Decimal(price), self.clock.now())], self.c.deps)
        self.last[symbol] = Decimal(price)

    @precondition(lambda self: bool(self.last))
    @rule(data=st.data(), qty=st.integers(min_value=1, max_value=5))
    def buy(self, data: st.DataObject, qty: int) -> None:
        symbol = data.draw(st.sampled_from(sorted(self.last)))
        signal = self._signal(symbol, Action.OPEN_LONG, Decimal(qty))
        ingest_signal(signal, self.owner, self.c.deps)
        self.sent.append(signal)
        self.held[symbol] += qty
        self.cash -= qty * self.last[symbol]

    @precondition(lambda self: any(q > 0 for q in self.held.values()))
    @rule(data=st.data())
    def sell_all(self, data: st.DataObject) -> None:
        symbol = data.draw(st.sampled_from(sorted(s for s, q in self.held.items() if q > 0)))
        qty = self.held[symbol]
        signal = self._signal(symbol, Action.CLOSE_LONG, qty)
        ingest_signal(signal, self.owner, self.c.deps)
        self.sent.append(signal)
        self.held[symbol] = Decimal(0)
        self.cash += qty * self.last[symbol]

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def send_again(self, data: st.DataObject) -> None:
        """A retry of something already sent (same sourceId): nothing changes."""
        again = data.draw(st.sampled_from(self.sent))
        result = ingest_signal(replace(again, id=new_id()), self.owner, self.c.deps)
        assert result.signal.id == again.id  # the first one answers

    @rule(symbol=st.sampled_from(SYMBOLS), qty=st.integers(min_value=1, max_value=5))
    def hold_for_approval(self, symbol: str, qty: int) -> None:
        signal = self._signal(symbol, Action.OPEN_LONG, Decimal(qty), ExecuteMode.PENDING)
        self.pending.append(ingest_signal(signal, self.owner, self.c.deps).signal.id)

    @precondition(lambda self: bool(self.pending))
    @rule()
    def cancel(self) -> None:
        cancel_signal(self.pending.pop(), self.owner, self.c.deps)

    @rule(minutes=st.integers(min_value=1, max_value=600))
    def clock_moves(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    @rule()
    def restart(self) -> None:
        self.c.close()
        self.c = make_container(self.url, self.dir / "data", self.clock)

    @invariant()
    def books_agree_with_the_model(self) -> None:
        want = {s: q for s, q in self.held.items() if q != 0}
        with self.c.deps.uow(write=False) as uow:
            ours = {s: uow.positions.get(self.account, s).qty for s in SYMBOLS}
        assert {s: q for s, q in ours.items() if q != 0} == want
        assert self.c.paper.positions(self.account) == want
        assert self.c.paper.account(self.account).cash == self.cash


Trading.TestCase.settings = settings(max_examples=15, stateful_step_count=25, deadline=None,
                                     derandomize=True, database=None,
                                     suppress_health_check=list(HealthCheck))
test_signals_ticks_restarts_and_duplicates_keep_the_books_right = Trading.TestCase
