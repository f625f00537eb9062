"""Contract tests: invoices through the official Lago SDK (lago-python-client 1.55.0) against a
live Ledgerline: find, find_all with filters, update, finalize, refresh, void, download, and the
errors the SDK raises.

Each test works in an organization of its own; its invoices are made by the real period close
(of that organization only) on committed data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from lago_python_client.client import Client
from lago_python_client.models import Invoice as SdkInvoice
from lago_python_client.models.invoice import InvoiceMetadata, InvoiceMetadataList
from sqlalchemy import update

from billing.models import Organization, Subscription
from billing.services import invoicing
from extensions import db
from tests import factories
from tests.test_sdk_contract import api_error

pytestmark = pytest.mark.live


class Billed:
    """An organization of its own with Acme (two finalized invoices) and Globex (a draft)."""

    def __init__(self, live_server: Any) -> None:
        organization_id, raw_key = live_server.new_organization()
        self.client = Client(api_key=raw_key, api_url=live_server.url)
        self.url = live_server.url
        with live_server.app.app_context():
            organization = db.session.get_one(Organization, organization_id)
            acme = factories.make_customer(organization, external_id="acme", currency="EUR")
            globex = factories.make_customer(
                organization,
                external_id="globex",
                currency="EUR",
                billing_configuration={"invoice_grace_period": 30},
            )
            plan = factories.make_plan(organization, charges=[])
            for customer in (acme, globex):
                factories.make_subscription(
                    organization, customer, plan, subscription_at="2024-01-01T00:00:00Z"
                )
            invoicing.close_periods(
                datetime(2024, 3, 1, 0, 1, tzinfo=UTC), organization_id=organization_id
            )
            # nothing left due for the other tests sharing the database
            db.session.execute(
                update(Subscription)
                .where(Subscription.organization_id == organization_id)
                .values(next_invoice_at=datetime(2999, 1, 1, tzinfo=UTC))
            )
            db.session.commit()


@pytest.fixture
def billed(live_server: Any) -> Billed:
    return Billed(live_server)


def test_find_all_with_filters_and_find(billed):
    client = billed.client

    everything = client.invoices.find_all()
    acme = client.invoices.find_all({"external_customer_id": "acme", "per_page": 1})
    drafts = client.invoices.find_all({"status": "draft"})
    nobody = client.invoices.find_all({"external_customer_id": "nobody"})

    assert len(everything["invoices"]) == 4
    assert everything["meta"]["total_count"] == 4
    assert acme["meta"]["total_count"] == 2 and len(acme["invoices"]) == 1
    assert acme["invoices"][0].number.endswith("-002")
    assert {invoice.status for invoice in drafts["invoices"]} == {"draft"}
    assert nobody["invoices"] == []
    found = client.invoices.find(acme["invoices"][0].lago_id)
    assert (found.total_amount_cents, found.fees_amount_cents, found.version_number) == (
        1000,
        1000,
        4,
    )
    assert found.customer.external_id == "acme"
    assert found.billing_periods.__root__[0].invoicing_reason == "subscription_periodic"
    assert found.fees.__root__[0].item.type == "subscription"


def test_update_payment_status_and_metadata(billed):
    client = billed.client
    invoice = client.invoices.find_all({"external_customer_id": "acme"})["invoices"][0]

    paid = client.invoices.update(SdkInvoice(payment_status="succeeded"), invoice.lago_id)
    tagged = client.invoices.update(
        SdkInvoice(metadata=InvoiceMetadataList(__root__=[InvoiceMetadata(key="po", value="42")])),
        invoice.lago_id,
    )

    assert (paid.payment_status, paid.total_due_amount_cents) == ("succeeded", 0)
    assert [(m.key, m.value) for m in tagged.metadata.__root__] == [("po", "42")]
    refused = api_error(
        lambda: client.invoices.update(SdkInvoice(payment_status="paid"), invoice.lago_id)
    )
    assert refused.status_code == 422
    assert refused.response["error_details"] == {"payment_status": ["value_is_invalid"]}


def test_draft_actions(billed):
    client = billed.client
    draft = client.invoices.find_all({"external_customer_id": "globex", "status": "draft"})[
        "invoices"
    ][0]

    refreshed = client.invoices.refresh(draft.lago_id)
    on_draft = api_error(
        lambda: client.invoices.update(SdkInvoice(payment_status="succeeded"), draft.lago_id)
    )
    finalized = client.invoices.finalize(draft.lago_id)
    again = api_error(lambda: client.invoices.finalize(draft.lago_id))

    assert refreshed.status == "draft" and refreshed.number.endswith("-DRAFT")
    assert (on_draft.status_code, on_draft.response["code"]) == (
        405,
        "payment_status_update_on_draft_invoice",
    )
    assert finalized.status == "finalized" and finalized.number.endswith("-001")
    assert (again.status_code, again.response["code"]) == (404, "invoice_not_found")


def test_void_download_and_errors(billed):
    client = billed.client
    invoice = client.invoices.find_all({"external_customer_id": "acme"})["invoices"][0]

    downloaded = client.invoices.download(invoice.lago_id)  # rendered now: never an empty 200
    voided = client.invoices.void(invoice.lago_id)
    twice = api_error(lambda: client.invoices.void(invoice.lago_id))
    missing = api_error(lambda: client.invoices.find("00000000-0000-0000-0000-000000000000"))
    # the SDK's child list sends no Authorization header (lago-sdk-notes.md §2)
    unauthenticated = api_error(lambda: client.customer_invoices.find_all("acme"))

    assert downloaded is not None and downloaded.lago_id == invoice.lago_id
    assert downloaded.file_url.startswith("http://testserver/documents/")  # PUBLIC_URL
    # the link needs no API key
    pdf = httpx.get(downloaded.file_url.replace("http://testserver", billed.url))
    assert (pdf.status_code, pdf.headers["content-type"]) == (200, "application/pdf")
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"] == f"inline; filename={invoice.number}.pdf"
    assert voided.status == "voided"
    assert voided.file_url  # a voided invoice keeps its PDF
    assert (twice.status_code, twice.response["code"]) == (405, "not_voidable")
    assert (missing.status_code, missing.response["code"]) == (404, "invoice_not_found")
    assert unauthenticated.status_code == 401
