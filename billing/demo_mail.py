"""Demo e-mails: invoice e-mails on and a 3/10/30-day reminder schedule for the demo
organization, a few invoice e-mails and one payment reminder already handled. `make run` has
no SMTP server, so they are *stored* (listed on the E-mails page and each customer's Activity
tab, marked as not sent), exactly as a development install keeps every message."""

from __future__ import annotations

from sqlalchemy import exists, select

from billing.models import Customer, Email, EmailKind, Invoice, Organization, PaymentStatus
from billing.services import mail
from extensions import db

#: invoice e-mails the demo shows
DEMO_INVOICE_EMAILS = 3
DEMO_SCHEDULE = [3, 10, 30]


def seed_mail(organization: Organization) -> int:
    """Once (nothing when the organization has e-mails already): turn invoice e-mails and
    reminders on, queue e-mails for the latest finalized invoices and a reminder for an
    overdue one, and handle them at once (stored, no server). Returns how many."""
    if db.session.scalar(select(exists().where(Email.organization_id == organization.id))):
        return 0
    organization.invoice_emails = True
    organization.dunning_schedule = DEMO_SCHEDULE
    finalized = (
        select(Invoice)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(
            Invoice.organization_id == organization.id,
            Invoice.status == "finalized",
            Customer.email.is_not(None),
            Customer.deleted_at.is_(None),
        )
        .order_by(Invoice.finalized_at.desc(), Invoice.id.desc())
    )
    latest = list(db.session.scalars(finalized.limit(DEMO_INVOICE_EMAILS)))
    queued = [mail.queue_invoice_emails(latest)]
    overdue = db.session.scalar(
        finalized.where(
            Invoice.payment_status != PaymentStatus.SUCCEEDED, Invoice.payment_overdue.is_(True)
        ).limit(1)
    )
    if overdue is not None:
        customer = overdue.customer
        db.session.add(
            Email(
                organization_id=organization.id,
                customer_id=customer.id,
                invoice_id=overdue.id,
                kind=EmailKind.REMINDER,
                dedupe_key=f"reminder:{overdue.id}:{DEMO_SCHEDULE[0]}",
                recipients=", ".join(mail.addresses(customer.email)),
                locale=mail.customer_locale(customer),
                context={"days": DEMO_SCHEDULE[0]},
            )
        )
        queued.append(1)
    db.session.flush()
    ids = db.session.scalars(
        select(Email.id).where(Email.organization_id == organization.id).order_by(Email.id)
    ).all()
    for email_id in ids:
        mail.deliver(email_id)  # no SMTP server: stored
    return len(ids)
