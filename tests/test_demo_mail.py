"""`make run`'s demo shows invoice e-mails and a payment reminder, stored (no SMTP server)."""

from __future__ import annotations

from sqlalchemy import select

from billing.demo import DEMO_ORG_NAME
from billing.models import Email, Organization
from extensions import db
from tests.test_cli import run


def test_demo_seed_stores_a_few_invoice_emails_and_a_reminder_once(app, db_session):
    run(app, "demo", "seed")
    run(app, "demo", "seed")
    organization = db.session.scalar(select(Organization).where(Organization.name == DEMO_ORG_NAME))
    emails = db.session.scalars(select(Email).where(Email.organization_id == organization.id)).all()
    kinds = sorted(email.kind for email in emails)
    assert kinds.count("invoice") == 3 and kinds.count("payment_reminder") == 1
    assert {email.status for email in emails} == {"stored"}
    assert all(email.subject and email.body_text for email in emails)
    assert organization.invoice_emails and organization.dunning_schedule == [3, 10, 30]
