"""A one-off invoice in a real browser: add-on lines added with htmx, the live total following
every change (a new line, a quantity, a removed line), then the finalized invoice's page."""

from __future__ import annotations

import re

import pytest

from billing.models import Organization
from billing.services.add_ons import create_add_on
from extensions import db
from tests.factories import AGENT_PASSWORD, TEST_ACTOR
from tests.test_browser import browser_page, pytestmark, wait_settled  # noqa: F401 (fixture and marks)

expect = pytest.importorskip("playwright.sync_api").expect


def test_one_off_invoice_with_a_live_total(live_server, browser_page):  # noqa: F811
    page, errors = browser_page
    org_id, _key = live_server.new_organization()
    email = live_server.new_agent(org_id, "support")
    live_server.seed(org_id, [{"external_id": "globex", "name": "Globex GmbH", "currency": "EUR"}])
    with live_server.app.app_context():
        organization = db.session.get_one(Organization, org_id)
        for name, code, cents in (("Onboarding", "onboarding", 49000),
                                  ("Priority support", "support", 15000)):  # fmt: skip
            create_add_on(
                organization,
                {"name": name, "code": code, "amount_cents": cents, "amount_currency": "EUR"},
                TEST_ACTOR,
            )
        db.session.commit()
    base = live_server.url

    page.goto(f"{base}/customers")
    page.fill("#email", email)
    page.fill("#password", AGENT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/customers")
    page.click("text=Globex GmbH")
    page.click("summary:has-text('Actions')")
    page.click("text=One-off invoice")
    page.wait_for_url(re.compile(r"/one-off-invoice$"))

    total = "#one-off-total"
    page.select_option("select[name='fees-0-add_on']", label="Onboarding (€490.00)")
    expect(page.locator(total)).to_contain_text("€490.00")
    page.click("#add-one-off-line")
    page.wait_for_selector("select[name='fees-1-add_on']")
    wait_settled(page)
    page.select_option("select[name='fees-1-add_on']", label="Priority support (€150.00)")
    page.fill("input[name='fees-1-units']", "2.5")
    expect(page.locator(total)).to_contain_text("€865.00")
    page.click("#add-one-off-line")
    page.wait_for_selector("select[name='fees-2-add_on']")
    wait_settled(page)
    page.select_option("select[name='fees-2-add_on']", label="Onboarding (€490.00)")
    expect(page.locator(total)).to_contain_text("€1,355.00")
    page.locator("tr.one-off-line").nth(2).locator("[data-remove-row]").click()
    expect(page.locator(total)).to_contain_text("€865.00")

    # A bad quantity is refused next to its field; fixed, the invoice is created and shown.
    page.fill("input[name='fees-1-units']", "-1")
    page.click("text=Create and finalize invoice")
    page.wait_for_selector(".one-off-line .field-error")
    page.fill("input[name='fees-1-units']", "2.5")
    page.click("text=Create and finalize invoice")
    page.wait_for_url(re.compile(r"/invoices/[0-9a-f-]{36}$"))
    assert "€865.00" in page.inner_text(".invoice-total")
    assert "One-off (add-ons)" in page.inner_text("#invoice-detail")

    # The refused form answers 422 by design; nothing else may fail (CSP included).
    assert [e for e in errors if "422" not in e] == []
