"""An order's risk check reads the account's limits and the service-wide halt in one statement
(`RiskRepo.get_with_flag`): what `RiskRepo.get` and `FlagRepo.get` read apart, each None when
its row is missing."""

from __future__ import annotations

from datetime import datetime

from tests.support import Caller
from tradewire.bootstrap import Container
from tradewire.services.risk import HALT_FLAG


def test_limits_and_the_halt_flag_are_read_together_as_apart(
        container: Container, alice: Caller, bob: Caller) -> None:
    now: datetime = container.deps.clock.now()
    with container.deps.uow() as uow:
        assert uow.risk.get_with_flag(alice.account_id, HALT_FLAG) == (None, None)
        uow.risk.put(alice.account_id, {"max_position_qty": "10", "symbols": ["AAPL"]}, now)
        uow.flags.set(HALT_FLAG, "1")
        uow.commit()
    with container.deps.uow(write=False) as uow:
        for account in (alice.account_id, bob.account_id):
            together = uow.risk.get_with_flag(account, HALT_FLAG)
            assert together == (uow.risk.get(account), uow.flags.get(HALT_FLAG))
        assert uow.risk.get_with_flag(alice.account_id, HALT_FLAG) == (
            {"max_position_qty": "10", "symbols": ["AAPL"]}, "1")
        assert uow.risk.get_with_flag(bob.account_id, "no-such-flag") == (None, None)
