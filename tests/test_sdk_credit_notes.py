"""Contract tests: credit notes through the official Lago SDK (lago-python-client 1.55.0)
against a live Ledgerline: estimate, create, find, find_all, update, void, download, and the
errors the SDK raises.

The test works in an organization of its own; its invoice is made by the real period close
(of that organization only) on committed data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from lago_python_client.client import Client
from lago_python_client.models import Invoice as SdkInvoice
from lago_python_client.models.credit_note import (
    CreditNote,
    CreditNoteEstimate,
    CreditNoteUpdate,
    Item,
    Items,
)
from sqlalchemy import update

from billing.models import Organization, Subscription
from billing.services import invoicing
from extensions import db
from tests import factories
from tests.test_sdk_contract import api_error

pytestmark = pytest.mark.live


def billed_acme(live_server: Any) -> tuple[Client, Any, str]:
    """A new organization whose customer acme has January's invoice (its one fee, 1000 EUR
    cents, unpaid): the SDK client, the invoice and the fee's lago id."""
    organization_id, raw_key = live_server.new_organization()
    client = Client(api_key=raw_key, api_url=live_server.url)
    with live_server.app.app_context():
        organization = db.session.get_one(Organization, organization_id)
        acme = factories.make_customer(organization, external_id="acme", currency="EUR")
        plan = factories.make_plan(organization, charges=[])
        factories.make_subscription(
            organization, acme, plan, subscription_at="2024-01-01T00:00:00Z"
        )
        invoicing.close_periods(
            datetime(2024, 2, 1, 0, 1, tzinfo=UTC), organization_id=organization_id
        )
        db.session.execute(
            update(Subscription)
            .where(Subscription.organization_id == organization_id)
            .values(next_invoice_at=datetime(2999, 1, 1, tzinfo=UTC))
        )
        db.session.commit()
    invoice = client.invoices.find_all({"external_customer_id": "acme"})["invoices"][0]
    fee_id = client.invoices.find(invoice.lago_id).fees.__root__[0].lago_id
    return client, invoice, fee_id


def test_credit_notes_through_the_sdk(live_server: Any) -> None:
    client, invoice, fee_id = billed_acme(live_server)
    client.invoices.update(SdkInvoice(payment_status="succeeded"), invoice.lago_id)
    items = Items(__root__=[Item(fee_id=fee_id, amount_cents=400)])

    estimate = client.credit_notes.estimate(
        CreditNoteEstimate(invoice_id=invoice.lago_id, items=items)
    )
    created = client.credit_notes.create(
        CreditNote(
            invoice_id=invoice.lago_id,
            reason="product_unsatisfactory",
            credit_amount_cents=300,
            refund_amount_cents=100,
            items=items,
        )
    )
    assert created is not None
    found = client.credit_notes.find(created.lago_id)
    listed = client.credit_notes.find_all({"external_customer_id": "acme"})
    refunded = client.credit_notes.update(
        CreditNoteUpdate(refund_status="succeeded"), created.lago_id
    )
    downloaded = client.credit_notes.download(created.lago_id)
    replaced = client.credit_notes.replace_metadata(created.lago_id, {"ticket": "SUP-42"})
    merged = client.credit_notes.merge_metadata(created.lago_id, {"region": "eu"})
    one_less = client.credit_notes.delete_metadata_key(created.lago_id, "ticket")
    emptied = client.credit_notes.delete_all_metadata(created.lago_id)
    voided = client.credit_notes.void(created.lago_id)
    twice = api_error(lambda: client.credit_notes.void(created.lago_id))
    too_much = api_error(
        lambda: client.credit_notes.create(
            CreditNote(
                invoice_id=invoice.lago_id,
                credit_amount_cents=700,
                items=Items(__root__=[Item(fee_id=fee_id, amount_cents=700)]),
            )
        )
    )
    missing = api_error(lambda: client.credit_notes.find("00000000-0000-0000-0000-000000000000"))

    assert (estimate.max_creditable_amount_cents, estimate.max_refundable_amount_cents) == (
        400,
        400,
    )
    assert estimate.items.__root__[0].lago_fee_id == fee_id
    assert created.number == f"{invoice.number}-CN001"
    assert (created.credit_amount_cents, created.refund_amount_cents) == (300, 100)
    assert (created.balance_amount_cents, created.total_amount_cents) == (300, 400)
    assert found.items.__root__[0].fee.lago_id == fee_id
    assert found.customer.external_id == "acme"
    assert [note.lago_id for note in listed["credit_notes"]] == [created.lago_id]
    assert listed["meta"]["total_count"] == 1
    assert refunded.refund_status == "succeeded"
    assert downloaded is not None and downloaded.file_url
    assert replaced == {"ticket": "SUP-42"}
    assert merged == {"ticket": "SUP-42", "region": "eu"}
    assert (one_less, emptied) == ({"region": "eu"}, {})
    assert (voided.credit_status, voided.balance_amount_cents) == ("voided", 0)
    assert (twice.status_code, twice.response["code"]) == (405, "no_voidable_amount")
    assert too_much.status_code == 422
    assert too_much.response["error_details"] == {
        "amount_cents": ["higher_than_remaining_fee_amount"],
        "base": ["higher_than_remaining_invoice_amount"],
    }
    assert (missing.status_code, missing.response["code"]) == (404, "credit_note_not_found")
