"""The worker: runs due jobs, sends stored orders, and reconciles open ones, in a loop."""

from __future__ import annotations

import inspect
import logging
import threading
import time
from typing import Any

from tradewire.adapters.db.notify import is_postgres, listen
from tradewire.adapters.notify import build_senders
from tradewire.bootstrap import Container
from tradewire.services import notifications
from tradewire.services.evaluation import auto_evaluate
from tradewire.services.exit_engine import resync_resting
from tradewire.services.partitioned_exits import WorkerTriggers
from tradewire.services.ports import BrokerOrder, Page
from tradewire.services.reconciliation import reconcile_all
from tradewire.services.scheduler import run_due_jobs
from tradewire.services.submit import (
    apply_clock,
    reconcile_open_orders,
    record_reports,
    submit_claimable,
)

log = logging.getLogger("tradewire.worker")
RECONCILE_EVERY_S = 5.0  # orders tradewire holds open, looked up one by one
FULL_RECONCILE_EVERY_S = 60.0  # every real broker account: open orders and positions compared
# With nobody subscribed to notifications, the outbox cursor is moved this often, not every
# pass: its write transaction, every half second in a busy API process, held the database's
# write turn while waiting for the GIL (docs/performance.md, item 40).
IDLE_CURSOR_EVERY_S = 10.0
STREAM_RETRY_S = 5.0  # a broker stream that ended is reopened after this pause, doubled
STREAM_RETRY_MAX_S = 300.0  # while it keeps ending without ever being up, up to this
STRATEGIES_EVERY_S = 15.0  # enabled strategies look for a newly closed bar this often


class Streams:
    """Order updates pushed by brokers that have a stream (Alpaca's trade updates, CCXT's
    watch_orders where the exchange has it), one thread per account, recorded like any report.

    A broker that says when its stream is up (`on_live`, the CCXT adapter) has the account's
    open orders looked up at once each time it is (what happened while it was down: the
    exchange replays nothing), and the account is then left out of the 5-second poll until the
    stream drops. Other streams are polled under as well. The full reconciliation every
    minute covers every account."""

    def __init__(self, container: Container, stop: threading.Event) -> None:
        self.c = container
        self.stop = stop
        self.threads: dict[str, threading.Thread] = {}
        self._live: set[str] = set()  # accounts whose stream is up (and was caught up)
        self._lock = threading.Lock()

    def live(self) -> frozenset[str]:
        """Accounts whose broker stream is up: their updates need no polling."""
        with self._lock:
            return frozenset(self._live)

    def refresh(self) -> int:
        """Start a stream for every account whose broker has one and that has none yet."""
        with self.c.deps.uow(write=False) as uow:
            accounts = uow.accounts.list(None, None, Page(limit=10_000))
        started = 0
        for account in accounts:
            if account.broker == "paper" or (
                    account.id in self.threads and self.threads[account.id].is_alive()):
                continue
            try:
                broker = self.c.deps.brokers.for_account(account)
            except Exception as exc:  # not configured here: polling covers it
                log.debug("no stream for account %s: %s", account.id, type(exc).__name__)
                continue
            if not hasattr(broker, "stream_updates") or not getattr(broker, "streaming", True):
                continue  # polled
            thread = threading.Thread(target=self._follow, args=(broker, account.id), daemon=True,
                                      name=f"tradewire-stream-{account.id}")
            self.threads[account.id] = thread
            thread.start()
            started += 1
        return started

    def _follow(self, broker: Any, account_id: str) -> None:
        went_live = threading.Event()

        def on_report(report: BrokerOrder) -> None:
            record_reports([(report.client_order_id, report)], self.c.deps)

        def on_live(up: bool) -> None:
            if not up:
                with self._lock:
                    self._live.discard(account_id)
                return
            went_live.set()
            try:  # what happened while the stream was down: looked up once, before trusting it
                reconcile_open_orders(self.c.deps, account_ids=[account_id])
            except Exception:
                log.exception("catching up account %s after its stream opened failed; it "
                              "stays polled", account_id)
                return
            with self._lock:
                self._live.add(account_id)

        kwargs = {"on_live": on_live} if "on_live" in inspect.signature(
            broker.stream_updates).parameters else {}
        pause = STREAM_RETRY_S
        while not self.stop.is_set():
            went_live.clear()
            try:
                broker.stream_updates(account_id, on_report, self.stop, **kwargs)
            except Exception as exc:
                log.warning("order stream of account %s ended: %s", account_id,
                            type(exc).__name__)
            finally:
                with self._lock:
                    self._live.discard(account_id)
            if went_live.is_set():
                pause = STREAM_RETRY_S
            self.stop.wait(pause)
            pause = min(pause * 2, STREAM_RETRY_MAX_S)


