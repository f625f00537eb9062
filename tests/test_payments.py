"""Payments through /api/v1/payments: partial payments with exact paid and due amounts, the
invoice's payment status following them (with its webhook and timeline entry), Lago's refusals
with nothing written, the lists, the manual payment-status update staying consistent with the
recorded payments, a wallet top-up paid by a payment, and (hypothesis) the amount relations
over any sequence of payments."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from billing.errors import ValidationFailed
from billing.models import ActivityLog, Invoice, OutboxEvent, Payment, WalletTransaction
from billing.services import add_ons, invoicing, payments, wallets
from billing.services.one_off_invoices import create_one_off_invoice
from billing.timeutil import now_utc, set_clock
from extensions import db
from tests import factories
from tests.factories import TEST_ACTOR

_codes = itertools.count(1)


def one_off_invoice(org: Any, cents: int, customer: Any | None = None) -> Invoice:
    """A finalized one-off EUR invoice of `cents` (one add-on line, untaxed)."""
    customer = customer or factories.make_customer(org, currency="EUR")
    code = f"setup_{next(_codes)}"
    add_ons.create_add_on(
        org,
        {"name": "Setup", "code": code, "amount_cents": cents, "amount_currency": "EUR",
         "tax_codes": []},
        TEST_ACTOR,
    )  # fmt: skip
    invoice = create_one_off_invoice(
        org,
        {"external_customer_id": customer.external_id, "currency": "EUR",
         "fees": [{"add_on_code": code, "tax_codes": []}]},
        TEST_ACTOR,
    )  # fmt: skip
    db.session.commit()
    assert (invoice.status, invoice.total_amount_cents) == ("finalized", cents)
    return invoice


def pay(api_client: Any, invoice: Invoice, cents: Any, **fields: Any) -> Any:
    body = {"invoice_id": str(invoice.lago_id), "amount_cents": cents, "reference": "wire-1"}
    return api_client.post("/api/v1/payments", json={"payment": body | fields})


def shown(api_client: Any, invoice: Invoice) -> dict[str, Any]:
    return api_client.get(f"/api/v1/invoices/{invoice.lago_id}").get_json()["invoice"]


def amounts(invoice_json: dict[str, Any]) -> tuple[int, int, str]:
    return (
        invoice_json["total_paid_amount_cents"],
        invoice_json["total_due_amount_cents"],
        invoice_json["payment_status"],
    )


def count(model: Any, org: Any, **where: Any) -> int:
    query = select(func.count(model.id)).where(model.organization_id == org.id)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    return db.session.scalar(query) or 0


def test_partial_payments_then_the_rest(api_client, org):
    invoice = one_off_invoice(org, 1200)

    first = pay(api_client, invoice, 500, paid_at="2024-03-01T10:00:00Z", method="bank_transfer")

    assert first.status_code == 200, first.get_json()
    payment = first.get_json()["payment"]
    assert {k: payment[k] for k in (
        "invoice_ids", "invoice_numbers", "amount_cents", "amount_currency", "payment_status",
        "type", "reference", "external_payment_id", "paid_at", "method",
    )} == {
        "invoice_ids": [str(invoice.lago_id)], "invoice_numbers": [invoice.number],
        "amount_cents": 500, "amount_currency": "EUR", "payment_status": "succeeded",
        "type": "manual", "reference": "wire-1", "external_payment_id": None,
        "paid_at": "2024-03-01T10:00:00Z", "method": "bank_transfer",
    }  # fmt: skip
    assert amounts(shown(api_client, invoice)) == (500, 700, "pending")
    assert count(OutboxEvent, org, event_type="invoice.payment_status_updated") == 0

    rest = pay(api_client, invoice, 700)

    assert rest.status_code == 200
    assert amounts(shown(api_client, invoice)) == (1200, 0, "succeeded")
    [event] = db.session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.organization_id == org.id,
            OutboxEvent.event_type == "invoice.payment_status_updated",
        )
    ).all()
    assert event.payload["payment_status"] == "succeeded"
    assert event.payload["total_due_amount_cents"] == 0
    timeline = [
        (entry.activity_type, entry.resource_type)
        for entry in db.session.scalars(
            select(ActivityLog)
            .where(ActivityLog.customer_id == invoice.customer_id)
            .order_by(ActivityLog.id)
        )
    ]
    assert timeline[-3:] == [
        ("payment.created", "payment"),
        ("payment.created", "payment"),
        ("invoice.payment_status_updated", "invoice"),
    ]


@pytest.mark.parametrize(
    ("cents", "fields", "details"),
    [
        (1201, {}, {"amount_cents": ["greater_than"]}),
        (0, {}, {"amount_cents": ["value_is_out_of_range"]}),
        (-5, {}, {"amount_cents": ["value_is_out_of_range"]}),
        ("ten", {}, {"amount_cents": ["value_is_invalid"]}),
        (12.5, {}, {"amount_cents": ["value_is_invalid"]}),
        (None, {}, {"amount_cents": ["value_is_mandatory"]}),
        (100, {"reference": ""}, {"reference": ["value_is_mandatory"]}),
        (100, {"reference": "x" * 41}, {"reference": ["value_is_too_long"]}),
        (100, {"paid_at": "yesterday"}, {"paid_at": ["invalid_date"]}),
        (100, {"paid_at": "2999-01-01"}, {"paid_at": ["invalid_date"]}),
        (100, {"method": "barter"}, {"method": ["value_is_invalid"]}),
    ],
)
def test_refusals_write_nothing(api_client, org, cents, fields, details):
    invoice = one_off_invoice(org, 1200)

    response = pay(api_client, invoice, cents, **fields)

    assert response.status_code == 422
    assert response.get_json() == {
        "status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
        "error_details": details,
    }  # fmt: skip
    assert count(Payment, org) == 0
    assert amounts(shown(api_client, invoice)) == (0, 1200, "pending")


def test_paid_at_may_be_minutes_ahead_but_not_a_day(api_client, org):
    """A sender's clock may run a little ahead of ours; a payment dated tomorrow is a mistake."""
    invoice = one_off_invoice(org, 1200)
    ahead = (now_utc() + timedelta(minutes=2)).isoformat()
    tomorrow = (now_utc() + timedelta(days=1)).isoformat()

    refused = pay(api_client, invoice, 100, paid_at=tomorrow)
    accepted = pay(api_client, invoice, 100, paid_at=ahead)

    assert refused.get_json()["error_details"] == {"paid_at": ["invalid_date"]}
    assert accepted.status_code == 200
    assert accepted.get_json()["payment"]["paid_at"].startswith(ahead[:16])


