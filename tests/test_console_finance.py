"""Finance in the console: the customer list's overdue badge and filter (and a saved view of
it), the finance dashboard and the customer's Analytics tab, for every role."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from billing.models import Invoice, SavedView
from billing.services import credit_notes
from extensions import db
from tests import factories
from tests.factories import TEST_ACTOR
from tests.test_analytics import add_invoice, running

#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


def row_of(page, name):
    """The list row (or review table row) that names `name`."""
    for row in re.findall(r"<tr[ >].*?</tr>", page.text, re.S):
        if f">{name}<" in row:
            return row
    return None


def test_the_list_marks_and_filters_customers_with_overdue_invoices(agent_client, org):
    acme = factories.make_customer(org, name="Acme", currency="EUR")
    globex = factories.make_customer(org, name="Globex", currency="EUR")
    factories.make_customer(org, name="Initech", currency="EUR")
    add_invoice(org, acme, "2024-01-01", 1000, due="2024-01-31", overdue=True)
    add_invoice(org, globex, "2024-01-01", 900, due="2024-01-31", overdue=True, status="voided")
    add_invoice(org, globex, "2024-01-01", 800, due="2099-01-31")

    page = agent_client.get("/customers")
    assert "Overdue</span>" in row_of(page, "Acme")
    assert "Overdue</span>" not in row_of(page, "Globex")
    assert "Overdue</span>" not in row_of(page, "Initech")

    only = agent_client.get("/customers?overdue=1")
    assert "1 customer<" in only.text
    assert row_of(only, "Acme") and not row_of(only, "Globex") and not row_of(only, "Initech")
    assert re.search(r'name="overdue" value="1" class="filter-input" checked', only.text)
    swapped = agent_client.get("/customers?overdue=1", htmx=True)
    assert swapped.text.lstrip().startswith('<section id="customer-table"')
    assert row_of(swapped, "Acme") and not row_of(swapped, "Globex")

    saved = agent_client.post("/views", data={"name": "Overdue", "query": "overdue=1"})
    assert saved.headers["Location"] == "/customers?overdue=1"
    panel = agent_client.get("/views", htmx=True)
    assert re.search(r'overdue=1">Overdue</a>\s*<span class="count">1</span>', panel.text)
    view = factories.db_scalar(select(SavedView).where(SavedView.agent_id == agent_client.agent.id))
    assert view.query == "overdue=1"


def finance_data(org):
    """Acme: 10 € a month, January paid (35.50 €), February overdue (12.34 €), a draft in its
    grace period; Globex: a failed payment in March (7 €)."""
    acme = factories.make_customer(org, name="Acme", currency="EUR")
    globex = factories.make_customer(org, name="Globex", currency="EUR")
    running(org, acme, "monthly", 1000, "2024-01-01T00:00:00")
    plan = factories.make_plan(org, charges=None)
    calls = plan.charges[0]
    add_invoice(org, acme, "2024-01-31", 3550, payment_status="succeeded", usage=((calls, 2550),))
    overdue = add_invoice(org, acme, "2024-02-29", 1234, due="2024-03-05", overdue=True,
                          usage=((calls, 234),))  # fmt: skip
    draft = add_invoice(org, acme, "2024-03-14", 999, status="draft")
    draft.grace_period_ends_at = datetime(2024, 3, 17, tzinfo=UTC)
    failed = add_invoice(org, globex, "2024-03-01", 700, payment_status="failed")
    for invoice, number in ((overdue, "ACME-002"), (draft, "ACME-DRAFT"), (failed, "GLOB-001")):
        invoice.number = number
    db.session.commit()
    return acme, globex, calls.billable_metric.code


@pytest.mark.parametrize("role", ["admin", "support", "viewer"])
def test_the_finance_dashboard_shows_mrr_revenue_overdue_and_invoices_to_review(
    make_agent_client, org, clock, role
):
    finance_data(org)
    client = make_agent_client(role)

    page = client.get("/finance")

    assert page.status_code == 200
    assert 'aria-current="page">Finance</a>' in page.text
    assert re.search(r"MRR \(EUR\)</span>\s*<span class=\"card-value\">€10.00<", page.text)
    revenue = re.search(r'<table[^>]*id="gross-revenue".*?</table>', page.text, re.S)[0]
    rows = re.findall(r"<td>(\w+ \d{4})</td><td>(\d+)</td><td class=\"amount\">(.*?)</td>", revenue)
    assert rows == [
        ("March 2024", "1", "€7.00"),
        ("February 2024", "1", "€12.34"),
        ("January 2024", "1", "€35.50"),
    ]
    overdue = re.search(r'<table[^>]*id="overdue-balance".*?</table>', page.text, re.S)[0]
    assert re.findall(r"<td>(\w+ \d{4})</td><td>(\d+)</td><td class=\"amount\">(.*?)</td>",
                      overdue) == [("March 2024", "1", "€12.34")]  # fmt: skip
    assert "Drafts in their grace period (1)" in page.text
    assert "Overdue (1)" in page.text and "Failed payments (1)" in page.text
    for number, when, day in [
        ("ACME-DRAFT", "finalizes", "2024-03-17"),
        ("ACME-002", "due", "2024-03-05"),
        ("GLOB-001", "due", "2024-03-01"),
    ]:
        row = row_of(page, number)
        assert row is not None and re.search(rf"<td>{when} (<time[^>]*>)?{day}", row), number
        assert re.search(rf'href="/invoices/[0-9a-f-]+">{number}</a>', row)
    assert 'class="usage-chart-svg"' in page.text
    # the strict CSP: no inline script or style
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None
    assert " style=" not in page.text


def test_the_finance_dashboards_revenue_is_net_of_refunds(agent_client, org, clock):
    acme, _globex, _code = finance_data(org)
    january = db.session.scalars(
        select(Invoice).where(Invoice.customer_id == acme.id, Invoice.total_amount_cents == 3550)
    ).one()
    fee = january.fees[0]
    note = {"invoice_id": str(january.lago_id), "reason": "other", "refund_amount_cents": 500,
            "items": [{"fee_id": str(fee.lago_id), "amount_cents": 500}]}  # fmt: skip
    credit_notes.create_credit_note(january, note, TEST_ACTOR)  # issued in March
    db.session.commit()

    page = agent_client.get("/finance")

    revenue = re.search(r'<table[^>]*id="gross-revenue".*?</table>', page.text, re.S)[0]
    rows = re.findall(r"<td>(\w+ \d{4})</td><td>(\d+)</td><td class=\"amount\">(.*?)</td>", revenue)
    assert rows[0] == ("March 2024", "1", "€2.00") and rows[2] == ("January 2024", "1", "€35.50")
    tab = agent_client.get(f"/customers/{acme.lago_id}/analytics", htmx=True)
    assert re.search(r"<td>March 2024</td><td>0</td><td class=\"amount\">-€5.00</td>", tab.text)


def test_the_finance_dashboard_of_a_new_organization_is_empty(agent_client):
    page = agent_client.get("/finance")
    assert page.status_code == 200
    assert "Nothing overdue." in page.text
    assert "No finalized invoice in the last 12 months." in page.text


@pytest.mark.parametrize("role", ["admin", "support", "viewer"])
def test_the_analytics_tab_charts_revenue_and_usage_by_metric(make_agent_client, org, clock, role):
    acme, globex, code = finance_data(org)
    client = make_agent_client(role)

    page = client.get(f"/customers/{acme.lago_id}/analytics")

    assert page.status_code == 200
    assert "Revenue per month in EUR</title>" in page.text
    assert f"{code} per month in EUR</title>" in page.text
    assert "<title>January 2024: €35.50</title>" in page.text
    assert "<title>March 2024: €0.00</title>" in page.text
    assert re.search(rf'<td class="mono">{code}</td><td class="amount">€27.84</td>', page.text)
    tab = client.get(f"/customers/{globex.lago_id}/analytics", htmx=True)
    assert "No usage invoiced in the last 12 months." in tab.text
    assert '<td>March 2024</td><td>1</td><td class="amount">€7.00</td>' in tab.text


def test_the_analytics_tab_of_a_customer_without_invoices(agent_client, org):
    customer = factories.make_customer(org, currency="EUR")
    page = agent_client.get(f"/customers/{customer.lago_id}/analytics")
    assert page.status_code == 200
    assert "No finalized invoice in the last 12 months." in page.text
