"""Credit notes in the console, as a support agent uses them: create one from the invoice page
(amounts per fee, refund of a paid invoice, live estimate, field errors), the credit note page
(void with confirmation, refund status, PDF), the organization's list with its filters and the
customer's tab; viewers read only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import CreditNote
from billing.services import credit_notes, invoicing
from extensions import db
from tests.factories import TEST_ACTOR, invoices_of
from tests.test_console_invoices import at, billed_customer, close, invoice_of, money, text


@pytest.fixture
def acme(org: Any, clock: Any) -> Any:
    """Acme (Paris): April finalized: base fee 10.00 € and 3 calls at 0.50 € (total 11.50 €)."""
    customer, _ = billed_customer(org, clock, "Acme")
    close(clock)
    return customer


#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = at("2026-04-01T08:00:00")


def notes_of(org: Any) -> list[CreditNote]:
    return list(
        db.session.scalars(
            select(CreditNote).where(CreditNote.organization_id == org.id).order_by(CreditNote.id)
        )
    )


def fields(invoice: Any, **amounts: str) -> dict[str, str]:
    """The form's amount fields: base= and usage= give the two fees' typed amounts."""
    base, usage = invoice.fees
    data = {
        f"fee-{base.lago_id}": amounts.pop("base", ""),
        f"fee-{usage.lago_id}": amounts.pop("usage", ""),
    }
    return data | {"reason": "duplicated_charge", **amounts}


def test_create_from_the_invoice_page(agent_client, org, acme):
    invoice = invoice_of(org, acme)
    page = agent_client.get(f"/invoices/{invoice.lago_id}")
    assert "Create credit note" in text(page)
    form = agent_client.get(f"/invoices/{invoice.lago_id}/credit-notes/new")
    assert form.status_code == 200
    assert "Left to credit" in text(form) and money(1000) in text(form) and money(150) in text(form)
    assert "Refund" not in text(form).replace("refund part", "")  # not paid: no refund field

    estimate = agent_client.post(
        f"/invoices/{invoice.lago_id}/credit-notes/estimate",
        data=fields(invoice, base="2.50", usage="1"),
        htmx=True,
    )
    assert "Total " + money(350) in text(estimate)
    assert "Credit for later invoices " + money(350) in text(estimate)

    created = agent_client.post(
        f"/invoices/{invoice.lago_id}/credit-notes/new",
        data=fields(invoice, base="2.50", usage="1", description="Two calls too many"),
    )
    assert created.status_code == 302
    [note] = notes_of(org)
    assert created.headers["Location"].endswith(f"/credit-notes/{note.lago_id}")
    assert (note.total_amount_cents, note.credit_amount_cents, note.balance_amount_cents) == (
        350, 350, 350,
    )  # fmt: skip
    assert [item.amount_cents for item in note.items] == [250, 100]
    assert note.reason == "duplicated_charge" and note.description == "Two calls too many"
    shown = text(agent_client.get(created.headers["Location"]))
    assert f"{invoice.number}-CN001" in shown and "Credit available" in shown
    assert f"{invoice.number}-CN001" in text(agent_client.get(f"/invoices/{invoice.lago_id}"))


@pytest.mark.parametrize(
    ("amounts", "message"),
    [
        ({"base": "10.01"}, "More than what is left to credit on this fee."),
        ({"base": "ten"}, "Enter an amount such as 12.50."),
        ({"usage": "-1"}, "Enter a positive amount."),
        ({"base": "1.005"}, "EUR has 2 decimals at most."),
        ({}, "Enter an amount for at least one fee."),
    ],
)
def test_bad_amounts_rerender_the_form_with_errors(agent_client, org, acme, amounts, message):
    invoice = invoice_of(org, acme)

    response = agent_client.post(
        f"/invoices/{invoice.lago_id}/credit-notes/new", data=fields(invoice, **amounts), htmx=True
    )

    assert response.status_code == 422
    assert message in text(response)
    assert 'id="credit-note-form"' in response.get_data(as_text=True)
    assert notes_of(org) == []


def test_refund_of_a_paid_invoice(agent_client, org, acme):
    invoice = invoice_of(org, acme)
    invoicing.update_invoice(invoice, {"payment_status": "succeeded"}, TEST_ACTOR)
    db.session.commit()
    url = f"/invoices/{invoice.lago_id}/credit-notes/new"

    too_much = agent_client.post(url, data=fields(invoice, base="4", refund="5"), htmx=True)
    created = agent_client.post(url, data=fields(invoice, base="4", refund="1.50"))

    assert too_much.status_code == 422
    assert "The refund cannot exceed the credited total." in text(too_much)
    assert created.status_code == 302
    [note] = notes_of(org)
    assert (note.refund_amount_cents, note.credit_amount_cents, note.refund_status) == (
        150, 250, "pending",
    )  # fmt: skip

    refunded = agent_client.post(
        f"/credit-notes/{note.lago_id}/refund-status", data={"refund_status": "succeeded"},
        htmx=True,
    )  # fmt: skip
    assert f"Credit note {note.number} marked as refunded." in text(refunded)
    assert "Mark refunded" not in text(refunded) and "Mark refund failed" in text(refunded)
    db.session.expire_all()
    assert notes_of(org)[0].refund_status == "succeeded"


def make_note(invoice: Any, cents: int) -> CreditNote:
    note = credit_notes.create_credit_note(
        invoice,
        {
            "reason": "order_change",
            "items": [{"fee_id": str(invoice.fees[0].lago_id), "amount_cents": cents}],
            "credit_amount_cents": cents,
        },
        TEST_ACTOR,
    )
    db.session.commit()
    return note


def test_void_asks_for_confirmation(agent_client, org, acme):
    note = make_note(invoice_of(org, acme), 400)
    url = f"/credit-notes/{note.lago_id}/void"

    confirm_page = agent_client.get(url)
    unconfirmed = agent_client.post(url, data={})
    voided = agent_client.post(url, data={"confirm": "y"}, htmx=True)
    again = agent_client.post(url, data={"confirm": "y"}, htmx=True)

    assert confirm_page.status_code == 200
    assert f"The {money(400)} left is voided" in text(confirm_page)
    assert unconfirmed.status_code == 422
    assert f"Credit note {note.number} voided." in text(voided)
    assert "Void…" not in text(voided)
    assert "Nothing is left to void on this credit note." in text(again)
    db.session.expire_all()
    assert (notes_of(org)[0].credit_status, notes_of(org)[0].balance_amount_cents) == ("voided", 0)


def test_lists_and_pdf(agent_client, org, acme):
    invoice = invoice_of(org, acme)
    kept = make_note(invoice, 400)
    voided = make_note(invoice, 100)
    credit_notes.void_credit_note(voided, TEST_ACTOR)
    db.session.commit()

    everything = text(agent_client.get("/credit-notes"))
    only_voided = agent_client.get("/credit-notes?credit_status=voided", htmx=True)
    tab = text(agent_client.get(f"/customers/{acme.lago_id}?tab=invoices"))
    pdf = agent_client.get(f"/credit-notes/{kept.lago_id}/pdf")

    assert "2 credit notes" in everything and kept.number in everything
    assert "1 credit note" in text(only_voided) and voided.number in text(only_voided)
    assert kept.number not in text(only_voided)
    assert kept.number in tab and voided.number in tab
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert pdf.headers["Content-Disposition"] == f'attachment; filename="{kept.number}.pdf"'


def test_viewers_read_but_do_not_act(make_agent_client, org, acme):
    invoice = invoice_of(org, acme)
    note = make_note(invoice, 400)
    viewer = make_agent_client("viewer")

    invoice_page = text(viewer.get(f"/invoices/{invoice.lago_id}"))
    note_page = text(viewer.get(f"/credit-notes/{note.lago_id}"))

    assert note.number in invoice_page and "Create credit note" not in invoice_page
    assert "Void…" not in note_page and "Download PDF" in note_page
    for url, data in [
        (f"/invoices/{invoice.lago_id}/credit-notes/new", fields(invoice, base="1")),
        (f"/credit-notes/{note.lago_id}/void", {"confirm": "y"}),
        (f"/credit-notes/{note.lago_id}/refund-status", {"refund_status": "succeeded"}),
    ]:
        assert viewer.post(url, data=data).status_code == 403
    assert (
        db.session.scalar(
            select(func.count(CreditNote.id)).where(CreditNote.organization_id == org.id)
        )
        == 1
    )


def test_the_next_invoice_page_shows_the_credit_it_took(agent_client, org, clock, acme):
    april = invoice_of(org, acme)
    note = make_note(april, 400)

    close(clock, "2026-06-01T00:00:10")
    may = [i for i in invoices_of(org) if i.customer_id == acme.id][-1]
    page = text(agent_client.get(f"/invoices/{may.lago_id}"))

    assert f"Credit taken off this invoice: {note.number} ({money(400)})" in page
    assert (may.credit_notes_amount_cents, may.total_amount_cents) == (400, 600)


def test_the_list_filters_by_search_issuing_dates_and_refund_status(agent_client, org, clock, acme):
    credited = make_note(invoice_of(org, acme), 400)  # issued on 1 May (Paris)
    globex, _ = billed_customer(org, clock, "Globex")
    close(clock)
    paid = invoice_of(org, globex)
    invoicing.update_invoice(paid, {"payment_status": "succeeded"}, TEST_ACTOR)
    clock[0] = at("2026-05-20T10:00:00")
    refunded = credit_notes.create_credit_note(
        paid,
        {
            "reason": "duplicated_charge",
            "items": [{"fee_id": str(paid.fees[0].lago_id), "amount_cents": 300}],
            "refund_amount_cents": 300,
        },
        TEST_ACTOR,
    )
    db.session.commit()

    def listed(query: str) -> set[str]:
        body = text(agent_client.get(f"/credit-notes?{query}", htmx=True))
        return {note.number for note in (credited, refunded) if note.number in body}

    both = {credited.number, refunded.number}
    assert listed("") == both
    # search: a credit note's number, its customer's external id or name
    assert listed(f"q={refunded.number}") == {refunded.number}
    assert listed("q=ext-acme") == {credited.number}
    assert listed("q=Globex") == {refunded.number}
    # issuing dates, both bounds included
    assert listed("issued_from=2026-05-02") == {refunded.number}
    assert listed("issued_to=2026-05-01") == {credited.number}
    assert listed("issued_from=2026-05-01&issued_to=2026-05-20") == both
    assert listed("issued_from=2026-05-02&issued_to=2026-05-19") == set()
    assert "0 credit notes" in text(agent_client.get("/credit-notes?issued_from=2026-05-21"))
    # refund status: only a refund has one
    assert listed("refund_status=pending") == {refunded.number}
    assert listed("refund_status=succeeded") == set()
    credit_notes.update_credit_note(refunded, {"refund_status": "succeeded"}, TEST_ACTOR)
    db.session.commit()
    assert listed("refund_status=succeeded") == {refunded.number}
    assert listed("refund_status=succeeded&q=acme") == set()
    # a nonsense value counts as absent, never an error
    assert listed("refund_status=maybe&issued_from=soon") == both
