"""Credit note offsets (lago-api.md §14, Lago's credit note settlement): the part of a credit note
taken off what is still due on the credited invoice itself. Exact amounts on January's invoice
of `billed` (base fee 1000 + usage 200 = 1200 EUR cents, unpaid, due 2024-02-01): what is due
(API, analytics, customer balances), payment status and overdue, Lago's 422s with nothing
written, the mix with credit and refund, void, estimate."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from billing.models import ActivityLog, CreditNote, Invoice, OutboxEvent
from billing.money import format_money
from billing.pdf import render_invoice_pdf
from billing.services import analytics, invoicing
from extensions import db
from tests import test_credit_notes
from tests.test_credit_notes import body, close, count, pay
from tests.test_invoicing import at
from tests.test_pdf import make_document, needs_pdftotext, normalize, pdf_text

#: the fixtures of tests/test_credit_notes.py: January's invoice, the frozen clock
billed = test_credit_notes.billed
CLOCK_START = test_credit_notes.CLOCK_START


def create(api_client: Any, billed: Any, items: list[tuple[str, int]], **amounts: Any) -> Any:
    return api_client.post(
        "/api/v1/credit_notes",
        json=body(billed["january"], [(billed[name], cents) for name, cents in items], **amounts),
    )


def shown(api_client: Any, invoice: Invoice) -> dict[str, Any]:
    return api_client.get(f"/api/v1/invoices/{invoice.lago_id}").get_json()["invoice"]


def balances(billed: Any) -> tuple[int, int]:
    """The customer header's outstanding and overdue (EUR)."""
    [eur] = analytics.customer_balances(billed["customer"])
    return eur.outstanding_cents, eur.overdue_cents


def mark_overdue(billed: Any) -> None:
    billed["clock"][0] = at("2024-02-03T00:00:00")
    assert [i.id for i in invoicing.mark_overdue_invoices()] == [billed["january"].id]
    db.session.commit()


def events(org: Any, event_type: str) -> list[OutboxEvent]:
    return list(
        db.session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.organization_id == org.id, OutboxEvent.event_type == event_type
            )
        )
    )


def test_partial_offset_shrinks_what_is_due_and_the_outstanding(api_client, billed, org):
    mark_overdue(billed)
    assert balances(billed) == (1200, 1200)

    response = create(api_client, billed, [("base", 300)], offset_amount_cents=300)

    assert response.status_code == 200, response.get_json()
    note = response.get_json()["credit_note"]
    assert (
        note["total_amount_cents"], note["credit_amount_cents"], note["refund_amount_cents"],
        note["offset_amount_cents"], note["balance_amount_cents"], note["credit_status"],
        note["refund_status"],
    ) == (300, 0, 0, 300, 0, "available", None)  # fmt: skip
    invoice = shown(api_client, billed["january"])
    assert (
        invoice["total_amount_cents"], invoice["total_paid_amount_cents"],
        invoice["total_offsetted_credit_note_amount_cents"], invoice["total_due_amount_cents"],
        invoice["payment_status"], invoice["payment_overdue"],
    ) == (1200, 0, 300, 900, "pending", True)  # fmt: skip
    assert balances(billed) == (900, 900)
    [overdue] = analytics.overdue_balance(org, analytics.AnalyticsFilters())
    assert overdue.amount_cents == 900
    assert events(org, "invoice.payment_status_updated") == []


