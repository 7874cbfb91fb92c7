"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, against
a real server on loopback. One server and one browser serve the whole module set; each test
uses its own symbols, so tests do not depend on one another's state.

The world is what `make run` makes on a first start (`accounts.bootstrap`: an admin, a paper
account on XNYS, an API key), on a clock that stands still during a trading session, plus the
sample GOOG bars, a stored strategy and a partner channel, so every page has something to show.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import backtesting.test
import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.support import HOOKS, Server, make_container
from tradewire.adapters.clock import ManualClock
from tradewire.adapters.formats import bars as bars_format
from tradewire.bootstrap import Container
from tradewire.domain.accounts import ALL_SCOPES, Principal
from tradewire.services import accounts, capabilities, channels, strategy_store
from tradewire.services.dashboard_setup import SAMPLE_STRATEGY
from tradewire.services.market_data import import_bars

CHROMIUM = os.environ.get("TRADEWIRE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-dev-shm-usage"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TIMEOUT_MS = 10_000  # every wait in a browser test is bounded by this
OPEN = datetime(2026, 2, 6, 15, 0, tzinfo=UTC)  # a Friday, 10:00 in New York: XNYS is open


expect.set_options(timeout=TIMEOUT_MS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's Chromium through Playwright "
                                       "(`make test` installs it)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


class SteppingClock(ManualClock):
    """A clock that stands still between tests but moves a little on every reading, as a real
    one does: stage times and latencies come out as they would, and the same on every run."""

    step = timedelta(microseconds=700)

    def now(self) -> datetime:
        with self._lock:
            self._now += self.step
            return self._now


@dataclass
class World:
    container: Container
    server: Server
    clock: ManualClock
    username: str
    password: str
    account_id: str
    api_key: str

    @property
    def url(self) -> str:
        return self.server.url

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15, event_hooks=HOOKS,
                            headers={"X-API-Key": self.api_key})

    def tick(self, symbol: str, price: float) -> None:
        self.clock.advance(timedelta(seconds=1))
        with self.api() as api:
            r = api.post("/api/v1/market/prices", json={"symbol": symbol, "price": price})
            assert r.status_code == 200, r.text

    def signal(self, symbol: str, **fields: Any) -> dict[str, Any]:
        """A signal through the API, as the README sends it; answers the API's JSON."""
        self.clock.advance(timedelta(seconds=1))
        body = {"symbol": symbol, "action": "openLong", "accountId": self.account_id,
                "quantity": 10, "executeMode": "immediate", **fields}
        with self.api() as api:
            r = api.post("/api/v1/signals", json=body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())


def _furnish(c: Container, admin_id: str, account_id: str) -> None:
    """What makes every page worth a screenshot: bars, a strategy, a channel with a follower."""
    folder = Path(backtesting.test.__file__).parent
    import_bars("GOOG", "1d", bars_format.parse_csv((folder / "GOOG.csv").read_text()), c.deps)
    admin = Principal(user_id=admin_id, is_admin=True, scopes=ALL_SCOPES)
    strategy_store.create({**SAMPLE_STRATEGY, "account_id": account_id}, admin, c.deps)
    partner, _ = capabilities.create_partner("Alpha Signals", c.deps, c.secrets)
    channel, _ = channels.create_channel(partner.id, "alpha-swing", c.deps, c.secrets)
    channels.subscribe(channel.id, account_id, c.deps, allocation=Decimal(1000))


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("browser")
    clock = SteppingClock(OPEN)
    c = make_container(f"sqlite:///{tmp / 'tw.db'}", tmp / "data", clock)
    first = accounts.bootstrap(c.deps, c.secrets)
    assert first.admin_password and first.account_id and first.api_key
    with c.deps.uow(write=False) as uow:
        admin = uow.users.by_username("admin")
    _furnish(c, admin.id, first.account_id)
    try:
        with Server(c) as server:
            yield World(c, server, clock, "admin", first.admin_password, first.account_id,
                        first.api_key)
    finally:
        c.close()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run `make browser` "
                    "(apt-get install chromium), which `make test` does by itself")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True,
                                   timeout=30_000)
    yield b
    b.close()


def new_context(browser: Browser, world: World, *, width: int = 1280, height: int = 860,
                state: dict[str, Any] | None = None) -> BrowserContext:
    context = browser.new_context(base_url=world.url, viewport={"width": width, "height": height},
                                  locale="en-GB", timezone_id="UTC", color_scheme="light",
                                  reduced_motion="reduce", storage_state=state)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context


def sign_in(page: Page, world: World) -> None:
    page.goto("/ui/login")
    page.get_by_label("Username").fill(world.username)
    page.get_by_label("Password").fill(world.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui")


@pytest.fixture(scope="package")
def signed_in(browser: Browser, world: World) -> dict[str, Any]:
    """The admin's session cookie, signed in once through the form (argon2 is slow on purpose)."""
    ctx = new_context(browser, world)
    sign_in(ctx.new_page(), world)
    state = ctx.storage_state()
    ctx.close()
    return dict(state)


@pytest.fixture
def context(browser: Browser, world: World) -> Iterator[BrowserContext]:
    """A fresh browser profile, signed out."""
    ctx = new_context(browser, world)
    yield ctx
    ctx.close()


@pytest.fixture
def page(browser: Browser, world: World, signed_in: dict[str, Any]) -> Iterator[Page]:
    """The signed-in admin's page, on the overview; a script error on any page fails the test."""
    ctx = new_context(browser, world, state=signed_in)
    p = ctx.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    # Pages answered 4xx on purpose log "Failed to load resource"; a missing asset is caught below.
    p.on("console", lambda msg: errors.append(msg.text)
         if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    p.on("response", lambda r: errors.append(f"{r.status} {r.url}")
         if "/ui/static/" in r.url and r.status >= 400 else None)
    p.goto("/ui")
    yield p
    ctx.close()
    assert errors == [], errors


def shot(page: Page, name: str, *, full: bool = False) -> None:
    """A screenshot for the README (the toasts, which come and go, are left out)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.add_style_tag(content=".toasts { display: none !important; }")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full, animations="disabled")
