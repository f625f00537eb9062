"""The console's credit note form with an offset (Acme's April invoice: 11.50 €, unpaid): the
field with what can be offset, the live estimate, field errors, and the invoice and credit
note pages showing the offset."""

from __future__ import annotations

from billing.services import invoicing
from extensions import db
from tests import test_console_credit_notes
from tests.factories import TEST_ACTOR
from tests.test_console_credit_notes import fields, notes_of
from tests.test_console_invoices import invoice_of, money, text

#: the fixtures of tests/test_console_credit_notes.py: Acme's April invoice, the frozen clock
acme = test_console_credit_notes.acme
CLOCK_START = test_console_credit_notes.CLOCK_START


def test_offset_from_the_form(agent_client, org, acme):
    invoice = invoice_of(org, acme)
    url = f"/invoices/{invoice.lago_id}/credit-notes/new"

    form = text(agent_client.get(url))
    estimate = agent_client.post(
        f"/invoices/{invoice.lago_id}/credit-notes/estimate",
        data=fields(invoice, base="4", usage="1", offset="3.50"),
        htmx=True,
    )
    too_much = agent_client.post(url, data=fields(invoice, base="4", offset="4.01"), htmx=True)
    created = agent_client.post(url, data=fields(invoice, base="4", usage="1", offset="3.50"))

    assert "Offset" in form and f"(at most {money(1150)})" in form
    assert "Offset against the amount due " + money(350) in text(estimate)
    assert "Credit for later invoices " + money(150) in text(estimate)
    assert too_much.status_code == 422
    assert "Refund and offset together cannot exceed the credited total." in text(too_much)
    assert created.status_code == 302
    [note] = notes_of(org)
    assert (note.total_amount_cents, note.offset_amount_cents, note.credit_amount_cents,
            note.balance_amount_cents) == (500, 350, 150, 150)  # fmt: skip
    shown = text(agent_client.get(created.headers["Location"]))
    assert f"Offset against {invoice.number} {money(350)}" in shown
    page = text(agent_client.get(f"/invoices/{invoice.lago_id}"))
    assert "Offset by credit notes −" + money(350) in page
    assert "Amount due " + money(800) in page


def test_no_offset_field_on_a_paid_invoice(agent_client, org, acme):
    invoice = invoice_of(org, acme)
    invoicing.update_invoice(invoice, {"payment_status": "succeeded"}, TEST_ACTOR)
    db.session.commit()

    form = text(agent_client.get(f"/invoices/{invoice.lago_id}/credit-notes/new"))

    assert "Offset" not in form


def test_full_offset_marks_the_invoice_paid(agent_client, org, acme):
    invoice = invoice_of(org, acme)

    created = agent_client.post(
        f"/invoices/{invoice.lago_id}/credit-notes/new",
        data=fields(invoice, base="10", usage="1.50", offset="11.50"),
    )

    assert created.status_code == 302
    db.session.expire_all()
    invoice = invoice_of(org, acme)
    assert (invoice.payment_status, invoice.total_due_amount_cents) == ("succeeded", 0)