def test_full_offset_pays_the_invoice_and_clears_overdue(api_client, billed, org):
    mark_overdue(billed)

    first = create(api_client, billed, [("base", 1000)], offset_amount_cents=1000)
    rest = create(api_client, billed, [("usage", 200)], offset_amount_cents=200)

    assert (first.status_code, rest.status_code) == (200, 200)
    invoice = shown(api_client, billed["january"])
    assert (
        invoice["total_paid_amount_cents"], invoice["total_offsetted_credit_note_amount_cents"],
        invoice["total_due_amount_cents"], invoice["payment_status"], invoice["payment_overdue"],
    ) == (0, 1200, 0, "succeeded", False)  # fmt: skip
    assert balances(billed) == (0, 0)
    assert analytics.overdue_balance(org, analytics.AnalyticsFilters()) == []
    [event] = events(org, "invoice.payment_status_updated")
    assert event.payload["payment_status"] == "succeeded"
    assert event.payload["total_due_amount_cents"] == 0
    logged = db.session.scalars(
        select(ActivityLog).where(
            ActivityLog.organization_id == org.id,
            ActivityLog.activity_type == "invoice.payment_status_updated",
        )
    ).all()
    assert [entry.changes for entry in logged] == [{"payment_status": ["pending", "succeeded"]}]
    # nothing is due any more: the overdue job leaves it alone
    billed["clock"][0] = at("2024-02-10T00:00:00")
    assert invoicing.mark_overdue_invoices() == []


@pytest.mark.parametrize(
    ("amounts", "details"),
    [
        # 900 is still due after the first note's 300 (and 900 is all the items make)
        ({"offset_amount_cents": 901, "items": [("base", 700), ("usage", 200)]},
         {"offset_amount_cents": ["higher_than_remaining_invoice_amount"],
          "base": ["does_not_match_item_amounts"]}),
        # items 100, split 150
        ({"offset_amount_cents": 100, "credit_amount_cents": 50, "items": [("base", 100)]},
         {"base": ["does_not_match_item_amounts"]}),
        ({"offset_amount_cents": -100, "credit_amount_cents": 200, "items": [("base", 100)]},
         {"offset_amount_cents": ["value_is_out_of_range"]}),
        ({"offset_amount_cents": "lots", "items": [("base", 100)]},
         {"offset_amount_cents": ["value_is_invalid"]}),
        # more than the fees have left
        ({"offset_amount_cents": 901, "items": [("base", 701), ("usage", 200)]},
         {"amount_cents": ["higher_than_remaining_fee_amount"],
          "offset_amount_cents": ["higher_than_remaining_invoice_amount"],
          "base": ["higher_than_remaining_invoice_amount"]}),
    ],
)  # fmt: skip
def test_bad_offsets_are_422_and_write_nothing(api_client, billed, org, amounts, details):
    assert create(api_client, billed, [("base", 300)], offset_amount_cents=300).status_code == 200
    amounts = dict(amounts)
    items = amounts.pop("items")
    outbox_before = count(OutboxEvent, org)

    response = create(api_client, billed, items, **amounts)

    assert response.status_code == 422
    assert response.get_json()["error_details"] == details
    assert count(CreditNote, org) == 1
    assert count(OutboxEvent, org) == outbox_before
    db.session.expire_all()
    january = db.session.get_one(Invoice, billed["january"].id)
    assert (january.offset_amount_cents, january.total_due_amount_cents) == (300, 900)


def test_offset_of_a_wallet_top_up_invoice_is_refused(api_client, billed, org):
    wallet = api_client.post(
        "/api/v1/wallets",
        json={"wallet": {"external_customer_id": "acme", "currency": "EUR", "rate_amount": "1",
                         "paid_credits": "10"}},
    )  # fmt: skip
    assert wallet.status_code == 200, wallet.get_json()
    top_up = db.session.scalar(
        select(Invoice).where(Invoice.organization_id == org.id, Invoice.invoice_type == "credit")
    )
    assert top_up is not None and top_up.total_due_amount_cents == 1000
    [fee] = top_up.fees
    payload = body(top_up, [(fee, 1000)], offset_amount_cents=1000)

    response = api_client.post("/api/v1/credit_notes", json=payload)
    estimate = api_client.post(
        "/api/v1/credit_notes/estimate",
        json={"credit_note": {"invoice_id": str(top_up.lago_id),
                              "items": [{"fee_id": str(fee.lago_id), "amount_cents": 1000}]}},
    )  # fmt: skip

    assert response.status_code == 422
    assert response.get_json()["error_details"] == {
        "offset_amount_cents": ["cannot_credit_invoice"]
    }
    assert estimate.get_json()["estimated_credit_note"]["max_offsettable_amount_cents"] == 0
    assert count(CreditNote, org) == 0


