"""The worker: runs due jobs, sends stored orders, and reconciles open ones, in a loop."""

from __future__ import annotations

import logging
import threading
import time

from tradewire.bootstrap import Container
from tradewire.services.evaluation import auto_evaluate
from tradewire.services.reconciliation import reconcile_all
from tradewire.services.scheduler import run_due_jobs
from tradewire.services.submit import apply_clock, reconcile_open_orders, submit_claimable

log = logging.getLogger("tradewire.worker")
RECONCILE_EVERY_S = 5.0  # orders tradewire holds open, looked up one by one
FULL_RECONCILE_EVERY_S = 60.0  # every real broker account: open orders and positions compared
STRATEGIES_EVERY_S = 15.0  # enabled strategies look for a newly closed bar this often


class Worker:
    def __init__(self, container: Container) -> None:
        self.c = container
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_reconcile = 0.0
        self._last_full = 0.0  # the first pass reconciles at start
        self._last_strategies = 0.0

    def run_once(self) -> int:
        """One pass over every kind of work; returns how much it did."""
        done = apply_clock(self.c.deps) + run_due_jobs(self.c.deps) + submit_claimable(self.c.deps)
        if time.monotonic() - self._last_reconcile >= RECONCILE_EVERY_S:
            self._last_reconcile = time.monotonic()
            done += reconcile_open_orders(self.c.deps)
        if time.monotonic() - self._last_full >= FULL_RECONCILE_EVERY_S or not self._last_full:
            self._last_full = time.monotonic()
            done += sum(o.updated for o in reconcile_all(self.c.deps, include_paper=False))
        if time.monotonic() - self._last_strategies >= STRATEGIES_EVERY_S:
            self._last_strategies = time.monotonic()
            done += auto_evaluate(self.c.deps)
        return done

    def run_forever(self) -> None:
        poll = self.c.settings.worker_poll_ms / 1000
        while not self._stop.is_set():
            self.c.wake_event.clear()
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker pass failed; retrying")
                busy = 0
            if not busy:
                self.c.wake_event.wait(poll)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="tradewire-worker",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.c.wake_event.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
