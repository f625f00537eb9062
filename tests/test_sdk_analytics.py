"""Contract tests: analytics (lago-api.md §13) through the official Lago SDK
(lago-python-client 1.55.0) against a live Ledgerline: gross revenues, overdue balances,
invoiced usages, MRRs and invoice collections parse into the SDK's models, with their filters,
and a bad `months` raises the SDK's error."""

from __future__ import annotations

from typing import Any

import pytest
from lago_python_client.client import Client
from sqlalchemy import update

from billing.models import Organization, Subscription
from extensions import db
from tests import factories
from tests.test_analytics import add_invoice
from tests.test_invoicing import at
from tests.test_sdk_contract import api_error

pytestmark = pytest.mark.live


@pytest.fixture
def billed(live_server: Any) -> Any:
    """An organization of its own: Acme (EUR) with a paid January invoice with usage, an
    overdue February one and a 12 € monthly subscription; Globex (USD) with a March invoice."""
    organization_id, raw_key = live_server.new_organization()
    with live_server.app.app_context():
        organization = db.session.get_one(Organization, organization_id)
        acme = factories.make_customer(organization, external_id="acme", currency="EUR")
        globex = factories.make_customer(organization, external_id="globex", currency="USD")
        plan = factories.make_plan(organization, amount_cents=1200)
        subscription = factories.make_subscription(
            organization, acme, plan, subscription_at="2099-01-01T00:00:00Z"
        )
        db.session.execute(
            update(Subscription)
            .where(Subscription.id == subscription.id)
            .values(status="active", started_at=at("2020-01-01T00:00:00"))
        )
        charge = plan.charges[0]
        add_invoice(organization, acme, "2024-01-31", 3550, payment_status="succeeded",
                    usage=((charge, 550),))  # fmt: skip
        overdue = add_invoice(organization, acme, "2024-02-10", 1234, due="2024-02-20",
                              overdue=True)  # fmt: skip
        add_invoice(organization, globex, "2024-03-01", 700, currency="USD")
        ids = {"overdue": str(overdue.lago_id), "metric": charge.billable_metric.code}
    return Client(api_key=raw_key, api_url=live_server.url), ids


def test_gross_revenues(billed):
    client, _ids = billed
    result = client.gross_revenues.find_all({"currency": "EUR"})
    rows = [
        (r.month, r.amount_cents, r.currency, r.invoices_count) for r in result["gross_revenues"]
    ]
    assert rows == [
        ("2024-01-01T00:00:00.000Z", 3550, "EUR", 1),
        ("2024-02-01T00:00:00.000Z", 1234, "EUR", 1),
    ]
    only_globex = client.gross_revenues.find_all({"external_customer_id": "globex"})
    assert [r.amount_cents for r in only_globex["gross_revenues"]] == [700]


def test_overdue_balances(billed):
    client, ids = billed
    result = client.overdue_balances.find_all({"external_customer_id": "acme"})
    [row] = result["overdue_balances"]
    assert (row.month, row.amount_cents, row.currency, row.lago_invoice_ids) == (
        "2024-02-01T00:00:00.000Z", 1234, "EUR", [ids["overdue"]],
    )  # fmt: skip


def test_invoiced_usages_and_invoice_collections(billed):
    client, ids = billed
    [usage] = client.invoiced_usages.find_all({"currency": "EUR"})["invoiced_usages"]
    assert (usage.month, usage.amount_cents, usage.currency) == (
        "2024-01-01T00:00:00.000Z", 550, "EUR",
    )  # fmt: skip
    collections = client.invoice_collections.find_all({"currency": "EUR"})["invoice_collections"]
    assert [(c.month, c.payment_status, c.invoices_count, c.amount_cents) for c in collections] == [
        ("2024-01-01T00:00:00.000Z", "succeeded", 1, 3550),
        ("2024-02-01T00:00:00.000Z", "pending", 1, 1234),
    ]


def test_mrrs(billed):
    client, _ids = billed
    rows = client.mrrs.find_all({"currency": "EUR", "months": 3})["mrrs"]
    assert [(r.amount_cents, r.currency) for r in rows] == [(1200, "EUR")] * 3


def test_an_unreadable_months_raises_the_sdks_error(billed):
    client, _ids = billed
    error = api_error(lambda: client.mrrs.find_all({"months": "twelve"}))
    assert error.status_code == 422
    assert error.response["error_details"] == {"months": ["value_is_invalid"]}
