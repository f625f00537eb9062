"""Invoice e-mails, reminders and their delivery, against a real SMTP server (aiosmtpd).

What the customer receives is read back from the MIME message the server got: its language,
its PDF attachment, and a portal link that opens the portal. Invoices come from the real period
close on a frozen clock (April closed on 1 May in Paris, 30 days to pay: due 31 May).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from billing.models import ActivityLog, Email, EmailStatus, Invoice
from billing.secrets import SecretUnreadable, decrypt_secret
from billing.services import invoicing, mail
from billing.services.credit_notes import void_invoice
from extensions import db
from jobs.mail import run_dunning, run_mail_delivery
from tests import factories
from tests.mail_helpers import SmtpServer, attachments_of, body_of, free_port, links_in
from tests.test_console_invoices import CLOCK_START, at
from tests.test_documents import bill

__all__ = ["CLOCK_START"]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


def emails_of(org: Any) -> list[Email]:
    db.session.expire_all()
    return list(
        db.session.scalars(select(Email).where(Email.organization_id == org.id).order_by(Email.id))
    )


def timeline(customer: Any) -> list[ActivityLog]:
    return list(
        db.session.scalars(
            select(ActivityLog)
            .where(ActivityLog.customer_id == customer.id, ActivityLog.resource_type == "email")
            .order_by(ActivityLog.id)
        )
    )


def enable_invoice_emails(org: Any) -> None:
    org.invoice_emails = True
    db.session.commit()


def test_a_finalized_invoice_arrives_in_french_with_its_pdf_and_a_working_portal_link(
    org, clock, smtp, client
):
    smtp.configure(org)
    enable_invoice_emails(org)
    invoice = bill(org, clock, "Acme", locale="fr", email="compta@acme.test")
    assert invoice.status == "finalized"

    assert run_mail_delivery() == 1

    [message] = smtp.inbox.messages
    assert message["To"] == "compta@acme.test"
    assert message["Subject"] == f"Facture {invoice.number} de {org.name}"
    assert "billing@seller.test" in message["From"]
    body = body_of(message)
    assert "Bonjour Acme," in body
    assert "Montant dû" in body and invoice.number in body
    [(filename, pdf)] = attachments_of(message)
    assert filename == f"{invoice.number}.pdf"
    assert pdf.startswith(b"%PDF")
    [portal_link] = [link for link in links_in(body) if "/portal/" in link]
    html = message.get_body(preferencelist=("html",)).get_content()
    assert f'<a href="{portal_link}">' in html and "Bonjour Acme," in html
    page = client.get(portal_link.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert "Acme" in page.get_data(as_text=True)

    [email] = emails_of(org)
    assert (email.status, email.attempts, email.sent_at is not None) == ("sent", 1, True)
    assert [entry.activity_type for entry in timeline(invoice.customer)] == ["email.sent"]
    assert run_mail_delivery() == 0  # sent once


def test_english_is_the_fallback_and_the_organizations_language_comes_before_it(org, clock, smtp):
    smtp.configure(org)
    enable_invoice_emails(org)
    org.document_locale = "de"
    db.session.commit()
    bill(org, clock, "Initech")
    run_mail_delivery()
    [message] = smtp.inbox.messages
    assert message["Subject"].startswith("Rechnung ")


def test_without_an_smtp_server_messages_are_stored_in_the_outbox_not_sent(
    org, clock, agent_client
):
    enable_invoice_emails(org)
    invoice = bill(org, clock, "Acme")

    run_mail_delivery()

    [email] = emails_of(org)
    assert email.status == EmailStatus.STORED and email.sent_at is None
    assert invoice.number in (email.body_text or "")
    assert email.attachment_name == f"{invoice.number}.pdf"
    page = agent_client.get("/emails").get_data(as_text=True)
    assert invoice.number in page and "not sent" in page
    detail = agent_client.get(f"/emails/{email.lago_id}").get_data(as_text=True)
    assert "/portal/" in detail


@pytest.mark.parametrize(
    ("organization_setting", "customer_setting", "sent"),
    [
        (False, "inherit", 0),
        (True, "inherit", 1),
        (True, "off", 0),
        (False, "on", 1),
    ],
)
def test_invoice_emails_follow_the_organization_unless_the_customer_overrides(
    org, clock, organization_setting, customer_setting, sent
):
    org.invoice_emails = organization_setting
    db.session.commit()
    customer = factories.make_customer(org, external_id="ext-acme", name="Acme")
    mail.update_customer_setting(customer, customer_setting, factories.TEST_ACTOR)
    db.session.commit()
    bill(org, clock, "Acme")
    assert len(emails_of(org)) == sent


def test_a_customer_without_an_address_gets_nothing_and_finalization_goes_on(org, clock):
    enable_invoice_emails(org)
    invoice = bill(org, clock, "Acme", email=None)
    assert invoice.status == "finalized"
    assert emails_of(org) == []


def test_an_smtp_refusal_is_retried_with_backoff_and_nothing_is_lost(org, clock, smtp):
    smtp.configure(org)
    enable_invoice_emails(org)
    smtp.inbox.refuse = 1
    invoice = bill(org, clock, "Acme")

    run_mail_delivery()
    [email] = emails_of(org)
    assert email.status == EmailStatus.RETRYING and "451" in (email.last_error or "")
    assert smtp.inbox.messages == []
    assert db.session.get_one(Invoice, invoice.id).status == "finalized"
    assert run_mail_delivery() == 0  # not before its backoff

    clock[0] += timedelta(seconds=31)
    run_mail_delivery()
    [email] = emails_of(org)
    assert (email.status, email.attempts, email.last_error) == ("sent", 2, None)
    assert len(smtp.inbox.messages) == 1


def test_a_server_that_is_down_is_retried_until_it_answers(org, clock, smtp):
    smtp.configure(org)
    enable_invoice_emails(org)
    real_port = org.smtp_port
    org.smtp_port = free_port()  # nobody listens there
    db.session.commit()
    bill(org, clock, "Acme")

    run_mail_delivery()
    [email] = emails_of(org)
    assert email.status == EmailStatus.RETRYING and email.last_error

    org.smtp_port = real_port
    db.session.commit()
    clock[0] += timedelta(seconds=31)
    run_mail_delivery()
    assert emails_of(org)[0].status == "sent" and len(smtp.inbox.messages) == 1


def test_a_permanent_refusal_fails_and_shows_on_the_timeline_with_its_error(org, clock, smtp):
    smtp.configure(org)
    enable_invoice_emails(org)
    smtp.inbox.reject = 1
    invoice = bill(org, clock, "Acme")
    run_mail_delivery()
    [email] = emails_of(org)
    assert email.status == "failed" and "550" in (email.last_error or "")
    [entry] = timeline(invoice.customer)
    assert entry.activity_type == "email.failed" and "550" in str(entry.changes["error"])


def test_a_message_failing_past_its_retry_window_is_marked_failed(org, clock, smtp):
    smtp.configure(org)
    enable_invoice_emails(org)
    smtp.inbox.refuse = 100
    bill(org, clock, "Acme")
    for _ in range(40):
        run_mail_delivery()
        clock[0] += timedelta(hours=1, seconds=1)
    [email] = emails_of(org)
    assert email.status == "failed" and email.next_attempt_at is None
    assert 20 < email.attempts < 40


def test_a_sender_that_dies_after_claiming_leaves_the_message_due_again(org, clock, smtp):
    smtp.configure(org)
    enable_invoice_emails(org)
    bill(org, clock, "Acme")
    assert len(mail.claim_due()) == 1  # leased, then the process dies
    assert not mail.has_due()
    clock[0] += timedelta(seconds=mail.timeout_seconds() + 6)
    assert run_mail_delivery() == 1
    assert emails_of(org)[0].status == "sent"


def test_the_smtp_password_is_stored_encrypted(app, org):
    changed = mail.update_mail_settings(
        org,
        {
            "smtp_host": "smtp.seller.test",
            "smtp_port": "587",
            "smtp_security": "starttls",
            "smtp_username": "mailer",
            "smtp_password": "hunter2-very-secret",
            "mail_from_address": "billing@seller.test",
        },
        app.config["SECRET_KEY"],
        factories.TEST_ACTOR,
    )
    db.session.commit()
    assert "smtp_password" in changed
    row = db.session.execute(
        text("SELECT * FROM organizations WHERE id = :id"), {"id": org.id}
    ).one()
    assert not any("hunter2" in str(value) for value in row)
    stored = org.smtp_password_encrypted
    assert decrypt_secret(app.config["SECRET_KEY"], stored) == "hunter2-very-secret"
    with pytest.raises(SecretUnreadable):
        decrypt_secret("another-secret-key", stored)
    audit_entry = db.session.scalar(
        select(ActivityLog).where(ActivityLog.activity_type == "organization.mail_settings_updated")
    )
    assert "hunter2" not in str(audit_entry.changes)


# --- dunning ---------------------------------------------------------------------------------


def reminders(org: Any) -> list[tuple[int, int]]:
    return [
        (email.invoice_id or 0, int(email.context["days"]))
        for email in emails_of(org)
        if email.kind == "payment_reminder"
    ]


def dun_at(clock: Any, when: str) -> int:
    clock[0] = at(when)
    return run_dunning()


@pytest.fixture
def overdue(org, clock):
    """Acme's April invoice, due on 31 May (Paris), with a 3/10/30-day schedule."""
    org.dunning_schedule = [3, 10, 30]
    db.session.commit()
    invoice = bill(org, clock, "Acme")
    assert str(invoice.payment_due_date) == "2026-05-31"
    return invoice