def test_credit_and_offset_then_payment_then_refund(api_client, billed, org):
    """Unpaid: 200 credit + 300 offset of the base fee; paid: what was left due (900) is what
    was paid, and only that can be refunded."""
    mixed = create(
        api_client, billed, [("base", 500)], credit_amount_cents=200, offset_amount_cents=300
    )
    assert mixed.status_code == 200, mixed.get_json()
    note = mixed.get_json()["credit_note"]
    assert (note["credit_amount_cents"], note["offset_amount_cents"], note["balance_amount_cents"],
            note["total_amount_cents"]) == (200, 300, 200, 500)  # fmt: skip
    assert shown(api_client, billed["january"])["total_due_amount_cents"] == 900

    pay(billed["january"])
    paid = shown(api_client, billed["january"])
    offset_of_paid = create(api_client, billed, [("usage", 1)], offset_amount_cents=1)
    refund = create(api_client, billed, [("base", 500), ("usage", 200)], refund_amount_cents=700)

    assert (paid["total_paid_amount_cents"], paid["total_due_amount_cents"],
            paid["payment_status"]) == (900, 0, "succeeded")  # fmt: skip
    assert offset_of_paid.status_code == 422  # nothing is due on a paid invoice
    assert offset_of_paid.get_json()["error_details"] == {
        "offset_amount_cents": ["higher_than_remaining_invoice_amount"]
    }
    # 1200 − 500 taken = 700 left to credit, all refundable out of the 900 paid
    assert refund.status_code == 200, refund.get_json()
    # the credit of the first note goes to February's invoice
    [february] = close(billed["clock"], "2024-03-01T00:00:10", org)[1:]
    assert (february.credit_notes_amount_cents, february.total_amount_cents) == (200, 800)


def test_refund_of_a_paid_invoice_after_an_offset_is_limited_to_what_was_paid(api_client, billed):
    assert create(api_client, billed, [("base", 300)], offset_amount_cents=300).status_code == 200
    pay(billed["january"])

    estimate = api_client.post(
        "/api/v1/credit_notes/estimate",
        json={"credit_note": {"invoice_id": str(billed["january"].lago_id), "items": [
            {"fee_id": str(billed["base"].lago_id), "amount_cents": 700},
            {"fee_id": str(billed["usage"].lago_id), "amount_cents": 200}]}},
    ).get_json()["estimated_credit_note"]  # fmt: skip
    over = create(api_client, billed, [("base", 700), ("usage", 200)], refund_amount_cents=900)

    assert (estimate["max_creditable_amount_cents"], estimate["max_refundable_amount_cents"],
            estimate["max_offsettable_amount_cents"]) == (900, 900, 0)  # fmt: skip
    assert over.status_code == 200  # paid 900, all of it refunded


def test_estimate_offers_at_most_what_is_due(api_client, billed):
    def estimate(base: int, usage: int) -> dict[str, Any]:
        items = [{"fee_id": str(billed["base"].lago_id), "amount_cents": base},
                 {"fee_id": str(billed["usage"].lago_id), "amount_cents": usage}]  # fmt: skip
        return api_client.post(
            "/api/v1/credit_notes/estimate",
            json={"credit_note": {"invoice_id": str(billed["january"].lago_id), "items": items}},
        ).get_json()["estimated_credit_note"]

    unpaid = estimate(500, 50)
    assert create(api_client, billed, [("base", 900)], offset_amount_cents=900).status_code == 200
    after_offset = estimate(100, 200)  # 300 left to credit, 300 due

    assert (unpaid["max_creditable_amount_cents"], unpaid["max_refundable_amount_cents"],
            unpaid["max_offsettable_amount_cents"]) == (550, 0, 550)  # fmt: skip
    assert (after_offset["max_creditable_amount_cents"],
            after_offset["max_offsettable_amount_cents"]) == (300, 300)  # fmt: skip


