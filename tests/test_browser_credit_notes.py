"""A credit note in a real browser (Debian's Chromium driven by Playwright): from the invoice
page, amounts typed per fee update the estimate live, a bad amount is refused next to its fee,
then the credit note is created and voided. SQLite only, like tests/test_browser.py, whose
browser fixture and skip rules this file shares."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update

from billing.models import Invoice, Organization, Subscription
from billing.services import invoicing
from extensions import db
from tests import factories
from tests.factories import AGENT_PASSWORD
from tests.test_browser import browser_page, pytestmark  # noqa: F401 (fixture and marks)


def test_an_agent_credits_an_invoice_in_the_browser(live_server, browser_page):  # noqa: F811
    page, errors = browser_page
    org_id, _key = live_server.new_organization()
    email = live_server.new_agent(org_id, "admin")
    with live_server.app.app_context():
        organization = db.session.get_one(Organization, org_id)
        customer = factories.make_customer(organization, name="Acme", currency="EUR")
        plan = factories.make_plan(organization, charges=[], name="Starter")
        factories.make_subscription(
            organization, customer, plan, subscription_at="2024-01-01T00:00:00Z"
        )
        invoicing.close_periods(datetime(2024, 2, 1, 0, 1, tzinfo=UTC), organization_id=org_id)
        db.session.execute(
            update(Subscription)
            .where(Subscription.organization_id == org_id)
            .values(next_invoice_at=datetime(2999, 1, 1, tzinfo=UTC))
        )
        db.session.commit()
        invoice = db.session.scalars(select(Invoice).where(Invoice.organization_id == org_id)).one()
        invoice_id, number = invoice.lago_id, invoice.number
    base = live_server.url

    page.goto(f"{base}/invoices/{invoice_id}")
    page.fill("#email", email)
    page.fill("#password", AGENT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/invoices/{invoice_id}")
    page.click("text=Create credit note")
    page.wait_for_url(f"{base}/invoices/{invoice_id}/credit-notes/new")

    # The estimate follows what is typed, and only it is swapped.
    amount = page.locator("input.amount-input").first
    amount.fill("2.5")
    page.locator("#credit-note-estimate", has_text="€2.50").wait_for()
    assert page.locator("#credit-note-form input.amount-input").count() == 1

    # Too much: the form comes back with the error next to the fee, the amount kept.
    amount.fill("10.01")
    page.click("button.button-primary")
    page.wait_for_selector(".field-error")
    assert "More than what is left to credit on this fee." in page.inner_text(".field-error")
    assert page.locator("input.amount-input").first.input_value() == "10.01"

    page.locator("input.amount-input").first.fill("4")
    page.select_option("#reason", "product_unsatisfactory")
    page.click("button.button-primary")
    page.wait_for_selector("#credit-note-detail")
    assert f"{number}-CN001" in page.inner_text("h1")
    assert "Credit note " in page.inner_text("body")

    # Void, confirmed in the browser's dialog.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("text=Void…")
    page.wait_for_selector("text=voided.")
    assert "credit voided" in page.inner_text("#credit-note-detail").lower()
    assert [e for e in errors if "422" not in e] == []
