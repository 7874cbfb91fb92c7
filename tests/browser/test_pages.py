"""The other pages in Chromium (strategies, backtests, channels, signals), the phone width, the
screenshots the README shows, and the newcomer's path through a real `tradewire serve`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import TIMEOUT_MS, World, new_context, shot
from tests.e2e.conftest import Service, clean_env

PAGES = ["/ui", "/ui/signals", "/ui/approvals", "/ui/orders", "/ui/positions", "/ui/strategies",
         "/ui/backtests?strategy=sample", "/ui/credentials", "/ui/channels", "/ui/kill-switch"]


def test_signals_can_be_filtered_and_searched(page: Page, world: World) -> None:
    world.tick("FLTR", 5)
    kept = world.signal("FLTR", sourceId="filter-me-1")["signal"]
    page.goto("/ui/signals")
    page.get_by_label("Search").fill("filter-me")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("table", name="Signals").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-signal", kept["id"])
    page.get_by_label("Search").fill("")
    page.get_by_label("Status").select_option("executed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"status=executed"))
    for status in page.locator("tbody .badge").all_inner_texts():
        assert status == "executed"
    page.goto("/ui/signals")
    shot(page, "signals")


def test_a_strategy_is_enabled_after_a_confirmation_and_disabled_again(
        page: Page, world: World) -> None:
    page.goto("/ui/strategies")
    shot(page, "strategies")
    page.get_by_role("link", name="goog_ema_cross").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("disabled")
    page.get_by_role("button", name="Evaluate now (dry run)").click()
    expect(page.get_by_role("status").filter(has_text="Evaluated now")).to_be_visible()
    page.get_by_role("button", name="Enable").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("sends its decisions to account")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flash")).to_contain_text("enabled")
    page.get_by_role("button", name="Disable").click()
    expect(page.locator(".flash")).to_contain_text("disabled")


def test_a_backtest_draws_candles_trades_indicators_and_equity(page: Page) -> None:
    page.goto("/ui/backtests")
    page.get_by_label("Strategy", exact=True).select_option(label="goog_ema_cross (GOOG)")
    page.get_by_role("button", name="Run backtest").click()
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-drawn", "1")
    assert page.locator("#chart canvas").count() >= 3  # panes: price, equity (and axes)
    expect(page.locator("figcaption")).to_contain_text("EMA 10, EMA 30")
    expect(page.get_by_role("table", name="Trades").locator("tbody tr").first).to_contain_text(
        re.compile(r"exit_signal|stop_loss|take_profit|end_of_data"))
    shot(page, "backtest", full=True)

    page.get_by_label("Strategy, as").fill('{"name": "broken"')
    page.get_by_role("button", name="Run this strategy").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid JSON")


def test_channels_and_their_subscribers_are_listed(page: Page) -> None:
    page.goto("/ui/channels")
    expect(page.get_by_role("table", name="Channels")).to_contain_text("alpha-swing")
    expect(page.get_by_role("table", name="Subscribers")).to_contain_text("paper")
    shot(page, "channels")


def test_every_page_fits_a_phone_screen(browser: Browser, world: World,
                                        signed_in: dict[str, Any]) -> None:
    world.tick("PHON", 41.5)
    world.signal("PHON", executeMode="pending", quantity=3, metadata={"price": 41.5})
    world.tick("PHON", 42)
    ctx = new_context(browser, world, width=390, height=844, state=signed_in)
    try:
        page = ctx.new_page()
        for path in PAGES:
            page.goto(path)
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than the phone"
            if path in ("/ui", "/ui/approvals"):
                shot(page, "phone-overview" if path == "/ui" else "phone-approvals")
    finally:
        ctx.close()


def test_a_newcomer_signs_in_with_what_serve_printed_and_watches_the_readme_signal(
        browser: Browser, tmp_path: Path) -> None:
    """`make run` is `tradewire serve`: its printed credentials sign in, and the README's two
    curl commands (a price, then a signal) show up on the overview by themselves."""
    data_dir = tmp_path / "data"
    service = Service(clean_env(data_dir), tmp_path, tmp_path).start()
    ctx = browser.new_context(base_url=service.url, viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        printed = (tmp_path / "serve-1.log").read_text()
        creds = json.loads((data_dir / "initial-credentials.json").read_text())
        assert f"admin_password: {creds['admin_password']}" in printed
        page = ctx.new_page()
        page.goto("/")
        page.get_by_label("Username").fill(creds["admin_username"])
        page.get_by_label("Password").fill(creds["admin_password"])
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#live-status")).to_have_text("Live")

        headers = {"X-API-Key": creds["api_key"]}
        with httpx.Client(base_url=service.url, timeout=15, headers=headers) as api:
            assert api.post("/api/v1/market/prices",
                            json={"symbol": "AAPL", "price": 190}).status_code == 200
            r = api.post("/api/v1/signals", json={
                "symbol": "AAPL", "action": "openLong", "accountId": creds["account_id"],
                "quantity": 10, "executeMode": "immediate"})
        assert r.status_code == 201, r.text
        signal = r.json()["signal"]
        assert signal["status"] == "executed", signal  # the first account trades around the clock
        row = page.locator(f'tr[data-signal="{signal["id"]}"]')
        expect(row).to_contain_text("executed")
        expect(page.get_by_role("table", name="Open positions")
               .locator('tr[data-symbol="AAPL"]')).to_contain_text("10")
    finally:
        ctx.close()
        service.kill()