def test_reminders_go_out_at_3_10_and_30_days_exactly_once_each(org, clock, overdue):
    assert dun_at(clock, "2026-06-02T21:59:00") == 0  # 2 June 23:59 in Paris: 2 days
    assert dun_at(clock, "2026-06-02T22:00:00") == 1  # 3 June 00:00 in Paris: 3 days
    assert dun_at(clock, "2026-06-03T12:00:00") == 0
    assert dun_at(clock, "2026-06-09T12:00:00") == 0
    assert dun_at(clock, "2026-06-10T12:00:00") == 1
    assert dun_at(clock, "2026-06-10T13:00:00") == 0
    assert dun_at(clock, "2026-06-30T12:00:00") == 1
    assert dun_at(clock, "2026-08-30T12:00:00") == 0
    assert reminders(org) == [(overdue.id, 3), (overdue.id, 10), (overdue.id, 30)]


def test_two_schedulers_queue_a_reminder_once(org, clock, overdue):
    clock[0] = at("2026-06-04T12:00:00")
    assert mail.queue_due_reminders() == 1
    assert mail.queue_due_reminders() == 0  # the second one finds the unique key taken
    db.session.commit()
    assert reminders(org) == [(overdue.id, 3)]


def test_no_reminder_for_a_paid_or_voided_invoice(org, clock, overdue):
    globex = bill(org, clock, "Globex")
    invoicing.update_invoice(overdue, {"payment_status": "succeeded"}, factories.TEST_ACTOR)
    void_invoice(globex, {}, factories.TEST_ACTOR)
    db.session.commit()
    assert dun_at(clock, "2026-06-20T12:00:00") == 0
    assert reminders(org) == []