class Worker:
    def __init__(self, container: Container) -> None:
        self.c = container
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_reconcile = 0.0
        self._last_full = 0.0  # the first pass reconciles at start
        # Scale-out: this worker's share of the trigger engine (the API processes leave
        # exits to the workers). In one process the API's own trigger book does it.
        self.triggers = WorkerTriggers() if container.role == "worker" else None
        self.streams = Streams(container, self._stop)
        self._senders = build_senders(container.settings.notifications)
        self._notifier: threading.Thread | None = None
        self._idle_stepped = float("-inf")  # when the outbox cursor was last moved for nobody
        self._last_strategies = 0.0

    def run_once(self) -> int:
        """One pass over every kind of work; returns how much it did."""
        done = apply_clock(self.c.deps) + run_due_jobs(self.c.deps) + submit_claimable(self.c.deps)
        if self.triggers is not None:
            done += self.triggers.run(self.c.deps)
        if time.monotonic() - self._last_reconcile >= RECONCILE_EVERY_S:
            self._last_reconcile = time.monotonic()
            done += (reconcile_open_orders(self.c.deps, skip_accounts=self.streams.live())
                     + resync_resting(self.c.deps))
        if time.monotonic() - self._last_full >= FULL_RECONCILE_EVERY_S or not self._last_full:
            self._last_full = time.monotonic()
            done += sum(o.updated for o in reconcile_all(self.c.deps, include_paper=False))
            self.streams.refresh()
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

    def notify_once(self) -> int:
        """Turn new audit events into deliveries, then send what is due (bounded in time)."""
        idle_step = time.monotonic() - self._idle_stepped >= IDLE_CURSOR_EVERY_S
        if idle_step:
            self._idle_stepped = time.monotonic()
        return (notifications.collect(self.c.deps, idle_step=idle_step)
                + notifications.dispatch(self.c.deps, self._senders, max_seconds=5.0))

    def notify_forever(self) -> None:
        """Notifications in their own thread: a slow receiver never holds up orders or exits."""
        poll = max(self.c.settings.worker_poll_ms / 1000, 0.5)
        while not self._stop.is_set():
            try:
                busy = self.notify_once()
            except Exception:
                log.exception("notification pass failed; retrying")
                busy = 0
            if not busy:
                self._stop.wait(poll)

    def start_notifier(self) -> None:
        self._notifier = threading.Thread(target=self.notify_forever, name="tradewire-notify",
                                          daemon=True)
        self._notifier.start()

    def stop_soon(self) -> None:
        """From a signal handler: end the loop after this pass."""
        self._stop.set()
        self.c.wake_event.set()

    def listen(self) -> None:
        """Wake on PostgreSQL notifications from the API processes (scale-out)."""
        if is_postgres(self.c.db):
            listen(self.c.db, self.c.wake_event, self._stop)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="tradewire-worker",
                                        daemon=True)
        self._thread.start()
        self.start_notifier()

    def stop(self) -> None:
        self._stop.set()
        self.c.wake_event.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._notifier is not None:
            self._notifier.join(timeout=10)
        if self.triggers is not None:
            self.triggers.release(self.c.deps)