@pytest.mark.parametrize(
    ("amounts", "void_status", "balance_after"),
    [
        # credit + offset: the credit left is voided, the offset stays taken
        ({"credit_amount_cents": 200, "offset_amount_cents": 300}, 200, 0),
        # offset only: nothing to void (Lago's no_voidable_amount)
        ({"offset_amount_cents": 500}, 405, 0),
    ],
)
def test_void_voids_the_credit_left_never_the_offset(api_client, billed, org, amounts,
                                                     void_status, balance_after):  # fmt: skip
    note = create(api_client, billed, [("base", 500)], **amounts).get_json()["credit_note"]
    offset = amounts["offset_amount_cents"]

    voided = api_client.put(f"/api/v1/credit_notes/{note['lago_id']}/void")

    assert voided.status_code == void_status
    if void_status == 405:
        assert voided.get_json()["code"] == "no_voidable_amount"
    db.session.expire_all()
    stored = db.session.get_one(CreditNote, db.session.scalar(
        select(CreditNote.id).where(CreditNote.organization_id == org.id)))  # fmt: skip
    assert (stored.balance_amount_cents, stored.offset_amount_cents) == (balance_after, offset)
    invoice = shown(api_client, billed["january"])
    assert (invoice["total_offsetted_credit_note_amount_cents"],
            invoice["total_due_amount_cents"]) == (offset, 1200 - offset)  # fmt: skip


def test_offset_is_limited_to_what_is_due_after_consumed_credit(api_client, billed, org):
    """February (fees 1000) consumed 200 of January's credit: 800 is due although 1000 can
    be credited; an offset takes at most the 800, the rest of a note is credit."""
    assert create(api_client, billed, [("base", 200)], credit_amount_cents=200).status_code == 200
    [february] = close(billed["clock"], "2024-03-01T00:00:10", org)[1:]
    assert (february.total_amount_cents, february.total_due_amount_cents) == (800, 800)
    base = february.fees[0]
    assert (base.fee_type, base.amount_cents) == ("subscription", 1000)

    def note(**amounts: Any) -> Any:
        return api_client.post(
            "/api/v1/credit_notes", json=body(february, [(base, 1000)], **amounts)
        )

    too_much = note(offset_amount_cents=1000)
    split = note(offset_amount_cents=800, credit_amount_cents=200)

    assert too_much.status_code == 422
    assert too_much.get_json()["error_details"] == {
        "offset_amount_cents": ["higher_than_remaining_invoice_amount"]
    }
    assert split.status_code == 200, split.get_json()
    invoice = shown(api_client, february)
    assert (invoice["total_offsetted_credit_note_amount_cents"], invoice["total_due_amount_cents"],
            invoice["total_paid_amount_cents"], invoice["payment_status"]) == (
        800, 0, 0, "succeeded")  # fmt: skip


@needs_pdftotext
def test_pdfs_show_the_offset() -> None:
    """The invoice: what credit notes offset on its own line, apart from what was paid; the
    credit note (French): its offset next to its credit."""
    invoice = make_document(total_cents=85_282, offset_amount_cents=30_000, total_due_cents=55_282)
    note = make_document(
        kind="credit_note",
        locale="fr",
        credited_invoice_number="ACM-7K2Q-001-042",
        total_cents=30_500,
        credit_amount_cents=500,
        offset_amount_cents=30_000,
    )

    invoice_text = pdf_text(render_invoice_pdf(invoice))
    note_text = pdf_text(render_invoice_pdf(note))

    assert "Offset by credit notes -€300.00" in invoice_text.replace("−", "-")
    assert "Amount paid" not in invoice_text
    assert "Total due €552.82" in invoice_text
    assert "Imputé sur la facture " + normalize(format_money(30_000, "EUR", "fr")) in note_text
