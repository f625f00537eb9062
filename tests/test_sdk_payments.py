"""Contract tests: payments through the official Lago SDK (lago-python-client 1.55.0) against
a live Ledgerline: `client.payments.create/find/find_all` unchanged, the errors the SDK
raises, and `customer_payments.find_all` (which the SDK sends without its API key: 401, as
lago-sdk-notes.md §2 says a correct server answers)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lago_python_client.models.payment import Payment

from tests.test_sdk_contract import api_error, validation_body
from tests.test_sdk_credit_notes import billed_acme

pytestmark = pytest.mark.live


def test_payments_through_the_sdk(live_server: Any) -> None:
    client, invoice, _fee_id = billed_acme(live_server)  # 1000 EUR cents due

    first = client.payments.create(
        Payment(
            invoice_id=invoice.lago_id,
            amount_cents=400,
            reference="wire 2024-02-03",
            paid_at="2024-02-03T09:00:00Z",
        )
    )
    second = client.payments.create(
        Payment(invoice_id=invoice.lago_id, amount_cents=600, reference="wire 2", paid_at=None)
    )

    assert first is not None and second is not None
    assert (first.amount_cents, first.amount_currency, first.payment_status, first.type) == (
        400, "EUR", "succeeded", "manual",
    )  # fmt: skip
    assert (first.invoice_ids, first.invoice_numbers) == ([invoice.lago_id], [invoice.number])
    assert first.reference == "wire 2024-02-03" and first.external_payment_id is None
    found = client.payments.find(first.lago_id)
    assert (found.lago_id, found.amount_cents) == (first.lago_id, 400)
    listed = client.payments.find_all({"invoice_id": invoice.lago_id, "per_page": 1})
    assert [p.lago_id for p in listed["payments"]] == [second.lago_id]
    assert listed["meta"]["total_count"] == 2
    paid = client.invoices.find(invoice.lago_id)
    assert (paid.payment_status, paid.total_due_amount_cents) == ("succeeded", 0)


def test_payment_errors_through_the_sdk(live_server: Any) -> None:
    client, invoice, _fee_id = billed_acme(live_server)

    too_much = api_error(
        lambda: client.payments.create(
            Payment(invoice_id=invoice.lago_id, amount_cents=1001, reference="r", paid_at=None)
        )
    )
    unknown = api_error(
        lambda: client.payments.create(
            Payment(
                invoice_id="00000000-0000-0000-0000-000000000000",
                amount_cents=1,
                reference="r",
                paid_at=None,
            )
        )
    )
    missing = api_error(lambda: client.payments.find("00000000-0000-0000-0000-000000000000"))

    assert (too_much.status_code, too_much.response) == (
        422, validation_body({"amount_cents": ["greater_than"]}),
    )  # fmt: skip
    assert (unknown.status_code, unknown.response["code"]) == (404, "invoice_not_found")
    assert (missing.status_code, missing.response["code"]) == (404, "payment_not_found")


def test_customer_payments(live_server: Any) -> None:
    client, invoice, _fee_id = billed_acme(live_server)
    client.payments.create(
        Payment(invoice_id=invoice.lago_id, amount_cents=250, reference="r", paid_at=None)
    )
    key = client.api_key

    # The SDK's child-list client sends no Authorization header (its bug): refused.
    refused = api_error(lambda: client.customer_payments.find_all("acme"))
    # The same call with the key, as any HTTP client sends it.
    response = httpx.get(
        f"{live_server.url}/api/v1/customers/acme/payments",
        headers={"Authorization": f"Bearer {key}"},
    )

    assert (refused.status_code, refused.response) == (
        401,
        {"status": 401, "error": "Unauthorized"},
    )
    assert response.status_code == 200
    [payment] = response.json()["payments"]
    assert (payment["amount_cents"], payment["external_customer_id"]) == (250, "acme")