def test_a_reminder_queued_before_the_payment_is_canceled_not_sent(org, clock, overdue, smtp):
    smtp.configure(org)
    assert dun_at(clock, "2026-06-04T12:00:00") == 1
    invoicing.update_invoice(overdue, {"payment_status": "succeeded"}, factories.TEST_ACTOR)
    db.session.commit()
    run_mail_delivery()
    [email] = emails_of(org)
    assert email.status == "canceled" and smtp.inbox.messages == []


def test_a_reminder_reaches_the_customer_with_the_invoice_and_shows_on_its_timeline(
    org, clock, overdue, smtp
):
    smtp.configure(org)
    dun_at(clock, "2026-06-11T12:00:00")
    run_mail_delivery()
    [message] = smtp.inbox.messages
    assert message["Subject"] == f"Payment reminder: invoice {overdue.number} from {org.name}"
    body = body_of(message)
    assert "May 31, 2026" in body and "still unpaid" in body
    assert attachments_of(message)[0][1].startswith(b"%PDF")
    [entry] = timeline(overdue.customer)
    assert entry.activity_type == "email.sent" and "payment reminder" in entry.resource_label


@pytest.mark.parametrize("locale", ["en", "fr", "de", "es", "it", "nl", "nb", "sv", "pt-BR"])
def test_every_document_language_has_its_own_invoice_email(app, locale):
    line = {"number": "ACM-001", "amount": "€1.00", "total": "€1.00"}
    line |= {"issuing_date": "1", "due_date": "2"}
    subject, body = mail._render(
        "invoice.txt", locale, invoice=line, organization="Seller", customer="Acme",
        portal_url="http://testserver/portal/x/",
    )  # fmt: skip
    english = locale == "en"
    assert (subject == "Invoice ACM-001 from Seller") is english
    assert ("Hello Acme," in body) is english
    assert "ACM-001" in subject and "http://testserver/portal/x/" in body
