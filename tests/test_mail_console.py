"""E-mail as agents and API clients use it: Settings › E-mail (field messages, the test button),
the E-mails page, Resend on the invoice and on the API, Request payment, the customer's
override, its timeline, and the portal's overdue banner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from billing.models import ActivityLog, Email
from billing.services import invoicing, mail
from billing.services import portal as portal_service
from billing.services.credit_notes import void_invoice
from extensions import db
from jobs.mail import run_mail_delivery
from tests import factories
from tests.mail_helpers import SmtpServer, body_of, free_port
from tests.test_console_invoices import CLOCK_START, at, billed_customer, invoice_of, text
from tests.test_documents import bill

__all__ = ["CLOCK_START"]

NOT_ALLOWED = {"status": 405, "error": "Method Not Allowed", "code": "invalid_status"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


def emails_of(org: Any, kind: str | None = None) -> list[Email]:
    db.session.expire_all()
    query = select(Email).where(Email.organization_id == org.id).order_by(Email.id)
    if kind:
        query = query.where(Email.kind == kind)
    return list(db.session.scalars(query))


# --- Settings › E-mail -------------------------------------------------------------------------

GOOD_SETTINGS = {
    "smtp_host": "smtp.seller.test",
    "smtp_port": "2525",
    "smtp_security": "starttls",
    "smtp_username": "mailer",
    "smtp_password": "s3cret-smtp-pass",
    "mail_from_address": "billing@seller.test",
    "mail_from_name": "Seller Billing",
    "invoice_emails": "y",
    "dunning_schedule": "30, 3,10",
}


def test_settings_are_saved_with_the_password_encrypted_and_never_shown(agent_client, org):
    response = agent_client.post("/settings/email", data=GOOD_SETTINGS)
    assert response.status_code == 302
    db.session.refresh(org)
    assert (org.smtp_host, org.smtp_port, org.invoice_emails) == ("smtp.seller.test", 2525, True)
    assert org.dunning_schedule == [3, 10, 30]
    assert "s3cret" not in (org.smtp_password_encrypted or "")
    page = agent_client.get("/settings/email").text
    assert "s3cret" not in page and org.smtp_password_encrypted not in page
    assert 'value="3, 10, 30"' in page and "A password is stored" in page

    # saving again without typing the password keeps it
    agent_client.post("/settings/email", data={**GOOD_SETTINGS, "smtp_password": ""})
    db.session.refresh(org)
    assert org.smtp_password_encrypted


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("smtp_port", "seventy", "Enter a port number between 1 and 65535."),
        ("smtp_port", "70000", "Enter a port number between 1 and 65535."),
        ("dunning_schedule", "3, soon", "whole numbers of days between 1 and 365"),
        ("dunning_schedule", "0", "whole numbers of days between 1 and 365"),
        ("mail_from_address", "billing at seller", "Enter a valid e-mail address."),
        ("mail_from_address", "", "A mail server needs a sender address."),
        ("smtp_host", "smtp server.test", "Enter a host name such as smtp.example.com."),
        ("smtp_security", "ssl3", "Choose a security mode from the list."),
    ],
)
def test_bad_settings_get_field_messages_and_nothing_is_saved(
    agent_client, org, field, value, message
):
    response = agent_client.post("/settings/email", data={**GOOD_SETTINGS, field: value})
    assert response.status_code == 422
    assert message in text(response)
    db.session.refresh(org)
    assert org.smtp_host is None


def test_only_admins_reach_the_mail_settings_and_the_outbox(make_agent_client):
    support = make_agent_client("support")
    assert support.get("/settings/email").status_code == 403
    assert support.get("/emails").status_code == 403
    assert support.post("/settings/email/test", data={"to": "a@b.test"}).status_code == 403


def test_the_test_button_sends_with_the_saved_settings(agent_client, org, smtp):
    smtp.configure(org)
    response = agent_client.post("/settings/email/test", data={"to": "ops@seller.test"})
    assert "Test e-mail sent to ops@seller.test." in text(response)
    [message] = smtp.inbox.messages
    assert message["To"] == "ops@seller.test" and "test" in message["Subject"].lower()


def test_the_test_button_says_why_sending_failed(agent_client, org, smtp):
    smtp.configure(org)
    org.smtp_port = free_port()
    db.session.commit()
    response = agent_client.post("/settings/email/test", data={"to": "ops@seller.test"})
    assert "could not be sent" in text(response)


def test_the_test_button_without_a_server_stores_the_message(agent_client, org):
    response = agent_client.post("/settings/email/test", data={"to": "ops@seller.test"})
    assert "stored on the E-mails page, not sent" in text(response)
    assert "stored, not sent" in text(agent_client.get("/emails"))


# --- invoices: Resend (console and API) --------------------------------------------------------


def test_resend_from_the_invoice_page_queues_the_invoice_again(agent_client, org, clock, smtp):
    smtp.configure(org)
    invoice = bill(org, clock, "Acme", email="ap@acme.test")
    page = agent_client.get(f"/invoices/{invoice.lago_id}").text
    assert "Resend e-mail" in page
    response = agent_client.post(f"/invoices/{invoice.lago_id}/resend-email", htmx=True)
    assert "queued for ap@acme.test" in text(response)
    run_mail_delivery()
    [message] = smtp.inbox.messages
    assert invoice.number in message["Subject"]
    [entry] = db.session.scalars(
        select(ActivityLog).where(ActivityLog.activity_type == "invoice.email_resent")
    ).all()
    assert entry.customer_id == invoice.customer_id


def test_a_draft_has_no_resend_and_refuses_one(agent_client, org, clock):
    customer, _ = billed_customer(org, clock, "Globex", grace=3)
    from tests.test_console_invoices import close

    close(clock)
    draft = invoice_of(org, customer)
    assert "Resend e-mail" not in agent_client.get(f"/invoices/{draft.lago_id}").text
    response = agent_client.post(f"/invoices/{draft.lago_id}/resend-email", htmx=True)
    assert "Only a finalized invoice can be e-mailed." in text(response)
    assert emails_of(org) == []


def test_api_resend_email_answers_the_invoice_and_sends_to_cc_and_bcc(api_client, org, clock, smtp):
    smtp.configure(org)
    invoice = bill(org, clock, "Acme", email="ap@acme.test")
    response = api_client.post(
        f"/api/v1/invoices/{invoice.lago_id}/resend_email",
        json={"to": ["boss@acme.test"], "cc": ["cfo@acme.test"], "bcc": ["audit@seller.test"]},
    )
    assert response.status_code == 200
    assert response.get_json()["invoice"]["lago_id"] == str(invoice.lago_id)
    run_mail_delivery()
    [message] = smtp.inbox.messages
    assert (message["To"], message["Cc"], message["Bcc"]) == (
        "boss@acme.test",
        "cfo@acme.test",
        None,
    )


def test_api_resend_email_without_a_body_goes_to_the_customer(api_client, org, clock):
    invoice = bill(org, clock, "Acme", email="ap@acme.test")
    response = api_client.post(
        f"/api/v1/invoices/{invoice.lago_id}/resend_email", content_type="application/json"
    )
    assert response.status_code == 200
    [email] = emails_of(org)
    assert (email.kind, email.recipients) == ("invoice_resent", "ap@acme.test")


def test_api_resend_email_refuses_drafts_voided_and_bad_input(api_client, org, clock):
    invoice = bill(org, clock, "Acme", email=None)
    url = f"/api/v1/invoices/{invoice.lago_id}/resend_email"

    no_address = api_client.post(url, json={})
    assert no_address.status_code == 422
    assert no_address.get_json()["error_details"] == {"to": ["value_is_mandatory"]}
    bad = api_client.post(url, json={"to": ["nope"], "cc": "x@y.test"})
    assert bad.get_json()["error_details"] == {
        "to": ["invalid_email_format"],
        "cc": ["value_is_invalid"],
    }
    missing = api_client.post("/api/v1/invoices/00000000-0000-0000-0000-000000000000/resend_email")
    assert missing.status_code == 404 and missing.get_json()["code"] == "invoice_not_found"

    void_invoice(invoice, {}, factories.TEST_ACTOR)
    db.session.commit()
    voided = api_client.post(url, json={"to": ["a@b.test"]})
    assert (voided.status_code, voided.get_json()) == (405, NOT_ALLOWED)

    customer, _ = billed_customer(org, clock, "Globex", grace=3)
    from tests.test_console_invoices import close

    close(clock, "2026-05-01T00:00:20")
    draft = invoice_of(org, customer)
    response = api_client.post(f"/api/v1/invoices/{draft.lago_id}/resend_email", json={})
    assert (response.status_code, response.get_json()) == (405, NOT_ALLOWED)
    assert emails_of(org) == []


# --- customers: Request payment, override, timeline --------------------------------------------


def test_request_payment_lists_every_overdue_invoice_in_one_email(agent_client, org, clock, smtp):
    smtp.configure(org)
    invoice = bill(org, clock, "Acme", locale="es", email="ap@acme.test")
    customer = invoice.customer
    clock[0] = at("2026-06-15T10:00:00")

    page = agent_client.get(f"/customers/{customer.lago_id}/request-payment")
    assert invoice.number in page.text and "ap@acme.test" in page.text
    response = agent_client.post(f"/customers/{customer.lago_id}/request-payment")
    assert response.status_code == 302
    run_mail_delivery()
    [message] = smtp.inbox.messages
    assert message["Subject"] == f"Facturas vencidas de {org.name}"
    assert f"Factura {invoice.number}, vencida el 31 de mayo de 2026" in body_of(message)

    activity = agent_client.get(f"/customers/{customer.lago_id}/activity").text
    assert "customer.payment_requested" in activity and "email.sent" in activity
    assert "payment request" in activity


def test_request_payment_without_an_overdue_invoice_says_so(agent_client, org, clock):
    customer = factories.make_customer(org)
    response = agent_client.post(f"/customers/{customer.lago_id}/request-payment")
    assert response.status_code == 302
    page = agent_client.get(response.headers["Location"])
    assert "The customer has no overdue invoice." in page.text
    assert emails_of(org) == []


def test_the_customer_override_is_set_from_its_settings_tab(agent_client, org):
    customer = factories.make_customer(org)
    assert "Invoice e-mails" in agent_client.get(f"/customers/{customer.lago_id}/settings").text
    response = agent_client.post(
        f"/customers/{customer.lago_id}/invoice-emails", data={"invoice_emails": "off"}
    )
    assert response.status_code == 302
    db.session.refresh(customer)
    assert customer.invoice_emails == "off"
    bad = agent_client.post(
        f"/customers/{customer.lago_id}/invoice-emails", data={"invoice_emails": "maybe"}
    )
    assert bad.status_code == 302
    db.session.refresh(customer)
    assert customer.invoice_emails == "off"
    assert not mail.wants_invoice_emails(customer)


def test_the_activity_tab_shows_each_email_with_its_error(agent_client, org, clock, smtp):
    smtp.configure(org)
    org.invoice_emails = True
    db.session.commit()
    smtp.inbox.reject = 1
    invoice = bill(org, clock, "Acme")
    run_mail_delivery()
    activity = text(agent_client.get(f"/customers/{invoice.customer.lago_id}/activity"))
    assert "E-mails to this customer" in activity
    assert "failed" in activity and "550" in activity


# --- the portal's overdue banner ---------------------------------------------------------------


def test_the_portal_lists_the_overdue_invoices_in_the_customers_language(client, org, clock):
    invoice = bill(org, clock, "Acme", locale="fr")
    token = portal_service.issue_token("test-secret-key", invoice.customer)
    before = client.get(f"/portal/{token}/").get_data(as_text=True)
    assert "Factures en retard" not in before

    clock[0] = at("2026-06-02T10:00:00")
    page = client.get(f"/portal/{portal_service.issue_token('test-secret-key', invoice.customer)}/")
    body = page.get_data(as_text=True)
    assert "Factures en retard" in body
    assert f"Facture {invoice.number}, échue le 31 mai 2026" in body

    invoicing.update_invoice(invoice, {"payment_status": "succeeded"}, factories.TEST_ACTOR)
    db.session.commit()
    paid = client.get(f"/portal/{portal_service.issue_token('test-secret-key', invoice.customer)}/")
    assert "Factures en retard" not in paid.get_data(as_text=True)
