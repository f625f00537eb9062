"""The catalog in a real browser (Debian's Chromium driven by Playwright): an admin sets up a
metric with a filter and a plan pricing it with tiers and a charge filter. SQLite only, like
tests/test_browser.py, whose browser fixture and skip rules this file shares."""

from __future__ import annotations

import re

from tests.factories import AGENT_PASSWORD
from tests.test_browser import browser_page, pytestmark, wait_settled  # noqa: F401 (fixture and marks)


def test_an_admin_prices_a_metric_with_tiers_and_a_filter(live_server, browser_page):  # noqa: F811
    page, errors = browser_page
    org_id, _key = live_server.new_organization()
    email = live_server.new_agent(org_id, "admin")
    base = live_server.url

    # A metric with a filter.
    page.goto(f"{base}/billable-metrics/new")
    page.fill("#email", email)
    page.fill("#password", AGENT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/billable-metrics/new")
    page.fill("#name", "Compute hours")
    page.fill("#code", "compute_hours")
    page.select_option("#aggregation_type", "sum_agg")
    page.fill("#field_name", "hours")
    page.click("#add-metric-filter")
    page.fill("input[name='filters-0-key']", "region")
    page.fill("input[name='filters-0-values']", "eu, us")
    page.click("text=Create metric")
    page.wait_for_url(re.compile(r"/billable-metrics/[0-9a-f-]{36}$"))
    assert "region" in page.inner_text("main")

    # A plan with a graduated charge on it: two tiers, and a dearer price in the EU.
    page.goto(f"{base}/plans/new")
    page.fill("#name", "Compute")
    page.fill("#code", "compute")
    page.select_option("#amount_currency", "EUR")
    page.fill("#amount", "10")
    page.click("#add-charge")
    page.wait_for_selector("#charge-0")
    wait_settled(page)
    page.select_option("#charges-0-billable_metric_id", label="Compute hours (compute_hours)")
    page.wait_for_selector("#add-filter-0")  # the row re-rendered for the metric's filters
    wait_settled(page)
    page.select_option("#charges-0-charge_model", "graduated")
    page.wait_for_selector("input[name='charges-0-tiers-0-per_unit_amount']")
    wait_settled(page)
    page.fill("input[name='charges-0-tiers-0-to_value']", "100")
    page.fill("input[name='charges-0-tiers-0-per_unit_amount']", "0.02")
    page.click("#charge-0 > .charge-properties button:has-text('+ Add tier')")
    page.wait_for_selector("input[name='charges-0-tiers-1-from_value'][value='101']")
    wait_settled(page)
    page.fill("input[name='charges-0-tiers-1-per_unit_amount']", "0.01")
    page.click("#add-filter-0")
    page.wait_for_selector("#charge-0-filter-0")
    wait_settled(page)
    page.check("#charge-0-filter-0 input[name='charges-0-filters-0-values-region'][value='eu']")
    page.fill("#charges-0-filters-0-invoice_display_name", "Compute, EU")
    page.fill("input[name='charges-0-filters-0-tiers-0-per_unit_amount']", "0.03")
    page.click("text=Create plan")
    page.wait_for_url(re.compile(r"/plans/[0-9a-f-]{36}$"))

    charges = page.inner_text(".charge-table")
    assert "Graduated" in charges
    assert re.search(r"0 – 100\s+0\.02 EUR", charges)
    assert re.search(r"101 and more\s+0\.01 EUR", charges)
    line = page.inner_text(".charge-filter-line")
    assert "region" in line and "eu" in line and "0.03 EUR" in line and "Compute, EU" in line

    assert errors == []
