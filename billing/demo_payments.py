"""Demo data for payments: two unpaid invoices with a partial bank-transfer payment each (their
amount due shows what is left), and one paid through Stripe: the demo organization gets a
published Stripe signing secret (DEMO ONLY) and a `payment_intent.succeeded` event goes through
the real webhook path, so the Payments settings tab lists it."""

from __future__ import annotations

from sqlalchemy import exists, select

from billing.demo_credit_notes import SEED
from billing.models import Invoice, Organization, Payment, PaymentStatus
from billing.services import payments, stripe_hooks
from extensions import db

#: published on purpose so a newcomer can sign test events for /hooks/stripe. DEMO ONLY.
DEMO_STRIPE_SECRET = "whsec_demo_0123456789abcdef0123456789abcdef"  # noqa: S105


def _unpaid(organization: Organization) -> list[Invoice]:
    """Finalized unpaid invoices (wallet top-ups and offset ones aside), oldest first."""
    return list(
        db.session.scalars(
            select(Invoice)
            .where(
                Invoice.organization_id == organization.id,
                Invoice.status == "finalized",
                Invoice.payment_status == PaymentStatus.PENDING,
                Invoice.invoice_type != "credit",
                Invoice.offset_amount_cents == 0,
                Invoice.total_amount_cents >= 100,
            )
            .order_by(Invoice.finalized_at, Invoice.id)
        )
    )


def seed_payments(organization: Organization) -> list[Payment]:
    """Once (nothing when the organization has payments already): two partial manual
    payments and one Stripe payment of a whole invoice."""
    if db.session.scalar(select(exists().where(Payment.organization_id == organization.id))):
        return []
    if not organization.stripe_webhook_secret:
        organization.stripe_webhook_secret = DEMO_STRIPE_SECRET
    unpaid = _unpaid(organization)
    made: list[Payment] = []
    for number, invoice in enumerate(unpaid[:2], start=1):
        made.append(
            payments.create_manual_payment(
                invoice,
                {
                    "amount_cents": invoice.total_due_amount_cents // 2,
                    "reference": f"DEMO-TRX-{number:04d}",
                    "method": "bank_transfer",
                },
                SEED,
            )
        )
    if len(unpaid) > 2:
        invoice = unpaid[2]
        event = {
            "id": "evt_demo_paid_by_stripe",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": "pi_demo_0001",
                    "object": "payment_intent",
                    "amount": invoice.total_due_amount_cents,
                    "amount_received": invoice.total_due_amount_cents,
                    "currency": invoice.currency.lower(),
                    "metadata": {"lago_invoice_id": str(invoice.lago_id)},
                }
            },
        }
        outcome = stripe_hooks.receive_event(organization, event)
        if outcome.payment is not None:
            made.append(outcome.payment)
    db.session.flush()
    return made
