"""What a trader does on the dashboard, in Chromium: sign in, approve, watch positions move
live, close and cancel with a confirmation, create and revoke credentials, halt trading."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.browser.conftest import World, shot
from tradewire.services import risk


def test_signing_in_with_the_printed_credentials_shows_the_overview(
        context: BrowserContext, world: World) -> None:
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("Username").fill(world.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Password")).to_be_focused()
    page.get_by_label("Password").fill(world.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.get_by_role("table", name="Accounts")).to_contain_text("paper")
    expect(page.locator("#live-status")).to_have_text("Live")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.goto("/ui/positions")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fpositions"))


def test_approving_a_pending_signal_sends_it_and_shows_its_fill(page: Page, world: World) -> None:
    world.tick("APRV", 98)
    signal = world.signal("APRV", executeMode="pending", metadata={"price": 98})["signal"]
    world.tick("APRV", 100)
    page.goto("/ui/approvals")
    card = page.locator(f'article[data-signal="{signal["id"]}"]')
    expect(card).to_contain_text("openLong 10 APRV")
    expect(card.locator('[data-field="last-price"]')).to_have_text("100.0000")
    expect(card.locator('[data-field="move"]')).to_have_text("+2.04%")  # since the alert's 98
    shot(page, "approvals")

    card.get_by_role("button", name="Approve").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Approve openLong 10 APRV at market? Last price 100.0000 "
                                   "(+2.04% since alert price)")
    dialog.get_by_role("button", name="Confirm").click()

    page.wait_for_url(f"**/ui/signals/{signal['id']}")
    expect(page.locator(".flash")).to_contain_text("Approved openLong 10 APRV, order filled.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("executed")
    fills = page.get_by_role("table", name="Fills of this order")
    expect(fills).to_contain_text("100.0000")
    expect(page.locator("ol.timeline")).to_contain_text("SignalQueued")
    expect(page.locator("ol.timeline")).to_contain_text("OrderFilled")
    shot(page, "signal-timeline", full=True)


def test_rejecting_by_keyboard_asks_first_and_escape_changes_nothing(
        page: Page, world: World) -> None:
    world.tick("RJCT", 40)
    signal = world.signal("RJCT", executeMode="pending")["signal"]
    page.goto("/ui/approvals")
    card = page.locator(f'article[data-signal="{signal["id"]}"]')
    reject = card.get_by_role("button", name="Reject")
    reject.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Reject openLong 10 RJCT? It will never be sent.")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(reject).to_be_focused()
    expect(card).to_be_visible()

    page.keyboard.press("Enter")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Confirm")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Rejected openLong RJCT")
    expect(page.locator(f'article[data-signal="{signal["id"]}"]')).to_have_count(0)
    with world.api() as api:
        stored = api.get(f"/api/v1/signals/{signal['id']}").json()["signal"]
    assert stored["status"] == "cancelled"
    assert stored["statusReason"] == "rejected on the dashboard by admin"


def test_a_refresh_arriving_during_a_confirmation_leaves_its_form_to_submit(
        page: Page, world: World) -> None:
    """A live refresh that was on its way when the dialog opened must not replace the form
    the dialog will submit: confirming then sends the rejection."""
    world.tick("RACE", 40)
    world.tick("OTHR", 10)
    signal = world.signal("RACE", executeMode="pending")["signal"]
    page.goto("/ui/approvals")
    expect(page.locator("#live-status")).to_have_text("Live")
    held: list[Route] = []

    def hold(route: Route) -> None:  # the refresh waits until released
        held.append(route)

    page.route("**/ui/panels/approvals", hold)
    world.signal("OTHR")  # another signal's events: the list refreshes itself
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, f"no refresh of the approvals was asked for: {page.evaluate('window.twLive')}"
    card = page.locator(f'article[data-signal="{signal["id"]}"]')
    card.get_by_role("button", name="Reject").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    with page.expect_request_finished(lambda r: r.url.endswith("/ui/panels/approvals")):
        held[0].continue_()
    page.evaluate("() => new Promise(done => setTimeout(done, 50))")  # its answer handled
    page.unroute("**/ui/panels/approvals")
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Confirm")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Rejected openLong RACE")
    with world.api() as api:
        assert api.get(f"/api/v1/signals/{signal['id']}").json()["signal"]["status"] == "cancelled"


def test_a_position_updates_live_when_a_price_tick_arrives(page: Page, world: World) -> None:
    world.tick("LIVE", 50)
    assert world.signal("LIVE")["signal"]["status"] == "executed"
    page.goto("/ui/positions")
    row = page.locator('tr[data-symbol="LIVE"]')
    expect(row.locator('[data-field="last-price"]')).to_have_text("50.0000")
    expect(page.locator("#live-status")).to_have_text("Live")
    page.evaluate("window.sameDocument = true")

    world.tick("LIVE", 55.5)
    expect(row.locator('[data-field="last-price"]')).to_have_text("55.5000")
    expect(row.locator('[data-field="unrealized"]')).to_have_text("+55.00")
    assert page.evaluate("window.sameDocument") is True  # updated in place, not reloaded
    shot(page, "positions")


def test_new_signals_and_fills_appear_on_the_overview_without_reloading(
        page: Page, world: World) -> None:
    world.tick("NEWS", 20)
    expect(page.locator("#live-status")).to_have_text("Live")
    page.evaluate("window.sameDocument = true")
    signal = world.signal("NEWS", quantity=5)["signal"]
    row = page.locator(f'tr[data-signal="{signal["id"]}"]')
    expect(row).to_contain_text("executed")
    expect(page.get_by_role("table", name="Open positions").locator('tr[data-symbol="NEWS"]')
           ).to_contain_text("5")
    expect(page.locator(".toast").first).to_be_visible()
    assert page.evaluate("window.sameDocument") is True
    shot(page, "overview", full=True)


def test_closing_a_position_and_cancelling_an_order_each_ask_first(
        page: Page, world: World) -> None:
    world.tick("CLSE", 30)
    world.signal("CLSE")
    resting = world.signal("CLSE", quantity=1, orderType="limit", limitPrice=10)["signal"]
    assert resting["status"] == "executed"  # accepted by the broker, resting below the price

    page.goto("/ui/orders?symbol=CLSE")
    order_row = page.locator("tr[data-order]", has_text="limit")
    cancel = order_row.get_by_role("button", name=re.compile("^Cancel order"))
    cancel.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Cancel buy 1 CLSE (limit, 0 filled so far)?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(order_row).to_contain_text("accepted")
    cancel.click()
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flash")).to_contain_text("Order CLSE buy 1: canceled.")
    shot(page, "orders")

    page.goto("/ui/positions")
    row = page.locator('tr[data-symbol="CLSE"]')
    row.get_by_role("button", name="Close CLSE position").click()
    expect(dialog).to_contain_text("Close 10 CLSE (long) at market")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.locator(".flash")).to_contain_text("Closing 10 CLSE: signal executed, order filled.")
    expect(page.locator('tr[data-symbol="CLSE"]')).to_have_count(0)


def test_an_api_key_made_on_the_dashboard_works_until_it_is_revoked(
        page: Page, world: World) -> None:
    page.goto("/ui/credentials")
    page.get_by_label("market:write").uncheck()
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("New API key", exact=True).input_value()
    assert len(secret) > 30
    prefix = "_".join(secret.split("_")[:2])  # "tw_" and 8 hex digits, as the list shows it
    with httpx.Client(base_url=world.url, timeout=15) as api:
        assert api.get("/api/v1/accounts", headers={"X-API-Key": secret}).status_code == 200
        r = api.post("/api/v1/market/prices", json={"symbol": "X", "price": 1},
                     headers={"X-API-Key": secret})
        assert r.status_code == 403  # the scope left out

        page.goto("/ui/credentials")  # shown once: not on the page any more
        expect(page.get_by_label("New API key", exact=True)).to_have_count(0)
        row = page.locator("tr[data-key]", has_text=prefix)
        row.get_by_role("button", name=f"Revoke key {prefix}").click()
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(page.locator(".flash")).to_contain_text("The API key was revoked")
        expect(page.locator("tr[data-key]", has_text=prefix)).to_contain_text("revoked")
        assert api.get("/api/v1/accounts", headers={"X-API-Key": secret}).status_code == 401
    shot(page, "credentials", full=True)


def test_an_access_token_webhook_url_takes_alerts_until_it_is_revoked(
        page: Page, world: World) -> None:
    world.tick("TOKN", 12)
    page.goto("/ui/credentials")
    page.get_by_role("button", name="Create token").click()
    url = page.get_by_role("textbox", name=re.compile("^Webhook URL")).input_value()
    assert url.startswith(f"{world.url}/signal/execute-via-token/twat_")
    message = page.get_by_label("TradingView alert message").input_value()
    assert '"ticker": "{{ticker}}"' in message
    alert = {"ticker": "TOKN", "action": "buy", "quantity": "2", "price": "12"}
    with httpx.Client(timeout=15) as client:
        r = client.post(url, content=str(alert).replace("'", '"'),
                        headers={"Content-Type": "text/plain"})
        assert r.status_code in (200, 201), r.text
        prefix = url.rsplit("/", 1)[1][:12]
        page.goto("/ui/credentials")
        page.get_by_role("button", name=f"Revoke token {prefix}").click()
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(page.locator(".flash")).to_contain_text("access token was revoked")
        r = client.post(url, content=str(alert).replace("'", '"'),
                        headers={"Content-Type": "text/plain"})
        assert r.status_code in (401, 403, 404), r.text


def test_the_kill_switch_halts_new_entries_until_trading_resumes(
        page: Page, world: World) -> None:
    try:
        page.goto("/ui/kill-switch")
        page.get_by_role("button", name="Halt all trading").click()
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("alert").filter(has_text="Trading is halted")).to_be_visible()
        shot(page, "kill-switch")
        world.tick("HALT", 10)
        with world.api() as api:
            r = api.post("/api/v1/signals", json={
                "symbol": "HALT", "action": "openLong", "accountId": world.account_id,
                "quantity": 1, "executeMode": "immediate"})
        assert r.status_code == 400 and r.json()["code"] == "SIGNAL_REJECTED", r.text
        page.get_by_role("button", name="Resume trading").click()
        page.get_by_role("dialog").get_by_role("button", name="Confirm").click()
        expect(page.locator(".flash")).to_contain_text("Trading resumed")
        expect(page.get_by_role("alert").filter(has_text="Trading is halted")).to_have_count(0)
    finally:
        risk.set_global_halt(False, world.container.deps)
