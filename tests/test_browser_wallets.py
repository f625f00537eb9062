"""The wallet section in a real browser: a refused form comes back with its error in place,
then a wallet is created, topped up and terminated through htmx, with no console error (the
strict CSP included)."""

from __future__ import annotations

import pytest

from tests.factories import AGENT_PASSWORD
from tests.test_browser import browser_page, wait_settled  # noqa: F401  (the fixture)

pytestmark = pytest.mark.live


def test_an_agent_manages_a_wallet(live_server, browser_page):  # noqa: F811
    page, errors = browser_page
    org_id, _key = live_server.new_organization()
    email = live_server.new_agent(org_id, "admin")
    live_server.seed(org_id, [{"external_id": "initech", "name": "Initech SAS", "currency": "EUR"}])
    base = live_server.url
    page.goto(f"{base}/customers")
    page.fill("#email", email)
    page.fill("#password", AGENT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/customers")
    page.click("text=Initech SAS")
    page.click("text=Wallet & coupons")
    page.wait_for_selector("#customer-wallet")
    wait_settled(page)

    page.fill("#rate_amount", "0")
    page.click("text=Create wallet")
    page.wait_for_selector("text=A credit must be worth more than 0.")
    page.fill("#rate_amount", "1.5")
    page.fill("#granted_credits", "20")
    page.fill("#paid_credits", "10")
    page.click("text=Create wallet")
    page.wait_for_selector("text=Wallet created.")
    assert "€30.00" in page.inner_text(".wallet-balance")
    page.fill("#granted_credits", "5")
    page.click("text=Add credits")
    page.wait_for_selector("text=Credits added.")
    assert "€37.50" in page.inner_text(".wallet-balance")
    assert page.locator(".wallet-transactions tbody tr").count() == 3
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("text=Terminate…")
    page.wait_for_selector("text=Wallet terminated.")

    assert [e for e in errors if "422" not in e] == []
