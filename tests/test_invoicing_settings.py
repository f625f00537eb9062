"""Invoicing settings acting on invoices: zero-amount invoices closed instead of finalized when
the customer (or the organization it inherits from) skips them; drafts following a change of
the grace period."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from billing.models import Invoice
from billing.services import analytics, invoicing, settings
from billing.services.analytics import AnalyticsFilters
from billing.services.customers import upsert_customer
from extensions import db
from tests import test_invoicing
from tests.factories import TEST_ACTOR, invoices_of
from tests.test_invoicing import at, close, outbox_events, subscribe

#: the `clock` fixture starts where the invoicing tests' does
CLOCK_START = test_invoicing.CLOCK_START


@pytest.mark.parametrize(
    ("organization_finalizes", "customer_setting", "amount_cents", "expected"),
    [
        (True, "inherit", 0, "finalized"),
        (False, "inherit", 0, "closed"),
        (True, "skip", 0, "closed"),
        (False, "finalize", 0, "finalized"),
        (False, "skip", 1000, "finalized"),
    ],
)
def test_zero_amount_invoices_are_closed_when_skipped(
    org, clock, organization_finalizes, customer_setting, amount_cents, expected
):
    org.finalize_zero_amount_invoice = organization_finalizes
    db.session.commit()
    subscription = subscribe(
        org,
        clock,
        "2024-01-01T00:00:00",
        amount_cents=amount_cents,
        customer_fields={"finalize_zero_amount_invoice": customer_setting},
    )
    assert close(clock, "2024-02-01T00:00:01", org) == 1
    [invoice] = invoices_of(org)
    assert invoice.status == expected
    slug = subscription.customer.slug
    if expected == "closed":
        assert (invoice.number, invoice.sequential_id) == (f"{slug}-DRAFT", None)
        assert invoice.payment_status == "succeeded"
        assert outbox_events(org, "invoice.created") == 0
        assert subscription.customer.invoices_sequence == 0
    else:
        assert (invoice.number, invoice.sequential_id) == (f"{slug}-001", 1)
        assert outbox_events(org, "invoice.created") == 1
    assert invoice.issuing_date.isoformat() == "2024-02-01"
    assert invoice.grace_period_ends_at is None


def test_a_zero_amount_draft_is_closed_at_the_end_of_its_grace_period(org, clock):
    org.invoice_grace_period = 2
    org.finalize_zero_amount_invoice = False
    db.session.commit()
    subscribe(org, clock, "2024-01-01T00:00:00", amount_cents=0)
    close(clock, "2024-02-01T00:00:01", org)
    [draft] = invoices_of(org)
    assert draft.status == "draft"

    clock[0] = at("2024-02-03T00:00:00")
    invoicing.finalize_due_drafts()
    db.session.commit()

    assert (draft.status, draft.sequential_id) == ("closed", None)
    assert draft.issuing_date.isoformat() == "2024-02-03"
    assert outbox_events(org, "invoice.created") == 0
    assert analytics.gross_revenue(org, AnalyticsFilters()) == []


def test_a_closed_invoice_is_shown_and_cannot_be_finalized_or_voided(agent_client, org, clock):
    org.finalize_zero_amount_invoice = False
    db.session.commit()
    subscribe(org, clock, "2024-01-01T00:00:00", amount_cents=0)
    close(clock, "2024-02-01T00:00:01", org)
    [invoice] = invoices_of(org)
    with pytest.raises(invoicing.NotAllowed):
        invoicing.finalize_invoice(invoice)
    with pytest.raises(invoicing.NotAllowed):
        invoicing.void_invoice(invoice, TEST_ACTOR)
    page = agent_client.get(f"/invoices/{invoice.lago_id}")
    assert page.status_code == 200
    assert "Closed (zero amount)</span>" in page.text
    assert "Finalize</button>" not in page.text and "Void…</button>" not in page.text
    listed = agent_client.get("/invoices?status=closed")
    assert invoice.number in listed.text


def test_the_organization_setting_is_edited_in_settings(agent_client, org):
    from tests.test_console_settings import settings_form  # noqa: PLC0415

    response = agent_client.post(
        "/settings", data=settings_form(org, finalize_zero_amount_invoice="skip")
    )
    assert response.status_code == 302
    assert org.finalize_zero_amount_invoice is False
    assert '<option selected value="skip">' in agent_client.get("/settings").text
    refused = agent_client.post(
        "/settings", data=settings_form(org, finalize_zero_amount_invoice="sometimes")
    )
    assert refused.status_code == 422
    assert org.finalize_zero_amount_invoice is False


def test_the_status_constraint_still_refuses_unknown_statuses(org, clock):
    """The migration widened the CHECK constraint (edited in place on SQLite): `closed` is in,
    anything else is still out."""
    subscribe(org, clock, "2024-01-01T00:00:00")
    close(clock, "2024-02-01T00:00:01", org)
    [invoice] = invoices_of(org)
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.execute(update(Invoice).where(Invoice.id == invoice.id).values(status="bogus"))


def grace_end(invoice):
    return invoice.grace_period_ends_at.astimezone(UTC).isoformat()


def test_drafts_follow_the_organizations_grace_period(org, clock):
    org.invoice_grace_period = 3
    db.session.commit()
    paris = subscribe(org, clock, "2024-01-01T00:00:00", timezone="Europe/Paris")
    own = subscribe(
        org,
        clock,
        "2024-01-01T00:00:00",
        customer_fields={"billing_configuration": {"invoice_grace_period": 5}},
    )
    close(clock, "2024-02-01T00:00:01", org)
    drafts = {invoice.customer_id: invoice for invoice in invoices_of(org)}
    # issued on February 1st (Paris: the period closed at 23:00 UTC on January 31st)
    assert grace_end(drafts[paris.customer_id]) == "2024-02-03T23:00:00+00:00"
    assert grace_end(drafts[own.customer_id]) == "2024-02-06T00:00:00+00:00"

    settings.update_organization_settings(org, {"invoice_grace_period": "1"}, TEST_ACTOR)
    db.session.commit()

    assert grace_end(drafts[paris.customer_id]) == "2024-02-01T23:00:00+00:00"
    assert grace_end(drafts[own.customer_id]) == "2024-02-06T00:00:00+00:00"  # its own
    clock[0] = at("2024-02-02T00:00:00")
    invoicing.finalize_due_drafts()
    db.session.commit()
    assert (drafts[paris.customer_id].status, drafts[own.customer_id].status) == (
        "finalized",
        "draft",
    )


def test_drafts_follow_the_customers_grace_period(org, clock):
    subscription = subscribe(
        org,
        clock,
        "2024-01-01T00:00:00",
        customer_fields={"billing_configuration": {"invoice_grace_period": 10}},
    )
    close(clock, "2024-02-01T00:00:01", org)
    [draft] = invoices_of(org)
    assert grace_end(draft) == "2024-02-11T00:00:00+00:00"

    customer = subscription.customer
    upsert_customer(
        org,
        {"external_id": customer.external_id, "billing_configuration": {"invoice_grace_period": 2}},
        TEST_ACTOR,
    )
    db.session.commit()
    assert grace_end(draft) == "2024-02-03T00:00:00+00:00"

    # back to the organization's (0): the grace period is over, the next job run finalizes it
    inherit = {"invoice_grace_period": None}
    upsert_customer(
        org, {"external_id": customer.external_id, "billing_configuration": inherit}, TEST_ACTOR
    )
    db.session.commit()
    assert grace_end(draft) == "2024-02-01T00:00:00+00:00"
    clock[0] = datetime(2024, 2, 1, 0, 5, tzinfo=UTC)
    assert invoicing.finalize_due_drafts() == [draft]