def test_a_date_passes_while_it_is_today_somewhere(api_client, org):
    """At 12:00 UTC it is already tomorrow in Kiribati (UTC+14), not the day after."""
    set_clock(lambda: datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    invoice = one_off_invoice(org, 1200)

    kiribati_today = pay(api_client, invoice, 100, paid_at="2026-06-02")
    day_after = pay(api_client, invoice, 100, paid_at="2026-06-03")

    assert kiribati_today.status_code == 200
    assert day_after.get_json()["error_details"] == {"paid_at": ["invalid_date"]}


def test_a_second_payment_beyond_what_is_left_is_refused(api_client, org):
    invoice = one_off_invoice(org, 1200)
    assert pay(api_client, invoice, 1000).status_code == 200

    response = pay(api_client, invoice, 201)

    assert response.status_code == 422
    assert response.get_json()["error_details"] == {"amount_cents": ["greater_than"]}
    assert amounts(shown(api_client, invoice)) == (1000, 200, "pending")


def test_unknown_invoice_is_404(api_client, org):
    for invoice_id in ("00000000-0000-0000-0000-000000000000", "nope", None):
        response = api_client.post(
            "/api/v1/payments",
            json={"payment": {"invoice_id": invoice_id, "amount_cents": 1, "reference": "r"}},
        )
        assert response.status_code == 404
        assert response.get_json() == {
            "status": 404, "error": "Not Found", "code": "invoice_not_found",
        }  # fmt: skip
    assert api_client.post("/api/v1/payments", json={}).status_code == 400


def test_another_organizations_invoice_is_404(api_client, org):
    other = factories.make_organization()
    invoice = one_off_invoice(other, 1200)

    response = pay(api_client, invoice, 100)

    assert response.status_code == 404
    assert response.get_json()["code"] == "invoice_not_found"


def test_voided_and_draft_invoices_take_no_payment(api_client, org, db_session):
    invoice = one_off_invoice(org, 1200)
    invoicing.void_invoice(invoice, TEST_ACTOR)
    db.session.commit()

    voided = pay(api_client, invoice, 100)
    invoice.status = "draft"  # a draft (made by hand: one-off invoices are finalized at once)
    db.session.commit()
    draft = pay(api_client, invoice, 100)

    assert (voided.status_code, voided.get_json()["code"]) == (405, "payment_on_voided_invoice")
    assert (draft.status_code, draft.get_json()["code"]) == (405, "payment_on_draft_invoice")
    assert count(Payment, org) == 0


def test_lists_and_show(api_client, org):
    acme = factories.make_customer(org, external_id="acme", currency="EUR")
    first = one_off_invoice(org, 1000, acme)
    second = one_off_invoice(org, 2000)
    ids = [pay(api_client, first, 300).get_json()["payment"]["lago_id"],
           pay(api_client, second, 400).get_json()["payment"]["lago_id"],
           pay(api_client, first, 200).get_json()["payment"]["lago_id"]]  # fmt: skip

    everything = api_client.get("/api/v1/payments").get_json()
    by_invoice = api_client.get(f"/api/v1/payments?invoice_id={first.lago_id}").get_json()
    by_customer = api_client.get("/api/v1/payments?external_customer_id=acme").get_json()
    nested = api_client.get("/api/v1/customers/acme/payments").get_json()
    page = api_client.get("/api/v1/payments?per_page=2&page=2").get_json()
    one = api_client.get(f"/api/v1/payments/{ids[1]}")

    assert [p["lago_id"] for p in everything["payments"]] == ids[::-1]
    assert [p["amount_cents"] for p in by_invoice["payments"]] == [200, 300]
    assert by_customer["payments"] == nested["payments"]
    assert [p["lago_id"] for p in nested["payments"]] == [ids[2], ids[0]]
    assert nested["payments"][0]["external_customer_id"] == "acme"
    assert page["meta"] == {"current_page": 2, "next_page": None, "prev_page": 1,
                            "total_pages": 2, "total_count": 3}  # fmt: skip
    assert one.status_code == 200 and one.get_json()["payment"]["amount_cents"] == 400
    assert (
        api_client.get("/api/v1/payments?external_customer_id=nobody").get_json()["payments"] == []
    )
    missing = api_client.get("/api/v1/payments/00000000-0000-0000-0000-000000000000")
    assert (missing.status_code, missing.get_json()["code"]) == (404, "payment_not_found")
    unknown = api_client.get("/api/v1/customers/nobody/payments")
    assert (unknown.status_code, unknown.get_json()["code"]) == (404, "customer_not_found")


def test_the_partially_paid_filter(api_client, org):
    partly, unpaid, paid = (one_off_invoice(org, 1200) for _ in range(3))
    pay(api_client, partly, 200)
    pay(api_client, paid, 1200)

    def numbers(query: str) -> set[str]:
        listed = api_client.get(f"/api/v1/invoices?{query}").get_json()["invoices"]
        return {invoice["number"] for invoice in listed}

    assert numbers("partially_paid=true") == {partly.number}
    assert numbers("partially_paid=false") == {unpaid.number, paid.number}
    assert api_client.get("/api/v1/invoices?partially_paid=maybe").status_code == 422


def test_marking_paid_by_hand_records_nothing_and_leaves_nothing_due(api_client, org):
    invoice = one_off_invoice(org, 1200)
    pay(api_client, invoice, 500)

    marked = api_client.put(
        f"/api/v1/invoices/{invoice.lago_id}", json={"invoice": {"payment_status": "succeeded"}}
    )

    assert marked.status_code == 200
    assert amounts(marked.get_json()["invoice"]) == (1200, 0, "succeeded")
    assert count(Payment, org) == 1
    # nothing is due any more, so a payment is more than is due
    assert pay(api_client, invoice, 1).get_json()["error_details"] == {
        "amount_cents": ["greater_than"]
    }

    # back to pending: the recorded payment still counts, the hand-marked rest does not
    unmarked = api_client.put(
        f"/api/v1/invoices/{invoice.lago_id}", json={"invoice": {"payment_status": "pending"}}
    )

    assert amounts(unmarked.get_json()["invoice"]) == (500, 700, "pending")


def test_an_invoice_paid_by_its_payments_cannot_be_unpaid_by_hand(api_client, org):
    invoice = one_off_invoice(org, 1200)
    pay(api_client, invoice, 1200)

    response = api_client.put(
        f"/api/v1/invoices/{invoice.lago_id}", json={"invoice": {"payment_status": "failed"}}
    )

    assert response.status_code == 405
    assert response.get_json()["code"] == "invoice_paid_by_payments"
    assert amounts(shown(api_client, invoice)) == (1200, 0, "succeeded")


def test_a_payment_completing_a_wallet_top_up_settles_its_credits(api_client, org):
    customer = factories.make_customer(org, external_id="acme", currency="EUR")
    wallet = wallets.create_wallet(
        org,
        {"external_customer_id": "acme", "currency": "EUR", "rate_amount": "1",
         "paid_credits": "25"},
        TEST_ACTOR,
    )  # fmt: skip
    db.session.commit()
    [invoice] = db.session.scalars(
        select(Invoice).where(Invoice.customer_id == customer.id, Invoice.invoice_type == "credit")
    ).all()
    assert (invoice.total_amount_cents, wallet.balance_cents) == (2500, 0)

    partial = pay(api_client, invoice, 1000)
    whole = pay(api_client, invoice, 2500)

    assert partial.get_json()["error_details"] == {"amount_cents": ["invalid_amount"]}
    assert whole.status_code == 200
    db.session.expire_all()
    assert wallet.balance_cents == 2500
    assert wallet.credits_balance == Decimal("25")
    [transaction] = db.session.scalars(
        select(WalletTransaction).where(WalletTransaction.invoice_id == invoice.id)
    ).all()
    assert transaction.status == "settled"


# ---------------------------------------------------------------------------------------------
# Amount relations (hypothesis)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    total=st.integers(min_value=1, max_value=10**9),
    tries=st.lists(st.integers(min_value=-10, max_value=10**9), min_size=1, max_size=6),
)
def test_any_sequence_of_payments_keeps_the_amount_relations(db_session, total, tries):
    """Whatever is tried: the payments accepted never add up to more than the total, paid is
    their sum, due = total − paid ≥ 0, and the invoice is paid exactly when nothing is due."""
    org = factories.make_organization()
    invoice = one_off_invoice(org, total)
    accepted = 0
    for cents in tries:
        due_before = invoice.total_due_amount_cents
        try:
            payments.create_manual_payment(
                invoice, {"amount_cents": cents, "reference": "r"}, TEST_ACTOR
            )
            db.session.commit()
            accepted += cents
            assert 0 < cents <= due_before
        except ValidationFailed:
            db.session.rollback()
            assert cents <= 0 or cents > due_before
        db.session.refresh(invoice)
        recorded = sum(p.amount_cents for p in payments.invoice_payments(invoice))
        assert recorded == accepted == invoice.total_paid_amount_cents <= total
        assert invoice.total_due_amount_cents == total - accepted >= 0
        assert (invoice.payment_status == "succeeded") == (invoice.total_due_amount_cents == 0)
        factories.assert_amount_relations(invoice)
