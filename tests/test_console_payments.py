"""Payments in the console, as a support agent records them: "Record payment" prefilled with
what is due, partial then full payments showing on the invoice page and the customer's
timeline, field errors (too much, zero, no reference, a future date) with nothing written,
viewers kept out; and the Stripe settings (secret saved, never shown whole; events listed)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from billing.models import ActivityLog, Payment
from billing.timeutil import set_clock
from extensions import db
from tests.test_payments import one_off_invoice

NOW = datetime(2026, 4, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def invoice(org, db_session):
    set_clock(lambda: NOW)
    return one_off_invoice(org, 12000)  # €120.00


def record(agent_client, invoice, htmx=False, **fields):
    data = {"amount": "50.00", "paid_on": "2026-04-10", "method": "bank_transfer",
            "reference": "TRX-1"} | fields  # fmt: skip
    return agent_client.post(f"/invoices/{invoice.lago_id}/payments/new", data=data, htmx=htmx)


def payments_count(org):
    return db.session.scalar(
        select(func.count(Payment.id)).where(Payment.organization_id == org.id)
    )


def test_the_form_is_prefilled_with_what_is_due(agent_client, invoice):
    page = agent_client.get(f"/invoices/{invoice.lago_id}")
    form = agent_client.get(f"/invoices/{invoice.lago_id}/payments/new")

    assert "Record payment" in page.get_data(as_text=True)
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    assert re.search(r'name="amount"[^>]*value="120.00"', html)
    assert re.search(r'name="paid_on"[^>]*value="2026-04-15"', html)


def test_partial_then_full_payment(agent_client, invoice, org):
    first = record(agent_client, invoice)

    assert first.status_code == 302
    page = agent_client.get(f"/invoices/{invoice.lago_id}").get_data(as_text=True)
    assert "Payment of €50.00 recorded" in page
    assert "TRX-1" in page and "Bank transfer" in page
    assert re.search(r"Amount due</th><td>€70.00", page)
    assert "Record payment" in page  # something is still due
    assert "Partially paid" in page

    second = record(agent_client, invoice, amount="70", reference="TRX-2", method="check")

    assert second.status_code == 302
    page = agent_client.get(f"/invoices/{invoice.lago_id}").get_data(as_text=True)
    assert re.search(r"Amount due</th><td>€0.00", page)
    assert "Record payment</a>" not in page  # nothing left to pay
    timeline = agent_client.get(f"/customers/{invoice.customer.lago_id}?tab=activity").get_data(
        as_text=True
    )
    assert timeline.count('<span class="activity-type">payment.created</span>') == 2
    assert "payment €70.00 · " + invoice.number in timeline
    assert '<span class="activity-type">invoice.payment_status_updated</span>' in timeline


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"amount": "120.01"}, "amount", "More than is due on this invoice (€120.00)."),
        ({"amount": "0"}, "amount", "Enter an amount above zero."),
        ({"amount": "-3"}, "amount", "Enter an amount above zero."),
        ({"amount": "abc"}, "amount", "Enter an amount such as 12.50."),
        ({"amount": "1.001"}, "amount", "EUR has 2 decimals at most."),
        ({"reference": ""}, "reference", "Enter a reference (bank transfer id, cheque number…)."),
        ({"paid_on": "2026-04-16"}, "paid_on", "A payment cannot be dated in the future."),
        ({"paid_on": "15/04/2026"}, "paid_on", "Enter the date as YYYY-MM-DD."),
    ],
)
def test_field_errors_write_nothing(agent_client, invoice, org, fields, field, message):
    response = record(agent_client, invoice, htmx=True, **fields)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert '<form id="payment-form"' in html and "<html" not in html  # the partial alone
    assert re.search(rf'id="{field}-error">{re.escape(message)}<', html), html
    assert payments_count(org) == 0


def test_viewers_cannot_record(make_agent_client, invoice, org):
    viewer = make_agent_client("viewer")

    assert record(viewer, invoice).status_code == 403
    assert payments_count(org) == 0


def test_stripe_settings(agent_client, org, db_session):
    page = agent_client.get("/settings/payments").get_data(as_text=True)
    assert f"/hooks/stripe/{org.lago_id}" in page
    assert "No signing secret" in page

    bad = agent_client.post("/settings/payments", data={"secret": "sk_live_oops"})
    saved = agent_client.post("/settings/payments", data={"secret": "whsec_abcdef123456"})

    assert bad.status_code == 422
    assert "it starts with whsec_" in bad.get_data(as_text=True)
    assert saved.status_code == 302
    db.session.refresh(org)
    assert org.stripe_webhook_secret == "whsec_abcdef123456"
    page = agent_client.get("/settings/payments").get_data(as_text=True)
    assert "Signing secret set (…3456)" in page
    assert "whsec_abcdef123456" not in page
    entry = db.session.scalars(
        select(ActivityLog)
        .where(ActivityLog.organization_id == org.id)
        .order_by(ActivityLog.id.desc())
    ).first()
    assert entry.changes == {"stripe_webhook_secret": [None, "changed"]}

    removed = agent_client.post("/settings/payments", data={"remove": "y"})

    assert removed.status_code == 302
    db.session.refresh(org)
    assert org.stripe_webhook_secret is None
