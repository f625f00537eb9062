"""Settings › E-mail in a real browser: a bad value comes back beside its field (htmx 422), the
saved settings and the test button work, and the stored test message is on the E-mails page."""

from __future__ import annotations

import os

import pytest

from tests.factories import AGENT_PASSWORD
from tests.test_browser import browser_page, wait_settled  # noqa: F401  (the fixture)

pytestmark = pytest.mark.live


def test_an_admin_sets_up_email_in_the_browser(live_server, browser_page):  # noqa: F811
    page, errors = browser_page
    org_id, _key = live_server.new_organization()
    email = live_server.new_agent(org_id, "admin")
    base = live_server.url
    page.goto(f"{base}/settings/email")
    page.fill("#email", email)
    page.fill("#password", AGENT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/settings/email")

    page.fill("#smtp_port", "seventy")
    page.fill("#dunning_schedule", "3, 10, 30")
    page.check("#invoice_emails")
    page.click("#mail-settings-form button[type=submit]")
    wait_settled(page)
    assert page.locator("#field-smtp_port .field-error").inner_text() == (
        "Enter a port number between 1 and 65535."
    )
    assert page.input_value("#dunning_schedule") == "3, 10, 30"  # kept for the correction

    page.fill("#smtp_port", "")
    page.click("#mail-settings-form button[type=submit]")
    page.wait_for_url(f"{base}/settings/email")
    wait_settled(page)
    assert "E-mail settings saved" in page.inner_text("main")
    assert page.input_value("#dunning_schedule") == "3, 10, 30"

    page.click("#mail-test-form button[type=submit]")
    wait_settled(page)
    assert "stored on the E-mails page, not sent" in page.inner_text("#mail-settings")
    if os.environ.get("LEDGERLINE_SCREENSHOTS"):
        page.screenshot(path=os.environ["LEDGERLINE_SCREENSHOTS"] + "/settings-mail.png")

    page.click("nav.sidebar >> text=E-mails")
    page.wait_for_url(f"{base}/emails")
    assert "stored, not sent" in page.inner_text("#email-table").lower()
    if os.environ.get("LEDGERLINE_SCREENSHOTS"):
        page.screenshot(path=os.environ["LEDGERLINE_SCREENSHOTS"] + "/emails.png")
    # the refused form answers 422 by design; nothing else may fail (CSP included)
    assert [e for e in errors if "422" not in e] == []
