"""Recording a payment in a real browser (Debian's Chromium driven by Playwright): from the
invoice page, the form prefilled with what is due, a too-large amount refused next to its
field, then a partial payment listed on the invoice with what is left due. SQLite only, like
tests/test_browser.py, whose browser fixture and skip rules this file shares."""

from __future__ import annotations

import os

from billing.models import Organization
from extensions import db
from tests.factories import AGENT_PASSWORD
from tests.test_browser import browser_page, pytestmark, wait_settled  # noqa: F401
from tests.test_payments import one_off_invoice

#: where to leave screenshots for a look (unset: none are taken)
SHOTS = os.environ.get("LEDGERLINE_SCREENSHOTS")


def test_an_agent_records_a_partial_payment_in_the_browser(live_server, browser_page):  # noqa: F811
    page, errors = browser_page
    org_id, _key = live_server.new_organization()
    email = live_server.new_agent(org_id, "support")
    with live_server.app.app_context():
        organization = db.session.get_one(Organization, org_id)
        invoice = one_off_invoice(organization, 12000)
        invoice_id, number = invoice.lago_id, invoice.number
    base = live_server.url

    page.goto(f"{base}/invoices/{invoice_id}")
    page.fill("#email", email)
    page.fill("#password", AGENT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/invoices/{invoice_id}")
    page.click("text=Record payment")
    page.wait_for_url(f"{base}/invoices/{invoice_id}/payments/new")
    assert page.input_value("#amount") == "120.00"

    # Too much: refused next to the amount, what was typed kept.
    page.fill("#amount", "130")
    page.fill("#reference", "TRX-77")
    page.click("button.button-primary")
    page.wait_for_selector("#amount-error")
    wait_settled(page)
    assert "More than is due on this invoice (€120.00)." in page.inner_text("#amount-error")
    assert page.input_value("#amount") == "130"
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/payment-form-error.png", full_page=True)

    page.fill("#amount", "45.50")
    page.select_option("#method", "check")
    page.click("button.button-primary")
    page.wait_for_url(f"{base}/invoices/{invoice_id}")
    payments = page.inner_text("#invoice-payments")
    assert "TRX-77" in payments and "Cheque" in page.inner_text("#invoice-payments")
    assert "€45.50" in payments
    assert "€74.50" in page.inner_text(".invoice-totals .due")
    assert f"recorded on {number}" in page.inner_text("body")
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/invoice-payments.png", full_page=True)
    assert [e for e in errors if "422" not in e] == []
